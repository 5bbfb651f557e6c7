"""The compile benchmark runs, and ends with one JSON line of figures (not a timed test)."""

from __future__ import annotations

import json

import pytest

from bench import routines
from classroom.domain.compiler import compile_routine


def test_the_benchmark_routine_is_two_hours_of_1000_segments() -> None:
    timeline = compile_routine(routines.two_hour_routine())
    assert len(timeline.segments) == 1_000
    assert timeline.total_ms == 2 * 60 * 60 * 1000


def test_the_benchmark_prints_a_table_then_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert routines.main(["--runs", "2", "--budget", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["compile_ms_p50"] > 0
    assert figures["compile_runs"] == 2
    assert any(line.startswith("compile 2 h / 1,000 segments") for line in lines)
