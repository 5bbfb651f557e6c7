"""The API against its own OpenAPI document, request by generated request (schemathesis).

`classroom serve` runs in a process of its own; `st run` reads /api/openapi.json from
it and sends what the document allows, and what it doesn't, with a read-write token.
Every check runs but one: "positive data acceptance" expects every request the schema
allows to succeed, and a schema can't say that a start time must be ahead, or that a
YAML text must be a routine. The server answers those with a 400 and a sentence,
which the other checks hold to the document.

The seed is fixed, so that a run here is the run in CI; set CLASSROOM_SCHEMATHESIS_SEED
to explore others.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api import bearer, make_token
from tests.helpers import sign_in
from tests.processes import Server, prepared

SEED = os.environ.get("CLASSROOM_SCHEMATHESIS_SEED", "20261206")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    serving = prepared(tmp_path)
    serving.env["CLASSROOM_API_REQUESTS_PER_MINUTE"] = "0"  # every generated request counts
    serving.log = tmp_path / "server.log"
    serving.start()
    try:
        yield serving
    finally:
        serving.stop()


def st_command() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    return found


async def test_the_api_holds_to_its_openapi_document(server: Server, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as console:
        await sign_in(console)
        token = await make_token(console, "schemathesis")
        # Something of each kind, so that generated ids can hit real ones.
        await console.post(
            "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=bearer(token)
        )
    done = await asyncio.to_thread(
        subprocess.run,
        [
            st_command(),
            "run",
            f"{server.base_url}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "40",
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,  # its own files stay with the test
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    report = done.stdout[-8000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "Tested: 15" in done.stdout, report
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-4000:]
