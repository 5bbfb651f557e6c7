"""deploy/nginx.conf, as the docs give it, run by a real nginx in front of test servers.

The config is used as it is written: only its upstream servers and its listen line
are replaced, so what the tests pass through is what a gym deploys. Without nginx a
test skips, saying why; in CI (which installs it) it fails.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port, need_service

CONFIG = Path(__file__).parents[1] / "deploy" / "nginx.conf"


def proxied(config: str, upstreams: list[int], port: int, prefix: Path) -> str:
    """``config`` around servers on the loopback ``upstreams`` ports, listening on
    ``port``: a whole nginx.conf of the test's own, with its files under ``prefix``."""
    servers = "".join(f"    server 127.0.0.1:{upstream};\n" for upstream in upstreams)
    site, count = re.subn(r"(upstream classroom \{\n)(?:    server .*\n)+", rf"\1{servers}", config)
    assert count == 1, "the config has no upstream classroom block to replace"
    site, count = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", site)
    assert count == 1, "the config has no listen 80 line to replace"
    temp = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        f"events {{}}\nhttp {{\n    access_log {prefix / 'access.log'};\n{temp}{site}\n}}\n"
    )


def nginx_binary() -> str:
    """Debian's nginx (``.ci/run`` installs it); skip, or fail in CI, without it."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        need_service("nginx", FileNotFoundError("nginx is not installed"))
    return binary


@dataclass(frozen=True)
class Proxy:
    """A running nginx: where it listens, and its access log (one line per request,
    written when the request ends; for a WebSocket, when the socket closes)."""

    port: int
    directory: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> str:
        return (self.directory / "access.log").read_text()


@contextmanager
def nginx(upstreams: list[int], directory: Path, port: int | None = None) -> Iterator[Proxy]:
    """deploy/nginx.conf in front of ``upstreams``, on ``port`` (or a free one)."""
    binary = nginx_binary()
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(proxied(CONFIG.read_text(), upstreams, port, directory))
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(directory)],
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
                assert process.poll() is None, (directory / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield Proxy(port, directory)
    finally:
        process.terminate()
        process.wait(10)
