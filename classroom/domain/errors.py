"""Errors raised by the domain core.

Every error the core raises derives from :class:`DomainError`::

    DomainError
    ├── TimelineError        a timeline that breaks its own invariants
    ├── RoutineError         a routine that can't be compiled (see routine docs)
    ├── ValidationError      user input (nickname, join code) that is refused
    └── CommandRejected      a command that is illegal in the class's current phase

Messages are short sentences meant for people; texts shown to users are
module-level constants so tests can import them.
"""

from __future__ import annotations


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
