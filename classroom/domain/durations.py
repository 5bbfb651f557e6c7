"""Durations as people write them: ``30``, ``"0:30"``, ``"1:30"``, ``"45s"``, ``"2m"``, ``"1h"``.

Routines count time in whole seconds; the timeline counts milliseconds. These
functions convert between what an author writes and integer milliseconds.
"""

from __future__ import annotations

import re

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{2})$")
_UNITS = re.compile(r"^(\d+)\s*(s|sec|secs|m|min|mins|h|hr|hrs)$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60}
_UNIT_SECONDS |= {"h": 3600, "hr": 3600, "hrs": 3600}

DURATION_HELP = (
    'write a duration as whole seconds (30) or as "0:30", "1:30", "1:00:00", "45s", "2m" or "1h"'
)


class DurationSyntaxError(ValueError):
    """A duration that isn't written in one of the accepted forms."""


def parse_duration(value: object) -> int:
    """Milliseconds in a duration written by a person.

    Accepts a whole number of seconds (``30``) or a string: ``"0:30"``
    (minutes:seconds), ``"1:02:30"`` (hours:minutes:seconds), ``"45s"``,
    ``"2m"``, ``"1h"``. Anything else raises :class:`DurationSyntaxError`.
    Zero and negative durations parse; callers decide what they allow.
    """
    if isinstance(value, bool):
        raise DurationSyntaxError(f"{value!r} is not a duration; {DURATION_HELP}")
    if isinstance(value, int):
        return value * 1000
    if isinstance(value, float):
        if value.is_integer():
            return int(value) * 1000
        raise DurationSyntaxError(f"{value!r} is not a whole number of seconds; {DURATION_HELP}")
    if not isinstance(value, str):
        raise DurationSyntaxError(f"expected a duration; {DURATION_HELP}")
    text = value.strip().lower()
    negative = text.startswith("-")
    if negative:
        text = text[1:].strip()
    seconds: int | None = None
    if text.isdigit():
        seconds = int(text)
    elif match := _CLOCK.match(text):
        hours, minutes, secs = match.groups()
        if int(secs) >= 60 or (hours is not None and int(minutes) >= 60):
            raise DurationSyntaxError(f"{value!r} is not a valid clock time; {DURATION_HELP}")
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)
    elif match := _UNITS.match(text):
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds is None:
        raise DurationSyntaxError(f"{value!r} is not a duration; {DURATION_HELP}")
    return -seconds * 1000 if negative else seconds * 1000


def format_duration(ms: int) -> str:
    """A duration as a clock, ``"0:30"``, ``"12:00"`` or ``"1:05:00"`` (whole seconds)."""
    sign = "-" if ms < 0 else ""
    seconds = abs(ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


def format_duration_words(ms: int) -> str:
    """A short spoken form: ``"30 seconds"``, ``"2 minutes"``, ``"1:30"``."""
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    if seconds % 60 == 0 and seconds < 3600:
        minutes = seconds // 60
        return f"{minutes} minute" + ("" if minutes == 1 else "s")
    return format_duration(ms)
