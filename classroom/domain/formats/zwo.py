"""Importing Zwift workouts (``.zwo``).

A ``.zwo`` file is XML: a ``<workout_file>`` with a name, a description and a
``<workout>`` of blocks. Each block becomes part of a routine:

==================  ==========================================================
``Warmup``          a warm-up segment, power ramping PowerLow → PowerHigh
``Cooldown``        a cool-down segment, ramping the same way
``Ramp``            a work segment ramping PowerLow → PowerHigh
``SteadyState``     a work segment at Power (under 60 % FTP: a recovery rest)
``IntervalsT``      intervals: Repeat x (OnDuration at OnPower, OffDuration at OffPower)
``FreeRide``        a work segment with no power target
``MaxEffort``       a work segment, all out (RPE 10)
``textevent``       a cue: ``timeoffset`` seconds into its block, or into the
                    workout when it sits directly in ``<workout>``
==================  ==========================================================

Power becomes a target in % of FTP (``0.9`` → 90 %); ``Cadence`` is kept.
Real files vary, and this accepts what Zwift accepts: element and attribute
names in any case (``textevent``/``TextEvent``, ``FreeRide``/``Freeride``),
``<n>`` for ``<name>``, fractional durations (``"201.0"``, rounded to the
second), ``Power`` or ``PowerLow``/``PowerHigh`` on a steady state, text in a
legacy single-byte encoding (Windows-1252) even when the file claims UTF-8, and
bare ``&`` in descriptions. An element it doesn't know is skipped with a
warning. A file that isn't XML, or a block with a zero or negative duration,
is refused with a :class:`RoutineFormatError` naming the block.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from classroom.domain import limits
from classroom.domain.errors import Problem, RoutineError, RoutineFormatError
from classroom.domain.routine import AuthoredCue, Block, Intervals, Routine, Step
from classroom.domain.targets import MAX_FTP_PERCENT, Target
from classroom.domain.timeline import SegmentKind

RECOVERY_BELOW = 0.6
"""A steady state under this fraction of FTP is a recovery (a rest segment)."""

_ATTRIBUTE_NAMES = {
    "duration": "Duration",
    "onduration": "OnDuration",
    "offduration": "OffDuration",
}
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_BARE_AMPERSAND = re.compile(r"&(?!(?:#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)")


@dataclass(frozen=True, slots=True)
class ZwoImport:
    """An imported workout and what was skipped along the way."""

    routine: Routine
    warnings: tuple[str, ...] = ()


def decode_zwo(data: bytes | str) -> str:
    """XML text from a file's bytes: UTF-8 when it is, Windows-1252 when it isn't."""
    if isinstance(data, str):
        return data
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def import_zwo(data: bytes | str, *, fallback_title: str = "Zwift workout") -> ZwoImport:
    """The routine a ``.zwo`` file describes, plus warnings about what was skipped."""
    text = _BARE_AMPERSAND.sub("&amp;", _DECLARATION.sub("", decode_zwo(data), count=1))
    try:
        root = fromstring(text)
    except ParseError as error:
        line = error.position[0] if error.position else None
        message = f"this isn't a valid .zwo file: {error}"
        raise RoutineFormatError([Problem("", message, line)]) from None
    except DefusedXmlException:
        message = "this .zwo file uses DTDs or entities, which aren't allowed"
        raise RoutineFormatError([Problem("", message)]) from None
    return _Importer(fallback_title).run(root)


def _tag(element: Element) -> str:
    return element.tag.rsplit("}", 1)[-1].lower() if isinstance(element.tag, str) else ""


def _child(element: Element, *names: str) -> Element | None:
    for child in element:
        if _tag(child) in names:
            return child
    return None


class _Importer:
    def __init__(self, fallback_title: str) -> None:
        self.fallback_title = fallback_title
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def run(self, root: Element) -> ZwoImport:
        if _tag(root) != "workout_file":
            message = f"a .zwo file starts with <workout_file>, not <{root.tag}>"
            raise RoutineFormatError([Problem("", message)])
        title = self._text(root, "name", "n") or self.fallback_title
        description = self._text(root, "description")[: limits.MAX_DESCRIPTION]
        author = self._text(root, "author")[: limits.MAX_TEXT]
        workout = _child(root, "workout")
        if workout is None or len(workout) == 0:
            raise RoutineFormatError([Problem("workout", "this .zwo file has no workout blocks")])
        blocks: list[Block] = []
        top_events: list[tuple[str, Element]] = []
        for index, element in enumerate(workout):
            path = f"workout[{index}] <{element.tag}>"
            tag = _tag(element)
            if tag == "textevent":
                top_events.append((path, element))
                continue
            block = self._block(tag, element, path)
            if block is not None:
                blocks.append(block)
        if self.problems:
            raise RoutineFormatError(self.problems)
        if not blocks:
            raise RoutineFormatError([Problem("workout", "this .zwo file has no workout blocks")])
        total = sum(block.total_ms() for block in blocks)
        cues = self._cues(top_events, total, "the workout")
        try:
            routine = Routine(
                title=title[: limits.MAX_TEXT],
                description=description,
                author=author,
                blocks=tuple(blocks),
                cues=cues,
            )
        except RoutineError as error:
            raise RoutineFormatError([Problem("workout", str(error))]) from None
        return ZwoImport(routine, tuple(self.warnings))

    def _text(self, root: Element, *names: str) -> str:
        element = _child(root, *names)
        return " ".join((element.text or "").split()) if element is not None else ""

    def _block(self, tag: str, element: Element, path: str) -> Block | None:
        attrs = {key.lower(): value for key, value in element.attrib.items()}
        cadence = self._cadence(attrs.get("cadence"))
        if tag == "intervalst":
            return self._intervals(element, attrs, path, cadence)
        if tag not in ("warmup", "cooldown", "ramp", "steadystate", "freeride", "maxeffort"):
            self.warnings.append(f"{path}: skipped, classroom doesn't know this element")
            return None
        duration = self._seconds(attrs, "duration", path)
        if duration is None:
            return None
        kind = {"warmup": SegmentKind.WARMUP, "cooldown": SegmentKind.COOLDOWN}.get(
            tag, SegmentKind.WORK
        )
        target: Target | None = None
        if tag in ("warmup", "cooldown", "ramp"):
            low = self._power(attrs, "powerlow", path) or self._power(attrs, "power", path)
            high = self._power(attrs, "powerhigh", path)
            name = {"warmup": "Warm-up", "cooldown": "Cool-down", "ramp": "Ramp"}[tag]
            target = self._target(low, high if high != low else None, cadence)
        elif tag == "steadystate":
            power = self._power(attrs, "power", path)
            if power is None:
                power = self._power(attrs, "powerlow", path) or self._power(
                    attrs, "powerhigh", path
                )
            recovery = power is not None and power < RECOVERY_BELOW * 100
            kind = SegmentKind.REST if recovery else SegmentKind.WORK
            name = "Recovery" if recovery else (f"Steady {power:g}% FTP" if power else "Steady")
            target = self._target(power, None, cadence)
        elif tag == "freeride":
            name, target = "Free ride", self._target(None, None, cadence)
        else:
            name, target = "Max effort", Target(rpe=10, cadence=cadence)
        cues = self._cues(self._events(element, path), duration, "its block")
        return self._build(
            path, Step, kind=kind, duration_ms=duration, name=name, target=target, cues=cues
        )

    def _intervals(
        self, element: Element, attrs: dict[str, str], path: str, cadence: int | None
    ) -> Block | None:
        repeat = self._number(attrs, "repeat", path)
        on = self._seconds(attrs, "onduration", path)
        off = self._seconds(attrs, "offduration", path, allow_zero=True)
        if repeat is None or on is None or off is None:
            return None
        rounds = round(repeat)
        if rounds < 1:
            self.problems.append(Problem(path, f"Repeat must be at least 1, not {repeat:g}"))
            return None
        on_power = self._power(attrs, "onpower", path) or self._power(attrs, "poweronlow", path)
        off_power = self._power(attrs, "offpower", path) or self._power(attrs, "powerofflow", path)
        resting = self._cadence(attrs.get("cadenceresting"))
        work = Step(
            kind=SegmentKind.WORK,
            duration_ms=on,
            name="On",
            target=self._target(on_power, None, cadence),
        )
        rest = None
        if off:
            rest = Step(
                kind=SegmentKind.REST,
                duration_ms=off,
                name="Off",
                target=self._target(off_power, None, resting),
            )
        total = rounds * (on + off)
        cues = self._cues(self._events(element, path), total, "its block")
        return self._build(path, Intervals, rounds=rounds, work=work, rest=rest, cues=cues)

    def _build(self, path: str, factory: type[Block], **fields: object) -> Block | None:
        try:
            return factory(**fields)  # type: ignore[arg-type]
        except RoutineError as error:
            self.problems.append(Problem(path, str(error)))
            return None

    def _events(self, element: Element, path: str) -> list[tuple[str, Element]]:
        events = []
        for index, child in enumerate(element):
            sub = f"{path}[{index}] <{child.tag}>"
            if _tag(child) == "textevent":
                events.append((sub, child))
            else:
                self.warnings.append(f"{sub}: skipped, classroom doesn't know this element")
        return events

    def _cues(
        self, events: list[tuple[str, Element]], duration_ms: int, where: str
    ) -> tuple[AuthoredCue, ...]:
        cues: list[AuthoredCue] = []
        for path, event in events:
            attrs = {key.lower(): value for key, value in event.attrib.items()}
            message = " ".join(attrs.get("message", event.text or "").split())
            offset = _float(attrs.get("timeoffset"))
            if not message:
                self.warnings.append(f"{path}: skipped, the text event has no message")
            elif offset is None or offset < 0 or round(offset) * 1000 >= duration_ms:
                self.warnings.append(f"{path}: skipped, its timeoffset falls outside {where}")
            elif len(cues) >= limits.MAX_CUES_PER_PART:
                self.warnings.append(f"{path}: skipped, too many text events in {where}")
            else:
                cues.append(
                    AuthoredCue(text=message[: limits.MAX_TEXT], at_ms=round(offset) * 1000)
                )
        return tuple(cues)

    def _number(self, attrs: dict[str, str], key: str, path: str) -> float | None:
        if key not in attrs:
            self.problems.append(Problem(path, f"this block needs a {key} attribute"))
            return None
        value = _float(attrs[key])
        if value is None:
            self.problems.append(Problem(path, f"{key}={attrs[key]!r} is not a number"))
        return value

    def _seconds(
        self, attrs: dict[str, str], key: str, path: str, *, allow_zero: bool = False
    ) -> int | None:
        value = self._number(attrs, key, path)
        if value is None:
            return None
        seconds = round(value)
        if seconds < 0 or (seconds == 0 and not allow_zero):
            name = _ATTRIBUTE_NAMES.get(key, key)
            self.problems.append(Problem(path, f"{name} must be positive, not {value:g}"))
            return None
        if seconds * 1000 > limits.MAX_SEGMENT_MS:
            name = _ATTRIBUTE_NAMES.get(key, key)
            self.problems.append(Problem(path, f"{name} of {value:g} seconds is too long"))
            return None
        return seconds * 1000

    def _power(self, attrs: dict[str, str], key: str, path: str) -> float | None:
        value = _float(attrs.get(key))
        if value is None:
            return None
        if not 0 <= value * 100 <= MAX_FTP_PERCENT:
            self.warnings.append(f"{path}: ignored {key}={value:g}, not a fraction of FTP")
            return None
        return round(value * 100, 1)

    def _cadence(self, raw: str | None) -> int | None:
        value = _float(raw)
        if value is None or not 1 <= value <= 250:
            return None
        return round(value)

    def _target(self, power: float | None, end: float | None, cadence: int | None) -> Target | None:
        target = Target(
            ftp_percent=power, ftp_percent_end=end if power is not None else None, cadence=cadence
        )
        return None if target.is_empty else target


def _float(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None
