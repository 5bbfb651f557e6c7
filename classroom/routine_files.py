"""Routine files: read a routine from a path or an upload, and show its timeline.

This is the shell's side of routines; the domain's parsers are pure functions
of text, and this module does the reading:

- :func:`read_routine` reads a path or bytes (refusing anything larger than
  :data:`MAX_FILE_BYTES`), picks the format from the file name (``.yaml``,
  ``.yml``, ``.json``, ``.zwo``) or else from the content, and returns a
  :class:`LoadedRoutine`, or raises :class:`RoutineFormatError` listing every
  problem. :func:`load_routine` does the same and returns just the routine.
- :func:`timeline_text` and :func:`timeline_data` render a compiled timeline
  as readable text or as a JSON-able dict (``classroom routine check``).

The dict of :func:`timeline_data`, times in seconds from the start of segment 0
(an int when whole, else a float)::

    {"title": str, "total_seconds": n, "lead_in_seconds": n, "segment_count": int,
     "segments": [{"index", "name", "kind", "start", "duration", "label", "score",
                   "open_ended", "exercise"?, "target"?, "stations"?, "rotation"?}],
     "cues": [{"at", "segment_index", "kind", "text"}],
     "lead_in_cues": [... same, "at" counted from the start of the lead-in]}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from classroom.domain.compiler import compile_routine
from classroom.domain.durations import format_duration
from classroom.domain.errors import DomainError, Problem, RoutineFormatError
from classroom.domain.formats.text import parse_routine
from classroom.domain.formats.writer import dump_yaml, exercise_to_data, target_to_data
from classroom.domain.formats.zwo import import_zwo
from classroom.domain.limits import MAX_FILE_BYTES
from classroom.domain.routine import Routine
from classroom.domain.timeline import Cue, CueKind, Timeline
from classroom.domain.words import counted

RoutineFileFormat = Literal["yaml", "json", "zwo"]

EXTENSIONS: dict[str, RoutineFileFormat] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".zwo": "zwo",
}

FILE_TOO_LARGE = "this file is {size:,} bytes; a routine file can be at most {limit:,} bytes"
NOT_UTF8 = "this file isn't UTF-8 text"
UNREADABLE = "can't read this file: {reason}"

__all__ = [
    "MAX_FILE_BYTES",
    "CheckedRoutine",
    "LoadedRoutine",
    "check_routine_file",
    "detect_format",
    "load_routine",
    "read_routine",
    "stored_source",
    "timeline_data",
    "timeline_text",
]


TITLE_MAX = 120  # the width of routines.title
LONG_TITLE = f"the title can be at most {TITLE_MAX} characters"


@dataclass(frozen=True, slots=True)
class LoadedRoutine:
    """A routine read from a file, the format it was in, and any import warnings."""

    routine: Routine
    format: RoutineFileFormat
    warnings: tuple[str, ...] = ()


def detect_format(filename: str, data: bytes) -> RoutineFileFormat:
    """The format of a file: from its extension if known, else from its first byte."""
    suffix = Path(filename).suffix.lower() if filename else ""
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"<":
        return "zwo"
    if start in (b"{", b"["):
        return "json"
    return "yaml"


def read_routine(
    source: str | os.PathLike[str] | bytes,
    *,
    filename: str = "",
    max_bytes: int = MAX_FILE_BYTES,
) -> LoadedRoutine:
    """Read a routine from a path, or from ``bytes`` (an upload) named ``filename``.

    Raises :class:`RoutineFormatError` with every problem found.
    """
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        filename = filename or path.name
        data = _read_bounded(path, max_bytes)
    if len(data) > max_bytes:
        message = FILE_TOO_LARGE.format(size=len(data), limit=max_bytes)
        raise RoutineFormatError([Problem("", message)])
    file_format = detect_format(filename, data)
    if file_format == "zwo":
        imported = import_zwo(data, fallback_title=Path(filename).stem or "Zwift workout")
        return LoadedRoutine(imported.routine, "zwo", imported.warnings)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        message = f"{NOT_UTF8} (byte {error.start} can't be read)"
        raise RoutineFormatError([Problem("", message)]) from None
    return LoadedRoutine(parse_routine(text, file_format), file_format)


def stored_source(loaded: LoadedRoutine, data: bytes) -> tuple[str, str]:
    """The format and text to store for a routine read from ``data``: a .zwo file is
    kept as the YAML it became, which the instructor can then edit."""
    if loaded.format == "zwo":
        return "yaml", dump_yaml(loaded.routine)
    return loaded.format, data.decode("utf-8-sig")


@dataclass(frozen=True, slots=True)
class CheckedRoutine:
    """A routine file read and compiled, or every problem that stops it."""

    loaded: LoadedRoutine | None
    timeline: Timeline | None
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.timeline is not None and not self.problems


def check_routine_file(
    source: str | os.PathLike[str] | bytes, *, filename: str = ""
) -> CheckedRoutine:
    """What ``classroom routine check`` and the API say of a routine file."""
    try:
        loaded = read_routine(source, filename=filename)
    except RoutineFormatError as error:
        return CheckedRoutine(None, None, error.problems)
    try:
        timeline = compile_routine(loaded.routine)
    except DomainError as error:
        return CheckedRoutine(loaded, None, (Problem("", str(error)),))
    if len(loaded.routine.title) > TITLE_MAX:
        return CheckedRoutine(loaded, None, (Problem("title", LONG_TITLE),))
    return CheckedRoutine(loaded, timeline)


def load_routine(
    source: str | os.PathLike[str] | bytes, *, filename: str = "", max_bytes: int = MAX_FILE_BYTES
) -> Routine:
    """The routine in a path or in ``bytes``; see :func:`read_routine`."""
    return read_routine(source, filename=filename, max_bytes=max_bytes).routine


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            message = FILE_TOO_LARGE.format(size=size, limit=max_bytes)
            raise RoutineFormatError([Problem("", message)])
        with path.open("rb") as file:
            return file.read(max_bytes + 1)
    except OSError as error:
        message = UNREADABLE.format(reason=error.strerror or error)
        raise RoutineFormatError([Problem("", message)]) from None


def _seconds(ms: int) -> int | float:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _cue_data(cue: Cue) -> dict[str, Any]:
    return {
        "at": _seconds(cue.at_ms),
        "segment_index": cue.segment_index,
        "kind": cue.kind.value,
        "text": cue.text,
    }


def timeline_data(timeline: Timeline) -> dict[str, Any]:
    """The timeline as JSON-able values; times in seconds from the start of segment 0."""
    segments = []
    for segment in timeline.segments:
        item: dict[str, Any] = {
            "index": segment.index,
            "name": segment.name,
            "kind": segment.kind.value,
            "start": _seconds(segment.start_ms),
            "duration": _seconds(segment.duration_ms),
            "label": segment.label,
            "score": segment.score_kind.value,
            "open_ended": segment.open_ended,
        }
        if segment.exercise is not None:
            item["exercise"] = exercise_to_data(segment.exercise)
        if segment.target is not None:
            item["target"] = target_to_data(segment.target)
        if segment.stations:
            item["stations"] = [station.name for station in segment.stations]
            item["rotation"] = segment.rotation
        segments.append(item)
    return {
        "title": timeline.title,
        "total_seconds": _seconds(timeline.total_ms),
        "lead_in_seconds": _seconds(timeline.lead_in_ms),
        "segment_count": len(timeline.segments),
        "segments": segments,
        "cues": [_cue_data(cue) for cue in timeline.cues],
        "lead_in_cues": [_cue_data(cue) for cue in timeline.lead_in_cues],
    }


def timeline_text(timeline: Timeline, *, cues: bool = True) -> str:
    """The timeline as a readable table, with each segment's cues beneath it.

    The 3-2-1 countdown cues are summed up in the header rather than listed.
    """
    lines = [
        f"{timeline.title}",
        f"{format_duration(timeline.total_ms)} in {counted(len(timeline.segments), 'segment')}"
        + (f", after a {timeline.lead_in_ms // 1000} s lead-in" if timeline.lead_in_ms else ""),
    ]
    countdowns = sum(cue.kind is CueKind.COUNTDOWN for cue in timeline.cues)
    if countdowns:
        lines.append(f"plus {countdowns} countdown cues (3-2-1 before segment changes)")
    lines.append("")
    lines.append(f"{'#':>4}  {'start':>7}  {'length':>7}  {'kind':<10}  {'name':<28}  label")
    by_segment: dict[int, list[Cue]] = {}
    for cue in timeline.cues:
        if cue.kind is not CueKind.COUNTDOWN:
            by_segment.setdefault(cue.segment_index, []).append(cue)
    for segment in timeline.segments:
        length = format_duration(segment.duration_ms)
        if segment.open_ended:
            length = f"≤{length}"
        name = segment.name if len(segment.name) <= 28 else segment.name[:27] + "…"
        lines.append(
            f"{segment.index:>4}  {format_duration(segment.start_ms):>7}  {length:>7}"
            f"  {segment.kind.value:<10}  {name:<28}  {segment.label}".rstrip()
        )
        if cues:
            for cue in by_segment.get(segment.index, ()):
                at = format_duration(cue.at_ms)
                lines.append(f"{'':>4}  {at:>7}  » {cue.text} ({cue.kind.value})")
    lines.append(f"{'':>4}  {format_duration(timeline.total_ms):>7}  end")
    return "\n".join(lines) + "\n"
