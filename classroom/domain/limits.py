"""Limits on routines, so a routine file can't exhaust a server.

Every limit is checked before anything is expanded: a routine that asks for
100,000 rounds is refused by arithmetic, not by building 200,000 segments.
docs/routines.md lists these figures; keep the two in step.
"""

from __future__ import annotations

MAX_SEGMENTS = 5_000
"""Segments in a compiled timeline."""

MAX_TOTAL_MS = 6 * 60 * 60 * 1000
"""Total duration of a routine: six hours."""

MAX_SEGMENT_MS = 3 * 60 * 60 * 1000
"""Duration (or time cap) of one segment: three hours."""

MAX_ROUNDS = 1_000
"""Rounds (or repeats, minutes, stations x rounds) of a single block."""

MAX_NESTING = 4
"""Blocks inside blocks: a repeat may hold a repeat, four levels deep at most."""

MAX_LEAD_IN_MS = 60 * 1000
"""The countdown before a class starts."""

MAX_TEXT = 500
"""Characters in a name, note or cue text."""

MAX_DESCRIPTION = 5_000
"""Characters in a routine's description."""

MAX_CUES_PER_PART = 200
"""Authored cues on one segment, block or routine."""

MAX_STATIONS = 50
"""Stations in one circuit."""

MAX_MOVES = 50
"""Moves in one AMRAP, For Time or EMOM, or exercises alternating in intervals."""

MAX_FILE_BYTES = 1024 * 1024
"""Size of a routine file (YAML, JSON or .zwo): one mebibyte."""

MAX_TEXT_DEPTH = 32
"""Nesting of lists and mappings in a YAML or JSON routine."""

DEFAULT_MAX_REPS_PER_SECOND = 3.0
"""Reps a second above which a participant's count is flagged to the instructor."""
MAX_REPS_PER_SECOND = 20.0
"""The highest plausibility cap a routine can set."""
