"""``classroom serve --workers N``, and the one-line refusals of a process that can't join."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from classroom.db.migrate import downgrade
from tests.cluster.conftest import Node
from tests.cluster.test_cluster import class_runs_through
from tests.conftest import SECRET, free_port

METRICS_TOKEN = "scrape-token-0123456789abcdef"


def serve(env: dict[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``classroom serve`` that is expected to refuse: its exit code and its output."""
    return subprocess.run(
        [sys.executable, "-m", "classroom.cli", "serve", "--port", str(free_port()), *args],
        env={**os.environ, "CLASSROOM_SECRET_KEY": SECRET, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("classroom:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_workers_need_redis(tmp_path: Path) -> None:
    result = serve(
        {"CLASSROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"}, "--workers", "2"
    )
    assert result.returncode == 2
    assert "--workers needs CLASSROOM_REDIS_URL" in one_line(result)


def test_workers_refuse_sqlite_naming_postgresql(tmp_path: Path, redis_url: str) -> None:
    env = {
        "CLASSROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        "CLASSROOM_REDIS_URL": redis_url,
    }
    result = serve(env, "--workers", "2")
    assert result.returncode == 2
    assert "--workers needs PostgreSQL" in one_line(result)
    assert serve(env, "--workers", "0").returncode == 2


def test_a_node_with_another_secret_key_is_refused(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    first = Node("node1", cluster_db, redis_url, "test-secrets", tmp_path)
    first.start()
    try:
        time.sleep(1.5)  # its heartbeat carries its key's digest
        result = serve(
            {
                "CLASSROOM_DATABASE_URL": cluster_db,
                "CLASSROOM_REDIS_URL": redis_url,
                "CLASSROOM_REDIS_PREFIX": "test-secrets",
                "CLASSROOM_SECRET_KEY": "another-secret-key-entirely-0123456789",
            }
        )
        assert result.returncode == 1
        line = one_line(result)
        assert "node1 runs with a different CLASSROOM_SECRET_KEY" in line
        assert SECRET not in result.stderr
    finally:
        first.stop()


def test_a_node_of_another_schema_version_is_refused(cluster_db: str, redis_url: str) -> None:
    downgrade(cluster_db, "0007")  # as if this version's migration had not been run
    result = serve({"CLASSROOM_DATABASE_URL": cluster_db, "CLASSROOM_REDIS_URL": redis_url})
    assert result.returncode == 1
    line = one_line(result)
    assert "schema is at 0007" in line and "run `classroom migrate`" in line


async def test_two_workers_serve_one_class_on_one_port(
    cluster_db: str, redis_url: str, tmp_path: Path
) -> None:
    server = Node("unused", cluster_db, redis_url, "test-workers", tmp_path)
    del server.env["CLASSROOM_NODE"]  # each worker names itself
    server.env.update(CLASSROOM_METRICS="token", CLASSROOM_METRICS_TOKEN=METRICS_TOKEN)
    server.args = ["--workers", "2"]
    server.start(wait=False)
    try:
        server.wait_ready()
        nodes = set()
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            for _ in range(40):  # new connections go to either worker
                async with httpx.AsyncClient(base_url=server.base_url) as fresh:
                    nodes.add((await fresh.get("/readyz")).json()["node"])
                if len(nodes) == 2:
                    break
            assert len(nodes) == 2, nodes
            # A scrape reaches one worker, and answers with both workers' figures.
            scrape = await client.get(
                "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            )
            assert scrape.status_code == 200
            for node in nodes:
                assert f'classroom_lease_renewals_total{{node="{node}"}}' in scrape.text
            assert "did not answer" not in scrape.text
            await class_runs_through(server, client, phones=6)
    finally:
        server.stop()
