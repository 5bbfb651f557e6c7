"""Benchmark: thousands of phones logging reps into one class, every input acknowledged.

Run ``python -m bench.scoring``. For each of ``--runs`` runs it:

1. seeds a fresh SQLite database in a temp directory, before the server starts:
   an instructor, a routine of one long reps segment, a class in the lobby with
   ``--teams`` teams, and ``--participants`` participants spread over the teams
   (rows inserted directly: 5,000 joins through the join page would take minutes
   and are not what this measures), whose participant tokens are minted with the
   server's secret (:class:`classroom.web.tokens.Tokens`);
2. starts the server as a process of its own (``python -m classroom.cli serve``,
   127.0.0.1, a free port) and the load generator as another (this module with
   ``--generate``: picows clients on uvloop); with two CPUs or more each is
   pinned to a CPU of its own (``--pin``), so the two never take turns on a core;
3. connects every phone (a participant socket each) and one display socket,
   starts the class with the console's start control (HTTP, with its CSRF token);
4. has every phone log ``--rate`` reps a second (one ``score`` message of kind
   ``reps``, value 1, a unique client id each) for ``--seconds`` seconds, the
   sends spread evenly over time and phones, whatever the acks do (open loop);
5. waits (bounded) for every acknowledgement and then for the final leaderboard.

It checks that every input was acknowledged once, as new; that the stored
inputs (the database, read after the server has stopped) add up, participant
by participant, to exactly what was sent; and that the last leaderboard the
display got shows those totals: every team's total and every person on it.

It reports the ack latency (from a score's send to its ack, on the generator's
monotonic clock) p50/p99/max, the leaderboard updates the display received per
second while inputs flowed (target 2 to 4), the server's CPU (% of one core,
while inputs flowed) and its largest RSS, and the generator's own CPU. It
prints progress on stderr, a table on stdout, then one JSON object with the
figures as the very last line (medians across runs, inputs and acks summed).

Every wait is bounded, and each run has a hard time limit (``--timeout``); the
server and the generator are stopped and the temp directory removed whatever
happens (they also die with this process). Only loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import seed
from bench.client import mint_tokens, sign_in, start_class
from bench.launch import (
    PIN_HELP,
    Children,
    Generator,
    classroom_env,
    cpu_seconds,
    free_port,
    hear,
    log_problems,
    machine_busy_s,
    pinning,
    run_benchmark,
    say,
    start_server,
)
from bench.peers.common import raise_nofile
from bench.report import (
    emit,
    finite,
    median_of,
    percentile,
    print_table,
    print_title,
    progress_to,
    verdict,
)

SECRET = "scoring-benchmark-secret-key-not-for-production"
EMAIL = "scoring@example.com"
PASSWORD = "scoring benchmark password"
TITLE = "Scoring benchmark"
TARGET_ACK_P99_MS = 100.0
TARGET_BOARDS_PER_S = (2.0, 4.0)
ACK_QUIET_S = 20.0  # acks still due but none for this long: the rest are not coming
BOARD_QUIET_S = 1.0  # after the last ack, the final board is the one after this long quiet

progress = progress_to("scoring")


def instructor(segment_s: int, cues: int = 0) -> seed.Instructor:
    """One work segment scored in reps, long enough for the run; nothing generated.

    With ``cues``, the segment has an authored cue every second from its first
    second on (``cues`` of them): class events that every screen gets.
    """
    marks = [(k, f"Cue {k}") for k in range(1, cues + 1)]
    yaml = seed.routine_yaml(TITLE, "Burpees", segment_s, marks, score="reps")
    return seed.Instructor(EMAIL, PASSWORD, "scoring-bench", TITLE, yaml)


# -- the load generator (a process of its own) ------------------------------------------------
#
# Its parent drives it with one line at a time on stdin; it answers on stdout:
#     (start)  -> ready {..}   every phone and the display connected (or failed)
#     go       -> done {..}    every input sent, and acknowledged (or the wait ran out)
#              -> result {..}  the figures, once the final leaderboard is in


ACK = b'{"type":"ack",'
LEADERBOARD = b'{"type":"leaderboard",'
SCORE = '{"type":"score","id":"p%d-%d","segment":0,"kind":"reps","value":1}'


def _load_generator() -> Any:
    """The generator's classes, built on picows (imported here: only the child needs it)."""
    from bench.crowd import TEXT, Crowd, Socket

    now = time.perf_counter

    class Phone(Socket):
        """A participant's socket (``index`` >= 0) or the display's (``index`` -1)."""

        def __init__(self, gen: ScoreGenerator, index: int) -> None:
            super().__init__(gen, index)
            self.sent_at: list[float] = []  # by input number k
            self.acked: list[bool] = []
            self.acks = 0

    class ScoreGenerator(Crowd):
        socket_class = Phone

        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__()
            self.config = config
            self.display: Phone | None = None
            self.latencies: list[float] = []
            self.pending = 0
            self.all_acked = asyncio.Event()
            self.last_ack = 0.0
            self.sent_last = 0.0  # when the last input went out
            self.duplicates = 0  # acks that said "duplicate": none are, every id is new
            self.acked_twice = 0
            self.unknown_acks = 0
            self.errors: Counter[str] = Counter()
            self.boards: list[tuple[float, bytes]] = []  # the display's, as received
            self.phone_boards = 0
            self.other_types: Counter[str] = Counter()

        # -- receiving ---------------------------------------------------------------------

        def receive(self, phone: Phone, payload: bytes, received: float) -> None:
            # The hot path: acks (parsed: they carry the id) and the phones' copies of
            # the leaderboard (only counted); everything else goes the slow way.
            if payload.startswith(ACK):
                self.ack(phone, payload, received)
            elif payload.startswith(LEADERBOARD) and phone.index >= 0:
                self.phone_boards += 1
            else:
                self.other(phone, payload, received)

        def ack(self, phone: Phone, payload: bytes, received: float) -> None:
            message = json.loads(payload)
            ident = message.get("id")
            number = ident.rpartition("-")[2] if isinstance(ident, str) else ""
            k = int(number) if number.isdigit() else -1
            if not 0 <= k < len(phone.sent_at) or ident != f"p{phone.index}-{k}":
                self.unknown_acks += 1
                return
            if message.get("duplicate") is not False:
                self.duplicates += 1
            if phone.acked[k]:
                self.acked_twice += 1
                return
            phone.acked[k] = True
            phone.acks += 1
            self.latencies.append(received - phone.sent_at[k])
            self.last_ack = received
            self.pending -= 1
            if self.pending == 0:
                self.all_acked.set()

        def other(self, phone: Phone, payload: bytes, received: float) -> None:
            message = json.loads(payload)
            kind = str(message.get("type"))
            self.other_types[kind] += 1
            if kind == "snapshot":
                phone.join(received)
            elif kind == "leaderboard":  # the display's
                self.boards.append((received, payload))
            elif kind in ("error", "notice"):
                self.errors[str(message.get("code"))] += 1
                self.note(f"socket {phone.index}: {payload[:200]!r}")

        # -- connecting ----------------------------------------------------------------------

        def phone_url(self, index: int) -> str:
            return str(self.config["url"] + self.config["token_list"][index])

        async def connect_displays(self) -> None:
            self.display = await self.connect_one(-1, self.config["display_url"])

        def sockets(self) -> list[Phone]:
            return [*self.phones, *([self.display] if self.display else [])]

        async def connect_all(self) -> float:
            """The displays, then every phone; the wall time it took."""
            started = time.perf_counter()
            await self.connect_displays()
            urls = [self.phone_url(i) for i in range(len(self.config["token_list"]))]
            await self.connect(urls, self.config["concurrency"])
            return time.perf_counter() - started

        # -- sending -------------------------------------------------------------------------

        async def send_all(self) -> dict[str, float]:
            """Every phone's inputs, spread evenly: input j goes out at j * period / phones."""
            phones = self.phones
            count = len(phones)
            per_phone = round(self.config["seconds"] * self.config["rate"])
            total = count * per_phone
            for phone in phones:
                phone.acked = [False] * per_phone
            self.pending = total
            if not total:
                self.all_acked.set()
                return {"first": now(), "last": now(), "behind_max_ms": 0.0}
            step = 1.0 / self.config["rate"] / count
            encode = str.encode
            start = now() + 0.05
            behind = 0.0
            j = 0
            last = start
            while j < total:
                elapsed = now() - start
                due = min(total, int(elapsed / step) + 1)
                if due <= j:
                    await asyncio.sleep(max(0.001, j * step - elapsed))  # uvloop: 1 ms ticks
                    continue
                behind = max(behind, elapsed - j * step)
                while j < due:
                    k, i = divmod(j, count)
                    phone = phones[i]
                    transport = phone.transport
                    assert transport is not None
                    phone.sent_at.append(now())
                    transport.send(TEXT, encode(SCORE % (phone.index, k)))
                    j += 1
                last = now()
                await asyncio.sleep(0)  # let the acks in
            first = phones[0].sent_at[0]  # input 0 is phone 0's first
            self.sent_last = last
            return {"first": first, "last": last, "behind_max_ms": behind * 1000}

        async def close_all(self) -> None:
            self.closing = True
            await self.close(self.sockets())

    return ScoreGenerator


async def wait_for_acks(gen: Any, limit_s: float, quiet_s: float = ACK_QUIET_S) -> bool:
    """Wait for every ack, at most ``limit_s``; stop early once none has come for ``quiet_s``.

    True if some never came (an input the server refused, or dropped, is never acked).
    """
    deadline = time.perf_counter() + limit_s
    while not gen.all_acked.is_set():
        now = time.perf_counter()
        if now >= deadline or now - max(gen.last_ack, gen.sent_last) >= quiet_s:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.all_acked.wait(), min(1.0, deadline - now))
    return False


async def generate(config: dict[str, Any]) -> None:
    raise_nofile(max(65_536, 2 * config["participants"] + 1_024))
    gen = _load_generator()(config)
    connect_s = await gen.connect_all()
    say("ready", connected(gen, connect_s))
    result = await measure(gen, config)
    await gen.close_all()
    # Too large for one line on a pipe (a count per phone, the final board): a file.
    text = json.dumps(result, allow_nan=False)
    await asyncio.to_thread(Path(config["result"]).write_text, text)
    say("result")


def connected(gen: Any, connect_s: float) -> dict[str, Any]:
    """What the generator says once its sockets are connected."""
    return {
        "phones": len(gen.phones),
        "display": gen.display is not None,
        "connect_errors": gen.connect_errors,
        "connect_s": round(connect_s, 3),
        "errors": gen.problems,
    }


def board_rate(boards: Sequence[tuple[float, bytes]], first: float, last: float) -> dict[str, Any]:
    """How often boards came while inputs flowed (from ``first`` to ``last``)."""
    flowing = [at for at, _ in boards if first <= at <= last]
    gaps = sorted(b - a for a, b in itertools.pairwise(flowing))
    return {
        "leaderboards_while_flowing": len(flowing),
        # One over the mean gap between the boards that came while inputs flowed.
        "leaderboard_updates_per_s": (
            round((len(flowing) - 1) / (flowing[-1] - flowing[0]), 3) if len(flowing) > 1 else 0.0
        ),
        "leaderboard_gap_p50_ms": finite(percentile(gaps, 50) * 1000, 1),
        "leaderboard_gap_max_ms": finite(gaps[-1] * 1000, 1) if gaps else None,
    }


async def measure(gen: Any, config: dict[str, Any]) -> dict[str, Any]:
    """On "go": every input sent and acknowledged, then the final board; the figures."""
    await hear("go", config["timeout"])
    # No collection while the inputs flow: a full one over 5,000 sockets' objects would
    # stall every receipt behind it. This process lives for one run.
    gc.collect()
    gc.freeze()
    gc.disable()
    times_before = os.times()
    sent = await gen.send_all()
    timed_out = await wait_for_acks(gen, config["ack_wait"])
    times_after = os.times()
    say("done", {"timed_out": timed_out})
    gc.enable()
    cpu_s = (times_after.user - times_before.user) + (times_after.system - times_before.system)
    window_s = max(1e-9, (gen.last_ack or sent["last"]) - sent["first"])

    # The final leaderboard: the display's latest, once none has come for a while.
    quiet_until = time.perf_counter() + 15
    while time.perf_counter() < quiet_until:
        latest = gen.boards[-1][0] if gen.boards else 0.0
        if time.perf_counter() - max(latest, gen.last_ack) >= BOARD_QUIET_S:
            break
        await asyncio.sleep(0.1)
    sending_s = max(1e-9, sent["last"] - sent["first"])
    latencies = sorted(gen.latencies)
    final = json.loads(gen.boards[-1][1]) if gen.boards else None
    result = {
        "phones": len(gen.phones),
        "inputs": sum(len(phone.sent_at) for phone in gen.phones),
        "acked": len(latencies),
        "sent_per_phone": {str(phone.index): len(phone.sent_at) for phone in gen.phones},
        "acked_per_phone": {str(phone.index): phone.acks for phone in gen.phones},
        "duplicates": gen.duplicates,
        "acked_twice": gen.acked_twice,
        "unknown_acks": gen.unknown_acks,
        "timed_out": timed_out,
        "ack_p50_ms": finite(percentile(latencies, 50) * 1000),
        "ack_p90_ms": finite(percentile(latencies, 90) * 1000),
        "ack_p99_ms": finite(percentile(latencies, 99) * 1000),
        "ack_max_ms": finite(latencies[-1] * 1000) if latencies else None,
        "sending_s": round(sending_s, 3),
        "send_rate_per_s": round(sum(len(p.sent_at) for p in gen.phones) / sending_s, 1),
        "generator_behind_max_ms": round(sent["behind_max_ms"], 2),
        **board_rate(gen.boards, sent["first"], sent["last"]),
        "leaderboards_at_display": len(gen.boards),
        "leaderboards_at_phones": gen.phone_boards,
        "final_board": final,
        "errors": dict(gen.errors),
        "error_samples": gen.problems,
        "other_messages": dict(gen.other_types),
        "close_codes": {str(k): v for k, v in gen.close_codes.items()},
        "dropped": gen.dropped,
        "generator_cpu_percent": round(100 * cpu_s / window_s, 1),
        # On the generator's perf_counter: when the first and the last input went out.
        "sent_first": sent["first"],
        "sent_last": sent["last"],
    }
    return result


# -- the database, before the server starts and after it has stopped --------------------------


# Per participant: stored inputs, the reps they add up to, and how many were withdrawn.
STORED_TOTALS = (
    "SELECT participant_id, COUNT(*), SUM(CASE WHEN withdrawn THEN 0 ELSE value END),"
    " SUM(CASE WHEN withdrawn THEN 1 ELSE 0 END) FROM scores WHERE class_id = {class_id}"
    " GROUP BY participant_id"
)


def stored_totals(path: Path, class_id: int) -> dict[int, tuple[int, int, int]]:
    """Per participant: stored inputs, the reps they add up to, and how many were withdrawn."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(STORED_TOTALS.format(class_id="?"), (class_id,)).fetchall()
    return {int(pid): (int(n), int(total), int(withdrawn)) for pid, n, total, withdrawn in rows}


def check_totals(
    seeded: seed.Seeded,
    sent: dict[int, int],
    stored: dict[int, tuple[int, int, int]],
    board: dict[str, Any] | None,
) -> list[str]:
    """Every way the stored inputs and the final board differ from what was sent."""
    problems: list[str] = []
    for pid in seeded.participants:
        expected = sent.get(pid, 0)
        count, total, withdrawn = stored.get(pid, (0, 0, 0))
        if (count, total, withdrawn) != (expected, expected, 0):
            problems.append(
                f"participant {pid}: sent {expected}, stored {count} inputs"
                f" ({withdrawn} withdrawn) adding up to {total}"
            )
    for pid in stored.keys() - set(seeded.participants):
        problems.append(f"stored inputs of participant {pid}, who is not in the class")
    if board is None or not isinstance(board.get("class"), dict):
        return [*problems, "the display got no leaderboard of the class"]
    whole = board["class"]
    members: dict[int, list[int]] = {team: [] for team in seeded.teams}
    for pid, team in seeded.team_of.items():
        if team is not None:
            members[team].append(pid)
    teams = {row["id"]: row for row in whole.get("teams", [])}
    if set(teams) != set(seeded.teams):
        problems.append(f"the board's teams {sorted(teams)} are not {seeded.teams}")
    for team, pids in members.items():
        row = teams.get(team)
        expected_total = sum(sent.get(pid, 0) for pid in pids)
        active = sum(1 for pid in pids if sent.get(pid, 0) > 0)
        if row is None or row["value"] != expected_total or row.get("members") != active:
            problems.append(
                f"team {team}: the board shows {row and (row['value'], row.get('members'))},"
                f" sent {expected_total} by {active} members"
            )
    people = whole.get("people", [])
    if not people and any(sent.values()):
        problems.append("the board shows nobody")
    for row in people:
        if row["value"] != sent.get(row["id"], -1):
            problems.append(f"participant {row['id']}: the board shows {row['value']}")
    top = max(sent.values(), default=0)
    if people and people[0]["value"] != top:
        problems.append(f"the board's leader has {people[0]['value']}, the most sent is {top}")
    return problems


# -- one run ------------------------------------------------------------------------------------


async def start_generator(
    module: str,
    args: argparse.Namespace,
    workdir: Path,
    children: Children,
    env: dict[str, str],
    **sockets: Any,
) -> Generator:
    """The load generator (``python -m module --generate``), told where its sockets go."""
    config = {
        **sockets,
        "tokens": str(workdir / "tokens.txt"),
        "participants": args.participants,
        "seconds": args.seconds,
        "rate": args.rate,
        "concurrency": args.concurrency,
        "timeout": args.timeout,
        "ack_wait": args.ack_wait,
        "result": str(workdir / "result.json"),
    }
    config_path = workdir / "generator.json"
    config_path.write_text(json.dumps(config))
    log = workdir / "generator.log"
    process = await children.spawn(
        [sys.executable, "-m", module, "--generate", str(config_path)],
        log,
        env,
        pipes=True,
        cpus=args.generator_cpus,
    )
    return Generator(process, log)


async def load_window(
    generator: Generator,
    args: argparse.Namespace,
    servers: Sequence[psutil.Process],
    rss: list[int],
) -> dict[str, Any]:
    """From "go" to "done": the servers' CPU seconds and largest RSS (``rss`` so far) in it."""
    cpu_before, wall_before = [cpu_seconds(proc) for proc in servers], time.perf_counter()
    machine_before = machine_busy_s()
    await generator.say("go")
    done = asyncio.ensure_future(generator.hear("done", args.seconds + args.ack_wait + 30))
    rss_max = list(rss)
    while not done.done():
        await asyncio.wait([done], timeout=0.5)
        for i, proc in enumerate(servers):
            with contextlib.suppress(psutil.Error):
                rss_max[i] = max(rss_max[i], proc.memory_info().rss)
    finished = done.result()
    cpu_s = [cpu_seconds(proc) - before for proc, before in zip(servers, cpu_before, strict=True)]
    window_s = time.perf_counter() - wall_before
    machine_s = machine_busy_s() - machine_before
    return {
        "finished": finished,
        "cpu_s": cpu_s,
        "window_s": window_s,
        "machine_s": machine_s,
        "rss_max": rss_max,
    }


def verify(
    seeded: seed.Seeded, result: dict[str, Any], stored: dict[int, tuple[int, int, int]]
) -> list[str]:
    """What the stored inputs, the final board and the acks got wrong (popped from ``result``)."""
    sent = {
        seeded.participants[int(index)]: count
        for index, count in result.pop("sent_per_phone").items()
    }
    acked_per_phone = result.pop("acked_per_phone")
    board = result.pop("final_board")
    problems = check_totals(seeded, sent, stored, board)
    unacked = sum(
        count - acked_per_phone.get(str(i), 0)
        for i, count in enumerate(sent[pid] for pid in seeded.participants)
    )
    if unacked:
        problems.append(f"{unacked} inputs never acknowledged")
    return problems


@dataclass(frozen=True, slots=True)
class LoadRun:
    """One run's load against a server of its own, over: what its figures come from."""

    seeded: seed.Seeded
    database: Path
    result: dict[str, Any]  # the generator's figures
    window: dict[str, Any]  # the load window's (load_window)
    rss_connected: int
    server_log: Path


async def load_run(
    args: argparse.Namespace,
    workdir: Path,
    children: Children,
    run: int,
    *,
    module: str,
    node: str,
    tell: Callable[[str], None] = progress,
    **options: Any,
) -> LoadRun:
    """Seed a database, start the server and ``module``'s load generator (with
    ``options``), connect every phone, start the class and run the load; the server is
    stopped (it stores what it holds as it stops) before this returns."""
    await asyncio.to_thread(workdir.mkdir, parents=True)
    database = workdir / "classroom.db"
    url = await asyncio.to_thread(seed.migrated_sqlite, database)
    who = instructor(int(args.seconds) + 120)
    seeded = await seed.seed(url, who, participants=args.participants, teams=args.teams)
    class_id = seeded.class_id
    tokens = mint_tokens(SECRET, class_id, seeded.participants, workdir / "tokens.txt")
    port = free_port()
    env = classroom_env(url, SECRET, port=port, data_dir=workdir, CLASSROOM_NODE=node)
    log = workdir / "server.log"
    server = await start_server(children, env, log, port=port, cpus=args.server_cpus)
    generator: Generator | None = None
    try:
        proc = server.proc
        csrf = await sign_in(server.http, EMAIL, PASSWORD)
        ws = server.ws_url(class_id)
        generator = await start_generator(
            module,
            args,
            workdir,
            children,
            env,
            url=ws,
            display_url=ws + tokens.display(class_id),
            **options,
        )
        ready = await generator.hear("ready", args.timeout)
        tell(
            f"run {run}: {ready['phones']}/{args.participants} phones connected in"
            f" {ready['connect_s']:.1f} s ({ready['connect_errors']} failed)"
        )
        if ready["connect_errors"] or not ready["display"]:
            raise RuntimeError(f"sockets failed to connect: {ready['errors']}")
        await asyncio.sleep(1.0 + args.participants / 5000)  # let the server settle
        rss_connected = proc.memory_info().rss
        await start_class(server.http, class_id, csrf)
        window = await load_window(generator, args, [proc], [rss_connected])
        await generator.hear("result", 60 + args.participants / 100)
        result = json.loads(await asyncio.to_thread((workdir / "result.json").read_text))
    finally:
        if generator is not None:
            await children.stop(generator.process)
        await server.close(children)
    return LoadRun(seeded, database, result, window, rss_connected, server.log)


def run_figures(
    args: argparse.Namespace, run: int, loaded: LoadRun, stored: dict[int, tuple[int, int, int]]
) -> dict[str, Any]:
    """A run's figures: the generator's, the stored inputs checked, and the server's CPU
    and memory over the load window."""
    problems = verify(loaded.seeded, loaded.result, stored)
    result, window = loaded.result, loaded.window
    window_s, (window_cpu_s,) = window["window_s"], window["cpu_s"]
    gen_cpu = result["generator_cpu_percent"] * window_s / 100
    return result | {
        "run": run,
        "participants": args.participants,
        "timed_out": window["finished"].get("timed_out", False) or result["timed_out"],
        "stored_inputs": sum(n for n, _, _ in stored.values()),
        "stored_reps": sum(total for _, total, _ in stored.values()),
        "totals_exact": not problems,
        "problems": problems[:20],
        "server_cpu_percent": round(100 * window_cpu_s / window_s, 1),
        "server_cpu_us_per_input": round(1e6 * window_cpu_s / max(1, result["inputs"]), 1),
        "server_rss_connected_mib": round(loaded.rss_connected / 2**20, 1),
        "server_rss_max_mib": round(window["rss_max"][0] / 2**20, 1),
        "other_cpu_percent": round(
            100 * max(0.0, window["machine_s"] - window_cpu_s - gen_cpu) / window_s, 1
        ),
        "server_log_problems": log_problems(loaded.server_log)[:10],
    }


async def run_once(
    args: argparse.Namespace, workdir: Path, children: Children, run: int
) -> dict[str, Any]:
    loaded = await load_run(
        args, workdir, children, run, module="bench.scoring", node="scoring-bench"
    )
    stored = await asyncio.to_thread(stored_totals, loaded.database, loaded.seeded.class_id)
    return run_figures(args, run, loaded, stored)


# -- summary ------------------------------------------------------------------------------------

MEDIANS = (
    "ack_p50_ms",
    "ack_p90_ms",
    "ack_p99_ms",
    "ack_max_ms",
    "leaderboard_updates_per_s",
    "leaderboard_gap_p50_ms",
    "leaderboard_gap_max_ms",
    "send_rate_per_s",
    "generator_behind_max_ms",
    "server_cpu_percent",
    "server_cpu_us_per_input",
    "server_rss_connected_mib",
    "server_rss_max_mib",
    "generator_cpu_percent",
    "other_cpu_percent",
)
SUMS = ("inputs", "acked", "stored_inputs", "duplicates", "acked_twice", "dropped")

ROWS = (
    ("inputs sent / acknowledged", lambda r: f"{r['inputs']:,} / {r['acked']:,}"),
    ("inputs sent a second", lambda r: f"{r['send_rate_per_s']:,.0f}"),
    ("stored totals exact (DB and final board)", lambda r: "yes" if r["totals_exact"] else "NO"),
    ("ack latency p50 ms", lambda r: r["ack_p50_ms"]),
    ("ack latency p90 ms", lambda r: r["ack_p90_ms"]),
    ("ack latency p99 ms", lambda r: r["ack_p99_ms"]),
    ("ack latency max ms", lambda r: r["ack_max_ms"]),
    ("leaderboard updates a second (display)", lambda r: r["leaderboard_updates_per_s"]),
    (
        "leaderboard gap p50 / max ms",
        lambda r: f"{r['leaderboard_gap_p50_ms']} / {r['leaderboard_gap_max_ms']}",
    ),
    ("server CPU, % of one core", lambda r: r["server_cpu_percent"]),
    ("server CPU µs per input (boards included)", lambda r: r["server_cpu_us_per_input"]),
    (
        "server RSS connected / max MiB",
        lambda r: f"{r['server_rss_connected_mib']} / {r['server_rss_max_mib']}",
    ),
    ("generator CPU, % of one core", lambda r: r["generator_cpu_percent"]),
    ("generator behind schedule, max ms", lambda r: r["generator_behind_max_ms"]),
    ("rest of the machine, % of one core", lambda r: r["other_cpu_percent"]),
)


def summarize(
    runs: Sequence[dict[str, Any]],
    medians: Sequence[str] = MEDIANS,
    sums: Sequence[str] = SUMS,
) -> dict[str, Any]:
    summary: dict[str, Any] = {key: median_of([run.get(key) for run in runs]) for key in medians}
    for key in sums:
        summary[key] = sum(int(run.get(key) or 0) for run in runs)
    summary["totals_exact"] = bool(runs) and all(run["totals_exact"] for run in runs)
    summary["errors"] = sum(sum(run["errors"].values()) for run in runs)
    summary["timed_out_runs"] = sum(1 for run in runs if run["timed_out"])
    summary["server_log_problems"] = sum(len(run["server_log_problems"]) for run in runs)
    return summary


def print_heading(args: argparse.Namespace, title: str, load: str) -> None:
    """The report's first lines: the machine, the load, and the CPUs each side runs on."""
    print_title(title)
    print(
        f"{args.participants} participants in one class, {load}, {args.teams} teams;"
        " participants inserted in the database, their tokens minted with the server's secret"
    )
    if args.server_cpus:
        print(
            f"server pinned to CPU {','.join(map(str, args.server_cpus))}, load generator to CPU"
            f" {','.join(map(str, args.generator_cpus))}"
        )
    print()


def report(args: argparse.Namespace, runs: list[dict[str, Any]], errors: list[str]) -> int:
    print_heading(
        args,
        "scoring",
        f"{args.rate:g} reps a second each for {args.seconds:g} s (one input per rep)",
    )
    summary = summarize(runs)
    print_table(runs, summary, ROWS)
    print()
    low, high = TARGET_BOARDS_PER_S
    verdict_ack_p99(summary["ack_p99_ms"], "ack p99")
    verdict(
        f"leaderboard updates {low:g}-{high:g} a second",
        summary["leaderboard_updates_per_s"],
        lambda rate: low <= rate <= high,
    )
    print_problems(runs, errors)
    result: dict[str, Any] = {
        **settings(args, runs, errors),
        "participants_created": "rows inserted in the database; tokens minted with Tokens",
        **summary,
        "target_ack_p99_ms": TARGET_ACK_P99_MS,
        "target_leaderboard_updates_per_s": list(TARGET_BOARDS_PER_S),
        "per_run": [
            {
                key: run.get(key)
                for key in ("run", *MEDIANS, *SUMS, "totals_exact", "timed_out", "close_codes")
            }
            for run in runs
        ],
    }
    emit(result)
    return 1 if failed(summary, errors) else 0


def verdict_ack_p99(p99: float | None, what: str) -> None:
    """The ack latency target: ``target <what> < 100 ms: met (<p99> ms)``."""
    verdict(f"{what} < {TARGET_ACK_P99_MS:g} ms", p99, lambda v: v < TARGET_ACK_P99_MS, " ms")


def print_problems(runs: Sequence[dict[str, Any]], errors: Sequence[str]) -> None:
    """Whatever went wrong in each run, a line each, and the runs that failed."""
    for run in runs:
        for problem in run["problems"]:
            print(f"run {run['run']}: {problem}")
        if run["errors"]:
            print(f"run {run['run']}: error messages {run['errors']}: {run['error_samples'][:3]}")
        if run["dropped"]:
            print(
                f"run {run['run']}: {run['dropped']} sockets closed mid-run (close codes"
                f" {run['close_codes'] or 'none sent'}); inputs in flight then are never"
                " acknowledged (some of them were stored)"
            )
        for line in run["server_log_problems"]:
            print(f"run {run['run']}: server log: {line}")
    for error in errors:
        print(f"error: {error}")


def settings(
    args: argparse.Namespace, runs: Sequence[dict[str, Any]], errors: Sequence[str]
) -> dict[str, Any]:
    """The load asked for, and how many runs there were, for the JSON line."""
    return {
        "participants": args.participants,
        "seconds": args.seconds,
        "rate": args.rate,
        "teams": args.teams,
        "runs": len(runs),
        "failed_runs": len(errors),
    }


def failed(summary: dict[str, Any], errors: Sequence[str]) -> bool:
    """A run failed, a total was wrong, or an input went unacknowledged."""
    return bool(errors) or not summary["totals_exact"] or summary["acked"] != summary["inputs"]


RunOnce = Callable[[argparse.Namespace, Path, Children, int], Awaitable[dict[str, Any]]]


async def run_series(
    args: argparse.Namespace,
    workdir: Path,
    run_once: RunOnce,
    tell: Callable[[str], None],
    heading: Callable[[int], str],
    outcome: Callable[[dict[str, Any]], str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """``--runs`` runs one after the other, each within ``--timeout``; the runs and errors."""
    runs: list[dict[str, Any]] = []
    errors: list[str] = []
    async with Children() as children:
        for run in range(1, args.runs + 1):
            tell(heading(run))
            try:
                result = await asyncio.wait_for(
                    run_once(args, workdir / f"run-{run}", children, run), args.timeout
                )
            except Exception as exc:
                message = f"run {run}: {type(exc).__name__}: {exc}"[:2000]
                errors.append(message)
                tell(message)
                continue
            runs.append(result)
            tell(
                f"run {run}: {result['acked']:,}/{result['inputs']:,} acknowledged, totals"
                f" {'exact' if result['totals_exact'] else 'WRONG'}, ack p50"
                f" {result['ack_p50_ms']} ms p99 {result['ack_p99_ms']} ms, {outcome(result)}"
            )
    return runs, errors


async def run_all(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    return await run_series(
        args,
        workdir,
        run_once,
        progress,
        lambda run: f"run {run}/{args.runs}: {args.participants} participants, {args.seconds:g} s",
        lambda result: (
            f"leaderboards {result['leaderboard_updates_per_s']}/s, server CPU"
            f" {result['server_cpu_percent']} %"
        ),
    )


def add_load_options(
    parser: argparse.ArgumentParser,
    participants: tuple[int | None, str],
    seconds: tuple[float | None, str],
) -> None:
    """The options of the load: phones, how long, how fast, teams, runs and the waits."""
    default, text = participants
    parser.add_argument("--participants", type=int, default=default, help=f"phones ({text})")
    default_s, text = seconds
    parser.add_argument(
        "--seconds", type=float, default=default_s, help=f"how long inputs flow ({text})"
    )
    parser.add_argument("--rate", type=float, default=2.0, help="reps a second per phone (2)")
    parser.add_argument("--teams", type=int, default=4, help="teams, 2 to 8 (4)")
    parser.add_argument("--runs", type=int, default=1, help="runs; figures are medians (1)")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at a time (100)")
    parser.add_argument(
        "--ack-wait",
        type=float,
        default=0,
        help="after the last input, how long acks may still take, s (30 + 4 x --seconds)",
    )
    parser.add_argument("--timeout", type=float, default=0, help="hard limit per run, s (by size)")
    parser.add_argument("--generate", metavar="CONFIG", help=argparse.SUPPRESS)


def check_load_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, max_seconds: float
) -> None:
    if not 1 <= args.participants <= 20_000:
        parser.error("--participants must be between 1 and 20,000")
    if not 0 < args.seconds <= max_seconds:
        parser.error(f"--seconds must be above 0 and at most {max_seconds:g}")
    if not 0 < args.rate <= 10:
        parser.error("--rate must be above 0 and at most 10 (the server's limit is 20 a second)")
    if not 2 <= args.teams <= 8:
        parser.error("--teams must be between 2 and 8")
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be between 1 and 10")
    args.concurrency = max(1, min(args.concurrency, 1000))
    if args.ack_wait <= 0:
        args.ack_wait = 30 + 4 * args.seconds


def parse_load_args(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    check: Callable[[argparse.Namespace], None] = lambda args: None,
) -> argparse.Namespace:
    """The options of a load on one server (with ``--pin``), checked; ``check`` refuses
    what else is wrong with them (with ``parser.error``)."""
    parser.add_argument("--pin", default="auto", help=PIN_HELP)
    args = parser.parse_args(argv)
    if args.generate:
        return args
    check_load_options(parser, args, 600)
    check(args)
    args.server_cpus, args.generator_cpus = pinning(args.pin)
    if args.timeout <= 0:
        args.timeout = 120 + args.seconds + args.ack_wait + args.participants / 50
    return args


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, (5000, "5000"), (60, "60"))
    return parse_load_args(parser, argv)


Generate = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
RunAll = Callable[
    [argparse.Namespace, Path], Coroutine[Any, Any, tuple[list[dict[str, Any]], list[str]]]
]
Report = Callable[[argparse.Namespace, list[dict[str, Any]], list[str]], int]


def entry(
    args: argparse.Namespace, generate: Generate, run_all: RunAll, report: Report, name: str
) -> int:
    """The benchmark's runs and report, or (``--generate``) its load generator."""
    if args.generate:
        import uvloop

        config = json.loads(Path(args.generate).read_text())
        config["token_list"] = Path(config["tokens"]).read_text().split()
        uvloop.run(generate(config))
        return 0
    runs, errors = run_benchmark(
        name, lambda workdir: run_all(args, workdir), sockets=args.participants
    )
    return report(args, runs, errors)


def main(argv: list[str] | None = None) -> int:
    return entry(parse_args(argv), generate, run_all, report, "scoring")


if __name__ == "__main__":
    sys.exit(main())
