"""The fan-out benchmark runs end to end against our server: 20 phones, 2 cues.

No timing is asserted (that is the benchmark's job); only that it measures:
every phone got every cue exactly once, and the last line is the JSON it promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("picows", reason="the load generator needs picows (the bench extra)")
pytest.importorskip("uvloop", reason="the load generator runs on uvloop (the bench extra)")

REPO = Path(__file__).resolve().parent.parent
KEYS = {
    "clients",
    "fanout_p50_ms",
    "fanout_p99_ms",
    "fanout_max_ms",
    "lost",
    "duplicated",
    "rss_kb_per_conn",
    "ratio_max_vs_starlette",
    "ratio_max_vs_socketio",
    "ratio_max_vs_websockets",
    "peers",
}


def test_the_fanout_benchmark_delivers_every_cue_once_and_ends_with_its_json() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fanout",
            *("--clients", "20", "--cues", "2", "--runs", "1", "--servers", "classroom"),
            *("--timeout", "60", "--settle", "0"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.keys() >= KEYS, sorted(KEYS - result.keys())
    assert result["clients"] == 20
    assert result["connect_errors"] == 0
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["gaps"] == 0
    assert result["fanout_max_ms"] is not None
    assert result["failed_runs"] == 0
    assert result["peers"] == {}
