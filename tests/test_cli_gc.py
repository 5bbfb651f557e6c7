"""`classroom serve` tunes the garbage collector before it serves."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from classroom import cli


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_collections_are_rarer() -> None:
    cli.tune_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (cli.GC_YOUNG_THRESHOLD, *cli.GC_OLDER_THRESHOLDS)


def test_serve_tunes_the_collector_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "tune_garbage_collector", lambda: calls.append("tuned"))
    monkeypatch.setattr("uvicorn.Server.run", lambda self: calls.append("served"))
    monkeypatch.setattr(cli, "prepare_database", lambda settings: None)
    settings = cli.Settings(database_url="sqlite+aiosqlite:///:memory:", secret_key="x" * 32)
    assert cli.serve(settings) == 0
    assert calls == ["tuned", "served"]
