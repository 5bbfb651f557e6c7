"""deploy/nginx.conf, as the docs give it, in front of two nodes: a class runs through it.

Only the upstream servers and the listen line are replaced. Without nginx the test
skips, saying why; in CI (which installs it) it fails.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import Cluster, Node
from tests.cluster.test_cluster import class_runs_through
from tests.conftest import free_port, need_service

CONFIG = Path(__file__).parents[2] / "deploy" / "nginx.conf"


def proxied(config: str, nodes: list[Node], port: int, prefix: Path) -> str:
    """The documented config around two nodes, as a whole nginx.conf of the test's own."""
    servers = "".join(f"    server 127.0.0.1:{node.port};\n" for node in nodes)
    site, count = re.subn(
        r"(upstream classroom \{\n)(?:    server .*;\n)+", rf"\1{servers}", config
    )
    assert count == 1
    site, count = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", site)
    assert count == 1
    temp = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        f"events {{}}\nhttp {{\n    access_log off;\n{temp}{site}\n}}\n"
    )


@pytest.fixture
def proxy(cluster_db: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Cluster]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        need_service("nginx", FileNotFoundError("nginx is not installed"))
    group = Cluster(cluster_db, redis_url, tmp_path, 2)
    for node in group.nodes:
        node.env["CLASSROOM_TRUSTED_PROXIES"] = "127.0.0.1"
    group.start()
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(proxied(CONFIG.read_text(), group.nodes, port, tmp_path))
    nginx = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert nginx.poll() is None, (tmp_path / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield f"127.0.0.1:{port}", group
    finally:
        nginx.terminate()
        nginx.wait(10)
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
