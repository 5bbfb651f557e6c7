"""Benchmark: many live classes' timers in one server process.

Run ``python -m bench.timers``. It starts the real server as a separate process
on 127.0.0.1 (a free port, a fresh SQLite database in a temp directory), opens
200 classes of a routine with an authored cue every 5 s, connects one display
WebSocket per class from this process (one asyncio loop), and then:

1. measures the server's CPU with every class in the lobby (idle baseline);
2. starts the classes over HTTP (the console's start control), spread evenly
   across the 5 s cue period, waits out a warm-up, and measures for
   ``--seconds`` (60): every cue's lateness, from its scheduled instant ``at``
   to its receipt here, cues lost, the server's CPU and RSS, and this
   process's own CPU.

With ``--aligned`` it also runs a second server whose classes were all started
at the same instant (written to the database before that server starts, through
the server's own state machine and store), so every class fires its cues in the
same millisecond.

Lateness is measured on the server's clock: this process estimates the offset
of the server's clock from its own monotonic clock with pings (the protocol's
clock sync), bounding it from both sides over many round trips; the
uncertainty is printed. The server runs under a small launcher in this module
(``_serve``) that starts uvicorn exactly as ``classroom serve`` does, with a
probe around the class store's ``persist`` that records when each cue was
about to be written (the actor woke and ticked) and when it was written (it
is published right after): the server-side lateness. ``--plain`` runs
``python -m classroom.cli serve`` unmodified instead, without those figures.

It prints a table, then one JSON object with the figures as the very last line.
Every wait is bounded; the server is stopped and the temp directory removed at
the end, whatever happens. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench import seed
from bench.client import clock_offset, sign_in, start_class
from bench.launch import (
    SERVE,
    Children,
    Server,
    classroom_env,
    cpu_seconds,
    free_port,
    run_benchmark,
    start_server,
    tail,
)
from bench.report import emit, print_title, progress_to, spread

SECRET = "timer-benchmark-secret-key-not-for-production"
TITLE = "Timer benchmark"
PERIOD_MS = 5_000
CUES = 199  # authored cues at 0:05, 0:10, ... 16:35 (at most 200 per segment)
SEGMENT_S = (CUES + 1) * PERIOD_MS // 1000
GRACE_S = 5.0  # after the window, how long a cue due inside it may take to arrive (else lost)
TARGET_P99_MS = 10.0
TARGET_CPU_PER_100 = 2.0
INSTRUCTOR = seed.Instructor(
    "bench@example.com",
    "timer benchmark password",
    "timer-bench",
    TITLE,
    # One long work segment with an authored cue every 5 s; no generated cues.
    seed.routine_yaml(
        TITLE, "Steady work", SEGMENT_S, [(k * 5, f"cue {k}") for k in range(1, CUES + 1)]
    ),
)

progress = progress_to("timers")


# -- the server process ------------------------------------------------------------------


def serve_with_probe(probe_path: str) -> int:
    """Run the server as ``classroom serve`` does, recording when each cue is written."""
    import uvicorn

    import classroom.web.app as app_module
    from classroom.cli import prepare_database
    from classroom.config import Settings
    from classroom.db.classes import ClassStore
    from classroom.domain.events import CueFired
    from classroom.hub.protocol import SERVER_OPTIONS
    from classroom.live.clock import MonotonicClock

    class ProbeClock(MonotonicClock):
        def now_f(self) -> float:
            return (self._wall_base + (time.monotonic() - self._mono_base)) * 1000

    clock = ProbeClock()
    records: list[tuple[int, int, float, float]] = []

    class ProbedStore(ClassStore):
        async def persist(self, class_id: int, *args: Any, **kwargs: Any) -> list[int]:
            before = clock.now_f()
            seqs: list[int] = await super().persist(class_id, *args, **kwargs)
            after = clock.now_f()
            events = kwargs.get("events", args[-1] if args else ())
            for event in events:
                if isinstance(event, CueFired):
                    records.append((class_id, event.at_ms, before, after))
            return seqs

    app_module.ClassStore = ProbedStore  # type: ignore[misc]
    settings = Settings.from_env()
    prepare_database(settings)
    uvicorn.run(
        app_module.create_app(settings, clock=clock),
        host=settings.host,
        port=settings.port,
        **SERVER_OPTIONS,
        proxy_headers=True,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    Path(probe_path).write_text(json.dumps(records))
    return 0


async def start(children: Children, workdir: Path, url: str, *, plain: bool, name: str) -> Server:
    """The server on ``url``: ``classroom serve``, or (unless ``plain``) with the probe."""
    port = free_port()
    env = classroom_env(url, SECRET, port=port, data_dir=workdir, CLASSROOM_NODE="bench")
    probe = workdir / f"{name}-probe.json"
    command = SERVE if plain else (sys.executable, "-m", "bench.timers", "_serve", str(probe))
    log = workdir / f"{name}-server.log"
    return await start_server(children, env, log, port=port, command=command)


# -- the screens ------------------------------------------------------------------------------


@dataclass
class Screens:
    """One display socket per class, all read by one loop; receipts on the monotonic clock."""

    cues: list[tuple[int, int, int, float]] = field(default_factory=list)  # id, at, cue, t
    starts: dict[int, int] = field(default_factory=dict)  # class id -> segment 0 start (at)
    last_seq: dict[int, int] = field(default_factory=dict)
    gaps: int = 0
    closed: list[str] = field(default_factory=list)
    sockets: list[ClientConnection] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self, server: Server, class_ids: Sequence[int]) -> None:
        gate = asyncio.Semaphore(20)

        async def one(class_id: int) -> None:
            async with gate:
                ws = await open_display(server, class_id)
                first = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if first.get("type") != "snapshot":
                raise RuntimeError(f"class {class_id}: expected a snapshot, got {first!r:.200}")
            self.last_seq[class_id] = int(first["seq"])
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(ws, class_id)))

        await asyncio.gather(*(one(class_id) for class_id in class_ids))

    async def _read(self, ws: ClientConnection, class_id: int) -> None:
        try:
            async for raw in ws:
                received = time.monotonic()
                message = json.loads(raw)
                kind = message.get("type")
                seq = message.get("seq")
                if isinstance(seq, int) and kind != "snapshot":
                    expected = self.last_seq[class_id] + 1
                    if seq != expected:
                        self.gaps += max(0, seq - expected)
                    self.last_seq[class_id] = max(seq, self.last_seq[class_id])
                if kind == "cue":
                    self.cues.append((class_id, message["at"], message["cue"], received))
                elif kind == "segment" and message["segment"]["index"] == 0:
                    self.starts[class_id] = message["at"]
        except ConnectionClosed as exc:
            self.closed.append(f"class {class_id}: {exc}")
        except asyncio.CancelledError:
            raise

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await asyncio.gather(
            *(asyncio.wait_for(ws.close(), 5) for ws in self.sockets), return_exceptions=True
        )


async def open_display(server: Server, class_id: int) -> ClientConnection:
    """A display's socket on ``class_id`` (a display link's token)."""
    from classroom.web.tokens import Tokens

    url = server.ws_url(class_id) + Tokens(SECRET).display(class_id)
    return await connect(url, compression=None, ping_interval=None, open_timeout=20)


@dataclass(frozen=True)
class ClockSync:
    """The server's clock minus this process's monotonic clock, in ms."""

    offset_ms: float
    uncertainty_ms: float
    rtt_min_ms: float

    def server_now(self) -> float:
        return time.monotonic() * 1000 + self.offset_ms


async def sync_clock(server: Server, class_id: int, pings: int = 30) -> ClockSync:
    """The offset over many pings, paced under the server's per-socket rate limit; a
    ping that gets no pong within 2 s is skipped."""
    async with await open_display(server, class_id) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # the snapshot

        async def ping(i: int) -> tuple[float, float, float] | None:
            sent = time.monotonic()
            await ws.send(json.dumps({"type": "ping", "id": i, "t": sent * 1000}))
            message: dict[str, Any] = {}
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    while message.get("type") != "pong" or message.get("id") != i:
                        message = json.loads(await ws.recv())
            if message.get("type") != "pong":
                return None
            return sent, float(message["server_now"]), time.monotonic()

        found = await clock_offset(ping, pings, pause_s=0.08)
    return ClockSync(found["offset_ms"], found["uncertainty_ms"], found["rtt_ms"])


# -- the measurement ----------------------------------------------------------------------------


@dataclass
class Window:
    """CPU of the server and of this process over a stretch of wall time."""

    server_cpu_percent: float
    generator_cpu_percent: float
    wall_s: float


async def measure_cpu(server: psutil.Process, seconds: float) -> Window:
    me = psutil.Process()
    wall, server_cpu, own_cpu = time.monotonic(), cpu_seconds(server), cpu_seconds(me)
    await asyncio.sleep(seconds)
    wall_s = time.monotonic() - wall
    return Window(
        100 * (cpu_seconds(server) - server_cpu) / wall_s,
        100 * (cpu_seconds(me) - own_cpu) / wall_s,
        wall_s,
    )


def expected_cues(start_ms: int, window: tuple[float, float]) -> int:
    """How many cues of a class that started at ``start_ms`` are due inside ``window``."""
    low, high = window
    return sum(1 for k in range(1, CUES + 1) if low <= start_ms + k * PERIOD_MS < high)


def max_due_together(starts: Sequence[int], width_ms: int) -> int:
    """The most classes whose cues fall due within ``width_ms`` of each other."""
    phases = sorted(s % PERIOD_MS for s in starts)
    doubled = phases + [p + PERIOD_MS for p in phases]
    best, lo = 0, 0
    for hi in range(len(doubled)):
        while doubled[hi] - doubled[lo] >= width_ms:
            lo += 1
        best = max(best, hi - lo + 1)
    return min(best, len(phases))


@dataclass
class Result:
    variant: str
    classes: int
    idle: Window | None
    running: Window
    idle_bare: Window | None  # classes in the lobby, no screens connected
    unwatched: Window | None  # classes running, their screens gone
    rss_mb: float
    received: dict[str, float]
    woke: dict[str, float] | None
    written: dict[str, float] | None
    persist: dict[str, float] | None
    expected: int
    cues: int
    lost: int
    gaps: int
    closed: int
    sync: ClockSync
    bunch_10ms: int
    start_http_ms: dict[str, float] | None


async def start_classes(
    http: httpx.AsyncClient, csrf: str, class_ids: Sequence[int]
) -> dict[str, float]:
    """Start every class with the console's control, spread evenly over one cue period."""
    step = PERIOD_MS / 1000 / len(class_ids)
    first = time.monotonic() + 0.2
    took = []
    for i, class_id in enumerate(class_ids):
        delay = first + i * step - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        began = time.monotonic()
        await start_class(http, class_id, csrf)
        took.append((time.monotonic() - began) * 1000)
    return spread(took)


async def run_variant(
    variant: str, workdir: Path, args: argparse.Namespace, children: Children
) -> Result:
    aligned = variant == "aligned"
    url = await asyncio.to_thread(seed.migrated_sqlite, workdir / f"{variant}.db")
    # Aligned: every class started at one instant, a little after the server will be up.
    aligned_at = int(time.time() * 1000) + 8_000 if aligned else None
    seeded = await seed.seed(url, INSTRUCTOR, classes=args.classes, started_at_ms=aligned_at)
    class_ids = seeded.class_ids
    server = await start(children, workdir, url, plain=args.plain, name=variant)
    probe = None if args.plain else workdir / f"{variant}-probe.json"
    screens = Screens()
    try:
        http, proc = server.http, server.proc
        idle_bare = None
        if not aligned:
            await asyncio.sleep(5.0)  # let start-up (resuming 200 classes) settle
            idle_bare = await measure_cpu(proc, args.idle)
            progress(f"{variant}: idle, no screens {idle_bare.server_cpu_percent:.2f} % CPU")
        await asyncio.wait_for(screens.open(server, class_ids), 120)
        sync = await sync_clock(server, class_ids[0])
        progress(
            f"{variant}: server up on port {server.port}, {len(class_ids)} screens connected,"
            f" clock offset known to ±{sync.uncertainty_ms:.2f} ms"
        )
        idle = None
        start_http = None
        if aligned:
            assert aligned_at is not None
            screens.starts = dict.fromkeys(class_ids, aligned_at)
            wait = (aligned_at - sync.server_now()) / 1000 + args.warmup
            await asyncio.sleep(max(0.0, wait))
        else:
            await asyncio.sleep(1.0)
            idle = await measure_cpu(proc, args.idle)
            progress(f"{variant}: idle (lobby) {idle.server_cpu_percent:.2f} % CPU")
            csrf = await sign_in(http, INSTRUCTOR.email, INSTRUCTOR.password)
            start_http = await start_classes(http, csrf, class_ids)
            await asyncio.sleep(args.warmup)
            missing = set(class_ids) - set(screens.starts)
            if missing:
                raise RuntimeError(f"{len(missing)} classes never reported their start")
        progress(f"{variant}: measuring for {args.seconds} s")
        low = sync.server_now()
        running = await measure_cpu(proc, args.seconds)
        high = low + running.wall_s * 1000
        rss_mb = proc.memory_info().rss / 2**20
        await asyncio.sleep(GRACE_S)
        await screens.close()
        unwatched = None
        if not aligned and args.unwatched > 0:
            await asyncio.sleep(2.0)
            unwatched = await measure_cpu(proc, args.unwatched)
            progress(f"{variant}: running, no screens {unwatched.server_cpu_percent:.2f} % CPU")
    except BaseException:
        print(f"the server's log ends:\n{tail(server.log, 20)}", file=sys.stderr)
        raise
    finally:
        await screens.close()
        await server.close(children)

    window = (low, high)
    inside = [c for c in screens.cues if low <= c[1] < high]
    received = [(t * 1000 + sync.offset_ms) - at for _, at, _, t in inside]
    per_class: dict[int, int] = {}
    for class_id, *_ in inside:
        per_class[class_id] = per_class.get(class_id, 0) + 1
    expected = {cid: expected_cues(screens.starts[cid], window) for cid in class_ids}
    lost = sum(max(0, n - per_class.get(cid, 0)) for cid, n in expected.items())
    woke = written = persist = None
    if probe is not None and probe.exists():
        records = [r for r in json.loads(probe.read_text()) if low <= r[1] < high]
        woke = spread([before - at for _, at, before, _ in records])
        written = spread([after - at for _, at, _, after in records])
        persist = spread([after - before for _, _, before, after in records])
    return Result(
        variant=variant,
        classes=len(class_ids),
        idle=idle,
        running=running,
        idle_bare=idle_bare,
        unwatched=unwatched,
        rss_mb=rss_mb,
        received=spread(received),
        woke=woke,
        written=written,
        persist=persist,
        expected=sum(expected.values()),
        cues=len(inside),
        lost=lost,
        gaps=screens.gaps,
        closed=len(screens.closed),
        sync=sync,
        bunch_10ms=max_due_together(list(screens.starts.values()), 10),
        start_http_ms=start_http,
    )


# -- reporting ----------------------------------------------------------------------------------


def per_100(result: Result, idle_percent: float) -> float:
    return (result.running.server_cpu_percent - idle_percent) * 100 / result.classes


def report(results: list[Result], args: argparse.Namespace) -> dict[str, Any]:
    main = results[0]
    assert main.idle is not None
    idle_percent = main.idle.server_cpu_percent
    print_title("timer")
    print(
        f"{main.classes} classes, a cue every {PERIOD_MS // 1000} s each, one display socket"
        f" each; {args.seconds} s measured after {args.warmup} s warm-up;"
        f" server {'classroom serve' if args.plain else 'classroom serve + persist probe'}"
    )
    print(
        f"clock sync: ±{main.sync.uncertainty_ms:.2f} ms (min ping round trip"
        f" {main.sync.rtt_min_ms:.2f} ms)"
    )
    if main.start_http_ms:
        print(
            f"starts: HTTP start control p50 {main.start_http_ms['p50']:.1f} ms,"
            f" max {main.start_http_ms['max']:.1f} ms; at most {main.bunch_10ms} classes"
            " due within any 10 ms"
        )
    print()
    print(f"{'lateness (ms)':<38} {'cues':>6} {'p50':>8} {'p99':>8} {'max':>8} {'mean':>8}")
    for result in results:
        rows = [("received by a screen", result.received)]
        if result.woke is not None:
            rows += [
                ("server: woke, about to write", result.woke),
                ("server: written, published", result.written),
                ("server: the write itself", result.persist),
            ]
        for name, figures in rows:
            assert figures is not None
            print(
                f"{result.variant + ' · ' + name:<38} {figures['n']:>6.0f} {figures['p50']:>8.2f}"
                f" {figures['p99']:>8.2f} {figures['max']:>8.2f} {figures['mean']:>8.2f}"
            )
    print()
    print(f"{'run':<12} {'expected':>9} {'received':>9} {'lost':>6} {'seq gaps':>9} {'closed':>7}")
    print(f"(lost: due inside the window and not received within {GRACE_S:.0f} s of its end)")
    for result in results:
        print(
            f"{result.variant:<12} {result.expected:>9} {result.cues:>9} {result.lost:>6}"
            f" {result.gaps:>9} {result.closed:>7}"
        )
    print()
    print(
        f"{'CPU (% of one core)':<26} {'server':>8} {'per 100':>8} {'generator':>10} {'RSS MiB':>8}"
    )
    print(
        f"{'idle, classes in lobby':<26} {idle_percent:>8.2f} {'':>8}"
        f" {main.idle.generator_cpu_percent:>10.2f} {'':>8}"
    )
    for result in results:
        print(
            f"{result.variant + ', running':<26} {result.running.server_cpu_percent:>8.2f}"
            f" {per_100(result, idle_percent):>8.2f} {result.running.generator_cpu_percent:>10.2f}"
            f" {result.rss_mb:>8.1f}"
        )
    unwatched_per_100 = None
    if main.idle_bare is not None and main.unwatched is not None:
        bare = main.idle_bare.server_cpu_percent
        unwatched_per_100 = (main.unwatched.server_cpu_percent - bare) * 100 / main.classes
        print(f"{'idle, lobby, no screens':<26} {bare:>8.2f}")
        print(
            f"{'running, no screens':<26} {main.unwatched.server_cpu_percent:>8.2f}"
            f" {unwatched_per_100:>8.2f}"
        )
    print("(per 100 = (running - idle) * 100 / classes; the aligned run uses the same idle figure;")
    print(" without screens, against the idle figure without screens)")
    p99 = main.received["p99"]
    cpu = per_100(main, idle_percent)
    print()
    verdict = "under" if p99 < TARGET_P99_MS else "OVER"
    print(f"cue lateness p99 {p99:.2f} ms: {verdict} the 10 ms target")
    print(
        f"server CPU {cpu:.2f} % per 100 running classes:"
        f" {'under' if cpu < TARGET_CPU_PER_100 else 'OVER'} the 2 % target"
    )
    figures: dict[str, Any] = {
        "classes": main.classes,
        "seconds": round(main.running.wall_s, 2),
        "cues": main.cues,
        "expected": main.expected,
        "lost": main.lost,
        "seq_gaps": main.gaps,
        "lateness_p50_ms": round(main.received["p50"], 3),
        "lateness_p99_ms": round(p99, 3),
        "lateness_max_ms": round(main.received["max"], 3),
        "cpu_percent_per_100_classes": round(cpu, 3),
        "running_cpu_percent": round(main.running.server_cpu_percent, 3),
        "idle_cpu_percent": round(idle_percent, 3),
        "server_rss_mb": round(main.rss_mb, 1),
        "generator_cpu_percent": round(main.running.generator_cpu_percent, 3),
        "clock_sync_uncertainty_ms": round(main.sync.uncertainty_ms, 3),
        "max_due_within_10ms": main.bunch_10ms,
    }
    if unwatched_per_100 is not None:
        figures["cpu_percent_per_100_unwatched_classes"] = round(unwatched_per_100, 3)
    if main.woke is not None and main.written is not None and main.persist is not None:
        figures.update(
            server_woke_p50_ms=round(main.woke["p50"], 3),
            server_woke_p99_ms=round(main.woke["p99"], 3),
            server_written_p50_ms=round(main.written["p50"], 3),
            server_written_p99_ms=round(main.written["p99"], 3),
            server_written_max_ms=round(main.written["max"], 3),
            persist_p50_ms=round(main.persist["p50"], 3),
            persist_p99_ms=round(main.persist["p99"], 3),
        )
    for result in results[1:]:
        prefix = result.variant
        figures.update(
            {
                f"{prefix}_lateness_p50_ms": round(result.received["p50"], 3),
                f"{prefix}_lateness_p99_ms": round(result.received["p99"], 3),
                f"{prefix}_lateness_max_ms": round(result.received["max"], 3),
                f"{prefix}_cues": result.cues,
                f"{prefix}_lost": result.lost,
                f"{prefix}_cpu_percent_per_100_classes": round(per_100(result, idle_percent), 3),
            }
        )
        if result.written is not None:
            figures[f"{prefix}_server_written_p99_ms"] = round(result.written["p99"], 3)
    return figures


async def run(args: argparse.Namespace, workdir: Path) -> list[Result]:
    async with Children() as children:
        results = [await run_variant("staggered", workdir, args, children)]
        if args.aligned:
            results.append(await run_variant("aligned", workdir, args, children))
        return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve"] and len(argv) == 2:
        return serve_with_probe(argv[1])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=200, help="live classes (200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds measured (60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up (10)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle baseline (10)")
    parser.add_argument(
        "--unwatched",
        type=float,
        default=20.0,
        help="seconds measuring the running classes after their screens left (20; 0: skip)",
    )
    parser.add_argument(
        "--aligned", action="store_true", help="also run with every class's cues at one instant"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="run `classroom serve` unmodified (no server-side lateness)",
    )
    args = parser.parse_args(argv)
    args.classes = max(1, min(args.classes, 2_000))
    args.warmup = max(2.0, min(args.warmup, 60.0))
    args.idle = max(2.0, min(args.idle, 120.0))
    # The classes' timeline runs out of cues after 16:35; leave room for start and warm-up.
    args.seconds = max(5.0, min(args.seconds, SEGMENT_S - args.warmup - 30))
    results = run_benchmark("timers", lambda workdir: run(args, workdir), sockets=args.classes)
    emit(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
