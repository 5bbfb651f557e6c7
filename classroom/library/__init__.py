"""The built-in routine library: ready-made routines shipped with classroom.

Each routine is a YAML file in this package, in the text format of
docs/routines.md; its file name (without ``.yaml``) is its **slug**, a stable
identifier. Slugs never change once published; a revised routine keeps its slug.

>>> from classroom.library import load_library_routine
>>> routine = load_library_routine("tabata-tuesday")
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from classroom.domain.formats.text import parse_routine
from classroom.domain.routine import Routine

__all__ = [
    "LibraryEntry",
    "UnknownRoutine",
    "library_slugs",
    "library_text",
    "list_library",
    "load_library_routine",
]

UNKNOWN_ROUTINE = "there is no routine {slug!r} in the library"


class UnknownRoutine(LookupError):
    """A slug that names no routine in the library."""


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    """A routine of the library, as a list shows it."""

    slug: str
    title: str
    description: str
    total_ms: int
    segment_count: int


def library_slugs() -> tuple[str, ...]:
    """The slugs of every built-in routine, sorted."""
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml")))


def library_text(slug: str) -> str:
    """The YAML text of a built-in routine (to show, copy or edit)."""
    if slug not in library_slugs():
        raise UnknownRoutine(UNKNOWN_ROUTINE.format(slug=slug))
    return resources.files(__name__).joinpath(f"{slug}.yaml").read_text(encoding="utf-8")


@cache
def load_library_routine(slug: str) -> Routine:
    """The built-in routine ``slug``; raises :class:`UnknownRoutine` if there is none."""
    return parse_routine(library_text(slug))


def list_library() -> list[LibraryEntry]:
    """Every built-in routine, sorted by slug."""
    entries = []
    for slug in library_slugs():
        routine = load_library_routine(slug)
        entries.append(
            LibraryEntry(
                slug=slug,
                title=routine.title,
                description=routine.description,
                total_ms=routine.total_ms(),
                segment_count=routine.segment_count(),
            )
        )
    return entries
