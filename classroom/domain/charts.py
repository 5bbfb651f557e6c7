"""Charts drawn as SVG strings, with no I/O.

Every text is escaped, and each line has its colour *and* a dash pattern, a
marker shape and a letter at its end, so colour is never the only cue. A
``<title>`` and a ``<desc>`` (which lists the values) say what the chart shows
to a screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One line of a chart: a short key drawn at its end (a team's letter), and its values."""

    key: str
    name: str
    colour: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """Lines over the same points: each point has a label, and a short tick under the axis.

    ``at``: where each point stands along the axis, from 0 to 1 (a time axis); empty,
    the points are evenly spaced. ``names``: a second line under each tick (a segment's
    name), drawn when there are few enough points for them to fit.
    """

    unit: str
    labels: tuple[str, ...]
    ticks: tuple[str, ...]
    lines: tuple[Line, ...]
    at: tuple[float, ...] = ()
    names: tuple[str, ...] = ()


WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 56, 36, 70
NAMES_SHOWN = 6
"""The most points whose names fit under the axis."""
NAME_LENGTH = 14
DASHES = ("", "10 5", "3 4", "14 4 3 4", "6 6", "18 6", "2 7", "10 3 3 3 3 3")
MARKERS = ("circle", "square", "triangle", "diamond", "down", "cross", "plus", "bar")
LABEL_GAP = 17


def chart_svg(chart: Chart, *, title: str, desc: str = "", ident: str = "chart") -> str:
    """``chart`` as an SVG line chart; ``desc`` (default: every value) is for screen readers.

    ``ident`` prefixes the ids of the title and description (unique on a page).
    """
    if desc == "":
        desc = describe(chart)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top_value = _nice_top(max((v for line in chart.lines for v in line.values), default=0.0))
    count = len(chart.labels)

    def x(i: int) -> float:
        if len(chart.at) == count and count:
            return LEFT + plot_w * min(1.0, max(0.0, chart.at[i]))
        return LEFT + (plot_w / 2 if count <= 1 else plot_w * i / (count - 1))

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top_value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart" aria-labelledby="{escape(ident)}-title {escape(ident)}-desc">',
        f'<title id="{escape(ident)}-title">{escape(title)}</title>',
        f'<desc id="{escape(ident)}-desc">{escape(desc)}</desc>',
        '<g class="chart-axes" font-size="14" fill="currentColor">',
    ]
    for step in range(5):
        value = top_value * step / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="currentColor" stroke-opacity="0.2"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{escape(_tick(value))}</text>"
        )
    parts.append(
        f'<text x="{LEFT - 6}" y="{TOP - 18}" text-anchor="end">{escape(chart.unit)}</text>'
    )
    every = max(1, -(-count // 8))  # at most 8 labels under the axis
    named = len(chart.names) == count and count <= NAMES_SHOWN
    for i, (label, tick) in enumerate(zip(chart.labels, chart.ticks, strict=True)):
        if i % every == 0 or i == count - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">'
                f"<title>{escape(label)}</title>{escape(tick)}</text>"
            )
            if named:
                name = chart.names[i]
                short = name if len(name) <= NAME_LENGTH else name[: NAME_LENGTH - 1] + "…"
                parts.append(
                    f'<text class="chart-name" x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 44}" '
                    f'text-anchor="middle" fill-opacity="0.8">{escape(short)}</text>'
                )
    parts.append("</g>")
    ends: list[tuple[float, int]] = []
    for n, line in enumerate(chart.lines):
        points = [(x(i), y(v)) for i, v in enumerate(line.values)]
        dash = DASHES[n % len(DASHES)]
        marker = MARKERS[n % len(MARKERS)]
        colour = escape(line.colour)
        key = escape(line.key)
        parts.append(f'<g class="chart-line" data-key="{key}" fill="{colour}" stroke="{colour}">')
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<polyline points="{path}" fill="none" stroke-width="3"{dashed}/>')
        parts.extend(_marker(marker, px, py) for px, py in points)
        parts.append("</g>")
        if points:
            ends.append((points[-1][1], n))
    for label_y, n in _spread(ends):
        line = chart.lines[n]
        end_x = x(len(line.values) - 1) + 10
        parts.append(
            f'<text class="chart-key" x="{end_x:.1f}" y="{label_y + 6:.1f}" font-size="16" '
            f'font-weight="700" fill="{escape(line.colour)}">{escape(line.key)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def describe(chart: Chart) -> str:
    """Every line's values, in words: what a screen reader says for the chart."""
    if not chart.labels:
        return "No scores yet."
    sentences = [f"{len(chart.labels)} points: {', '.join(chart.labels)}."]
    for line in chart.lines:
        values = ", ".join(_tick(v) for v in line.values)
        sentences.append(f"{line.name} ({line.key}): {values} {chart.unit}.")
    return " ".join(sentences)


def _marker(shape: str, x: float, y: float) -> str:
    r = 5.0
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}"/>'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}"/>'
    corners = {
        "triangle": ((0, -r - 1), (r + 1, r), (-r - 1, r)),
        "down": ((0, r + 1), (r + 1, -r), (-r - 1, -r)),
        "diamond": ((0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)),
        "bar": ((-r - 1, -2), (r + 1, -2), (r + 1, 2), (-r - 1, 2)),
    }
    if shape in corners:
        points = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in corners[shape])
        return f'<polygon points="{points}"/>'
    if shape == "cross":
        a, b, c, e = x - r, x + r, y - r, y + r
        d = f"M{a:.1f},{c:.1f}L{b:.1f},{e:.1f}M{a:.1f},{e:.1f}L{b:.1f},{c:.1f}"
    else:  # plus
        d = f"M{x - r:.1f},{y:.1f}H{x + r:.1f}M{x:.1f},{y - r:.1f}V{y + r:.1f}"
    return f'<path d="{d}" fill="none" stroke-width="3"/>'


def _spread(ends: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """End labels moved apart so that no two overlap (lines that end level, say)."""
    placed: list[tuple[float, int]] = []
    for end_y, n in sorted(ends):
        if placed and end_y - placed[-1][0] < LABEL_GAP:
            end_y = placed[-1][0] + LABEL_GAP
        placed.append((end_y, n))
    return placed


def _nice_top(value: float) -> float:
    """The axis's top: 1, 2, 2.5 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if power * step >= value:
            return power * step
    return power * 10  # pragma: no cover - the loop above always returns


def _tick(value: float) -> str:
    return f"{value:,.1f}".removesuffix(".0")


def escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )
