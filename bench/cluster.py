"""Benchmark: one class served by several ``classroom serve`` processes on PostgreSQL and Redis.

Run ``python -m bench.cluster``. For each of ``--runs`` runs it:

1. creates a fresh PostgreSQL database of its own (``--postgres`` names the server;
   the database is dropped afterwards), migrates it, and seeds it as
   ``bench.scoring`` does: an instructor, a routine of one long reps segment with
   an authored cue every second, a class in the lobby with ``--teams`` teams, and
   ``--participants`` participants (rows inserted directly), whose participant
   tokens are minted with the servers' secret;
2. starts ``--workers`` processes (``python -m classroom.cli serve --port P``, each
   with its own ``CLASSROOM_NODE``, all with the same secret, database, Redis and a
   Redis prefix of this run's own). Worker 0 starts first and claims the class
   (its ``/readyz`` names it in ``owns``) before the others start: it owns the class;
3. starts the load generator (``bench.scoring``'s, picows on uvloop) as another
   process. It connects one display socket to each worker (worker 0's first) and
   phone ``i`` to worker ``i % workers``, and reads every worker's clock (``ping``);
4. starts the class with the console's start control on worker 0 and has every phone
   log ``--rate`` reps a second for ``--seconds`` seconds (open loop, as
   ``bench.scoring``), then waits (bounded) for every ack and the final boards;
5. with ``--failover``: SIGKILLs the owner, and measures the time from the SIGKILL
   to the first new class event received by a socket on a surviving worker.

It checks that every input was acknowledged once, as new; that the inputs stored in
PostgreSQL add up, participant by participant, to exactly what was sent; and that
the last leaderboard on the display of a worker that does NOT own the class (the
owner's with one worker) shows those totals. It reports the ack latency (send to
ack, per worker and in all), the leaderboards a second on every display, the
fan-out of the cues (from a cue's ``at``, on the owner's clock, to its receipt at
the LAST phone, over every worker: p50 and max over the cues sent while inputs
flowed), the CPU of every worker, of PostgreSQL (the backends of this run's
database and the server's own processes), of Redis and of the generator, and
``failover_s``. It prints progress on stderr, a table on stdout, then one JSON
object with the figures as the very last line (medians across runs).

Every wait is bounded, and each run has a hard time limit (``--timeout``); the
processes are stopped, the database dropped, the Redis keys of the run's prefix
deleted and the temp directory removed whatever happens (``--logs DIR`` keeps a
copy of each run's logs). Only loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import scoring, seed
from bench.client import clock_offset, mint_tokens, readyz, sign_in, start_class
from bench.launch import (
    SERVE,
    Children,
    Generator,
    Server,
    classroom_env,
    cpu_seconds,
    free_port,
    listen,
    log_problems,
    say,
    settle,
    start_server,
)
from bench.peers.common import raise_nofile
from bench.report import (
    emit,
    finite,
    machine,
    percentile,
    print_table,
    print_title,
    progress_to,
)
from bench.scoring import (
    EMAIL,
    PASSWORD,
    STORED_TOTALS,
    TARGET_ACK_P99_MS,
    add_load_options,
    board_rate,
    check_load_options,
    connected,
    entry,
    failed,
    instructor,
    load_window,
    measure,
    print_problems,
    run_series,
    settings,
    start_generator,
    summarize,
    verdict_ack_p99,
    verify,
)

SECRET = "cluster-benchmark-secret-key-not-for-production"
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
MAX_CUES = 199  # one a second; the server takes at most 200 authored cues on a segment
FAILOVER_WAIT_S = 40.0  # after the SIGKILL, how long a new class event may take to come
FAILOVER_TARGET_S = 10.0
IN_FLIGHT_S = 0.05  # an event the dead owner sent just before it died may arrive this late
CLOCK_PINGS = 20


progress = progress_to("cluster")


# -- the load generator (a process of its own) ------------------------------------------------
#
# bench.scoring's generator, with a phone's socket on worker i % workers and a display on
# every worker. Its parent drives it with one line at a time on stdin:
#     (start)        -> ready {..}     every socket connected, every worker's clock read
#     go             -> done {..}      every input sent and acknowledged (or the wait ran out)
#                    -> result         the figures (in a file), once the final boards are in
#     failover T     -> failover {..}  the first new class event on a surviving worker after T
#     end            -> (exits)        every socket closed


def _cluster_generator() -> Any:
    from bench.scoring import _load_generator

    # A receipt on the generator's perf_counter, as wall-clock time: add this.
    to_wall = time.time() - time.perf_counter()

    class ClusterGenerator(_load_generator()):  # type: ignore[misc]
        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__(config)
            self.workers: int = config["workers"]
            self.board_log: dict[int, list[tuple[float, bytes]]] = {
                w: [] for w in range(self.workers)
            }
            self.boards = self.board_log[config["checked"]]  # the display whose board is checked
            self.displays: dict[int, Any] = {}
            # Every class event every socket got: (socket, seq, at, type, receipt).
            self.events: list[tuple[int, int, int, str, float]] = []
            self.by_worker: list[list[float]] = [[] for _ in range(self.workers)]
            self.pong: tuple[str, asyncio.Future[tuple[float, float]]] | None = None

        def worker_of(self, index: int) -> int:
            """A phone's worker, or a display's (display of worker w: index -w - 1)."""
            return -index - 1 if index < 0 else index % self.workers

        def phone_url(self, index: int) -> str:
            worker = self.worker_of(index)
            return str(self.config["urls"][worker] + self.config["token_list"][index])

        async def connect_displays(self) -> None:
            for worker, url in enumerate(self.config["display_urls"]):  # worker 0's first
                display = await self.connect_one(-worker - 1, url)
                if display is not None:
                    self.displays[worker] = display
            self.display = self.displays.get(self.config["checked"])

        def sockets(self) -> list[Any]:
            return [*self.phones, *self.displays.values()]

        def ack(self, phone: Any, payload: bytes, received: float) -> None:
            count = len(self.latencies)
            super().ack(phone, payload, received)
            if len(self.latencies) > count:
                self.by_worker[phone.index % self.workers].append(self.latencies[-1])

        def other(self, phone: Any, payload: bytes, received: float) -> None:
            message = json.loads(payload)
            kind = message.get("type")
            seq, at = message.get("seq"), message.get("at")
            if kind != "snapshot" and isinstance(seq, int) and isinstance(at, int):
                self.events.append((phone.index, seq, at, str(kind), received))
                self.other_types[str(kind)] += 1
            elif kind == "leaderboard":  # a display's (the phones' are only counted)
                self.other_types[kind] += 1
                self.board_log[self.worker_of(phone.index)].append((received, payload))
            elif kind == "pong" and self.pong is not None and message.get("id") == self.pong[0]:
                self.pong[1].set_result((float(message["server_now"]), received))
            else:
                super().other(phone, payload, received)

        # -- clocks ----------------------------------------------------------------------

        async def ping(self, phone: Any, i: int) -> tuple[float, float, float]:
            waiter: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
            ident = f"sync-{i}"
            self.pong = (ident, waiter)
            sent = time.time()
            phone.send_text(json.dumps({"type": "ping", "id": ident, "t": sent * 1000}))
            server_now, received = await asyncio.wait_for(waiter, 10)
            self.pong = None
            return sent, server_now, received + to_wall

        async def clocks(self) -> dict[str, dict[str, float | None]]:
            """Every worker's clock minus ours (ms), read through one of its phones."""
            offsets: dict[str, dict[str, float | None]] = {}
            for worker in range(self.workers):
                phone = next((p for p in self.phones if p.index % self.workers == worker), None)
                if phone is not None:
                    found = await clock_offset(functools.partial(self.ping, phone), CLOCK_PINGS)
                    offsets[str(worker)] = {k: finite(v) for k, v in found.items()}
            return offsets

        # -- figures ---------------------------------------------------------------------

        def fanout(self, offset_ms: float, first: float, last: float) -> dict[str, Any]:
            """The cues at the phones, for the cues due while inputs flowed.

            A cue's fan-out runs from its ``at`` (the owner's clock, moved onto ours
            with ``offset_ms``) to its receipt at the last phone, on any worker.
            """
            begin_ms = (first + to_wall) * 1000 + offset_ms
            end_ms = (last + to_wall) * 1000 + offset_ms
            receipts: dict[int, list[tuple[int, float]]] = {}
            at_of: dict[int, int] = {}
            seen: set[tuple[int, int]] = set()
            duplicated = 0
            for index, seq, at, kind, received in self.events:
                if kind != "cue" or index < 0 or not begin_ms <= at <= end_ms:
                    continue
                if (index, seq) in seen:
                    duplicated += 1
                    continue
                seen.add((index, seq))
                at_of[seq] = at
                late = (received + to_wall) * 1000 + offset_ms - at
                receipts.setdefault(seq, []).append((index % self.workers, late))
            last_ms = sorted(max(late for _, late in got) for got in receipts.values())
            first_ms = sorted(min(late for _, late in got) for got in receipts.values())
            per_worker = {}
            for worker in range(self.workers):
                mine = sorted(
                    max(late for w, late in got if w == worker)
                    for got in receipts.values()
                    if any(w == worker for w, _ in got)
                )
                per_worker[str(worker)] = {
                    "fanout_p50_ms": finite(percentile(mine, 50), 1),
                    "fanout_max_ms": finite(mine[-1], 1) if mine else None,
                }
            phones = len(self.phones)
            return {
                "cues_measured": len(receipts),
                "cue_receipts": len(seen),
                "cues_lost": len(receipts) * phones - len(seen),
                "cues_duplicated": duplicated,
                "fanout_p50_ms": finite(percentile(last_ms, 50), 1),
                "fanout_max_ms": finite(last_ms[-1], 1) if last_ms else None,
                "fanout_first_p50_ms": finite(percentile(first_ms, 50), 1),
                "fanout_per_worker": per_worker,
            }

        def per_worker(self, first: float, last: float) -> dict[str, Any]:
            figures = {}
            for worker in range(self.workers):
                latencies = sorted(self.by_worker[worker])
                figures[str(worker)] = {
                    "phones": sum(1 for p in self.phones if p.index % self.workers == worker),
                    "acked": len(latencies),
                    "ack_p50_ms": finite(percentile(latencies, 50) * 1000),
                    "ack_p99_ms": finite(percentile(latencies, 99) * 1000),
                    "leaderboard_updates_per_s": board_rate(self.board_log[worker], first, last)[
                        "leaderboard_updates_per_s"
                    ],
                    "leaderboards": len(self.board_log[worker]),
                }
            return figures

        async def failover(self, killed_at: float, dead: int) -> dict[str, Any]:
            """From ``killed_at`` (wall clock) to the first new class event on a survivor.

            New: a higher ``seq`` than any socket had got by the kill (an event the
            dead owner sent just before it died may still arrive for a moment).
            """
            grace = killed_at + IN_FLIGHT_S - to_wall  # on perf_counter
            deadline = time.perf_counter() + FAILOVER_WAIT_S
            before = 0
            scanned = 0
            found: tuple[int, int, int, str, float] | None = None
            while found is None and time.perf_counter() < deadline:
                events = self.events
                while scanned < len(events):
                    entry = events[scanned]
                    scanned += 1
                    index, seq, _, _, received = entry
                    if received <= grace:
                        before = max(before, seq)
                    elif self.worker_of(index) != dead and seq > before:
                        found = entry
                        break
                await asyncio.sleep(0.005)
            if found is None:
                return {"failover_s": None, "last_seq_before": before}
            index, seq, at, kind, received = found
            await asyncio.sleep(3)  # then: did every surviving phone get what came since?
            survivors = [p for p in self.phones if self.worker_of(p.index) != dead]
            got: dict[int, set[int]] = {p.index: set() for p in survivors}
            highest = max((e[1] for e in self.events), default=seq)
            for entry in self.events:
                if entry[0] in got and entry[1] >= seq:
                    got[entry[0]].add(entry[1])
            wanted = set(range(seq, highest + 1))
            return {
                "failover_s": round(received + to_wall - killed_at, 3),
                "failover_event": {
                    "type": kind,
                    "seq": seq,
                    "at": at,
                    "worker": self.worker_of(index),
                    "socket": "display" if index < 0 else "phone",
                },
                "last_seq_before": before,
                "surviving_phones": len(survivors),
                "events_missed_after": sum(len(wanted - seqs) for seqs in got.values()),
            }

    return ClusterGenerator


async def generate(config: dict[str, Any]) -> None:
    raise_nofile(max(65_536, 2 * config["participants"] + 1_024))
    gen = _cluster_generator()(config)
    connect_s = await gen.connect_all()
    clocks = await gen.clocks() if not gen.connect_errors else {}
    say(
        "ready",
        connected(gen, connect_s)
        | {"displays": len(gen.displays), "clocks": clocks, "per_worker": gen.per_worker(0, 0)},
    )
    result = await measure(gen, config)
    first, last = result["sent_first"], result["sent_last"]
    offset = (clocks.get("0") or {}).get("offset_ms") or 0.0
    result |= gen.fanout(offset, first, last)
    result["per_worker"] = gen.per_worker(first, last)
    result["clocks"] = clocks
    text = json.dumps(result, allow_nan=False)
    await asyncio.to_thread(Path(config["result"]).write_text, text)
    say("result")
    words = await listen(config["timeout"])
    if words[:1] == ["failover"]:
        say("failover", await gen.failover(float(words[1]), int(words[2])))
        words = await listen(60)
    await gen.close_all()


# -- PostgreSQL and Redis -----------------------------------------------------------------------


async def admin(base: str, *statements: str) -> list[Any]:
    """Run ``statements`` on ``base`` outside any transaction; the last one's rows."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(base, isolation_level="AUTOCOMMIT", connect_args={"timeout": 10})
    rows: list[Any] = []
    try:
        async with engine.connect() as connection:
            for statement in statements:
                result = await connection.execute(text(statement))
                rows = list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()
    return rows


def database_url(base: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def drop_database(base: str, name: str) -> None:
    await admin(
        base,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        f'DROP DATABASE IF EXISTS "{name}"',
    )


async def postgres_pids(base: str, name: str) -> set[int]:
    """The backends of database ``name`` and the server's own processes (not other backends)."""
    rows = await admin(
        base,
        "SELECT pid FROM pg_stat_activity WHERE (datname = "
        f"'{name}' AND pid <> pg_backend_pid()) OR backend_type <> 'client backend'",
    )
    return {int(pid) for (pid,) in rows}


async def stored_totals(url: str, class_id: int) -> dict[int, tuple[int, int, int]]:
    rows = await admin(url, STORED_TOTALS.format(class_id=int(class_id)))
    return {int(pid): (int(n), int(total), int(withdrawn)) for pid, n, total, withdrawn in rows}


async def owner_node(url: str, class_id: int) -> str | None:
    rows = await admin(url, f"SELECT owner_node FROM classes WHERE id = {int(class_id)}")
    return rows[0][0] if rows else None


async def forget_prefix(redis_url: str, prefix: str) -> int:
    """Delete the run's Redis keys (bounded histories, presence); how many there were."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    deleted = 0
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            deleted += await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()
    return deleted


class CpuMeter:
    """CPU seconds of a set of processes, read at the start and the end of a window."""

    def __init__(self, pids: set[int]) -> None:
        self.start: dict[int, float] = {pid: self._read(pid) for pid in pids}

    @staticmethod
    def _read(pid: int) -> float:
        with contextlib.suppress(psutil.Error):
            return cpu_seconds(psutil.Process(pid))
        return 0.0

    def used(self, pids: set[int]) -> float:
        return sum(self._read(pid) - self.start.get(pid, 0.0) for pid in pids | set(self.start))


def redis_pids() -> set[int]:
    return {
        p.pid
        for p in psutil.process_iter(["name"])
        if (p.info["name"] or "").startswith("redis-server")
    }


# -- one run ------------------------------------------------------------------------------------


async def claimed(http: httpx.AsyncClient, class_id: int, limit_s: float = 20.0) -> None:
    """Wait (bounded) until the worker behind ``http`` names the class in ``owns``."""
    deadline = time.monotonic() + limit_s
    while class_id not in (said := await readyz(http)).get("owns", []):
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker 0 did not claim the class: /readyz said {said}")
        await asyncio.sleep(0.1)


async def start_worker(
    worker: int,
    args: argparse.Namespace,
    env: dict[str, str],
    workdir: Path,
    children: Children,
) -> Server:
    """Worker ``worker``: ``classroom serve`` as a node of its own, with a data dir of its own."""
    port = free_port()
    data = workdir / f"worker-{worker}"
    data.mkdir()
    return await start_server(
        children,
        env
        | {
            "CLASSROOM_NODE": f"{env['CLASSROOM_REDIS_PREFIX']}-w{worker}",
            "CLASSROOM_DATA_DIR": str(data),
        },
        workdir / f"worker-{worker}.log",
        port=port,
        command=[*SERVE, "--port", str(port)],
        cpus=args.worker_cpus[worker % len(args.worker_cpus)] if args.worker_cpus else (),
    )


def keep_logs(workdir: Path, kept: Path) -> None:
    kept.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, kept / log.name)


async def run_once(
    args: argparse.Namespace, workdir: Path, children: Children, run: int
) -> dict[str, Any]:
    waited = await settle(args.settle)
    progress(f"run {run}: waited {waited:.0f} s for a quieter machine")
    await asyncio.to_thread(workdir.mkdir, parents=True)
    tag = secrets.token_hex(5)
    name = f"bench_cluster_{tag}"
    prefix = f"bench-cluster-{tag}"
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = database_url(args.postgres, name)
    try:
        return await _run_on(args, workdir, children, run, url, name, prefix)
    finally:
        if args.logs:  # the workers' and the generator's logs, kept
            await asyncio.to_thread(keep_logs, workdir, Path(args.logs) / f"{prefix}-run-{run}")
        with contextlib.suppress(Exception):
            await drop_database(args.postgres, name)
        with contextlib.suppress(Exception):
            await forget_prefix(args.redis, prefix)


async def _run_on(
    args: argparse.Namespace,
    workdir: Path,
    children: Children,
    run: int,
    url: str,
    name: str,
    prefix: str,
) -> dict[str, Any]:
    """One run on a database of its own (``url``, named ``name``) and a Redis ``prefix``."""
    from classroom.db.migrate import upgrade

    await asyncio.to_thread(upgrade, url)
    who = instructor(int(args.seconds) + 600, cues=min(MAX_CUES, int(args.seconds) + 120))
    seeded = await seed.seed(url, who, participants=args.participants, teams=args.teams)
    class_id = seeded.class_id
    tokens = mint_tokens(SECRET, class_id, seeded.participants, workdir / "tokens.txt")
    env = classroom_env(url, SECRET, CLASSROOM_REDIS_URL=args.redis, CLASSROOM_REDIS_PREFIX=prefix)
    workers: list[Server] = []
    generator: Generator | None = None
    try:
        # Worker 0 starts alone and claims the open class that nobody owns (as it starts,
        # or within a second): it owns the class before any other worker is there.
        workers.append(await start_worker(0, args, env, workdir, children))
        await claimed(workers[0].http, class_id)
        for worker in range(1, args.workers):
            workers.append(await start_worker(worker, args, env, workdir, children))
        nodes = [await readyz(worker.http) for worker in workers]
        owners = [w for w, node in enumerate(nodes) if class_id in node.get("owns", [])]
        if owners != [0]:
            raise RuntimeError(f"the class is owned by workers {owners}, not worker 0: {nodes}")
        owner = nodes[0]["node"]
        progress(f"run {run}: {args.workers} worker(s) ready; {owner} (worker 0) owns the class")
        ws = [worker.ws_url(class_id) for worker in workers]
        checked = 1 if args.workers > 1 else 0  # a display of a worker that does not own it
        http = workers[0].http
        csrf = await sign_in(http, EMAIL, PASSWORD)
        generator = await start_generator(
            "bench.cluster",
            args,
            workdir,
            children,
            env,
            urls=ws,
            display_urls=[base + tokens.display(class_id) for base in ws],
            workers=args.workers,
            checked=checked,
        )
        ready = await generator.hear("ready", args.timeout)
        spread = [ready["per_worker"][str(w)]["phones"] for w in range(args.workers)]
        progress(
            f"run {run}: {ready['phones']}/{args.participants} phones connected in"
            f" {ready['connect_s']:.1f} s ({ready['connect_errors']} failed), per worker"
            f" {spread}; {ready['displays']} displays"
        )
        if ready["connect_errors"] or ready["displays"] != args.workers:
            raise RuntimeError(f"sockets failed to connect: {ready['errors']}")
        await asyncio.sleep(1.0 + args.participants / 5000)  # let the servers settle
        procs = [worker.proc for worker in workers]
        rss_connected = [p.memory_info().rss for p in procs]
        await start_class(http, class_id, csrf)
        pg_before = await postgres_pids(args.postgres, name)
        meters = (CpuMeter(pg_before), CpuMeter(redis_pids()))
        window = await load_window(generator, args, procs, rss_connected)
        pg_cpu = meters[0].used(pg_before | await postgres_pids(args.postgres, name))
        redis_cpu = meters[1].used(redis_pids())
        await generator.hear("result", 60 + args.participants / 100)
        result = json.loads(await asyncio.to_thread((workdir / "result.json").read_text))
        held_by = await owner_node(url, class_id)
        failover: dict[str, Any] = {"failover_s": None}
        if args.failover:
            killed_at = time.time()
            workers[0].process.kill()  # SIGKILL
            await generator.say(f"failover {killed_at!r} 0")
            failover = await generator.hear("failover", FAILOVER_WAIT_S + 30)
            failover["new_owner"] = await owner_node(url, class_id)
            progress(f"run {run}: SIGKILL of the owner; {failover}")
        await generator.say("end")
        with contextlib.suppress(TimeoutError):  # it closes its sockets and exits
            await asyncio.wait_for(generator.process.wait(), 30)
    finally:
        if generator is not None:
            await children.stop(generator.process)
        await asyncio.gather(*(worker.close(children) for worker in workers))
    stored = await stored_totals(url, class_id)
    problems = verify(seeded, result, stored)
    if held_by != owner:
        problems.append(f"the class changed owner during the run: {owner} -> {held_by}")
    window_s, worker_cpu = window["window_s"], window["cpu_s"]
    per_worker = result.pop("per_worker")
    for w, figures in per_worker.items():
        figures["cpu_percent"] = round(100 * worker_cpu[int(w)] / window_s, 1)
        figures["rss_connected_mib"] = round(rss_connected[int(w)] / 2**20, 1)
        figures["rss_max_mib"] = round(window["rss_max"][int(w)] / 2**20, 1)
    known = sum(worker_cpu) + pg_cpu + redis_cpu + result["generator_cpu_percent"] * window_s / 100
    logs = [problem for worker in workers for problem in log_problems(worker.log)]
    result |= {
        "run": run,
        "workers": args.workers,
        "participants": args.participants,
        "owner": owner,
        "owner_worker": 0,
        "owner_held": held_by == owner,
        "checked_display_worker": checked,
        "per_worker": per_worker,
        "timed_out": window["finished"].get("timed_out", False) or result["timed_out"],
        "stored_inputs": sum(n for n, _, _ in stored.values()),
        "totals_exact": not problems,
        "problems": problems[:20],
        "workers_cpu_percent": round(100 * sum(worker_cpu) / window_s, 1),
        "postgres_cpu_percent": round(100 * pg_cpu / window_s, 1),
        "redis_cpu_percent": round(100 * redis_cpu / window_s, 1),
        "machine_cpu_percent": round(100 * window["machine_s"] / window_s, 1),
        "other_cpu_percent": round(100 * max(0.0, window["machine_s"] - known) / window_s, 1),
        "server_cpu_us_per_input": round(1e6 * sum(worker_cpu) / max(1, result["inputs"]), 1),
        **failover,
        "server_log_problems": logs[:10],
    }
    return result


# -- summary ------------------------------------------------------------------------------------

ONE_SERVER = ("server_cpu_percent", "server_rss_connected_mib", "server_rss_max_mib")
MEDIANS = (
    *(key for key in scoring.MEDIANS if key not in ONE_SERVER),
    "fanout_p50_ms",
    "fanout_max_ms",
    "fanout_first_p50_ms",
    "failover_s",
    "workers_cpu_percent",
    "postgres_cpu_percent",
    "redis_cpu_percent",
    "machine_cpu_percent",
)
SUMS = (*scoring.SUMS, "cues_measured", "cues_lost", "cues_duplicated")
SHOWN = dict(scoring.ROWS)


def each_worker(key: str) -> Any:
    """A table cell: one figure of every worker's, in worker order."""
    return lambda run: " / ".join(str(figures[key]) for figures in run["per_worker"].values())


def pair(one: str, other: str) -> Any:
    return lambda run: f"{run[one]} / {run[other]}"


ROWS = (
    *((label, SHOWN[label]) for label in ("inputs sent / acknowledged", "inputs sent a second")),
    ("phones per worker", each_worker("phones")),
    (
        "stored totals exact (DB, non-owner's board)",
        SHOWN["stored totals exact (DB and final board)"],
    ),
    *(
        (label, SHOWN[label])
        for label in ("ack latency p50 ms", "ack latency p99 ms", "ack latency max ms")
    ),
    ("ack p50 ms, per worker", each_worker("ack_p50_ms")),
    ("ack p99 ms, per worker", each_worker("ack_p99_ms")),
    ("leaderboards a second, per worker's display", each_worker("leaderboard_updates_per_s")),
    ("cue fan-out p50 / max ms (last phone)", pair("fanout_p50_ms", "fanout_max_ms")),
    ("cues measured / lost at phones", pair("cues_measured", "cues_lost")),
    ("failover s (SIGKILL to first new event)", lambda r: r["failover_s"]),
    ("CPU % of a core, per worker", each_worker("cpu_percent")),
    ("CPU % of a core: PostgreSQL / Redis", pair("postgres_cpu_percent", "redis_cpu_percent")),
    ("CPU % of a core: generator / the rest", pair("generator_cpu_percent", "other_cpu_percent")),
    ("CPU % of a core: the whole machine", lambda r: r["machine_cpu_percent"]),
    ("workers' CPU µs per input (all together)", lambda r: r["server_cpu_us_per_input"]),
    ("RSS max MiB, per worker", each_worker("rss_max_mib")),
    ("generator behind schedule, max ms", SHOWN["generator behind schedule, max ms"]),
)
KEPT = ("totals_exact", "timed_out", "owner", "owner_held", "per_worker", "clocks")
KEPT_TOO = ("failover_event", "new_owner", "events_missed_after", "close_codes")


def report(args: argparse.Namespace, runs: list[dict[str, Any]], errors: list[str]) -> int:
    print_title("cluster")
    print(
        f"{args.workers} worker process(es) on PostgreSQL and Redis, one class owned by worker 0;"
        f" {args.participants} participants (phone i on worker i % {args.workers}), {args.rate:g}"
        f" reps a second each for {args.seconds:g} s, {args.teams} teams, a cue every second"
    )
    pinned = "not pinned"
    if args.worker_cpus:
        pinned = (
            "workers pinned to CPUs "
            + " / ".join(",".join(map(str, cpus)) for cpus in args.worker_cpus)
            + f", generator to {','.join(map(str, args.generator_cpus))}"
        )
    print(f"{pinned}; failover {'measured' if args.failover else 'not measured'}")
    print()
    summary = summarize(runs, MEDIANS, SUMS)
    summary["per_worker"] = runs[-1]["per_worker"] if runs else {}
    print_table(runs, summary, ROWS, width=46)
    print()
    verdict_ack_p99(summary["ack_p99_ms"], "ack p99")
    failover_s = summary["failover_s"]
    if args.failover:
        met = failover_s is not None and failover_s <= FAILOVER_TARGET_S
        word = "met" if met else "MISSED"
        print(f"target failover <= {FAILOVER_TARGET_S:g} s: {word} ({failover_s} s)")
    print_problems(runs, errors)
    del summary["per_worker"]
    result: dict[str, Any] = {
        "workers": args.workers,
        **settings(args, runs, errors),
        "failover": args.failover,
        **summary,
        "owner_worker": 0,
        "owner_held": bool(runs) and all(run["owner_held"] for run in runs),
        "machine": machine(),
        "target_ack_p99_ms": TARGET_ACK_P99_MS,
        "per_run": [
            {key: run.get(key) for key in ("run", *MEDIANS, *SUMS, *KEPT, *KEPT_TOO)}
            for run in runs
        ],
    }
    emit(result)
    return 1 if failed(summary, errors) or (args.failover and failover_s is None) else 0


async def run_all(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    return await run_series(
        args,
        workdir,
        run_once,
        progress,
        lambda run: (
            f"run {run}/{args.runs}: {args.workers} workers, {args.participants} participants,"
            f" {args.seconds:g} s"
        ),
        lambda result: (
            f"fan-out p50 {result['fanout_p50_ms']} ms max {result['fanout_max_ms']} ms,"
            f" failover {result['failover_s']} s"
        ),
    )


def pinning(spec: str, workers: int) -> tuple[list[list[int]], list[int]]:
    """Each worker's CPUs and the generator's from ``--pin`` (empty: not pinned)."""
    if spec == "none":
        return [], []
    if spec == "auto":
        usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(usable) < workers + 1:
            return [], []
        return [[cpu] for cpu in usable[:workers]], usable[workers:]
    try:
        head, tail = spec.split(":")
        per_worker = [[int(cpu) for cpu in part.split(",") if cpu] for part in head.split("/")]
        generator = [int(cpu) for cpu in tail.split(",") if cpu]
    except ValueError:
        message = f"--pin: expected W0/W1/...:GENERATOR CPUs, 'auto' or 'none', not {spec!r}"
        raise SystemExit(message) from None
    return per_worker, generator


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="classroom processes (2)")
    add_load_options(parser, (None, "5000; --quick: 20"), (None, "30; --quick: 3"))
    parser.add_argument(
        "--failover",
        action="store_true",
        help="after the inputs, SIGKILL the owner and time the class's move to a survivor",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run, for tests: 20 phones for 3 s"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=10,
        help="before each run, wait up to this many seconds for the rest of the machine to"
        " use under half a core (10)",
    )
    parser.add_argument(
        "--pin",
        default="auto",
        help="CPUs of each worker and of the generator, as W0/W1/...:GENERATOR (e.g. 0/1:2),"
        " or 'none'; 'auto' gives each worker and the generator a CPU of its own when there"
        " are enough CPUs, else pins nothing (the default)",
    )
    parser.add_argument("--logs", help="copy each run's logs (workers', generator's) here")
    parser.add_argument("--postgres", default=POSTGRES, help=f"a PostgreSQL server ({POSTGRES})")
    parser.add_argument("--redis", default=REDIS, help=f"a Redis server ({REDIS})")
    args = parser.parse_args(argv)
    if args.generate:
        return args
    if args.participants is None:
        args.participants = 20 if args.quick else 5000
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else 30.0
    if not 1 <= args.workers <= 16:
        parser.error("--workers must be between 1 and 16")
    check_load_options(parser, args, 150)  # the cues last 199 s
    args.settle = max(0.0, min(args.settle, 120.0))
    args.worker_cpus, args.generator_cpus = pinning(args.pin, args.workers)
    if args.timeout <= 0:
        args.timeout = 180 + args.settle + args.seconds + args.ack_wait + args.participants / 25
        args.timeout += args.workers * 30 + (FAILOVER_WAIT_S + 30 if args.failover else 0)
    return args


def main(argv: list[str] | None = None) -> int:
    return entry(parse_args(argv), generate, run_all, report, "cluster")


if __name__ == "__main__":
    sys.exit(main())
