"""Form bodies are bounded before they are parsed (classroom/web/form_limits.py).

A real ``classroom serve`` process gets the bodies an attacker would send,
streamed so this test never holds them; its resident memory is sampled while
they arrive, and its temporary directory watched for spooled files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from markupsafe import escape

from classroom.db.routines import RoutineSource
from classroom.domain.limits import MAX_FILE_BYTES
from classroom.web.form_limits import (
    DEFAULT_BUDGET,
    FIELD_TOO_LARGE,
    NO_FILES,
    TOO_LARGE,
    TOO_MANY_FIELDS,
)
from classroom.web.routines import UPLOAD_TOO_LARGE
from tests.conftest import DATA
from tests.helpers import csrf, sign_in
from tests.processes import Server, prepared

MIB = 1024 * 1024
MB = 1_000_000  # a field just under Starlette's own limit of 1 MiB a field
RSS_SLACK = 20 * MIB
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "classroom-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("form-limits")
    quick = (DATA / "quick.yaml").read_text()
    spool = tmp_path / "spool"
    spool.mkdir()
    server = prepared(tmp_path, RoutineSource("quick", "Quick test", "yaml", quick))
    server.env["TMPDIR"] = str(spool)  # the server's temporary files go where we can see them
    server.log = tmp_path / "server.log"
    server.start()
    try:
        yield server
    finally:
        server.stop()
    # No bad body in this module left more than a line in the log, and none a traceback.
    assert "Traceback" not in server.log.read_text()


def shown(text: str) -> str:
    return str(escape(text))


def spooled(server: Server) -> set[str]:
    """The files the server holds in its temporary directory, named or not (O_TMPFILE)."""
    assert server.process is not None
    spool = server.env["TMPDIR"]
    listed = {str(path) for path in Path(spool).iterdir()}
    opened = set()
    for fd in Path(f"/proc/{server.process.pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            opened.add(os.readlink(fd))
    return listed | {path for path in opened if path.startswith(spool)}


async def chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
        await asyncio.sleep(0)


@dataclass
class Watched:
    response: httpx.Response
    rise: int
    """How far the server's resident memory rose while the body was sent (bytes)."""
    spooled: set[str]
    """The files that appeared in the server's temporary directory meanwhile."""


async def send_watching_memory(
    server: Server, path: str, body: AsyncIterator[bytes], headers: dict[str, str]
) -> Watched:
    """POST ``body`` to ``path``, sampling the server's memory and temporary files."""
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    before = peak = process.memory_info().rss
    files_before = set(spooled(server))
    seen: set[str] = set()
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            seen.update(spooled(server))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.01)

    sampler = asyncio.create_task(sample())
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            response = await client.post(path, content=body, headers=headers)
    finally:
        done.set()
        await sampler
    await asyncio.sleep(0.2)
    peak = max(peak, process.memory_info().rss)
    return Watched(response, peak - before, seen - files_before)


def huge_form(fields: int, size: int) -> tuple[Iterator[bytes], int]:
    """``fields`` fields of ``size`` bytes each, and the form's length."""
    value = b"a" * size

    def parts() -> Iterator[bytes]:
        for i in range(fields):
            yield (b"&" if i else b"") + b"f%d=" % i
            yield value

    length = sum(len(b"f%d=" % i) for i in range(fields)) + (fields - 1) + fields * size
    return parts(), length


def multipart_file(field: str, filename: str, size: int) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    block = b"x" * MIB
    for _ in range(size // MIB):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_a_900_mb_form_is_refused_before_it_is_read(server: Server) -> None:
    parts, length = huge_form(900, MB)
    watched = await send_watching_memory(
        server, "/login", chunks(parts), {"Content-Type": FORM, "Content-Length": str(length)}
    )
    assert watched.rise < RSS_SLACK, f"the server's memory rose by {watched.rise / MIB:.0f} MiB"
    assert watched.response.status_code == 413
    assert shown(TOO_LARGE) in watched.response.text


async def test_a_chunked_body_over_the_limit_is_cut_off(server: Server) -> None:
    parts, _ = huge_form(200, MB)  # no Content-Length: sent chunked
    watched = await send_watching_memory(server, "/join", chunks(parts), {"Content-Type": FORM})
    assert watched.rise < RSS_SLACK, f"the server's memory rose by {watched.rise / MIB:.0f} MiB"
    assert watched.response.status_code == 413
    assert shown(FIELD_TOO_LARGE) in watched.response.text


async def test_too_many_fields_are_refused(server: Server) -> None:
    fields = "&".join(f"f{i}=1" for i in range(DEFAULT_BUDGET.max_fields + 1))
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        token = await csrf(client, "/login")
        response = await client.post(
            "/login", content=f"csrf_token={token}&{fields}", headers={"Content-Type": FORM}
        )
        assert response.status_code == 413 and shown(TOO_MANY_FIELDS) in response.text
        one_long = f"csrf_token={token}&email={'a' * (DEFAULT_BUDGET.max_part_bytes + 1)}"
        response = await client.post("/login", content=one_long, headers={"Content-Type": FORM})
        assert response.status_code == 413 and shown(FIELD_TOO_LARGE) in response.text
        assert (await sign_in(client)).status_code == 303  # the server still signs people in


async def test_a_file_on_a_form_that_takes_none_is_refused_at_its_headers(
    server: Server,
) -> None:
    # 300 MiB, chunked: refused when the part's headers arrive, before any of it is kept.
    big = chunks(multipart_file("photo", "big.jpg", 300 * MIB))
    watched = await send_watching_memory(server, "/join", big, {"Content-Type": MULTIPART})
    assert watched.rise < RSS_SLACK, f"the server's memory rose by {watched.rise / MIB:.0f} MiB"
    assert watched.spooled == set(), "the file was spooled to disk"
    assert watched.response.status_code == 413
    assert shown(NO_FILES) in watched.response.text
    # A small file, well within the size limit, is refused just the same.
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        token = await csrf(client, "/join")
        response = await client.post(
            "/join", data={"csrf_token": token}, files={"photo": ("a.jpg", b"x" * 100)}
        )
    assert response.status_code == 413 and shown(NO_FILES) in response.text


def padded_routine(size: int) -> bytes:
    routine = (DATA / "quick.yaml").read_bytes().replace(b"title:", b"title: Padded", 1)
    routine = re.sub(rb"title: Padded[^\n]*", b"title: Padded", routine, count=1)
    comment = b"# " + b"x" * (size - len(routine) - 3) + b"\n"
    padded = comment + routine
    assert len(padded) == size
    return padded


async def test_the_routine_upload_takes_a_file_up_to_its_limit(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        assert (await sign_in(client)).status_code == 303
        token = await csrf(client, "/console/routines")

        async def upload(content: bytes) -> httpx.Response:
            return await client.post(
                "/console/routines/upload",
                data={"csrf_token": token},
                files={"file": ("padded.yaml", content, "application/x-yaml")},
            )

        over = await upload(padded_routine(MAX_FILE_BYTES + 1))
        assert over.status_code == 413
        assert "a routine file can be at most" in over.text
        assert f"{MAX_FILE_BYTES:,}" in over.text
        library = await client.get("/console/routines")
        assert "Padded" not in library.text

        at_limit = await upload(padded_routine(MAX_FILE_BYTES))
        assert at_limit.status_code == 303, at_limit.text[:500]
        stored = await client.get(at_limit.headers["location"])
        assert "Padded" in stored.text

        # Chunked, far over the limit: refused once the file part passes the limit.
        huge = chunks(multipart_file("file", "huge.yaml", 50 * MIB))
        response = await client.post(
            "/console/routines/upload",
            content=huge,
            headers={"Content-Type": MULTIPART},
        )
        assert response.status_code == 413 and shown(UPLOAD_TOO_LARGE) in response.text
    assert spooled(server) == set()
