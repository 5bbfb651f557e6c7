"""Cues arrive on time over the real server, for the length of a 2-minute class.

The server runs in a process of its own, as in a gym: a server thread inside the
test's process would share its interpreter with the test's client, and measure that.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from classroom.db.routines import RoutineSource
from tests.helpers import command, open_class, sign_in
from tests.processes import Server, serving


def two_minute_routine() -> str:
    """Four 30 s segments with a cue every 2 s, and the generated 3-2-1s."""
    blocks = []
    for n in range(4):
        cues = ", ".join(f'"at 0:{s:02d}: cue {n}.{s}"' for s in range(2, 30, 2))
        blocks.append(
            f"  - type: work\n    name: Block {n + 1}\n    duration: 30\n    cues: [{cues}]"
        )
    return (
        "title: Two minutes\nlead_in: 0\n"
        "auto_cues: {countdown: true, halfway: false, next: false,"
        " last_round: false, lead_in: false}\n"
        "blocks:\n" + "\n".join(blocks) + "\n"
    )


@pytest.fixture
def timed_server(tmp_path: Path) -> Iterator[Server]:
    source = RoutineSource("two-minutes", "Two minutes", "yaml", two_minute_routine())
    yield from serving(tmp_path, source)


async def test_a_two_minute_class_fires_every_cue_within_20_ms_of_its_instant(
    timed_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=timed_server.base_url) as console:
        await sign_in(console)
        class_id = await open_class(console)
        header = {"Cookie": "; ".join(f"{k}={v}" for k, v in console.cookies.items())}
        lateness: list[float] = []
        async with websockets.connect(
            f"ws://127.0.0.1:{timed_server.port}/ws/classes/{class_id}", additional_headers=header
        ) as ws:
            await ws.recv()  # the snapshot
            await command(console, class_id, "start")
            async with asyncio.timeout(150):
                while True:
                    message = json.loads(await ws.recv())
                    received = time.time() * 1000
                    if message["type"] in ("cue", "segment") and message.get("reason") in (
                        None,
                        "time",
                    ):
                        lateness.append(received - message["at"])
                    if message["type"] == "phase" and message["phase"] == "finished":
                        break
    lateness.sort()
    p99 = lateness[int(len(lateness) * 0.99) - 1]
    print(
        f"\n{len(lateness)} cues and segment changes: median {statistics.median(lateness):.1f} ms,"
        f" p99 {p99:.1f} ms, max {lateness[-1]:.1f} ms late"
    )
    assert len(lateness) >= 4 * 14 + 4 * 3
    assert lateness[0] >= -5, "a cue arrived before its instant"
    assert lateness[-1] <= 20, lateness[-10:]
