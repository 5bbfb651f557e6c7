"""The cluster benchmark runs end to end: 2 workers, 20 phones, 3 seconds, then a SIGKILL.

No timing is asserted but the failover's bound (that is the benchmark's job);
only that it measures what it says: phones on both workers, every input
acknowledged once, the stored totals and a non-owner's final board exact, the
owner killed and the class moved within 10 s, and the last line is the JSON it
promises. Without PostgreSQL or Redis it skips, saying why; in CI it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from tests.cluster.conftest import redis_url  # noqa: F401 - a fixture
from tests.db.conftest import postgres_server  # noqa: F401 - a fixture

# The scoring benchmark's test skips without the bench extra (picows, uvloop); so does this.
from tests.test_bench_scoring import KEYS as SCORING_KEYS

REPO = Path(__file__).resolve().parent.parent
ONE_SERVER = {"server_cpu_percent", "server_rss_max_mib"}
KEYS = SCORING_KEYS - ONE_SERVER | {
    "workers",
    "fanout_p50_ms",
    "fanout_max_ms",
    "failover_s",
    "machine",
}


def test_the_cluster_benchmark_spreads_phones_counts_exactly_and_times_a_failover(
    postgres_server: tuple[URL, int],  # noqa: F811 - the fixtures above
    redis_url: str,  # noqa: F811
) -> None:
    base, _ = postgres_server
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cluster",
            "--quick",
            "--failover",
            *("--workers", "2", "--participants", "20", "--seconds", "3", "--rate", "2"),
            *("--settle", "0", "--timeout", "150"),
            *("--postgres", base.render_as_string(hide_password=False), "--redis", redis_url),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.keys() >= KEYS, sorted(KEYS - result.keys())
    assert result["workers"] == 2 and result["participants"] == 20
    assert result["inputs"] == 20 * 3 * 2
    assert result["acked"] == result["inputs"] == result["stored_inputs"]
    assert result["totals_exact"] is True
    assert result["duplicates"] == 0 and result["acked_twice"] == 0
    assert result["errors"] == 0 and result["failed_runs"] == 0
    assert result["owner_worker"] == 0 and result["owner_held"] is True
    run = result["per_run"][0]
    assert [w["phones"] for w in run["per_worker"].values()] == [10, 10]
    assert all(w["acked"] == 60 for w in run["per_worker"].values())
    assert run["new_owner"] not in (None, run["owner"])
    assert result["ack_p99_ms"] is not None and result["leaderboard_updates_per_s"] > 0
    assert result["fanout_p50_ms"] is not None and result["cues_lost"] == 0
    assert isinstance(result["failover_s"], float) and 0 < result["failover_s"] <= 10
    assert set(result["machine"]) >= {"cpu", "cores", "python"}


def test_the_cluster_benchmark_refuses_a_bad_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--workers", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--workers must be between 1 and 16" in done.stderr
