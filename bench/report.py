"""What every benchmark prints: its figures' statistics, a heading, a table and the JSON line.

A benchmark prints progress on stderr, a readable table on stdout and, as the very
last line, one JSON object with its figures (:func:`emit`), which scripts and the
tests read. Percentiles are nearest-rank over already sorted figures; medians across
runs leave out runs that have no figure.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def progress_to(name: str) -> Callable[[str], None]:
    """A function that prints ``[name HH:MM:SS] message`` on stderr."""

    def progress(message: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return progress


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile of already sorted figures (NaN if there are none)."""
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def finite(value: float | None, digits: int = 3) -> float | None:
    """``value`` rounded, or None where it is missing, NaN or infinite (JSON has no NaN)."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


def spread(figures: Sequence[float]) -> dict[str, float]:
    """Count, p50, p99, max and mean of ``figures`` (NaN where there are none)."""
    ordered = sorted(figures)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else math.nan,
        "mean": statistics.fmean(ordered) if ordered else math.nan,
    }


def median_of(values: Sequence[Any]) -> float | None:
    """The median of the finite numbers among ``values``; None if there are none."""
    figures = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return round(statistics.median(figures), 3) if figures else None


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine the figures come from, as the JSON line and the docs name it."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "arch": platform.machine(),
    }


def print_title(title: str) -> None:
    """The report's first line: which benchmark, on which machine."""
    box = machine()
    print(
        f"classroom {title} benchmark · Python {box['python']} · {box['arch']}"
        f" · {box['cores']} CPUs · {box['cpu']}"
    )


def cell(value: Any, width: int, digits: int = 1) -> str:
    """A right-aligned table cell; ``-`` for a missing figure."""
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float):
        return f"{value:>{width}.{digits}f}"
    return f"{value:>{width}}"


Row = tuple[str, Callable[[dict[str, Any]], Any]]


def print_table(
    runs: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    rows: Sequence[Row],
    width: int = 42,
) -> None:
    """One row a figure, one column a run, and the medians when there are several runs."""
    header = f"{'figure':<{width}}" + "".join(f" {'run ' + str(r['run']):>15}" for r in runs)
    print(header + (f" {'median':>15}" if len(runs) > 1 else ""))
    for label, show in rows:
        cells = "".join(f" {show(r)!s:>15}" for r in runs)
        median = ""
        if len(runs) > 1:
            try:
                median = f" {show(summary)!s:>15}"
            except (KeyError, TypeError, ValueError):
                median = f" {'':>15}"
        print(f"{label:<{width}}{cells}{median}")


def verdict(label: str, value: float | None, met: Callable[[float], bool], unit: str = "") -> None:
    """``target <label>: met (<value><unit>)`` or ``MISSED``; nothing without a figure."""
    if value is not None:
        print(f"target {label}: {'met' if met(value) else 'MISSED'} ({value}{unit})")


def plain(value: Any) -> Any:
    """``value`` with every NaN or infinite float made None, so that it is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def emit(figures: dict[str, Any]) -> None:
    """The benchmark's last line: its figures as one JSON object on one line.

    A figure that could not be measured (NaN, infinite) is written as null, so the
    line is always valid JSON, whatever went wrong.
    """
    print(json.dumps(plain(figures), allow_nan=False), flush=True)
