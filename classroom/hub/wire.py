"""The JSON wire format: envelopes for class events, snapshots and replies.

Every server message is an object with a ``type``. Class events also carry the
class's ``seq`` (gap-free, per class). See docs/protocol.md.

Both ways, the JSON is strict (RFC 8259 and I-JSON, RFC 7493): :func:`encode`
never writes ``NaN`` or ``Infinity``, and :func:`decode` refuses them, numbers
too large for a double (``1e400``), strings with an unpaired surrogate
(``"\\ud800"``, which no UTF-8 frame can carry back) and nesting deeper than
:data:`MAX_DEPTH`, with :class:`BadJSON`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from classroom.domain import session
from classroom.domain.events import (
    CueFired,
    Event,
    ParticipantFinished,
    PhaseChanged,
    SegmentStarted,
    ShoutOut,
)
from classroom.domain.scorebook import Fix
from classroom.domain.session import ClassState, Phase
from classroom.domain.timeline import Timeline

Message = dict[str, Any]

#: How deeply a client's message may nest arrays and objects; ours nest two deep.
MAX_DEPTH = 32


class BadJSON(ValueError):
    """A client's message is not JSON that the server takes (see :func:`decode`)."""


def encode(message: Message) -> str:
    """A message as JSON text; a non-finite number in it is a bug (``ValueError``)."""
    return _ENCODER.encode(message)


def decode(text: str) -> Any:
    """A client's message, parsed strictly; :class:`BadJSON` if it is not valid, finite JSON."""
    try:
        data = _DECODER.decode(text)
    except RecursionError:
        raise BadJSON(TOO_DEEP) from None
    except BadJSON:
        raise
    except ValueError:
        raise BadJSON(NOT_JSON) from None
    # Cheap tests first: most messages have one object, and no escaped surrogate.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise BadJSON(TOO_DEEP)
    if ("\\ud" in text or "\\uD" in text) and not _encodable(data):
        raise BadJSON(NOT_UNICODE)
    return data


def _refuse_constant(name: str) -> Any:
    raise BadJSON(NOT_FINITE)


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise BadJSON(NOT_FINITE)
    return number


def _depth(data: Any) -> int:
    """How deeply ``data`` nests lists and dicts (without recursion)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _encodable(data: Any) -> bool:
    """Whether every string in ``data`` is valid Unicode (no unpaired surrogate)."""
    try:
        _ENCODER.encode(data).encode()
    except UnicodeEncodeError:
        return False
    return True


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)
NOT_JSON = "That message is not valid JSON."
NOT_FINITE = "That message has a number JSON can't carry (NaN, Infinity or one too large)."
NOT_UNICODE = "That message has a string that is not valid Unicode (an unpaired surrogate)."
TOO_DEEP = f"That message nests more than {MAX_DEPTH} deep."


def segment_view(timeline: Timeline, index: int) -> Message:
    segment = timeline.segments[index]
    following = timeline.segments[index + 1] if index + 1 < len(timeline.segments) else None
    exercise = segment.exercise
    return {
        "index": index,
        "count": len(timeline.segments),
        "name": segment.name,
        "label": segment.label,
        "kind": segment.kind.value,
        "score_kind": segment.score_kind.value,
        "start_ms": segment.start_ms,
        "duration_ms": segment.duration_ms,
        "open_ended": segment.open_ended,
        "exercise": None
        if exercise is None
        else {
            "name": exercise.name,
            "modifications": {level.value: text for level, text in exercise.modifications.items()},
        },
        "next": None if following is None else following.name,
        # What to aim for ("15 reps", "RPE 7", "zone 3"): "" without a target.
        "target": ""
        if segment.target is None or segment.target.is_empty
        else segment.target.describe(),
    }


def event_message(timeline: Timeline, seq: int, event: Event) -> Message:
    message: Message = {"type": event.type, "seq": seq, "at": event.at_ms}
    if isinstance(event, SegmentStarted):
        message["segment"] = segment_view(timeline, event.index)
        message.update(
            ends_at=event.ends_at_ms, remaining_ms=event.remaining_ms, reason=event.reason
        )
    elif isinstance(event, CueFired):
        message.update(cue=event.index, kind=event.kind.value, text=event.text)
    elif isinstance(event, PhaseChanged):
        message.update(phase=event.phase, previous=event.previous, reason=event.reason)
        if event.starts_at_ms is not None:
            message["starts_at"] = event.starts_at_ms
    elif isinstance(event, ShoutOut):
        message["text"] = event.text
    elif isinstance(event, ParticipantFinished):
        message.update(
            participant=event.participant_id,
            segment_index=event.segment_index,
            elapsed_ms=event.elapsed_ms,
        )
    return message


def snapshot(
    *,
    class_id: int,
    title: str,
    timeline: Timeline,
    state: ClassState,
    seq: int,
    now_ms: int,
    epoch: str = "",
) -> Message:
    """Everything a screen needs to draw the class as it is at ``now_ms``."""
    segment = session.current_segment(timeline, state)
    message: Message = {
        "type": "snapshot",
        "seq": seq,
        "epoch": epoch,
        "class_id": class_id,
        "title": title,
        "phase": state.phase.value,
        "server_now": now_ms,
        "total_ms": timeline.total_ms,
        "segment": None if segment is None else segment_view(timeline, segment.index),
        "ends_at": None,
        "remaining_ms": None,
        "starts_at": None,
        "elapsed_ms": session.elapsed_ms(state, now_ms),
        "position_ms": 0,  # before the first segment: the start of the timeline
    }
    if state.phase is Phase.COUNTDOWN:
        message["starts_at"] = state.segment_started_at_ms
    left = session.remaining_ms(timeline, state, now_ms)
    if segment is not None:
        message["position_ms"] = segment.start_ms + session.segment_elapsed_ms(state, now_ms)
    if left is not None:
        message["remaining_ms"] = left
        if state.phase is Phase.RUNNING:
            message["ends_at"] = now_ms + left
    return message


def error(code: str, text: str, **extra: Any) -> Message:
    return {"type": "error", "code": code, "message": text, **extra}


def notice(code: str, text: str) -> Message:
    """Something screens should show that is not a class event (no ``seq``)."""
    return {"type": "notice", "code": code, "message": text}


def corrected(fix: Fix) -> Message:
    """The instructor replaced a participant's result for a segment (no ``seq``): that
    participant's phone shows it as its own. ``deleted``: the result was removed."""
    result = fix.result
    return {
        "type": "corrected",
        "participant": fix.participant_id,
        "segment": fix.segment_index,
        "value": 0 if result is None else result.first,
        "rounds": 0 if result is None else result.second,
        "deleted": result is None,
    }


def roster(
    count: int, teams: Sequence[Mapping[str, Any]] = (), names: Sequence[str] = ()
) -> Message:
    """How many participants have joined, in all and per team (not a class event: no ``seq``).

    ``teams`` are each team's look (id, name, letter, colour, pattern) and its ``count``;
    ``names``, the latest to join, newest first, as public screens show them.
    """
    return {
        "type": "roster",
        "count": count,
        "teams": [dict(team) for team in teams],
        "names": list(names),
    }


def resumed(since: int, epoch: str, now_ms: int) -> Message:
    """Sent instead of a snapshot when the missed events follow: the screen keeps its view."""
    return {"type": "resumed", "since": since, "epoch": epoch, "server_now": now_ms}
