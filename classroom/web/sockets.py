"""The WebSocket endpoint every screen of a class connects to.

Who is connecting is settled before the socket is accepted: a display or
participant token in the query string, a participant's cookie, or the
instructor's session. A browser's ``Origin`` must be this server's own (or one
allowed by configuration). After that, a bad message gets an error message and
changes nothing; it never closes a good socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from classroom import logs
from classroom.broker import BrokerError
from classroom.db import heart as heart_store
from classroom.db.leases import Deposed
from classroom.db.models import Class
from classroom.domain import heart
from classroom.domain.commands import MarkFinished, parse_command
from classroom.domain.errors import CommandRejected, DomainError, ValidationError
from classroom.domain.scoring import BAD_CLIENT_ID, DIVISIONS, NOT_RUNNING, Division, ScoreInput
from classroom.domain.timeline import ScoreKind
from classroom.hub import wire
from classroom.hub.admission import Admission, Refused
from classroom.hub.limits import MAX_MESSAGE_BYTES, TokenBucket
from classroom.hub.screens import CLOSE_TRY_AGAIN, Screen, screen_for
from classroom.live.actor import ClassFailed
from classroom.live.router import Unavailable
from classroom.metrics import Metrics
from classroom.web import auth, origins
from classroom.web.display import display_opens
from classroom.web.participants import participant_cookie
from classroom.web.tokens import Grant, TokenError

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
HR_PER_S, HR_BURST = 2.0, 4.0

#: A message's ``id``, as a reply echoes it.
ReplyId = str | int | float


@dataclass(frozen=True, slots=True)
class Identity:
    role: str  # "instructor", "participant" or "display"
    id: int | None
    source: Hashable = None  # a display's link or wall, which can be revoked on its own


def _origin_allowed(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser: it has no ambient cookies to abuse
        return True
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    host = websocket.headers.get("host", "")
    allowed = origins.allowed_origins(websocket.app.state.settings, scheme, host)
    return origin.strip().rstrip("/").lower() in allowed


async def _identify(websocket: WebSocket, class_id: int) -> Identity | None:
    tokens = websocket.app.state.tokens
    token = websocket.query_params.get("token") or websocket.cookies.get(
        participant_cookie(class_id)
    )
    if token:
        try:
            grant: Grant = tokens.verify(token, class_id)
            if grant.role == "display":
                await display_opens(websocket, grant)
        except TokenError:
            return None
        # An older display token (naming no link) is counted as a link of its own.
        source = (grant.source or token) if grant.role == "display" else None
        return Identity(grant.role, grant.participant_id, source)
    async with websocket.app.state.sessions() as db:
        instructor = await auth.signed_in(db, websocket)
        row = await db.get(Class, class_id)
    if instructor is None or row is None or row.instructor_id != instructor.id:
        return None
    return Identity("instructor", instructor.id)


def _resume_point(websocket: WebSocket) -> tuple[int | None, str]:
    """The ``since`` and ``epoch`` a reconnecting screen sends in its query string."""
    since = websocket.query_params.get("since", "")
    epoch = websocket.query_params.get("epoch", "")[:32]
    return (int(since) if since.isdigit() and len(since) < 16 else None), epoch


async def class_socket(websocket: WebSocket) -> None:
    try:
        class_id = int(websocket.path_params["class_id"])
    except ValueError:
        await websocket.close(POLICY_VIOLATION)
        return
    logs.current_class.set(class_id)  # for what this socket's task logs from now on
    identity = await _identify(websocket, class_id)
    if identity is None or not _origin_allowed(websocket):
        await websocket.close(POLICY_VIOLATION)  # before accept: an HTTP 403
        return
    admission: Admission = websocket.app.state.admission
    ticket = admission.enter(
        address=websocket.client.host if websocket.client else "",
        participant=(class_id, identity.id) if identity.role == "participant" else None,
        display=identity.source,
    )
    if isinstance(ticket, Refused):
        await _refuse(websocket, ticket)
        return
    try:
        await _serve(websocket, class_id, identity)
    finally:
        admission.leave(ticket)


async def _refuse(websocket: WebSocket, refused: Refused) -> None:
    """Turn a socket away before accepting it: HTTP 429 or 503, with a sentence."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            PlainTextResponse(refused.message, refused.status, headers={"Retry-After": "5"})
        )
    else:  # a server without denial responses: a plain refusal (HTTP 403)
        await websocket.close(POLICY_VIOLATION)


async def _serve(websocket: WebSocket, class_id: int, identity: Identity) -> None:
    await websocket.accept()
    app = websocket.app
    screen = screen_for(websocket, class_id, identity.role, identity.id)
    screen.source = identity.source
    writer = asyncio.create_task(screen.run_writer())
    since, epoch = _resume_point(websocket)
    try:
        attached = await app.state.registry.attach(screen, since, epoch)
    except BrokerError as exc:  # Redis is down (the broker said so once): try again
        log.debug("class %s: a screen can't follow the class yet (%s)", class_id, exc)
        writer.cancel()
        await websocket.close(CLOSE_TRY_AGAIN, "try again")
        return
    if not attached:
        await websocket.close(POLICY_VIOLATION, "no such class")
        writer.cancel()
        return
    # Walls, a few a class, are logged coming and going; phones (thousands) are not.
    logged = identity.role == "display"
    if logged:
        log.info("%s connected", identity.role)
    inbound = _Inbound(screen, app.state.metrics)
    screen.read_with(functools.partial(_read_now, app, screen, inbound))
    try:
        while not screen.closed:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if inbound.allow():
                reply = inbound.place()
                answer = await _answer(app, screen, reply, message)
                if answer is not None:
                    reply.answer(answer)
    except WebSocketDisconnect:
        pass
    finally:
        if logged:
            log.info("%s disconnected", identity.role)
        app.state.hub.remove(screen)
        screen.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer, 1)
        writer.cancel()


class _Reply:
    """A message's place in its socket's line of replies, and how it is answered.

    A reply is a message, or its JSON text (already encoded). The reply to a
    ``score`` is how the input went: this is the
    :data:`~classroom.db.scores.Reply` the class hands that outcome to, and it
    counts the input and times its ack for the metrics.
    """

    __slots__ = ("id", "inbound", "message", "ready", "received")

    def __init__(self, inbound: _Inbound) -> None:
        self.inbound = inbound
        self.id: ReplyId | None = None  # the message's own id, echoed in the reply
        self.message: wire.Message | str | None = None
        self.ready = False
        self.received = time.perf_counter()  # when the message was read

    def answer(self, message: wire.Message | str | None) -> None:
        """Answer with ``message`` (None: no answer) once the replies before it are out."""
        self.inbound.answer(self, message)

    def __call__(self, outcome: bool | Exception) -> None:
        """Answer a score: stored (True), a repeat (False), or refused."""
        metrics = self.inbound.metrics
        if outcome is True or outcome is False:
            assert isinstance(self.id, str)  # a score's id is a client id
            metrics.score_ack.observe(time.perf_counter() - self.received)
            (metrics.inputs_stored if outcome else metrics.inputs_repeat).inc()
            self.answer(_ack_text(self.id, stored=outcome))
            return
        metrics.inputs_refused.inc()
        if isinstance(outcome, Unavailable):  # the phone keeps it, and sends it again
            self.answer(wire.error("unavailable", str(outcome), **_echo(self.id)))
            return
        if isinstance(outcome, Deposed):
            outcome = ClassFailed()
        elif not isinstance(outcome, DomainError | ClassFailed):
            log.error("a score was not stored", exc_info=outcome)
            outcome = ClassFailed()
        self.answer(_refusal(outcome, self.id))


class _Inbound:
    """A socket's messages in: a limit on their rate, and replies in the order they came.

    A score taken as it arrives is answered when its batch commits, while the
    receive loop may answer a later message at once; each message holds a place
    in line, so replies still go out in the order of the messages.
    """

    def __init__(self, screen: Screen, metrics: Metrics) -> None:
        self._screen = screen
        self.metrics = metrics
        self._bucket = TokenBucket()
        self.heart = TokenBucket(HR_PER_S, HR_BURST)  # a strap speaks once a second
        self._warned_at = 0.0
        self._line: deque[_Reply] = deque()

    def allow(self) -> bool:
        """Whether the next message is within the limit; over it, it is dropped."""
        now = time.monotonic()
        if self._bucket.allow(now):
            return True
        if now - self._warned_at >= 1:  # the rest are dropped without a word
            self._warned_at = now
            self.place().answer(wire.error("rate_limited", RATE_LIMITED))
        return False

    def place(self) -> _Reply:
        """A place at the end of the line, for the message that has just come."""
        reply = _Reply(self)
        self._line.append(reply)
        return reply

    def answer(self, reply: _Reply, message: wire.Message | str | None) -> None:
        """Fill ``reply`` (None: no reply) and send every reply now due, in order."""
        reply.message, reply.ready = message, True
        line = self._line
        screen = self._screen
        while line and line[0].ready:
            due = line.popleft().message
            if isinstance(due, str):
                screen.send_text(due)
            elif due is not None:
                screen.send(due)


def _read_now(app: Any, screen: Screen, inbound: _Inbound, text: str) -> bool:
    """Take a score input as it arrives, if the class is running here; leave the rest.

    Phones send thousands of inputs a second in a big class: this takes them in
    the callback that read them (see :mod:`classroom.hub.protocol`), posts each
    to the class's owner (its actor here, or the router to another process), and
    acks it when its batch has committed. What it leaves (anything else, or a
    score for a class not loaded yet) goes through the receive loop, which
    answers in the same words. A message is counted against
    the socket's limit by whichever of the two takes it.
    """
    # Under a quarter of the limit in characters is surely under it in bytes.
    if '"score"' not in text or len(text) > MAX_MESSAGE_BYTES // 4:
        return False
    registry = app.state.registry
    if screen.role != "participant" or (
        registry.router is None and registry.running(screen.class_id) is None
    ):
        return False
    try:
        data = wire.decode(text)
    except wire.BadJSON:
        return False  # the receive loop answers it
    if not isinstance(data, dict) or data.get("type") != "score":
        return False
    if inbound.allow():
        reply = inbound.place()
        reply.id = _reply_id(data)
        if not _post_score(app, screen, reply, data):
            return False
    return True


Handler = Callable[[Any, Screen, dict[str, Any], _Reply], Awaitable[wire.Message]]


async def _answer(
    app: Any, screen: Screen, reply: _Reply, message: Mapping[str, Any]
) -> wire.Message | None:
    """The answer to a message from the receive loop (None: ``reply`` is answered later)."""
    text = message.get("text")
    if text is None:
        return wire.error("binary_frame", "Send JSON text frames, not binary ones.")
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode()) > MAX_MESSAGE_BYTES:
        return wire.error("too_large", f"Messages are at most {MAX_MESSAGE_BYTES} bytes.")
    try:
        data = wire.decode(text)
    except wire.BadJSON as exc:
        return wire.error("bad_json", str(exc))
    if not isinstance(data, dict):
        return wire.error("bad_message", "A message is a JSON object with a type.")
    raw_kind = data.get("type")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    reply.id = _reply_id(data)
    handler = HANDLERS.get(kind)
    if handler is None and kind != "score":
        shown = str(raw_kind)[:40]
        return wire.error("unknown_type", f"Unknown message type {shown!r}.", **_echo(reply.id))
    if screen.role not in ROLES[kind]:
        return wire.error("forbidden", FORBIDDEN[kind], **_echo(reply.id))
    try:
        if handler is None:  # a score: answered when it is stored
            await _score(app, screen, reply, data)
            return None
        return await handler(app, screen, data, reply)
    except (DomainError, ClassFailed) as exc:
        return _refusal(exc, reply.id)
    except Unavailable as exc:
        return wire.error("unavailable", str(exc), **_echo(reply.id))


def _reply_id(data: Mapping[str, Any]) -> ReplyId | None:
    """The message's ``id`` if it is one a reply can echo: a string or a number."""
    raw_id = data.get("id")
    return raw_id if _is_number(raw_id) or isinstance(raw_id, str) else None


def _echo(reply_id: ReplyId | None) -> dict[str, ReplyId]:
    """An error's ``id``: the message's own, if it had one."""
    return {} if reply_id is None else {"id": reply_id}


def _refusal(exc: DomainError | ClassFailed, reply_id: ReplyId | None) -> wire.Message:
    """The error message for a message the class refused."""
    if isinstance(exc, ValidationError):
        return wire.error("bad_field", str(exc), **_echo(reply_id))
    if isinstance(exc, DomainError):
        return wire.error("rejected", str(exc), **_echo(reply_id))
    return wire.error("unavailable", str(exc), **_echo(reply_id))


async def _ping(app: Any, screen: Screen, data: dict[str, Any], reply: _Reply) -> wire.Message:
    """A ``pong`` with the ping's ``id`` and ``t`` as they came (finite: :func:`wire.decode`)."""
    if reply.id is None:
        raise ValidationError(PING_NEEDS_ID)
    t = data.get("t")
    if not _is_number(t):
        raise ValidationError(PING_NEEDS_T)
    return {"type": "pong", "id": reply.id, "t": t, "server_now": app.state.registry.clock.now_ms()}


async def _heartbeat(app: Any, screen: Screen, data: dict[str, Any], reply: _Reply) -> wire.Message:
    return {"type": "heartbeat", "server_now": app.state.registry.clock.now_ms()}


async def _command(app: Any, screen: Screen, data: dict[str, Any], reply: _Reply) -> wire.Message:
    try:
        command = parse_command(data.get("name"), data)
    except ValidationError as exc:
        return wire.error("rejected", str(exc), **_echo(reply.id))
    await app.state.registry.submit(screen.class_id, command)
    return {"type": "ack", "id": reply.id}


async def _mark_finished(
    app: Any, screen: Screen, data: dict[str, Any], reply: _Reply
) -> wire.Message:
    assert screen.identity is not None  # participants always have one
    await app.state.registry.submit(screen.class_id, MarkFinished(participant_id=screen.identity))
    return {"type": "ack", "id": reply.id}


async def _score(app: Any, screen: Screen, reply: _Reply, data: dict[str, Any]) -> None:
    """A score that came through the receive loop: the class's owner is found first."""
    if await app.state.registry.locate(screen.class_id) is None:
        raise CommandRejected(NOT_RUNNING)
    if not _post_score(app, screen, reply, data):
        raise Unavailable()


def _post_score(app: Any, screen: Screen, reply: _Reply, data: dict[str, Any]) -> bool:
    """Hand a ``score`` message to the class's owner, which has ``reply`` answer it.

    False if this process can't tell where the class runs (nothing was answered).
    """
    assert screen.identity is not None  # participants always have one
    if not isinstance(reply.id, str):
        reply(ValidationError(BAD_CLIENT_ID))
        return True
    registry = app.state.registry
    if registry.scores is not None and not registry.scores.allow(
        screen.class_id, screen.identity, time.monotonic()
    ):
        # No id: the phone keeps the input queued and sends it again later.
        reply.answer(wire.error("rate_limited", INPUTS_TOO_FAST))
        return True
    try:
        score = _score_input(data, screen.identity, reply.id, registry.clock.now_ms())
    except DomainError as exc:
        reply(exc)
        return True
    return bool(registry.post_score(screen.class_id, score, reply))


def _ack_text(client_id: str, *, stored: bool) -> str:
    """A score's ``ack``, as :func:`wire.encode` writes it (a client id needs no escapes)."""
    return f'{{"type":"ack","id":"{client_id}","duplicate":{"false" if stored else "true"}}}'


async def _sound(app: Any, screen: Screen, data: dict[str, Any], reply: _Reply) -> wire.Message:
    """Switch the sound of the class's wall displays on or off (the console's "Wall sound").

    A setting of the displays, not of the class: no class event, no ``seq``. It goes
    through the class's owner, in turn with its commands, to the class's displays on
    every process. Each display remembers it; the ack says how many were told.
    """
    on = data.get("on")
    if not isinstance(on, bool):
        raise ValidationError(SOUND_NEEDS_ON)
    displays = await app.state.registry.sound(screen.class_id, on)
    return {"type": "ack", "id": reply.id, "displays": displays}


async def _hr(app: Any, screen: Screen, data: dict[str, Any], reply: _Reply) -> wire.Message:
    """A heart-rate sample from the phone's strap: the raw Heart Rate Measurement
    (0x2A37) as hex, parsed and checked here, taken by the class's owner. The answer is
    the person's own figures; a sample that can't be used is dropped, counted, and
    answered with why."""
    assert screen.identity is not None
    counter = app.state.metrics.heart_samples
    if not reply.inbound.heart.allow(app.state.registry.clock.now_ms() / 1000):
        counter.labels("flood").inc()
        return wire.error("rate_limited", HR_TOO_FAST, **_echo(reply.id))
    try:
        measurement = heart.measurement_from_hex(data.get("data"))
    except ValidationError as exc:
        counter.labels("garbled").inc()
        return wire.error("bad_hr", str(exc), **_echo(reply.id))
    problem = heart.sample_problem(measurement)
    if problem is not None:
        counter.labels(problem).inc()
        return wire.error("hr_dropped", heart.PROBLEMS[problem], reason=problem, **_echo(reply.id))
    registry = app.state.registry
    own = await registry.heart_sample(
        screen.class_id, screen.identity, measurement.bpm, registry.clock.now_ms()
    )
    counter.labels("taken").inc()
    return {**own, **_echo(reply.id)}


async def _heart_profile(
    app: Any, screen: Screen, data: dict[str, Any], reply: _Reply
) -> wire.Message:
    """The person's age or max heart rate, and whether walls may show their bpm."""
    assert screen.identity is not None
    age, max_hr, show_bpm = data.get("age"), data.get("max_hr"), data.get("show_bpm", False)
    if not isinstance(show_bpm, bool):
        raise ValidationError(SHOW_BPM_BOOL)
    if age is not None:
        if not _is_int(age):
            raise ValidationError(heart.BAD_AGE)
        heart.max_from_age(age, app.state.settings.heart.formula)  # checks the age
    if max_hr is not None:
        if not _is_int(max_hr):
            raise ValidationError(heart.BAD_MAX_HR)
        heart.check_max_hr(max_hr)
    if age is None and max_hr is None:
        raise ValidationError(AGE_OR_MAX)
    await app.state.heart_store.save_profile(
        screen.identity, age=age, max_hr=max_hr, show_bpm=show_bpm
    )
    own = await app.state.registry.heart_profile(screen.class_id, screen.identity)
    return {**own, "type": "heart_profile", **_echo(reply.id)}


async def _straps(app: Any, screen: Screen, data: dict[str, Any], reply: _Reply) -> wire.Message:
    """The straps the room's receiver hears that this person may claim, with their bpm."""
    assert screen.identity is not None
    now = app.state.registry.clock.now_ms()
    free, mine = await app.state.heart_store.straps_for(screen.class_id, screen.identity, now)
    listed = [{"strap": strap, "bpm": bpm} for strap, bpm in free]
    return {"type": "straps", "straps": listed, "mine": mine, **_echo(reply.id)}


async def _claim_strap(
    app: Any, screen: Screen, data: dict[str, Any], reply: _Reply
) -> wire.Message:
    """Claim a strap the room's receiver hears (null: let go of the one held)."""
    assert screen.identity is not None
    strap = data.get("strap")
    store = app.state.heart_store
    if strap is None:
        await store.release(screen.identity)
    elif not isinstance(strap, str) or not 0 < len(strap) <= 64:
        raise ValidationError(heart_store.NO_SUCH_STRAP)
    else:
        now = app.state.registry.clock.now_ms()
        await store.claim(screen.class_id, screen.identity, strap, now)
    return {"type": "claimed", "strap": strap, **_echo(reply.id)}


async def _my_heart(app: Any, screen: Screen, data: dict[str, Any], reply: _Reply) -> wire.Message:
    """The person's own figures, for a phone whose strap the room's receiver hears."""
    assert screen.identity is not None
    own = await app.state.registry.heart_own(screen.class_id, screen.identity)
    return {**own, **_echo(reply.id)}


def _score_input(data: dict[str, Any], participant_id: int, client_id: str, now: int) -> ScoreInput:
    """A ``score`` message as an input; the participant is the socket's own, never the message's."""
    segment = data.get("segment")
    if not _is_int(segment):
        raise ValidationError("a score needs the whole-number index of its segment")
    undoes = data.get("undo", "")
    if not isinstance(undoes, str):
        raise ValidationError("undo names the id of an earlier input")
    value, rounds = data.get("value", 0), data.get("rounds", 0)  # ScoreInput checks them
    raw_kind = data.get("kind")
    if raw_kind is None and not undoes:
        raise ValidationError("a score needs its kind: " + ", ".join(k.value for k in ScoreKind))
    raw_division = data.get("division", Division.RX.value)
    if undoes:
        kind: ScoreKind | None = ScoreKind.NONE
    else:
        kind = _KINDS.get(raw_kind) if isinstance(raw_kind, str) else None
    division = DIVISIONS.get(raw_division) if isinstance(raw_division, str) else None
    if kind is None or division is None:
        shown = raw_kind if kind is None else raw_division
        raise ValidationError(f"unknown score kind or division: {str(shown)[:40]!r}")
    return ScoreInput(
        participant_id=participant_id,
        client_id=client_id,
        segment_index=segment,
        kind=kind,
        value=value,
        rounds=rounds,
        division=division,
        at_ms=now,
        undoes=undoes,
    )


_KINDS: dict[str, ScoreKind] = {kind.value: kind for kind in ScoreKind}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


HANDLERS: dict[str, Handler] = {  # and "score" (see _answer)
    "ping": _ping,
    "heartbeat": _heartbeat,
    "command": _command,
    "mark_finished": _mark_finished,
    "sound": _sound,
    "hr": _hr,
    "heart_profile": _heart_profile,
    "straps": _straps,
    "claim_strap": _claim_strap,
    "my_heart": _my_heart,
}
EVERYONE = frozenset({"instructor", "participant", "display"})
ROLES: dict[str, frozenset[str]] = {
    "ping": EVERYONE,
    "heartbeat": EVERYONE,
    "command": frozenset({"instructor"}),
    "mark_finished": frozenset({"participant"}),
    "score": frozenset({"participant"}),
    "sound": frozenset({"instructor"}),
    "hr": frozenset({"participant"}),
    "heart_profile": frozenset({"participant"}),
    "straps": frozenset({"participant"}),
    "claim_strap": frozenset({"participant"}),
    "my_heart": frozenset({"participant"}),
}
FORBIDDEN = {
    "command": "Only the instructor can control the class.",
    "mark_finished": "Only a participant can mark their finish.",
    "score": "Only a participant can log a score.",
    "sound": "Only the instructor can switch the wall's sound.",
    "hr": "Only a participant's strap sends heart rates.",
    "heart_profile": "Only a participant has a heart profile.",
    "straps": "Only a participant claims a strap.",
    "claim_strap": "Only a participant claims a strap.",
    "my_heart": "Only a participant has a heart rate of their own.",
}
RATE_LIMITED = "Too many messages; slow down. Messages over the limit are dropped."
SOUND_NEEDS_ON = "a sound message needs on: true or false"
INPUTS_TOO_FAST = "Too many scores at once; the rest will be sent again in a moment."
PING_NEEDS_ID = "a ping needs an id: a string or a number"
HR_TOO_FAST = "Heart-rate samples come once a second; the extra ones were dropped."
HR_NEEDS_DATA = heart.NOT_HEX
SHOW_BPM_BOOL = "show_bpm is true or false."
AGE_OR_MAX = "Give your age or your max heart rate."
PING_NEEDS_T = "a ping needs t: the client's clock, in milliseconds"
