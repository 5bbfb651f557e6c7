"""What every benchmark relies on: its processes stopped whatever happens, one JSON last line.

These pin the shared launcher (``bench.launch``), the report (``bench.report``) and
the clock reading (``bench.client.clock_offset``) with real child processes; the
benchmarks' own tests (``test_bench_*.py``) run each benchmark end to end.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from pathlib import Path

import psutil
import pytest

from bench.client import clock_offset
from bench.launch import Children, free_port, run_benchmark, start_server
from bench.report import emit, percentile

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")


def gone(pid: int) -> bool:
    """The process has exited and been reaped (or is a zombie nobody will run again)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_children_are_killed_when_the_benchmark_fails(tmp_path: Path) -> None:
    pids = []
    with pytest.raises(RuntimeError, match="the benchmark failed"):
        async with Children() as children:
            for n in range(2):
                process = await children.spawn(SLEEPER, tmp_path / f"{n}.log", {})
                pids.append(process.pid)
            assert not any(gone(pid) for pid in pids)
            raise RuntimeError("the benchmark failed")
    assert all(gone(pid) for pid in pids)
    assert all(process.returncode is not None for process in children.processes)


async def test_a_server_that_exits_early_fails_its_start_with_its_log(tmp_path: Path) -> None:
    command = (sys.executable, "-c", "print('cannot bind the port'); raise SystemExit(3)")
    async with Children() as children:
        with pytest.raises(RuntimeError, match="exited early:\ncannot bind the port"):
            await start_server(children, {}, tmp_path / "log", port=free_port(), command=command)
        assert children.processes[0].returncode == 3


def test_the_scratch_directory_is_removed_even_when_the_benchmark_fails() -> None:
    seen: list[Path] = []

    async def body(workdir: Path) -> None:
        seen.append(workdir)
        (workdir / "classroom.db").write_text("")
        raise RuntimeError("the benchmark failed")

    with pytest.raises(RuntimeError):
        run_benchmark("launch-test", body)
    assert seen and seen[0].name.startswith("classroom-launch-test-")
    assert not seen[0].exists()


def test_the_last_line_is_one_json_object_even_with_unmeasured_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print("a table first")
    emit({"p99_ms": math.nan, "max_ms": math.inf, "per_run": [{"p50": -math.inf, "n": 3}]})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "a table first" and len(lines) == 2
    assert json.loads(lines[-1]) == {
        "p99_ms": None,
        "max_ms": None,
        "per_run": [{"p50": None, "n": 3}],
    }


def test_percentiles_are_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert percentile(ordered, 50) == 50.0
    assert percentile(ordered, 99) == 99.0
    assert percentile(ordered, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


async def test_the_clock_offset_is_bounded_from_both_sides_and_skips_unanswered_pings() -> None:
    # The server's clock is ours + 1000 ms; each ping takes 2 ms; ping 1 gets no pong.
    answers = {
        0: (10.000, 11_001.0, 10.002),  # server read its clock 1 ms after our send
        1: None,
        2: (20.000, 21_000.5, 20.002),  # ... and 0.5 ms after this one
    }

    async def ping(i: int) -> tuple[float, float, float] | None:
        return answers[i]

    found = await clock_offset(ping, pings=3, pause_s=0)
    # Bounds: server_now - received <= offset < server_now + 1 - sent, tightest of both.
    low, high = max(11_001.0 - 10_002, 21_000.5 - 20_002), min(11_002.0 - 10_000, 21_001.5 - 20_000)
    assert found["offset_ms"] == pytest.approx((low + high) / 2)
    assert found["uncertainty_ms"] == pytest.approx((high - low) / 2)
    assert found["rtt_ms"] == pytest.approx(2.0)


async def test_a_clock_that_never_answers_is_an_error() -> None:
    async def ping(i: int) -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="answered no ping"):
        await clock_offset(ping, pings=3, pause_s=0)
