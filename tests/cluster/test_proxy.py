"""deploy/nginx.conf, as the docs give it, in front of two nodes: a class runs through it.

Only the upstream servers and the listen line are replaced (tests/proxy.py). Without
nginx the test skips, saying why; in CI (which installs it) it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import Cluster, Node
from tests.cluster.test_cluster import class_runs_through
from tests.proxy import nginx, nginx_binary


@pytest.fixture
def proxy(cluster_db: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Cluster]]:
    nginx_binary()  # skip (or fail in CI) before starting the nodes
    group = Cluster(cluster_db, redis_url, tmp_path, 2)
    for node in group.nodes:
        node.env["CLASSROOM_TRUSTED_PROXIES"] = "127.0.0.1"
    group.start()
    try:
        with nginx([node.port for node in group.nodes], tmp_path / "nginx") as running:
            yield f"127.0.0.1:{running.port}", group
    finally:
        group.stop()


async def test_a_class_runs_through_the_documented_nginx_config(
    proxy: tuple[str, Cluster],
) -> None:
    address, group = proxy
    base = f"http://{address}"
    through = Node("proxy", "", "", "", Path("."))  # the proxy, as screens see a node
    through.port = int(address.rsplit(":", 1)[1])
    through.base_url = base
    async with httpx.AsyncClient(base_url=base) as instructor:
        # Sign-in, the join form and the sockets hold through it (Origin, CSRF, upgrade).
        await class_runs_through(through, instructor, phones=4)
    # Requests went to both nodes (round robin: nothing sticky), and each node took the
    # client's address from X-Forwarded-For (uvicorn shows such a client with port 0).
    for node in group.nodes:
        assert '127.0.0.1:0 - "' in node.output()
