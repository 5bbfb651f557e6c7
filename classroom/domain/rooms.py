"""Rooms and the wall displays paired to them: names, pairing codes, and what a wall shows.

A **room** is a studio space; an instructor names it (1-80 visible characters,
no control characters, unique among their rooms whatever the case). A wall
display opened at ``/display`` shows a short **pairing code**; the instructor
types it on the console to pair the display to a room. Codes use the join
codes' alphabet (no look-alikes), last :data:`PAIRING_CODE_TTL_MS`, and are
renewed while the display waits.

A paired display follows its room. :func:`wall_view` decides what it shows,
in this order:

1. the room's **live** class (counting down, running or paused);
2. the room's class that **finished** in the last few minutes (its results; by
   default :data:`RESULTS_SHOWN_MS`): a class ended is celebrated on the wall before
   the next one's lobby takes over, unless the next one has already started;
3. the room's class in the **lobby**: one without a scheduled time, or due
   within :data:`LOBBY_LEAD_MS`;
4. the room's **welcome** screen, with the next scheduled class if any.

Time is an argument (epoch milliseconds), as everywhere in the domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from classroom.domain.errors import ValidationError
from classroom.domain.joining import JOIN_CODE_ALPHABET
from classroom.domain.names import one_line
from classroom.domain.session import LIVE, Phase

ROOM_NAME_MAX = 80
DISPLAY_LABEL_MAX = 40
PAIRING_CODE_ALPHABET = JOIN_CODE_ALPHABET
PAIRING_CODE_LENGTH = 6
PAIRING_CODE_TTL_MS = 15 * 60_000
LOBBY_LEAD_MS = 15 * 60_000
"""A scheduled class takes over its room's displays this long before its time."""
RESULTS_SHOWN_MS = 3 * 60_000
"""How long a room's displays show the results of a class that has finished, by default
(``CLASSROOM_WALL_RESULTS``)."""
ONLINE_MS = 60_000
"""A display heard from this recently is online."""

EMPTY_ROOM_NAME = "Give the room a name."
LONG_ROOM_NAME = f"Room names are at most {ROOM_NAME_MAX} characters."
ROOM_NAME_TAKEN = "You already have a room with that name."
LONG_DISPLAY_LABEL = f"Display names are at most {DISPLAY_LABEL_MAX} characters."
MALFORMED_PAIRING_CODE = (
    f"A pairing code is {PAIRING_CODE_LENGTH} letters and digits, like the one on the display."
)
UNKNOWN_PAIRING_CODE = (
    "No display is showing that code. Check the code on the screen: it changes every 15 minutes."
)
EXPIRED_PAIRING_CODE = "That code has expired. Enter the code the display shows now."
USED_PAIRING_CODE = "That code has already been used. Enter the code the display shows now."


def _visible_text(raw: str, longest: int, too_long: str) -> str:
    text = one_line(raw)  # NFC, no invisible controls, one line (classroom/domain/names.py)
    if len(text) > longest:
        raise ValidationError(too_long)
    return text


def normalize_room_name(raw: str) -> str:
    """A room's name as stored and shown; raises :class:`ValidationError`."""
    name = _visible_text(raw, ROOM_NAME_MAX, LONG_ROOM_NAME)
    if not name:
        raise ValidationError(EMPTY_ROOM_NAME)
    return name


def same_name(a: str, b: str) -> bool:
    """Whether two room names would be mistaken for each other ("Studio A", "studio a")."""
    return a.casefold() == b.casefold()


def normalize_display_label(raw: str) -> str:
    """A display's name in the console (may be empty); raises :class:`ValidationError`."""
    return _visible_text(raw, DISPLAY_LABEL_MAX, LONG_DISPLAY_LABEL)


def normalize_pairing_code(raw: str) -> str:
    """The canonical form of a typed pairing code; raises if it can't be one."""
    code = "".join(raw.split()).replace("-", "").upper()
    if len(code) != PAIRING_CODE_LENGTH or any(c not in PAIRING_CODE_ALPHABET for c in code):
        raise ValidationError(MALFORMED_PAIRING_CODE)
    return code


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomClass:
    """A class in a room, as much of it as a wall needs to choose what to show."""

    id: int
    title: str
    phase: Phase
    opened_ms: int
    ended_ms: int | None = None
    scheduled_ms: int | None = None


class WallKind(StrEnum):
    CLASS = "class"  # the class's display: its lobby, or its timer
    RESULTS = "results"
    WELCOME = "welcome"


@dataclass(frozen=True, slots=True, kw_only=True)
class WallView:
    kind: WallKind
    shown: RoomClass | None = None  # the class shown (CLASS, RESULTS)
    next_class: RoomClass | None = None  # the next scheduled class (WELCOME)


def _in_lobby_now(cls: RoomClass, now_ms: int) -> bool:
    return cls.phase is Phase.LOBBY and (
        cls.scheduled_ms is None or cls.scheduled_ms - now_ms <= LOBBY_LEAD_MS
    )


def _latest(cls: RoomClass) -> tuple[int, int]:
    return cls.opened_ms, cls.id


def wall_view(
    classes: Sequence[RoomClass], now_ms: int, results_ms: int = RESULTS_SHOWN_MS
) -> WallView:
    """What a display paired to the room of ``classes`` shows at ``now_ms``.

    A class that finished is shown (its results) for ``results_ms``. Where two
    classes qualify, the one opened (or ended) last wins.
    """
    live = [cls for cls in classes if cls.phase in LIVE]
    if live:
        return WallView(kind=WallKind.CLASS, shown=max(live, key=_latest))
    finished = [
        cls
        for cls in classes
        if cls.phase is Phase.FINISHED
        and cls.ended_ms is not None
        and 0 <= now_ms - cls.ended_ms <= results_ms
    ]
    if finished:
        ended = max(finished, key=lambda cls: (cls.ended_ms or 0, cls.id))
        return WallView(kind=WallKind.RESULTS, shown=ended)
    lobby = [cls for cls in classes if _in_lobby_now(cls, now_ms)]
    if lobby:
        return WallView(kind=WallKind.CLASS, shown=max(lobby, key=_latest))
    later = [
        cls
        for cls in classes
        if cls.phase is Phase.LOBBY and cls.scheduled_ms is not None and cls.scheduled_ms > now_ms
    ]
    upcoming = min(later, key=lambda cls: (cls.scheduled_ms or 0, cls.id)) if later else None
    return WallView(kind=WallKind.WELCOME, next_class=upcoming)


def code_expired(expires_ms: int, now_ms: int) -> bool:
    return now_ms >= expires_ms


def online(last_seen_ms: int | None, now_ms: int) -> bool:
    return last_seen_ms is not None and now_ms - last_seen_ms <= ONLINE_MS
