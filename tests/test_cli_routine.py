"""`classroom routine check` and `classroom routine import`, run as a user would."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from classroom import cli
from tests.conftest import INSTRUCTOR_EMAIL, seed

SHARED_ZWO = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "zwo"
DATA = Path(__file__).parent / "data"


def test_check_prints_a_readable_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["routine", "check", str(DATA / "quick.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Quick test\n0:36 in 3 segments")
    assert "Squats" in out and "Push-ups" in out and "» one (authored)" in out


def test_check_json_gives_the_compiled_timeline_in_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["routine", "check", str(DATA / "quick.yaml"), "--json"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    assert timeline["total_seconds"] == 36
    assert [
        (s["index"], s["name"], s["kind"], s["start"], s["duration"]) for s in timeline["segments"]
    ] == [
        (0, "Squats", "work", 0, 4),
        (1, "Rest", "rest", 4, 2),
        (2, "Push-ups", "work", 6, 30),
    ]


def test_check_lists_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "title: Bad\nblocks:\n  - type: work\n    duration: 0\n"
        "  - type: tabata\n    rounds: 100000\n"
    )
    assert cli.main(["routine", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "problem(s)" in err
    assert "blocks[0].duration" in err and "blocks[1].rounds" in err


def test_check_refuses_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["routine", "check", "/nonexistent/routine.yaml"]) == 1
    assert "can't read this file" in capsys.readouterr().err


def test_import_stores_a_routine_for_an_instructor(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    asyncio.run(seed(migrated_url))
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", migrated_url)
    source = DATA / "quick.yaml"
    assert cli.main(["routine", "import", str(source), "--instructor", INSTRUCTOR_EMAIL]) == 0
    assert cli.main(["routine", "import", str(source), "--instructor", INSTRUCTOR_EMAIL]) == 0
    assert "stored 'Quick test' as quick-test-2" in capsys.readouterr().out
    zwo = next(iter(sorted(SHARED_ZWO.rglob("*.zwo"))), None)
    if zwo is not None:
        assert cli.main(["routine", "import", str(zwo), "--instructor", INSTRUCTOR_EMAIL]) == 0
    path = migrated_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT slug, source_format FROM routines WHERE instructor_id IS NOT NULL ORDER BY id"
        ).fetchall()
    assert rows[:2] == [("quick-test", "yaml"), ("quick-test-2", "yaml")]
    if zwo is not None:
        assert rows[2][1] == "yaml"  # a .zwo is stored as the routine text format


def test_import_refuses_an_unknown_instructor_and_stores_nothing(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", migrated_url)
    code = cli.main(["routine", "import", str(DATA / "quick.yaml"), "--instructor", "who@x.y"])
    assert code == 1 and "no instructor has the email who@x.y" in capsys.readouterr().err
    path = migrated_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM routines").fetchone() == (0,)
