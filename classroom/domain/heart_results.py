"""A class's heart rates after the fact: each person's totals, and a chart of their heart
over the class with its segments shaded. Pure: the shell reads what is stored.

The chart is SVG, like :mod:`classroom.domain.charts`: every text escaped, a ``<title>``
and a ``<desc>`` for screen readers (the desc says the totals in words). The zones are
lines across it, labelled with their numbers, so nothing is told by colour alone; work
segments are shaded (and hatched), rests are not, and each shading has its segment's
name as its title.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from classroom.domain.charts import escape
from classroom.domain.heart import ZONES
from classroom.domain.timeline import SegmentKind, Timeline

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 36
WORK = frozenset({SegmentKind.WORK})


@dataclass(frozen=True, slots=True)
class HeartRow:
    """One person's heart in a class, as results show it."""

    participant_id: int
    name: str
    points: float
    zone_ms: tuple[int, ...]  # zones 0..5
    mean_bpm: int
    peak_bpm: int
    max_hr: int

    def minutes(self, zone: int) -> str:
        """Time in ``zone`` as m:ss."""
        seconds = self.zone_ms[zone] // 1000 if zone < len(self.zone_ms) else 0
        return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass(frozen=True, slots=True)
class Band:
    """A segment's stretch of the class, on the server's clock."""

    start_ms: int
    end_ms: int
    name: str
    work: bool


def bands(timeline: Timeline, starts: Sequence[tuple[int, int]], end_ms: int) -> list[Band]:
    """The segments as they ran: ``starts`` are (at_ms, segment index) in order, each a
    segment becoming current (a restart or an extension of the same segment is not a
    new band); ``end_ms`` is when the class ended (or now)."""
    runs: list[tuple[int, int]] = []
    for at_ms, index in starts:
        if runs and runs[-1][1] == index:
            continue
        runs.append((at_ms, index))
    out = []
    for n, (at_ms, index) in enumerate(runs):
        until = runs[n + 1][0] if n + 1 < len(runs) else end_ms
        if until <= at_ms or not 0 <= index < len(timeline.segments):
            continue
        segment = timeline.segments[index]
        out.append(Band(at_ms, until, segment.name, segment.kind in WORK))
    return out


def describe(row: HeartRow) -> str:
    zones = ", ".join(f"zone {z}: {row.minutes(z)}" for z in range(1, ZONES + 1))
    return (
        f"{row.name}: {row.points:.1f} effort points; mean {row.mean_bpm} bpm, "
        f"peak {row.peak_bpm} bpm, max {row.max_hr} bpm; time in {zones}."
    )


def heart_svg(
    row: HeartRow,
    samples: Sequence[tuple[int, int]],
    segments: Sequence[Band],
    *,
    ident: str,
) -> str:
    """``row``'s heart over the class: ``samples`` are (at_ms, bpm), in order."""
    start = min([s for s, _ in samples[:1]] + [b.start_ms for b in segments[:1]], default=0)
    end = max([s for s, _ in samples[-1:]] + [b.end_ms for b in segments[-1:]], default=start)
    span = max(1, end - start)
    low = 40
    high = max([row.max_hr, row.peak_bpm, *(bpm for _, bpm in samples)]) + 10
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at_ms: int) -> float:
        return LEFT + plot_w * (at_ms - start) / span

    def y(bpm: float) -> float:
        return TOP + plot_h * (1 - (min(high, max(low, bpm)) - low) / (high - low))

    title = f"{row.name}'s heart rate over the class"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart heart-chart" aria-labelledby="{escape(ident)}-title {escape(ident)}-desc">',
        f'<title id="{escape(ident)}-title">{escape(title)}</title>',
        f'<desc id="{escape(ident)}-desc">{escape(describe(row))}</desc>',
        f'<defs><pattern id="{escape(ident)}-hatch" width="8" height="8" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="currentColor" stroke-opacity="0.18" '
        'stroke-width="3"/></pattern></defs>',
    ]
    for band in segments:
        if band.work:
            parts.append(
                f'<rect class="heart-band" x="{x(band.start_ms):.1f}" y="{TOP}" '
                f'width="{max(0.5, x(band.end_ms) - x(band.start_ms)):.1f}" height="{plot_h}" '
                f'fill="url(#{escape(ident)}-hatch)"><title>{escape(band.name)}</title></rect>'
            )
    parts.append('<g class="chart-axes" font-size="12" fill="currentColor">')
    for zone in range(1, ZONES + 1):
        bpm = row.max_hr * (40 + 10 * zone) / 100
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(bpm):.1f}" y2="{y(bpm):.1f}" '
            f'stroke="currentColor" stroke-opacity="0.3" stroke-dasharray="4 4"/>'
            f'<text x="{LEFT - 6}" y="{y(bpm) + 4:.1f}" text-anchor="end">Z{zone}</text>'
        )
    minutes = span // 60_000
    step = max(1, -(-minutes // 6))
    for minute in range(0, minutes + 1, step):
        at = start + minute * 60_000
        parts.append(
            f'<text x="{x(at):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{minute} min</text>"
        )
    parts.append("</g>")
    if samples:
        path = " ".join(f"{x(at):.1f},{y(bpm):.1f}" for at, bpm in samples)
        parts.append(
            f'<polyline class="heart-line" points="{path}" fill="none" '
            f'stroke="currentColor" stroke-width="2"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
