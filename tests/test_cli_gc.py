"""`classroom serve` tunes the garbage collector, and full collections wait for a quiet moment."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from classroom import cli
from classroom.live import collector


@pytest.fixture
def managed() -> Iterator[None]:
    thresholds = gc.get_threshold()
    collector.manage()
    yield
    monkey = pytest.MonkeyPatch()
    monkey.setattr(collector, "_managed", False)  # back to an unmanaged process
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


@pytest.mark.usefixtures("managed")
def test_start_up_objects_are_frozen_and_collections_are_rarer() -> None:
    assert collector.managed()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (collector.GC_YOUNG_THRESHOLD, *collector.GC_OLDER_THRESHOLDS)


@pytest.mark.usefixtures("managed")
def test_a_class_starting_freezes_what_is_alive_without_a_collection() -> None:
    room = [[n] for n in range(1000)]  # stands for a room's connected screens (tracked)
    before, collections = gc.get_freeze_count(), full_collections()
    collector.class_started()
    assert gc.get_freeze_count() >= before + len(room)
    assert full_collections() == collections
    assert gc.get_threshold()[2] == collector.NEVER  # none while the class is live


@pytest.mark.usefixtures("managed")
async def test_the_full_collection_waits_until_no_class_is_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collector, "QUIET_S", 0.05)
    collector.class_started()
    live = [1]
    collections = full_collections()
    collector.class_ended(lambda: live[0])  # another class is still live
    await asyncio.sleep(0.2)
    assert full_collections() == collections

    assert gc.get_threshold()[2] == collector.NEVER

    live[0] = 0
    collector.class_ended(lambda: live[0])
    await asyncio.sleep(0.2)
    assert full_collections() == collections + 1
    assert gc.get_freeze_count() > 0  # what survived is frozen again
    assert gc.get_threshold() == (collector.GC_YOUNG_THRESHOLD, *collector.GC_OLDER_THRESHOLDS)


@pytest.mark.usefixtures("managed")
async def test_a_full_collection_runs_at_a_class_end_when_the_last_is_long_ago(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collector, "_last_full", collector._last_full - collector.AT_LEAST_EVERY_S)
    collections = full_collections()
    collector.class_ended(lambda: 3)  # classes overlap all day
    assert full_collections() == collections + 1
    assert gc.get_threshold()[2] == collector.NEVER  # and three are still live


async def test_an_unmanaged_process_is_left_alone() -> None:
    frozen, collections = gc.get_freeze_count(), full_collections()
    collector.class_started()
    collector.class_ended(lambda: 0)
    await asyncio.sleep(0)
    assert (gc.get_freeze_count(), full_collections()) == (frozen, collections)


def test_serve_tunes_the_collector_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr("classroom.live.collector.manage", lambda: calls.append("tuned"))
    monkeypatch.setattr("uvicorn.Server.run", lambda self: calls.append("served"))
    monkeypatch.setattr(cli, "prepare_database", lambda settings: None)
    settings = cli.Settings(database_url="sqlite+aiosqlite:///:memory:", secret_key="x" * 32)
    assert cli.serve(settings) == 0
    assert calls == ["tuned", "served"]
