"""The scoring benchmark runs end to end against our server: 20 phones, 3 seconds.

No timing is asserted (that is the benchmark's job); only that it measures what
it says: every input acknowledged once, the stored totals and the final board
exact, and the last line is the JSON it promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("picows", reason="the load generator needs picows (the bench extra)")
pytest.importorskip("uvloop", reason="the load generator runs on uvloop (the bench extra)")

REPO = Path(__file__).resolve().parent.parent
KEYS = {
    "participants",
    "inputs",
    "acked",
    "totals_exact",
    "ack_p50_ms",
    "ack_p99_ms",
    "leaderboard_updates_per_s",
    "server_cpu_percent",
    "server_rss_max_mib",
}


def run_bench(module: str, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """A benchmark's figures: the JSON object of its last line (it must have succeeded)."""
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_scoring_benchmark_acknowledges_every_input_and_ends_with_its_json() -> None:
    args = ("--participants", "20", "--seconds", "3", "--rate", "2", "--timeout", "90")
    result = last_json(run_bench("bench.scoring", *args))
    assert result.keys() >= KEYS, sorted(KEYS - result.keys())
    assert result["participants"] == 20
    assert result["inputs"] == 20 * 3 * 2
    assert result["acked"] == result["inputs"] == result["stored_inputs"]
    assert result["totals_exact"] is True
    assert result["duplicates"] == 0 and result["acked_twice"] == 0
    assert result["errors"] == 0 and result["failed_runs"] == 0
    assert result["ack_p99_ms"] is not None and result["leaderboard_updates_per_s"] > 0


def test_the_scoring_benchmark_refuses_a_bad_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.scoring", "--participants", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--participants must be between 1 and 20,000" in done.stderr
