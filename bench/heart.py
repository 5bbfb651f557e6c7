"""Benchmark: thousands of phones sending heart rates while they log reps, into one class.

Run ``python -m bench.heart``. It is ``bench.scoring`` (the same seeded SQLite
database, the server as a process of its own, the picows/uvloop load generator as
another, open-loop sends, every wait bounded) with a heart-rate strap on every
phone: by default 2,000 participants, each sending 1 rep a second (``score``, as
``bench.scoring``) and 1 heart-rate sample a second (``hr``: a Heart Rate
Measurement, 0x2A37, as hex, built with
:func:`classroom.domain.heart.encode_measurement`) for 60 s. Each stream is spread
evenly over time and phones; a phone's sample goes out half a sample period after
its rep, so the two interleave. Phone ``i``'s ``m``-th sample is ``90 + (13 i + m)
mod 91`` bpm: every phone climbs 1 bpm a second through 90-180 (under the assumed
max, so the raise rule never moves it), from a start of its own.

It checks what ``bench.scoring`` checks for the reps (every input acknowledged once,
as new; the stored inputs and the final leaderboard exact), and for the heart rates:
every sample answered once, with its own bpm (any ``error`` counted by code: at 1 a
second, none should be ``rate_limited``; an ``hr`` answer with another bpm than the
sample's means the server took it as changing nothing, and is counted apart); the
display's last ``heart`` message has a tile per participant, each showing the
percent, zone and points of that phone's last answer; and, read after the server
has stopped (it stores what is left as it shuts down), a ``heart_totals`` row per
participant whose peak and mean bpm are exactly those of the samples it took, and
``heart_samples`` rows (one per person per 5 s) whose peaks reach that peak.

It reports the rep ack latency as ``bench.scoring`` does; the heart-rate ingest
latency (a sample's send to its ``hr`` answer, on the generator's clock) p50/p99/max;
the samples answered a second; the display's ``heart`` messages a second while the
samples flowed (the wall's tiles: target about 1) and their size; the server's CPU
and RSS, and the generator's CPU. Progress goes to stderr, a table to stdout, then
one JSON object with the figures as the very last line (medians across runs).
``--by-second`` also prints each second's rep and sample p99, by when they were sent.

Every wait is bounded, and each run has a hard time limit (``--timeout``); the
server and the generator are stopped and the temp directory removed whatever
happens. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import scoring
from bench.launch import Children, say
from bench.peers.common import raise_nofile
from bench.report import emit, finite, machine, percentile, print_table, progress_to, verdict
from bench.scoring import (
    TARGET_ACK_P99_MS,
    add_load_options,
    board_rate,
    connected,
    entry,
    measure,
    parse_load_args,
    print_heading,
    print_problems,
    run_series,
    settings,
    stored_totals,
    summarize,
    verdict_ack_p99,
)
from bench.seed import Seeded

TARGET_TILES_PER_S = (0.9, 1.1)  # "wall tiles update about once a second"
HR_MAX_RATE = 2.0  # the server's limit per socket (bursts of 4)
HEART_QUIET_S = 2.0  # after the last answer, the final tiles are the ones after this long quiet
LOW_BPM, BPM_SPAN = 90, 91  # samples of 90 to 180 bpm


progress = progress_to("heart")


def bpm_of(index: int, m: int) -> int:
    """Phone ``index``'s ``m``-th sample: 1 bpm a second up through 90-180, then again."""
    return LOW_BPM + (13 * index + m) % BPM_SPAN


# -- the load generator (a process of its own) ------------------------------------------------
#
# bench.scoring's generator with a strap on every phone. Its parent drives it as
# bench.scoring's: (start) -> ready {..}; go -> done {..} (every rep acknowledged and
# every sample answered, or the wait ran out) -> result (the figures, in a file).


HR = '{"type":"hr","id":"h%d-%d","data":"%s"}'
HEART = b'{"type":"heart",'


def _heart_generator() -> Any:
    from picows import WSMsgType

    from bench.scoring import _load_generator
    from classroom.domain.heart import encode_measurement

    text_frame = WSMsgType.TEXT
    now = time.perf_counter
    # Every sample's bytes, made once: sending one costs a format and an encode.
    hex_of = [encode_measurement(LOW_BPM + b, contact=True).hex() for b in range(BPM_SPAN)]

    class HeartGenerator(_load_generator()):  # type: ignore[misc]
        max_frame_size = 64 << 20  # a heart message has a tile per person: ~100 bytes each

        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__(config)
            self.hr_latencies: list[float] = []
            self.hr_errors: Counter[str] = Counter()
            self.hr_error_samples: list[str] = []
            self.hr_unknown = 0
            self.hr_twice = 0
            self.hr_wrong_bpm = 0  # answers whose bpm is not the sample's: not taken
            self.hr_wrong_samples: list[str] = []
            self.hr_times: list[float] = []  # when each answered sample went out
            self.rep_times: list[float] = []  # when each acknowledged rep went out
            self.hr_first = 0.0
            self.hr_last = 0.0  # when the last sample went out
            self.hr_last_answer = 0.0
            self.hearts: list[tuple[float, bytes]] = []  # the display's, as received

        # -- receiving ---------------------------------------------------------------------

        def other(self, phone: Any, payload: bytes, received: float) -> None:
            if payload.startswith(HEART):  # the display's tiles: large; kept raw, read later
                self.other_types["heart"] += 1
                self.hearts.append((received, payload))
                return
            message = json.loads(payload)
            kind = message.get("type")
            ident = message.get("id")
            if kind == "heart":
                self.other_types["heart"] += 1
                self.hearts.append((received, payload))
            elif kind in ("hr", "error") and isinstance(ident, str) and ident.startswith("h"):
                self.other_types[f"{kind} (hr)"] += 1
                self.answer(phone, ident, message, received)
            else:
                super().other(phone, payload, received)

        def answer(self, phone: Any, ident: str, message: dict[str, Any], received: float) -> None:
            """A sample's answer: its figures (``hr``) or why it was not taken (``error``)."""
            number = ident.rpartition("-")[2]
            m = int(number) if number.isdigit() else -1
            if not 0 <= m < len(phone.hr_sent_at) or ident != f"h{phone.index}-{m}":
                self.hr_unknown += 1
                return
            if phone.hr_answered[m]:
                self.hr_twice += 1
                return
            phone.hr_answered[m] = True
            self.hr_latencies.append(received - phone.hr_sent_at[m])
            self.hr_times.append(phone.hr_sent_at[m])
            self.hr_last_answer = self.last_ack = received
            bpm = bpm_of(phone.index, m)
            if message.get("type") == "hr" and message.get("bpm") != bpm:
                # Answered with the person's figures as they were: the sample changed nothing.
                self.hr_wrong_bpm += 1
                if len(self.hr_wrong_samples) < 5:
                    late = (received - phone.hr_sent_at[m]) * 1000
                    self.hr_wrong_samples.append(
                        f"{ident}: {bpm} bpm sent, answered after {late:.0f} ms with {message}"
                    )
            elif message.get("type") == "hr":
                phone.hr_taken += 1
                phone.hr_sum += bpm
                phone.hr_max = max(phone.hr_max, bpm)
                if m > phone.hr_last[0]:
                    phone.hr_last = (m, message.get("percent"), message.get("zone"))
                    phone.hr_points = message.get("points")
            else:
                code = str(message.get("code"))
                self.hr_errors[code] += 1
                if len(self.hr_error_samples) < 10:
                    self.hr_error_samples.append(f"socket {phone.index}: {message}"[:200])
            self.pending -= 1
            if self.pending == 0:
                self.all_acked.set()

        def ack(self, phone: Any, payload: bytes, received: float) -> None:
            count = len(self.latencies)
            super().ack(phone, payload, received)
            if len(self.latencies) > count:
                self.rep_times.append(received - self.latencies[-1])

        # -- sending -------------------------------------------------------------------------

        async def send_all(self) -> dict[str, float]:
            """Reps and samples, each stream spread evenly over time and phones.

            Rep ``j`` goes out at ``j * step`` (``bench.scoring``'s schedule); sample
            ``h`` at ``offset + h * hr_step``, ``offset`` half a sample period: each
            phone's sample comes half way between two of its reps (at equal rates).
            """
            phones = self.phones
            count = len(phones)
            rate, hr_rate = self.config["rate"], self.config["hr_rate"]
            per_phone = round(self.config["seconds"] * rate)
            hr_per_phone = round(self.config["seconds"] * hr_rate)
            total, hr_total = count * per_phone, count * hr_per_phone
            for phone in phones:
                phone.acked = [False] * per_phone
                phone.hr_sent_at = []
                phone.hr_answered = [False] * hr_per_phone
                phone.hr_taken = phone.hr_sum = phone.hr_max = 0
                phone.hr_last = (-1, None, None)
                phone.hr_points = None
            self.pending = total + hr_total
            if not self.pending:
                self.all_acked.set()
                return {"first": now(), "last": now(), "behind_max_ms": 0.0}
            step = 1.0 / rate / count
            hr_step = 1.0 / hr_rate / count
            offset = 0.5 / hr_rate
            encode = str.encode
            score = scoring.SCORE
            start = now() + 0.05
            behind = 0.0
            j = h = 0
            last = start
            while j < total or h < hr_total:
                elapsed = now() - start
                due = min(total, int(elapsed / step) + 1)
                hr_due = min(hr_total, int((elapsed - offset) / hr_step) + 1)
                if elapsed < offset:
                    hr_due = 0
                if due <= j and hr_due <= h:
                    wake = min(
                        j * step if j < total else math.inf,
                        offset + h * hr_step if h < hr_total else math.inf,
                    )
                    await asyncio.sleep(max(0.001, wake - elapsed))  # uvloop: 1 ms ticks
                    continue
                if due > j:
                    behind = max(behind, elapsed - j * step)
                if hr_due > h:
                    behind = max(behind, elapsed - offset - h * hr_step)
                # The two streams in time order: the rep or sample due first goes first.
                while j < due or h < hr_due:
                    if h >= hr_due or (j < due and j * step <= offset + h * hr_step):
                        k, i = divmod(j, count)
                        phone = phones[i]
                        phone.sent_at.append(now())
                        phone.transport.send(text_frame, encode(score % (phone.index, k)))
                        j += 1
                    else:
                        m, i = divmod(h, count)
                        phone = phones[i]
                        sent = now()
                        if not h:
                            self.hr_first = sent
                        phone.hr_sent_at.append(sent)
                        data = hex_of[bpm_of(phone.index, m) - LOW_BPM]
                        phone.transport.send(text_frame, encode(HR % (phone.index, m, data)))
                        h += 1
                last = now()
                await asyncio.sleep(0)  # let the answers in
            self.sent_last = self.hr_last = last
            if not total:
                return {"first": self.hr_first, "last": last, "behind_max_ms": behind * 1000}
            # The reps' own span (bench.scoring's figures: reps a second, boards while they
            # flowed); the samples' is hr_first to hr_last.
            first, last_rep = phones[0].sent_at[0], phones[-1].sent_at[-1]
            return {"first": first, "last": last_rep, "behind_max_ms": behind * 1000}

        # -- figures -------------------------------------------------------------------------

        async def final_tiles(self, limit_s: float = 15.0) -> None:
            """Wait (bounded) until no tiles have come for a while after the last answer."""
            deadline = now() + limit_s
            while now() < deadline:
                latest = self.hearts[-1][0] if self.hearts else 0.0
                if now() - max(latest, self.hr_last_answer) >= HEART_QUIET_S:
                    return
                await asyncio.sleep(0.1)

        def figures(self) -> dict[str, Any]:
            latencies = sorted(self.hr_latencies)
            first, last = self.hr_first, self.hr_last
            sent = sum(len(phone.hr_sent_at) for phone in self.phones)
            taken = sum(phone.hr_taken for phone in self.phones)
            tiles = board_rate(self.hearts, first, last)
            final = json.loads(self.hearts[-1][1]) if self.hearts else None
            return {
                "hr_sent": sent,
                "hr_answered": len(latencies),
                "hr_taken": taken,
                "hr_errors": dict(self.hr_errors),
                "hr_error_samples": self.hr_error_samples,
                "hr_unknown": self.hr_unknown,
                "hr_answered_twice": self.hr_twice,
                "hr_wrong_bpm": self.hr_wrong_bpm,
                "hr_wrong_samples": self.hr_wrong_samples,
                "by_second": self.by_second(),
                "hr_sent_per_s": round(sent / max(1e-9, last - first), 1),
                # Samples taken, over the time from the first sample's send to the last answer.
                "hr_samples_per_s": round(taken / max(1e-9, self.hr_last_answer - first), 1),
                "hr_ingest_p50_ms": finite(percentile(latencies, 50) * 1000),
                "hr_ingest_p90_ms": finite(percentile(latencies, 90) * 1000),
                "hr_ingest_p99_ms": finite(percentile(latencies, 99) * 1000),
                "hr_ingest_max_ms": finite(latencies[-1] * 1000) if latencies else None,
                "tiles_while_flowing": tiles["leaderboards_while_flowing"],
                "tile_updates_per_s": tiles["leaderboard_updates_per_s"],
                "tile_gap_p50_ms": tiles["leaderboard_gap_p50_ms"],
                "tile_gap_max_ms": tiles["leaderboard_gap_max_ms"],
                "heart_messages_at_display": len(self.hearts),
                "heart_message_kib": (
                    round(len(self.hearts[-1][1]) / 1024, 1) if self.hearts else None
                ),
                **self.check_tiles(final),
                # Per phone: samples taken, their sum and their peak (for the stored totals).
                "hr_per_phone": {
                    str(phone.index): [phone.hr_taken, phone.hr_sum, phone.hr_max]
                    for phone in self.phones
                },
            }

        def by_second(self) -> list[list[Any]]:
            """Per second of sending: [second, reps acked, rep p99 ms, samples, hr p99 ms]."""
            start = min(self.rep_times + self.hr_times, default=0.0)
            reps: dict[int, list[float]] = {}
            samples: dict[int, list[float]] = {}
            for at, latency in zip(self.rep_times, self.latencies, strict=True):
                reps.setdefault(int(at - start), []).append(latency)
            for at, latency in zip(self.hr_times, self.hr_latencies, strict=True):
                samples.setdefault(int(at - start), []).append(latency)
            rows = []
            for second in sorted(reps.keys() | samples.keys()):
                mine, theirs = sorted(reps.get(second, [])), sorted(samples.get(second, []))
                rows.append(
                    [
                        second,
                        len(mine),
                        finite(percentile(mine, 99) * 1000, 1),
                        len(theirs),
                        finite(percentile(theirs, 99) * 1000, 1),
                    ]
                )
            return rows

        def check_tiles(self, final: dict[str, Any] | None) -> dict[str, Any]:
            """The last tiles against each phone's last answer (names are "athlete-N")."""
            tiles = final.get("tiles", []) if isinstance(final, dict) else []
            by_name = {tile.get("name"): tile for tile in tiles}
            matching = 0
            wrong: list[str] = []
            for phone in self.phones:
                if phone.hr_last[0] < 0:
                    continue
                tile = by_name.get(f"athlete-{phone.index + 1}")
                shown = tile and (tile.get("percent"), tile.get("zone"), tile.get("points"))
                expected = (*phone.hr_last[1:], phone.hr_points)
                if shown == expected and tile is not None and not tile.get("stale"):
                    matching += 1
                elif len(wrong) < 5:
                    wrong.append(f"phone {phone.index}: tile {tile}, last answer {expected}")
            teams = final.get("teams", []) if isinstance(final, dict) else []
            return {
                "tiles_final": len(tiles),
                "tiles_stale": sum(1 for tile in tiles if tile.get("stale")),
                "tiles_matching": matching,
                "tiles_wrong": wrong,
                "tile_teams": len(teams),
                "tile_team_members": sum(int(team.get("members") or 0) for team in teams),
            }

    return HeartGenerator


async def generate(config: dict[str, Any]) -> None:
    raise_nofile(max(65_536, 2 * config["participants"] + 1_024))
    gen = _heart_generator()(config)
    connect_s = await gen.connect_all()
    say("ready", connected(gen, connect_s))
    result = await measure(gen, config)  # every rep acked and every sample answered
    await gen.final_tiles()
    result |= gen.figures()
    await gen.close_all()
    text = json.dumps(result, allow_nan=False)
    await asyncio.to_thread(Path(config["result"]).write_text, text)
    say("result")


# -- the database, after the server has stopped -------------------------------------------------


def stored_hearts(
    path: Path, class_id: int
) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """Per participant: the totals' (peak, mean) bpm, and the 5 s rows' (count, peak)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        totals = db.execute(
            "SELECT participant_id, peak_bpm, mean_bpm FROM heart_totals WHERE class_id = ?",
            (class_id,),
        ).fetchall()
        rows = db.execute(
            "SELECT participant_id, COUNT(*), MAX(peak_bpm) FROM heart_samples"
            " WHERE class_id = ? GROUP BY participant_id",
            (class_id,),
        ).fetchall()
    return (
        {int(pid): (int(peak), int(mean)) for pid, peak, mean in totals},
        {int(pid): (int(n), int(peak)) for pid, n, peak in rows},
    )


def check_hearts(
    seeded: Seeded,
    per_phone: dict[str, list[int]],
    totals: dict[int, tuple[int, int]],
    rows: dict[int, tuple[int, int]],
) -> list[str]:
    """Every way the stored heart rates differ from the samples taken."""
    problems: list[str] = []
    for index, pid in enumerate(seeded.participants):
        taken, beats, peak = per_phone.get(str(index), [0, 0, 0])
        if not taken:
            if pid in totals or pid in rows:
                problems.append(f"participant {pid}: no sample taken, yet heart rates stored")
            continue
        expected = (peak, round(beats / taken))
        if totals.get(pid) != expected:
            problems.append(
                f"participant {pid}: heart_totals (peak, mean) {totals.get(pid)}, sent {expected}"
            )
        count, top = rows.get(pid, (0, 0))
        # n samples about 1 s apart span ceil(n / 5) or ceil(n / 5) + 1 five-second windows.
        if not 1 <= count <= math.ceil(taken / 5) + 2 or top != peak:
            problems.append(
                f"participant {pid}: {count} heart_samples rows peaking at {top}, for"
                f" {taken} samples peaking at {peak}"
            )
    return problems


# -- one run ------------------------------------------------------------------------------------


async def run_once(
    args: argparse.Namespace, workdir: Path, children: Children, run: int
) -> dict[str, Any]:
    loaded = await scoring.load_run(
        args,
        workdir,
        children,
        run,
        module="bench.heart",
        tell=progress,
        node="heart-bench",
        hr_rate=args.hr_rate,
    )
    class_id = loaded.seeded.class_id
    stored = await asyncio.to_thread(stored_totals, loaded.database, class_id)
    result = scoring.run_figures(args, run, loaded, stored)
    totals, rows = await asyncio.to_thread(stored_hearts, loaded.database, class_id)
    per_phone = result.pop("hr_per_phone")
    heart_problems = check_hearts(loaded.seeded, per_phone, totals, rows)
    hr_problems = hr_checks(result, per_phone)
    (window_cpu_s,) = loaded.window["cpu_s"]
    messages = result["inputs"] + result["hr_sent"]
    return result | {
        "problems": [*result["problems"], *hr_problems, *heart_problems[:20]],
        "hearts_exact": not heart_problems and not hr_problems,
        "heart_totals_rows": len(totals),
        "heart_samples_rows": sum(n for n, _ in rows.values()),
        "server_cpu_us_per_message": round(1e6 * window_cpu_s / max(1, messages), 1),
    }


def hr_checks(result: dict[str, Any], per_phone: dict[str, list[int]]) -> list[str]:
    """What the samples' answers and the last tiles got wrong."""
    problems = []
    if result["hr_answered"] != result["hr_sent"]:
        problems.append(f"{result['hr_sent'] - result['hr_answered']} samples never answered")
    if result["hr_errors"]:
        problems.append(f"samples refused: {result['hr_errors']}: {result['hr_error_samples'][:3]}")
    for key in ("hr_unknown", "hr_answered_twice"):
        if result[key]:
            problems.append(f"{key.replace('_', ' ')}: {result[key]}")
    if result["hr_wrong_bpm"]:
        problems.append(
            f"{result['hr_wrong_bpm']} samples answered with another bpm than their own (not"
            f" taken): {result['hr_wrong_samples'][:3]}"
        )
    takers = sum(1 for taken, _, _ in per_phone.values() if taken)
    if result["tiles_final"] != takers or result["tiles_matching"] != takers:
        problems.append(
            f"the last tiles: {result['tiles_final']} tiles, {result['tiles_matching']} showing"
            f" their phone's last answer, for {takers} phones heard; {result['tiles_wrong'][:3]}"
        )
    if result["tile_team_members"] != takers:
        problems.append(f"the tiles' teams count {result['tile_team_members']} members")
    return problems


# -- summary ------------------------------------------------------------------------------------

MEDIANS = (
    *scoring.MEDIANS,
    "hr_samples_per_s",
    "hr_sent_per_s",
    "hr_ingest_p50_ms",
    "hr_ingest_p90_ms",
    "hr_ingest_p99_ms",
    "hr_ingest_max_ms",
    "tile_updates_per_s",
    "tile_gap_p50_ms",
    "tile_gap_max_ms",
    "heart_message_kib",
    "server_cpu_us_per_message",
)
SUMS = (
    *scoring.SUMS,
    "hr_sent",
    "hr_answered",
    "hr_taken",
    "hr_unknown",
    "hr_answered_twice",
    "hr_wrong_bpm",
    "tiles_final",
    "tiles_matching",
    "heart_totals_rows",
    "heart_samples_rows",
)
SHOWN = dict(scoring.ROWS)


def pair(one: str, other: str) -> Any:
    return lambda run: f"{run[one]} / {run[other]}"


def count_pair(one: str, other: str) -> Any:
    return lambda run: f"{run[one]:,} / {run[other]:,}"


ROWS = (
    *(
        (label, SHOWN[label])
        for label in (
            "inputs sent / acknowledged",
            "inputs sent a second",
            "stored totals exact (DB and final board)",
            "ack latency p50 ms",
            "ack latency p90 ms",
            "ack latency p99 ms",
            "ack latency max ms",
            "leaderboard updates a second (display)",
        )
    ),
    ("hr samples sent / answered", count_pair("hr_sent", "hr_answered")),
    ("hr samples taken / refused", lambda r: f"{r['hr_taken']:,} / {r['hr_refused']:,}"),
    ("hr samples answered a second", lambda r: f"{r['hr_samples_per_s']:,.0f}"),
    ("hr ingest latency p50 ms", lambda r: r["hr_ingest_p50_ms"]),
    ("hr ingest latency p90 ms", lambda r: r["hr_ingest_p90_ms"]),
    ("hr ingest latency p99 ms", lambda r: r["hr_ingest_p99_ms"]),
    ("hr ingest latency max ms", lambda r: r["hr_ingest_max_ms"]),
    ("tile updates a second (display)", lambda r: r["tile_updates_per_s"]),
    ("tile gap p50 / max ms", pair("tile_gap_p50_ms", "tile_gap_max_ms")),
    ("last tiles / showing the last answer", count_pair("tiles_final", "tiles_matching")),
    ("heart message KiB (the wall's)", lambda r: r["heart_message_kib"]),
    ("heart_totals / heart_samples rows", count_pair("heart_totals_rows", "heart_samples_rows")),
    ("stored heart rates exact", lambda r: "yes" if r["hearts_exact"] else "NO"),
    ("server CPU, % of one core", SHOWN["server CPU, % of one core"]),
    ("server CPU µs per message (reps + hr)", lambda r: r["server_cpu_us_per_message"]),
    *(
        (label, SHOWN[label])
        for label in (
            "server RSS connected / max MiB",
            "generator CPU, % of one core",
            "generator behind schedule, max ms",
            "rest of the machine, % of one core",
        )
    ),
)
KEPT = ("totals_exact", "hearts_exact", "timed_out", "hr_errors", "close_codes")


def summarize_heart(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    for run in runs:
        run["hr_refused"] = sum(run["hr_errors"].values())
    summary = summarize(runs, MEDIANS, SUMS)
    summary["hr_refused"] = sum(run["hr_refused"] for run in runs)
    summary["hr_errors"] = dict(sum((Counter(run["hr_errors"]) for run in runs), Counter()))
    summary["hearts_exact"] = bool(runs) and all(run["hearts_exact"] for run in runs)
    return summary


def report(args: argparse.Namespace, runs: list[dict[str, Any]], errors: list[str]) -> int:
    print_heading(
        args,
        "heart-rate",
        f"each {args.rate:g} reps and {args.hr_rate:g} heart-rate samples a second for"
        f" {args.seconds:g} s",
    )
    summary = summarize_heart(runs)
    print_table(runs, summary, ROWS, width=44)
    print()
    low, high = TARGET_TILES_PER_S
    verdict_ack_p99(summary["ack_p99_ms"], "rep ack p99")
    verdict(
        f"tile updates about 1 a second ({low:g}-{high:g})",
        summary["tile_updates_per_s"],
        lambda tiles: low <= tiles <= high,
    )
    print_problems(runs, errors)
    for run in runs:
        if args.by_second:
            print(f"run {run['run']}, each second of sending: [second, reps acked, rep p99 ms,")
            print(f"  samples answered, hr p99 ms]: {run['by_second']}")
        worst = sorted(run["by_second"], key=lambda row: -(row[2] or 0))[:5]
        print(
            f"run {run['run']}: slowest seconds (second: rep ack p99 / hr p99 ms): "
            + ", ".join(f"{row[0]}: {row[2]} / {row[4]}" for row in sorted(worst))
        )
    result: dict[str, Any] = {
        **settings(args, runs, errors),
        "hr_rate": args.hr_rate,
        "participants_created": "rows inserted in the database; tokens minted with Tokens",
        **summary,
        "machine": machine(),
        "target_ack_p99_ms": TARGET_ACK_P99_MS,
        "target_tile_updates_per_s": list(TARGET_TILES_PER_S),
        "per_run": [
            {key: run.get(key) for key in ("run", *MEDIANS, *SUMS, "hr_refused", *KEPT)}
            for run in runs
        ],
    }
    emit(result)
    return 1 if failed(summary, errors) else 0


def failed(summary: dict[str, Any], errors: Sequence[str]) -> bool:
    """A run failed, a total was wrong, a rep went unacknowledged or a sample unanswered."""
    return (
        scoring.failed(summary, errors)
        or not summary["hearts_exact"]
        or summary["hr_answered"] != summary["hr_sent"]
    )


async def run_all(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    return await run_series(
        args,
        workdir,
        run_once,
        progress,
        lambda run: (
            f"run {run}/{args.runs}: {args.participants} participants, {args.seconds:g} s,"
            f" {args.rate:g} reps and {args.hr_rate:g} samples a second each"
        ),
        lambda result: (
            f"samples {result['hr_answered']:,}/{result['hr_sent']:,} answered"
            f" ({result['hr_samples_per_s']:,.0f}/s), hr p99 {result['hr_ingest_p99_ms']} ms,"
            f" tiles {result['tile_updates_per_s']}/s, stored heart rates"
            f" {'exact' if result['hearts_exact'] else 'WRONG'}, server CPU"
            f" {result['server_cpu_percent']} %"
        ),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, (2000, "2000"), (60, "60"))
    parser.set_defaults(rate=1.0)
    parser.add_argument(
        "--hr-rate",
        type=float,
        default=1.0,
        help=f"heart-rate samples a second per phone (1; the server takes at most {HR_MAX_RATE:g})",
    )
    parser.add_argument(
        "--by-second",
        action="store_true",
        help="print each second's rep and sample latency p99, by when they were sent",
    )

    def check(args: argparse.Namespace) -> None:
        if not 0 < args.hr_rate <= HR_MAX_RATE:
            parser.error(f"--hr-rate must be above 0 and at most {HR_MAX_RATE:g}")

    return parse_load_args(parser, argv, check)


def main(argv: list[str] | None = None) -> int:
    return entry(parse_args(argv), generate, run_all, report, "heart")


if __name__ == "__main__":
    sys.exit(main())
