"""Errors raised by the domain core.

Every error the core raises derives from :class:`DomainError`::

    DomainError
    ├── TimelineError        a timeline that breaks its own invariants
    ├── RoutineError         a routine that can't be compiled (see routine docs)
    │   └── RoutineFormatError   a routine file with problems; carries all of them
    ├── ValidationError      user input (nickname, join code) that is refused
    └── CommandRejected      a command that is illegal in the class's current phase

Messages are short sentences meant for people; texts shown to users are
module-level constants so tests can import them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DomainError(Exception):
    """Base class of every error raised by :mod:`classroom.domain`."""


class TimelineError(DomainError):
    """A timeline that breaks its invariants (gaps, overlaps, misplaced cues)."""


class RoutineError(DomainError):
    """A routine that can't be compiled into a timeline."""


class ValidationError(DomainError):
    """Input from a person that is refused; the message says why."""


class CommandRejected(DomainError):
    """A command that is illegal in the current phase; nothing changed."""


class RoutineFormatError(RoutineError):
    """A routine text or file with one or more problems, all reported at once.

    ``problems`` lists every problem found, each naming where it is (a path such
    as ``blocks[2].rounds`` and, for YAML, the line). The message lists them all.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a routine file: where it is and what is wrong."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "routine"
        if self.line is not None:
            where = f"line {self.line}, {where}"
        return f"{where}: {self.message}"
