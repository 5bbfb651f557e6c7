"""The timer benchmark runs end to end against our server: 5 classes, 5 seconds.

No timing is asserted (that is the benchmark's job); only that it measures what it
says: every cue due in the window reached its screen, none lost and no gaps, the
probe saw the server's writes, and the last line is the JSON it promises.
"""

from __future__ import annotations

# The scoring benchmark's test skips without the bench extra (picows, uvloop); so does this.
from tests.test_bench_scoring import last_json, run_bench

KEYS = {
    "classes",
    "cues",
    "expected",
    "lost",
    "seq_gaps",
    "lateness_p50_ms",
    "lateness_p99_ms",
    "cpu_percent_per_100_classes",
    "idle_cpu_percent",
    "clock_sync_uncertainty_ms",
    "server_written_p99_ms",
    "persist_p50_ms",
}


def test_the_timer_benchmark_receives_every_cue_and_ends_with_its_json() -> None:
    args = ("--classes", "5", "--seconds", "5", "--warmup", "2", "--idle", "2")
    result = last_json(run_bench("bench.timers", *args, "--unwatched", "0", timeout=150))
    assert result.keys() >= KEYS, sorted(KEYS - result.keys())
    assert result["classes"] == 5
    assert result["expected"] >= 5 and result["cues"] == result["expected"]
    assert result["lost"] == 0 and result["seq_gaps"] == 0
    assert result["lateness_p99_ms"] is not None
    assert result["server_written_p99_ms"] is not None
