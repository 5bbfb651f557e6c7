"""Generated cues: the 3-2-1, "halfway", "next: …", "last round" and the lead-in.

Each kind can be switched off per routine (:class:`CueSettings`). The texts are
module constants so screens, tests and docs agree on them.

- **Countdown** — "3", "2", "1" in the last three seconds of every segment that
  is followed by another (only those seconds that fall inside the segment).
  They count back from the segment's end (``Cue.from_end``), so they move
  with it when the instructor extends the segment.
- **Halfway** — at the midpoint of every segment of 60 s or more.
- **Next** — at the start of every rest or transition: "Next: Burpees".
- **Last round** — at the start of the last round of any block with rounds.
- **Lead-in** — before segment 0 starts: "Get ready: Warm-up jog" when the
  lead-in begins, then "3", "2", "1". These live in ``Timeline.lead_in_cues``
  with offsets counted from the start of the lead-in, since no segment is
  running yet; ``Timeline.lead_in_ms`` is the lead-in's length.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from classroom.domain.routine import CueSettings
from classroom.domain.timeline import Cue, CueKind, Segment, SegmentKind

COUNTDOWN_TEXTS = ("3", "2", "1")
HALFWAY_TEXT = "Halfway"
HALFWAY_CAP_TEXT = "Halfway to the time cap"
NEXT_TEXT = "Next: {name}"
NEXT_STATION_TEXT = "Next: move to your next station"
LAST_ROUND_TEXT = "Last round"
GET_READY_TEXT = "Get ready: {name}"

HALFWAY_MIN_MS = 60_000
"""Segments at least this long get a halfway cue."""

_RESTS = (SegmentKind.REST, SegmentKind.TRANSITION)
_COUNTDOWN = tuple(zip((3000, 2000, 1000), COUNTDOWN_TEXTS, strict=True))
LAST, NEXT, HALF, COUNT = CueKind.LAST_ROUND, CueKind.NEXT, CueKind.HALFWAY, CueKind.COUNTDOWN


def segment_cues(
    segments: Sequence[Segment],
    settings: CueSettings,
    last_round_starts: Collection[int] = (),
) -> list[Cue]:
    """The generated cues of a timeline's segments, in time order.

    ``last_round_starts`` holds the indexes of segments that open a block's last round.
    Segments come in time order and each one's cues are made in time order, so
    the result needs no sorting.
    """
    cues: list[Cue] = []
    add = cues.append
    count = len(segments)
    last_round, next_, halfway = settings.last_round, settings.next, settings.halfway
    countdown = settings.countdown
    for index, segment in enumerate(segments):
        start, duration = segment.start_ms, segment.duration_ms
        end = start + duration
        if last_round and index in last_round_starts:
            add(Cue(at_ms=start, segment_index=index, kind=LAST, text=LAST_ROUND_TEXT))
        following = segments[index + 1] if index + 1 < count else None
        if next_ and following is not None and segment.kind in _RESTS:
            text = (
                NEXT_STATION_TEXT if following.stations else NEXT_TEXT.format(name=following.name)
            )
            add(Cue(at_ms=start, segment_index=index, kind=NEXT, text=text))
        if halfway and duration >= HALFWAY_MIN_MS:
            text = HALFWAY_CAP_TEXT if segment.open_ended else HALFWAY_TEXT
            add(Cue(at_ms=start + duration // 2, segment_index=index, kind=HALF, text=text))
        if countdown and following is not None:
            for seconds_left, text in _COUNTDOWN:
                at = end - seconds_left
                if at > start:
                    add(Cue(at_ms=at, segment_index=index, kind=COUNT, text=text, from_end=True))
    return cues


def lead_in_cues(lead_in_ms: int, first: Segment) -> tuple[Cue, ...]:
    """The cues of the lead-in: "Get ready: …" at its start, then 3-2-1.

    Offsets count from the start of the lead-in; every cue names segment 0.
    """
    if lead_in_ms <= 0:
        return ()
    cues = [
        Cue(
            at_ms=0,
            segment_index=first.index,
            kind=CueKind.LEAD_IN,
            text=GET_READY_TEXT.format(name=first.name),
        )
    ]
    for seconds_left, text in zip((3, 2, 1), COUNTDOWN_TEXTS, strict=True):
        at = lead_in_ms - seconds_left * 1000
        if at > 0:
            cues.append(Cue(at_ms=at, segment_index=first.index, kind=CueKind.LEAD_IN, text=text))
    return tuple(cues)
