"""Reading plain values (from YAML or JSON) while collecting every problem.

:class:`ValueReader` checks one value at a time — a mapping with known keys, a
text, a duration, a whole number — and, when one is wrong, notes a
:class:`Problem` at its path (with the line, when known) and returns None, so
the caller carries on and every problem is reported at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from classroom.domain import limits
from classroom.domain.durations import DurationSyntaxError, parse_duration
from classroom.domain.errors import Problem, RoutineError
from classroom.domain.formats.source import child_path
from classroom.domain.names import visible
from classroom.domain.timeline import ScoreKind

T = TypeVar("T")

MISSING = object()
"""What :meth:`ValueReader.require` returns for a missing key."""


class ValueReader:
    """Reads plain values, noting every problem instead of stopping at the first."""

    def __init__(self, lines: Mapping[str, int]) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    # -- reporting -----------------------------------------------------------------

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.line(path)))

    def line(self, path: str) -> int | None:
        """The line of ``path``, or of the nearest enclosing value that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""

    def build(self, path: str, factory: Callable[..., T], **fields: Any) -> T | None:
        try:
            return factory(**fields)
        except RoutineError as error:
            self.problem(path, str(error))
            return None

    # -- plain values --------------------------------------------------------------

    def mapping(
        self, value: object, path: str, keys: tuple[str, ...], what: str
    ) -> dict[str, object] | None:
        if not isinstance(value, dict):
            self.problem(path, f"expected {what} (a set of 'key: value' lines)")
            return None
        for key in value:
            if key not in keys:
                hint = difflib.get_close_matches(key, keys, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                self.problem(
                    child_path(path, key),
                    f"unknown key {key!r} in {what}{suggestion} (allowed: {', '.join(keys)})",
                )
        return value

    def require(self, data: dict[str, object], key: str, path: str, what: str) -> object:
        if key not in data:
            self.problem(path, f"{what} needs '{key}'")
            return MISSING
        return data[key]

    def text(self, value: object, path: str, *, maximum: int = limits.MAX_TEXT) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(path, "expected text")
            return None
        text = visible(str(value)).strip()  # NFC, no invisible controls (domain/names.py)
        if len(text) > maximum:
            self.problem(path, f"this text is longer than {maximum} characters")
            return None
        return text

    def duration(self, value: object, path: str) -> int | None:
        try:
            ms = parse_duration(value)
        except DurationSyntaxError as error:
            self.problem(path, str(error))
            return None
        if ms <= 0:
            self.problem(path, "a duration must be longer than zero")
            return None
        if ms > limits.MAX_TOTAL_MS:
            self.problem(path, "this duration is longer than a routine may last (6:00:00)")
            return None
        return ms

    def integer(self, value: object, path: str, low: int, high: int) -> int | None:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"expected a whole number from {low:,} to {high:,}")
            return None
        if not low <= value <= high:
            self.problem(path, f"must be between {low:,} and {high:,}, not {value:,}")
            return None
        return value

    def number(self, value: object, path: str, low: float, high: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, f"expected a number from {low:g} to {high:g}")
            return None
        if not low <= value <= high:
            self.problem(path, f"must be between {low:g} and {high:g}, not {value:g}")
            return None
        return float(value)

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.problem(path, "expected true or false")
            return None
        return value

    def score(self, value: object, path: str) -> ScoreKind | None:
        text = value.strip().lower().replace("+", "_") if isinstance(value, str) else None
        if text is not None and text in ScoreKind.__members__.values():
            return ScoreKind(text)
        choices = ", ".join(kind.value for kind in ScoreKind)
        self.problem(path, f"unknown score {value!r}; expected one of: {choices}")
        return None

    def listing(self, value: object, path: str, what: str, maximum: int) -> list[object] | None:
        if not isinstance(value, list):
            self.problem(path, f"expected a list of {what}")
            return None
        if not value:
            self.problem(path, f"the list of {what} is empty")
            return None
        if len(value) > maximum:
            self.problem(path, f"at most {maximum:,} {what}, not {len(value):,}")
            return None
        return value
