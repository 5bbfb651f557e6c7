"""`classroom routine check` and `classroom routine import`, run as a user would."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from classroom import cli
from classroom.library import library_slugs
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
    assert "bad.yaml: 3 problems" in err
    assert "blocks[0].duration" in err and "blocks[1].rounds" in err


def test_counts_read_as_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("title: One\nblocks:\n  - {type: work, name: Row, duration: 60}\n")
    assert cli.main(["routine", "check", str(one)]) == 0
    assert "1:00 in 1 segment," in capsys.readouterr().out
    one.write_text("title: One\nblocks:\n  - {type: work, name: Row, duration: 0}\n")
    assert cli.main(["routine", "check", str(one)]) == 1
    assert "one.yaml: 1 problem\n" in capsys.readouterr().err


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
        owned = "SELECT count(*) FROM routines WHERE instructor_id IS NOT NULL"
        assert db.execute(owned).fetchone() == (0,)


def routines_of(url: str) -> list[tuple[str, str, bool]]:
    """Every stored routine: its slug, its title, and whether it is built in."""
    with sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///")) as db:
        rows = db.execute("SELECT slug, title, instructor_id IS NULL FROM routines ORDER BY id")
        return [(slug, title, bool(builtin)) for slug, title, builtin in rows]


def test_migrate_gives_every_instructor_the_built_in_routines_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", url)
    assert cli.main(["migrate"]) == 0
    assert cli.main(["migrate"]) == 0  # again, as on every upgrade: nothing doubles
    stored = routines_of(url)
    assert sorted(slug for slug, _, builtin in stored if builtin) == sorted(library_slugs())
    assert len(stored) == len(library_slugs())
    assert ("tabata-tuesday", "Tabata Tuesday", True) in stored


def test_import_builtin_copies_one_or_all_for_an_instructor(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(seed(migrated_url))
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", migrated_url)
    command = ["routine", "import", "--instructor", INSTRUCTOR_EMAIL]
    assert cli.main([*command, "--builtin", "tabata-tuesday"]) == 0
    assert "stored 'Tabata Tuesday' as tabata-tuesday" in capsys.readouterr().out
    own = [slug for slug, _, builtin in routines_of(migrated_url) if not builtin]
    assert own == ["tabata-tuesday"]
    assert cli.main([*command, "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("classroom: stored") == len(library_slugs())
    own = [slug for slug, _, builtin in routines_of(migrated_url) if not builtin]
    assert len(own) == 1 + len(library_slugs()) and "tabata-tuesday-2" in own


@pytest.mark.parametrize(
    ("arguments", "code", "said"),
    [
        (["--builtin", "zumba"], 1, "there is no built-in routine 'zumba' (there are amrap-15,"),
        (["--builtin", "tabata-tuesday", "--all"], 2, "not allowed with argument"),
        (["x.yaml", "--all"], 2, "not allowed with argument"),
        ([], 2, "one of the arguments path --builtin --all is required"),
    ],
)
def test_import_builtin_refuses_what_names_no_routine_and_stores_nothing(
    migrated_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    code: int,
    said: str,
) -> None:
    asyncio.run(seed(migrated_url))
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", migrated_url)
    before = routines_of(migrated_url)
    try:
        result = cli.main(["routine", "import", "--instructor", INSTRUCTOR_EMAIL, *arguments])
    except SystemExit as exit:
        result = int(exit.code or 0)
    assert result == code
    assert said in capsys.readouterr().err
    assert routines_of(migrated_url) == before
