"""Rules for joining a class: join codes and nicknames.

Join codes are short, read off a wall from across a room and typed on a phone,
so they use an alphabet without look-alikes (no 0/O, 1/I/L) and ignore case,
spaces and dashes. Nicknames are 1-24 visible characters in any script.
"""

from __future__ import annotations

from classroom.domain.errors import ValidationError
from classroom.domain.names import one_line

JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6
NICKNAME_MAX = 24

UNKNOWN_CODE = "No class is open with that code. Check the code on the screen and try again."
MALFORMED_CODE = (
    f"A join code is {JOIN_CODE_LENGTH} letters and digits, like the one on the screen."
)
EMPTY_NICKNAME = "Pick a nickname so your team can cheer you on."
LONG_NICKNAME = f"Nicknames are at most {NICKNAME_MAX} characters"


def normalize_join_code(raw: str) -> str:
    """The canonical form of a typed join code; raises if it can't be one."""
    code = "".join(raw.split()).replace("-", "").upper()
    if len(code) != JOIN_CODE_LENGTH or any(c not in JOIN_CODE_ALPHABET for c in code):
        raise ValidationError(MALFORMED_CODE)
    return code


def normalize_nickname(raw: str) -> str:
    """A nickname as it will be stored and shown; raises :class:`ValidationError`."""
    text = one_line(raw)  # NFC, no invisible controls (classroom/domain/names.py)
    if not text:
        raise ValidationError(EMPTY_NICKNAME)
    if len(text) > NICKNAME_MAX:
        raise ValidationError(f"{LONG_NICKNAME}; this one has {len(text)}.")
    return text
