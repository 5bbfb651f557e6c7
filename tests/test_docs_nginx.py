"""docs/deployment.md's nginx site is deploy/nginx.conf, the file CI runs, word for word.

A reader copies the page, not the repository: so the page shows the whole file, and
these tests hold the two together, byte for byte. They also hold the file to what
the server needs of it, read from the server's code: a read timeout well over the
heartbeat, and room for the largest form. (tests/cluster/test_proxy.py and
tests/browser/test_first_class_proxy.py run classes through the file itself.)
"""

from __future__ import annotations

import re
from pathlib import Path

from classroom.hub.hub import HEARTBEAT_S
from classroom.web import routines
from classroom.web.form_limits import DEFAULT_BUDGET
from tests.proxy import CONFIG

DOC = Path(__file__).parents[1] / "docs" / "deployment.md"
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
SIZES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def nginx_seconds(value: str) -> float:
    """An nginx time (``75s``, ``1m30s``, ``75``: seconds without a unit) in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d)?", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not an nginx time: {value}"
    return sum(int(number) * UNITS[unit or "s"] for number, unit in parts)


def nginx_bytes(value: str) -> int:
    """An nginx size (``3m``, ``512k``, ``1048576``) in bytes."""
    found = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert found, f"not an nginx size: {value}"
    return int(found.group(1)) * SIZES[found.group(2).lower()]


def directive(config: str, name: str) -> str:
    """The value of ``name``, which the config must set exactly once."""
    values = re.findall(rf"^\s*{name}\s+([^;]+);", config, re.M)
    assert len(values) == 1, f"deploy/nginx.conf sets {name} {len(values)} times"
    return str(values[0])


def block(text: str, opening: str) -> str:
    """The lines from ``opening`` to the brace that closes it, at the same indent."""
    found = re.search(rf"^( *){re.escape(opening)}\n.*?^\1\}}\n", text, re.S | re.M)
    assert found, f"no {opening!r} block"
    return found.group(0)


def test_the_deployment_page_shows_deploy_nginx_conf_word_for_word() -> None:
    doc = DOC.read_text()
    found = re.search(r"^<!-- deploy/nginx.conf -->\n```nginx\n(.*?)^```$", doc, re.S | re.M)
    assert found, "docs/deployment.md has no nginx block marked <!-- deploy/nginx.conf -->"
    assert found.group(1) == CONFIG.read_text()


def test_the_https_example_proxies_as_the_tested_file_does() -> None:
    """The certbot example adds TLS around the same ``location`` (the page says so)."""
    examples = re.findall(r"^```nginx\n(.*?)^```$", DOC.read_text(), re.S | re.M)
    https = [example for example in examples if re.search(r"^ *listen 443 ssl;", example, re.M)]
    assert len(https) == 1, "docs/deployment.md should have one nginx example with TLS"
    config = CONFIG.read_text()
    for opening in ("location / {", "map $http_upgrade $connection_upgrade {"):
        assert block(https[0], opening) == block(config, opening)
    assert f"client_max_body_size {directive(config, 'client_max_body_size')};" in https[0]


def test_the_proxy_sets_the_headers_the_server_reads() -> None:
    """The tests through nginx exercise the upgrade, Host and X-Forwarded-For; they
    run without TLS, where X-Forwarded-Proto changes nothing: check it is passed."""
    config = CONFIG.read_text()
    headers = dict(re.findall(r"^\s*proxy_set_header\s+(\S+)\s+([^;]+);", config, re.M))
    assert headers == headers | {
        "Upgrade": "$http_upgrade",
        "Connection": "$connection_upgrade",
        "Host": "$http_host",
        "X-Forwarded-For": "$proxy_add_x_forwarded_for",
        "X-Forwarded-Proto": "$scheme",
    }


def test_the_read_timeout_is_well_over_the_servers_heartbeat() -> None:
    """nginx closes a socket on which the server sent nothing for proxy_read_timeout.

    Every screen gets a heartbeat each HEARTBEAT_S seconds, but one can come late
    behind a fan-out to thousands of screens: leave room for two.
    """
    config = CONFIG.read_text()
    timeout = nginx_seconds(directive(config, "proxy_read_timeout"))
    assert timeout > 2 * HEARTBEAT_S, f"proxy_read_timeout is {timeout} s"
    # What the comments say the heartbeat is, it is.
    assert re.findall(r"(\d+) s heartbeat", config) == [f"{HEARTBEAT_S:g}"] * 2


def test_the_largest_form_fits_through() -> None:
    budgets = [DEFAULT_BUDGET, *(budget for _, budget in routines.BUDGETS)]
    largest = max(budget.max_bytes for budget in budgets)
    limit = nginx_bytes(directive(CONFIG.read_text(), "client_max_body_size"))
    assert limit >= largest, f"client_max_body_size is {limit} bytes; forms take {largest}"
