"""The routine text format: YAML or JSON text in, a routine out, and back.

This module is the front door; :mod:`.source` reads text safely,
:mod:`.reader` turns values into a routine, :mod:`.writer` does the reverse.
"""

from __future__ import annotations

from typing import Literal

from classroom.domain.formats.reader import FORMAT_VERSION, routine_from_document
from classroom.domain.formats.source import Document, load_json, load_yaml
from classroom.domain.formats.writer import dump_json, dump_yaml, routine_to_data
from classroom.domain.routine import Routine

TextFormat = Literal["yaml", "json"]

__all__ = [
    "FORMAT_VERSION",
    "TextFormat",
    "dump_json",
    "dump_yaml",
    "parse_routine",
    "routine_from_data",
    "routine_to_data",
]


def parse_routine(text: str, text_format: TextFormat = "yaml") -> Routine:
    """The routine written in ``text``.

    Raises :class:`~classroom.domain.errors.RoutineFormatError` listing every
    problem found, each with its path and (for YAML) its line.
    """
    document = load_json(text) if text_format == "json" else load_yaml(text)
    return routine_from_document(document)


def routine_from_data(data: object) -> Routine:
    """The routine described by plain values (as read from JSON, or built in code)."""
    return routine_from_document(Document(data))
