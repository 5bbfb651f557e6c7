"""What every peer server shares: the cue message, the timer loop, the process set-up.

A peer broadcasts a cue of about 200 bytes every 2 s to every connected socket,
stamped with ``at``, the instant (epoch ms) it was scheduled for, exactly as
classroom stamps its class events. The cue's JSON has the same fields and the
same size as classroom's own ``cue`` message for the same routine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

PERIOD_MS = 2_000
FILLER = (
    "keep your core tight, breathe out on the effort, drive through your heels"
    " and stay with the beat of the room"
)


def cue_text(k: int) -> str:
    """The text of cue ``k`` (1 to 999): 117 plain ASCII characters, a ~200-byte message."""
    return f"Cue {k:03d}: {FILLER}"


def cue_message(seq: int, at_ms: int, k: int) -> dict[str, Any]:
    """A cue as classroom sends it (docs/protocol.md), for the peers to send."""
    return {
        "type": "cue",
        "seq": seq,
        "at": at_ms,
        "cue": k,
        "kind": "authored",
        "text": cue_text(k),
    }


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Ticker:
    """Fires ``cues`` cues, one every ``PERIOD_MS``, from the instant it is started.

    Deadlines are absolute (start + k x period), so a late wake-up never pushes
    the later cues back; ``at`` is the scheduled instant, not the moment of sending.
    """

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send
        self.task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, cues: int) -> int:
        """Start the cues; returns the start instant (epoch ms)."""
        start_ms = int(time.time() * 1000)
        self.task = asyncio.get_running_loop().create_task(self._run(start_ms, cues))
        return start_ms

    async def _run(self, start_ms: int, cues: int) -> None:
        for k in range(1, cues + 1):
            at_ms = start_ms + k * PERIOD_MS
            delay = (at_ms - time.time() * 1000) / 1000
            if delay > 0:
                await asyncio.sleep(delay)
            await self._send(cue_message(k, at_ms, k))


def start_params(query: str) -> int:
    """The number of cues asked for by ``/start?cues=K`` (1 to 200)."""
    from urllib.parse import parse_qs

    values = parse_qs(query).get("cues", ["10"])
    return max(1, min(int(values[0]), 200))


def prepare_process(nofile: int = 65_536) -> None:
    """Raise the open-file limit; die with the parent process (Linux)."""
    raise_nofile(nofile)
    die_with_parent()


def raise_nofile(wanted: int = 65_536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent exits."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
