"""Benchmark: compiling routines into timelines.

Run ``python -m bench.routines``. It compiles a 2-hour routine of 1,000
segments many times and reports the median (target: under 20 ms), next to
baselines measured in the same run: reading that routine's YAML, and reading
plus compiling a small library routine (Tabata Tuesday). It prints a table,
then one JSON object with the figures as the very last line. Next to wall-clock
time it reports CPU time, which a busy or shared machine disturbs less.

Loops are bounded by a count and by a time budget, whichever ends first.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

from classroom.domain.compiler import compile_routine
from classroom.domain.formats.text import dump_yaml, parse_routine
from classroom.domain.routine import AuthoredCue, Intervals, Routine, Step
from classroom.domain.timeline import Exercise, Level, SegmentKind
from classroom.library import library_text

MOVES = ("Burpees", "Air squats", "Push-ups", "Mountain climbers", "Lunges", "Plank jacks")


def two_hour_routine() -> Routine:
    """1,000 segments over exactly two hours: warm-up, 499 rounds of 8 s/5 s, cool-down."""
    exercises = tuple(
        Exercise(
            name=name,
            modifications={Level.BEGINNER: f"Easy {name.lower()}", Level.ADVANCED: f"Fast {name}"},
            notes="Keep moving.",
        )
        for name in MOVES
    )
    work = Step(
        kind=SegmentKind.WORK,
        duration_ms=8_000,
        cues=(AuthoredCue(text="Push", before_end_ms=3_000),),
    )
    intervals = Intervals(
        rounds=499,
        work=work,
        rest=Step(kind=SegmentKind.REST, duration_ms=5_000),
        exercises=exercises,
    )
    warmup = Step(kind=SegmentKind.WARMUP, duration_ms=300_000)
    cooldown = Step(kind=SegmentKind.COOLDOWN, duration_ms=7_200_000 - 300_000 - 499 * 13_000)
    routine = Routine(title="Two hours, 1,000 segments", blocks=(warmup, intervals, cooldown))
    assert routine.segment_count() == 1_000 and routine.total_ms() == 7_200_000
    return routine


def measure(
    action: Callable[[], object], *, runs: int, budget_s: float
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per call, for up to ``runs`` calls or ``budget_s`` s.

    CPU time leaves out the time the process waited for a core, which on a
    busy or shared machine is most of the noise in wall-clock figures.
    """
    action()  # warm up
    wall: list[float] = []
    cpu: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(wall) < runs and time.perf_counter() < deadline:
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def summary(samples: tuple[list[float], list[float]]) -> dict[str, float]:
    wall, cpu = sorted(samples[0]), sorted(samples[1])
    return {
        "runs": len(wall),
        "p50": statistics.median(wall),
        "p90": wall[int(0.9 * (len(wall) - 1))],
        "min": wall[0],
        "cpu_p50": statistics.median(cpu),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="most runs per case (200)")
    parser.add_argument("--budget", type=float, default=5.0, help="most seconds per case (5)")
    args = parser.parse_args(argv)
    runs, budget = max(1, min(args.runs, 10_000)), max(0.1, min(args.budget, 60.0))

    big = two_hour_routine()
    big_yaml = dump_yaml(big)
    small_yaml = library_text("tabata-tuesday")
    timeline = compile_routine(big)
    cases = {
        "compile 2 h / 1,000 segments": summary(
            measure(lambda: compile_routine(big), runs=runs, budget_s=budget)
        ),
        "parse YAML 2 h / 1,000 segments": summary(
            measure(lambda: parse_routine(big_yaml), runs=runs, budget_s=budget)
        ),
        "parse + compile Tabata Tuesday": summary(
            measure(lambda: compile_routine(parse_routine(small_yaml)), runs=runs, budget_s=budget)
        ),
    }

    print(
        f"classroom routine benchmark · Python {platform.python_version()} · {platform.machine()}"
    )
    print(f"2 h routine: {len(timeline.segments)} segments, {len(timeline.cues)} cues")
    print()
    print(f"{'case':<34} {'runs':>6} {'p50 ms':>9} {'p90 ms':>9} {'min ms':>9} {'cpu p50':>9}")
    for name, figures in cases.items():
        print(
            f"{name:<34} {figures['runs']:>6.0f} {figures['p50']:>9.3f}"
            f" {figures['p90']:>9.3f} {figures['min']:>9.3f} {figures['cpu_p50']:>9.3f}"
        )
    compile_figures = cases["compile 2 h / 1,000 segments"]
    verdict = "under" if compile_figures["p50"] < 20 else "OVER"
    print(f"\ncompile p50 {compile_figures['p50']:.2f} ms: {verdict} the 20 ms target")
    result = {
        "compile_ms_p50": round(compile_figures["p50"], 3),
        "compile_ms_p90": round(compile_figures["p90"], 3),
        "compile_ms_min": round(compile_figures["min"], 3),
        "compile_cpu_ms_p50": round(compile_figures["cpu_p50"], 3),
        "compile_runs": int(compile_figures["runs"]),
        "parse_big_yaml_ms_p50": round(cases["parse YAML 2 h / 1,000 segments"]["p50"], 3),
        "small_parse_compile_ms_p50": round(cases["parse + compile Tabata Tuesday"]["p50"], 3),
        "segments": len(timeline.segments),
        "cues": len(timeline.cues),
        "total_ms": timeline.total_ms,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
