"""Counts in words: "1 segment", "5 segments"; never "1 segments" or "5 problem(s)"."""

from __future__ import annotations

_PLURALS = {"person": "people"}


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, the noun plural unless ``n`` is one: ``counted(2, "rep")``."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {plural or _PLURALS.get(noun, noun + 's')}"
