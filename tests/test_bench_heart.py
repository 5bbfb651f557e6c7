"""The heart-rate benchmark runs end to end against our server: 20 phones, 5 seconds.

No timing is asserted (that is the benchmark's job); only that it measures what
it says: every rep acknowledged once and every heart-rate sample answered once,
none refused, the stored rep totals and heart rates exact, the wall's last tiles
one per phone, and the last line is the JSON it promises.
"""

from __future__ import annotations

# The scoring benchmark's test skips without the bench extra (picows, uvloop); so does this.
from tests.test_bench_scoring import KEYS as SCORING_KEYS
from tests.test_bench_scoring import last_json, run_bench

KEYS = SCORING_KEYS | {
    "hr_samples_per_s",
    "hr_ingest_p50_ms",
    "hr_ingest_p99_ms",
    "tile_updates_per_s",
    "hr_sent",
    "hr_answered",
    "hr_errors",
    "hearts_exact",
    "heart_totals_rows",
    "heart_samples_rows",
}


def test_the_heart_benchmark_answers_every_sample_and_ends_with_its_json() -> None:
    args = ("--participants", "20", "--seconds", "5", "--timeout", "90")
    result = last_json(run_bench("bench.heart", *args))
    assert result.keys() >= KEYS, sorted(KEYS - result.keys())
    assert result["participants"] == 20 and result["rate"] == result["hr_rate"] == 1
    assert result["inputs"] == result["acked"] == result["stored_inputs"] == 20 * 5
    assert result["totals_exact"] is True and result["errors"] == 0
    assert result["duplicates"] == 0 and result["acked_twice"] == 0
    assert result["hr_sent"] == result["hr_answered"] == result["hr_taken"] == 20 * 5
    assert result["hr_errors"] == {} and result["hr_answered_twice"] == 0
    assert result["hearts_exact"] is True and result["failed_runs"] == 0
    assert result["tiles_final"] == result["tiles_matching"] == 20
    assert result["heart_totals_rows"] == 20
    assert 20 <= result["heart_samples_rows"] <= 20 * 3  # 5 samples: 1 to 3 five-second rows
    assert result["hr_ingest_p99_ms"] is not None and result["tile_updates_per_s"] > 0


def test_the_heart_benchmark_refuses_a_rate_over_the_servers_limit() -> None:
    done = run_bench("bench.heart", "--hr-rate", "3", timeout=60)
    assert done.returncode == 2
    assert "--hr-rate must be above 0 and at most 2" in done.stderr
