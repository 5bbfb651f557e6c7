"""The load generator of ``bench.fanout``: N simulated phones, in a process of their own.

Every phone is a picows WebSocket client (about 7 µs of Python per received
message, against about 18 µs for the ``websockets`` client), all on one uvloop
event loop. It speaks one of three protocols:

- ``classroom``: ``/ws/classes/<id>?token=...``, one token per phone read from a
  file; a phone has joined when its ``snapshot`` arrives. Before the cues, phone 0
  syncs its clock with the server's (``ping``/``pong``, docs/protocol.md).
- ``plain``: the peers' bare WebSocket; a phone has joined when the upgrade is done.
- ``socketio``: a minimal Engine.IO 4 / Socket.IO 5 client over the WebSocket
  transport only: ``0{...}`` (open) is answered with ``40`` (connect to the ``/``
  namespace), ``2`` (ping) with ``3`` (pong); a phone has joined when ``40{...}``
  arrives; cues are ``42["cue",{...}]``.

Its parent drives it with one line at a time on stdin, and it answers with one
line on stdout (``word`` and then an optional JSON object)::

    (start)                       -> warm        one phone joined and left again
    connect                       -> ready {..}  every phone connected (or failed)
    go                            -> done        the cues arrived, or the time ran out
                                  -> result {..} the figures, once every phone has left

The generator is built to cost as little as it can per received message, so that
the figures are the server's: a cue is recognised by its first bytes and logged
raw with its receipt time (no parsing, one tuple); every cue is parsed in full and
checked after the cues, off the clock. The garbage collector is off during the cues
(everything from the connect phase is frozen first), so no collection over
thousands of phones' objects stalls the receipts.

Receipts are read with ``time.time()`` when each frame is handled; a cue's
fan-out latency is from its ``at`` to the receipt at the last phone. For
classroom, whose clock is its own (monotonic, started from the wall clock),
receipts are moved onto the server's clock with the offset from the clock sync.
The peers stamp ``at`` with ``time.time()`` on this same machine: offset 0.

Run by ``bench.fanout``; on its own: ``python -m bench.loadgen --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvloop

from bench.client import clock_offset
from bench.crowd import Crowd, Socket
from bench.launch import hear, say
from bench.peers.common import PERIOD_MS, raise_nofile
from bench.report import finite, percentile

GRACE_S = 10.0  # after the last cue's instant, how long the cues may still take
loads = json.loads
now = time.time


class Phone(Socket):
    """One simulated phone, with the ``seq`` of its snapshot."""

    snapshot_seq: int | None = None


# How a cue starts, for the hot path; the whole message is parsed after the cues.
CUE_PREFIX = {
    "classroom": b'{"type":"cue",',
    "plain": b'{"type":"cue",',
    "socketio": b'42["cue",',
}


class Generator(Crowd):
    clock = staticmethod(time.time)  # the peers stamp ``at`` with time.time() too
    socket_class = Phone

    def __init__(self, protocol: str, cues: int) -> None:
        super().__init__()
        self.protocol = protocol
        self.joined_on_connect = protocol == "plain"
        self.expect = cues
        self.cue_prefix = CUE_PREFIX[protocol]
        self.handle: Callable[[Phone, bytes, float], None] = getattr(self, f"_on_{protocol}")
        # Every numbered message as it came, in order: a cue from the hot path as
        # (phone, payload, receipt); anything else as (phone, seq, None, receipt).
        self.log: list[tuple[Any, ...]] = []
        self.pending = -1  # cue receipts still due; set when the cues start
        self.all_in = asyncio.Event()
        self.messages = 0  # text frames off the hot path (everything but cues)
        self.heartbeats: list[float] = []  # receipts of classroom's heartbeats
        self.other: Counter[str] = Counter()  # messages other than cues, by type
        self._pong: tuple[str, asyncio.Future[tuple[float, float]]] | None = None

    def expect_cues(self) -> None:
        self.pending = len(self.phones) * self.expect
        if self.pending <= 0:
            self.all_in.set()

    # -- receiving ------------------------------------------------------------------------

    def receive(self, phone: Phone, payload: bytes, received: float) -> None:
        # The hot path, run once per phone and cue: a cue is recognised by its first
        # bytes and logged as it came (payload and receipt), with no parsing and no
        # other allocation; every logged cue is parsed in full and checked (seq, at,
        # losses, duplicates) after the cues, off the clock.
        if payload.startswith(self.cue_prefix):
            self.log.append((phone, payload, received))
            self.pending -= 1
            if not self.pending:
                self.all_in.set()
        else:
            self.handle(phone, payload, received)

    def _cue(self, phone: Phone, seq: int, at_ms: int, received: float) -> None:
        """A cue the hot path's pattern did not recognise (its fields in another order)."""
        self.log.append((phone, seq, at_ms, received))
        self.pending -= 1
        if self.pending == 0:
            self.all_in.set()

    def _on_classroom(self, phone: Phone, payload: bytes, received: float) -> None:
        self.messages += 1
        message = loads(payload)
        kind = message.get("type")
        seq = message.get("seq")
        if kind == "snapshot":
            phone.snapshot_seq = seq
            phone.join(received)
            return
        if kind == "cue":
            self._cue(phone, seq, message["at"], received)
            return
        self.other[str(kind)] += 1
        if kind == "heartbeat":
            self.heartbeats.append(received)
        if isinstance(seq, int):
            self.log.append((phone, seq, None, received))
        if kind == "pong":
            waiting = self._pong
            if waiting is not None and message.get("id") == waiting[0]:
                waiting[1].set_result((float(message["server_now"]), received))
        elif kind in ("error", "notice"):
            self.note(f"phone {phone.index}: {payload[:200]!r}")

    def _on_plain(self, phone: Phone, payload: bytes, received: float) -> None:
        self.messages += 1
        message = loads(payload)
        if message.get("type") == "cue":
            self._cue(phone, message["seq"], message["at"], received)
        else:
            self.other[str(message.get("type"))] += 1

    def _on_socketio(self, phone: Phone, payload: bytes, received: float) -> None:
        self.messages += 1
        if payload[:2] == b"42":
            name, data = loads(payload[2:])
            if name == "cue":
                self._cue(phone, data["seq"], data["at"], received)
            else:
                self.other[f"event:{name}"] += 1
        elif payload == b"2":  # Engine.IO ping
            phone.send_text(b"3")
            self.other["ping"] += 1
        elif payload[:1] == b"0":  # Engine.IO open: connect to the default namespace
            phone.send_text(b"40")
        elif payload[:2] == b"40":  # Socket.IO connected
            phone.join(received)
        else:
            self.other[payload[:2].decode(errors="replace")] += 1
            self.note(f"phone {phone.index}: {payload[:200]!r}")

    # -- connecting ---------------------------------------------------------------------

    async def warm_up(self, url: str) -> None:
        """One phone joins and leaves, so the server's first-connection costs come first."""
        phone = await self.connect_one(-1, url)
        if phone is None:
            raise RuntimeError(f"the warm-up phone could not join: {self.problems[-1:]}")
        self.connect_ms.clear()
        self.closing = True
        await self.close([phone])
        self.closing = False
        self.log.clear()
        self.other.clear()

    async def sync_clock(self, phone: Phone, pings: int = 40) -> dict[str, float]:
        """The server's clock minus ours (ms), over ``pings`` pings (see :func:`clock_offset`)."""
        loop = asyncio.get_running_loop()

        async def ping(i: int) -> tuple[float, float, float]:
            waiter: asyncio.Future[tuple[float, float]] = loop.create_future()
            ident = f"sync-{i}"
            self._pong = (ident, waiter)
            sent = now()
            phone.send_text(json.dumps({"type": "ping", "id": ident, "t": sent * 1000}))
            server_now, received = await asyncio.wait_for(waiter, 10)
            return sent, server_now, received

        offset = await clock_offset(ping, pings)
        self._pong = None
        self.other.pop("pong", None)
        return offset

    # -- results ------------------------------------------------------------------------

    def parse(self, entry: tuple[Any, ...]) -> tuple[Phone, int, int | None, float]:
        """A log entry as (phone, seq, at or None if not a cue, receipt): cues parsed in full."""
        if len(entry) == 4:
            return entry
        phone, payload, received = entry
        if self.protocol == "socketio":
            name, message = loads(payload[2:])
            if name != "cue":
                raise ValueError(f"not a cue: {payload[:200]!r}")
        else:
            message = loads(payload)
        if message.get("type") != "cue":
            raise ValueError(f"not a cue: {payload[:200]!r}")
        seq, at = message["seq"], message["at"]
        if not isinstance(seq, int) or not isinstance(at, int):
            raise ValueError(f"a cue without a whole seq and at: {payload[:200]!r}")
        return phone, seq, at, received

    def tally(self, offset_ms: float) -> dict[str, Any]:
        """Per cue, its receipts; per phone, what it lost, got twice, or got out of order."""
        receipts: dict[int, list[float]] = {}
        at: dict[int, int] = {}
        seen: dict[Phone, set[int]] = {phone: set() for phone in self.phones}
        numbered: dict[Phone, list[int]] = {phone: [] for phone in self.phones}
        duplicated = 0
        malformed = 0
        for entry in self.log:
            try:
                phone, raw_seq, raw_at, received = self.parse(entry)
            except (ValueError, KeyError, TypeError) as exc:  # counted, shown, never a receipt
                malformed += 1
                self.note(f"malformed cue: {exc}")
                continue
            seq = int(raw_seq)
            numbered.setdefault(phone, []).append(seq)
            if raw_at is None:
                continue
            cues = seen.setdefault(phone, set())
            if seq in cues:
                duplicated += 1
                continue
            cues.add(seq)
            receipts.setdefault(seq, []).append(received)
            at.setdefault(seq, int(raw_at))
        gaps = out_of_order = 0
        for phone, seqs in numbered.items():
            highest = phone.snapshot_seq if isinstance(phone.snapshot_seq, int) else None
            distinct: set[int] = set()
            for seq in seqs:
                if highest is not None and seq < highest and seq not in distinct:
                    out_of_order += 1
                highest = seq if highest is None else max(highest, seq)
                distinct.add(seq)
            if seqs:
                first = phone.snapshot_seq + 1 if isinstance(phone.snapshot_seq, int) else min(seqs)
                gaps += len(set(range(first, max(seqs) + 1)) - distinct)
        cues_figures = []
        for seq in sorted(receipts):
            late = sorted(t * 1000 + offset_ms - at[seq] for t in receipts[seq])
            # Other fan-outs (classroom's heartbeats) received while this cue was going out.
            begin, end = (at[seq] - offset_ms) / 1000, max(receipts[seq])
            cues_figures.append(
                {
                    "seq": seq,
                    "at": at[seq],
                    "phones": len(late),
                    "first_ms": late[0],
                    "median_ms": statistics.median(late),
                    "last_ms": late[-1],
                    "heartbeats_meanwhile": sum(1 for h in self.heartbeats if begin <= h <= end),
                }
            )
        return {
            "cues": cues_figures,
            "lost": sum(max(0, self.expect - len(cues)) for cues in seen.values()),
            "duplicated": duplicated,
            "gaps": gaps,
            "out_of_order": out_of_order,
            "receipts": len(self.log),
            "malformed": malformed,
        }


async def run(args: argparse.Namespace, urls: Sequence[str]) -> None:
    nofile = raise_nofile(max(65_536, args.clients * 2 + 1_024))
    gen = Generator(args.protocol, args.cues)

    await gen.warm_up(urls[0])
    say("warm")
    await hear("connect", args.timeout)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await gen.connect(urls, args.concurrency)
    wall_s = time.perf_counter() - wall_before
    connect_cpu_s = time.process_time() - cpu_before
    sync = {"offset_ms": 0.0, "uncertainty_ms": 0.0, "rtt_ms": 0.0}
    if args.protocol == "classroom" and gen.phones:
        sync = await gen.sync_clock(gen.phones[0])
    connect_ms = sorted(gen.connect_ms)
    say(
        "ready",
        {
            "phones": len(gen.phones),
            "connect_errors": gen.connect_errors,
            "connect_s": round(wall_s, 3),
            "nofile": nofile,
        },
    )

    await hear("go", args.timeout)
    # Nothing left to collect from the connect phase, and no collection during the cues:
    # a full collection over 5,000 phones' objects would stall every receipt behind it.
    # This process lives for one run, so what it doesn't collect it frees when it exits.
    gc.collect()
    gc.freeze()
    gc.disable()
    times_before, wall_before = os.times(), time.perf_counter()
    messages_before, log_before = gen.messages, len(gen.log)
    gen.expect_cues()
    timed_out = False
    if gen.phones:
        try:
            await asyncio.wait_for(gen.all_in.wait(), (args.cues + 1) * PERIOD_MS / 1000 + GRACE_S)
        except TimeoutError:
            timed_out = True
        await asyncio.sleep(0.2)  # a duplicate would arrive right behind its original
    times_after = os.times()
    window_wall_s = time.perf_counter() - wall_before
    say("done")  # the cue window ends here, before the tally and the goodbyes
    window_user_s = times_after.user - times_before.user
    window_sys_s = times_after.system - times_before.system
    window_cpu_s = window_user_s + window_sys_s
    hot = sum(1 for entry in gen.log[log_before:] if len(entry) == 3)
    window_messages = gen.messages - messages_before + hot
    gc.enable()

    tally = gen.tally(sync["offset_ms"])
    cues = tally["cues"]
    last = sorted(c["last_ms"] for c in cues)
    first = sorted(c["first_ms"] for c in cues)
    result = {
        "protocol": args.protocol,
        "clients": args.clients,
        "phones": len(gen.phones),
        "connect_errors": gen.connect_errors,
        "connect_s": round(wall_s, 3),
        "connect_ms_p50": finite(percentile(connect_ms, 50)),
        "connect_ms_p99": finite(percentile(connect_ms, 99)),
        "connect_ms_max": finite(connect_ms[-1]) if connect_ms else None,
        "cues_expected": args.cues,
        "cues_seen": len(cues),
        "fanout_p50_ms": finite(percentile(last, 50)),
        "fanout_p99_ms": finite(percentile(last, 99)),
        "fanout_max_ms": finite(last[-1]) if last else None,
        "first_p50_ms": finite(percentile(first, 50)),
        "first_max_ms": finite(first[-1]) if first else None,
        "lost": tally["lost"],
        "duplicated": tally["duplicated"],
        "gaps": tally["gaps"],
        "out_of_order": tally["out_of_order"],
        "malformed": tally["malformed"],
        "dropped": gen.dropped,
        "timed_out": timed_out,
        "close_codes": {str(k): v for k, v in gen.close_codes.items()},
        "other_messages": dict(gen.other),
        "errors": gen.problems,
        "clock_offset_ms": finite(sync["offset_ms"]),
        "clock_uncertainty_ms": finite(sync["uncertainty_ms"]),
        "clock_rtt_ms": finite(sync["rtt_ms"]),
        "generator_connect_cpu_s": round(connect_cpu_s, 3),
        "generator_cpu_s": round(window_cpu_s, 3),
        "generator_user_s": round(window_user_s, 3),
        "generator_sys_s": round(window_sys_s, 3),
        "generator_wall_s": round(window_wall_s, 3),
        "generator_cpu_percent": round(100 * window_cpu_s / window_wall_s, 2),
        "generator_messages": window_messages,
        "generator_us_per_message": (
            round(window_cpu_s * 1e6 / window_messages, 2) if window_messages else None
        ),
        "per_cue": [{k: finite(v) for k, v in c.items()} for c in cues],
    }
    gen.closing = True
    await gen.close(gen.phones)
    say("result", result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("classroom", "plain", "socketio"), required=True)
    parser.add_argument("--url", required=True, help="ws:// URL (with --tokens: its prefix)")
    parser.add_argument("--tokens", help="a file of tokens, one per phone, appended to --url")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--cues", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at a time")
    parser.add_argument("--timeout", type=float, default=300, help="longest wait for a command")
    args = parser.parse_args(argv)
    if args.tokens:
        tokens = Path(args.tokens).read_text().split()
        if len(tokens) < args.clients:
            raise SystemExit(f"loadgen: {args.tokens} has {len(tokens)} tokens, not {args.clients}")
        urls = [args.url + token for token in tokens[: args.clients]]
    else:
        urls = [args.url] * args.clients
    uvloop.run(run(args, urls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
