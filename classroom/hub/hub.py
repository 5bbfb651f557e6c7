"""The hub: connected screens grouped by class, fan-out, replay, presence, heartbeats.

Fan-out
    A message is encoded once (JSON, then one WebSocket frame) and written to
    every screen of its class. Audiences of a few hundred are written at once;
    larger ones are written by the class's pump task in slices of
    :data:`SLICE`, yielding to the event loop between slices, so a class with
    thousands of phones never holds back another class's cue. Per class,
    messages always go out in order.

Everything a screen sees arrives through the broker
    The class's owner (one process; see classroom/db/leases.py) publishes each
    event to the broker's channel ``class:<id>`` as ``b"<seq>\n<json>"``; the
    hub follows that channel for every class with screens on this process, so
    the actor never waits on a fan-out and every process's screens follow the
    same class. What is not a class event travels on the same channel, with a
    head line saying what it is (:func:`broadcast_payload`): leaderboards and
    the phones' strips (the owner keeps them to four a second), roster counts,
    notices, the wall's ``sound``, and each process's part of the presence.

    A listener that falls behind the broker, or whose connection to the broker
    drops (Redis restarted), has missed events: it closes the class's screens
    with 1013; they come back (here or elsewhere) and resume from the class's
    log in the database, and the class is followed again.

Replay
    Each class keeps its last :data:`REPLAY_SIZE` events. A screen that comes
    back with the last ``seq`` it saw, and the class's ``epoch``, gets exactly
    the events it missed: from this replay, or from the class's log (see
    :meth:`~classroom.live.registry.ClassRegistry.attach`), on any process.
    The epoch belongs to the class (stored with it), so it stays the same when
    a screen moves to another process or the class to another owner.

Coalesced and rolling updates
    Where only the newest state matters, :meth:`Hub.coalesce` sends it at most
    once an interval, rendered when it goes out: who is connected (to
    instructors, once a second), leaderboards. :meth:`Hub.roll` does the same
    for a state that thousands of screens get (the phones' strips): each screen
    gets the newest in turn, a share of them every :data:`ROLL_TICK_S`, within
    a budget of writes a second, so the writes are spread over the interval
    rather than all made at once while inputs wait.

Presence and heartbeats
    Instructors' screens hear who is connected, at most once a second: a console
    hears it when it connects (or with the update already due), then with each
    change. Each process publishes its own part (its screens of the class) when
    it changes, and every :data:`PRESENCE_REFRESH_S`; a part not refreshed for
    three times that (its process died) no longer counts. A process that starts
    following a class asks the others for their parts.

    Every :data:`HEARTBEAT_S` seconds each screen gets a heartbeat, so a
    browser (which can't see WebSocket pings) notices a server that has gone
    quiet and reconnects. Half-open sockets on the server's side (a phone that vanished)
    are closed by the WebSocket pings uvicorn sends every 20 s, which browsers
    answer by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from classroom.broker import Broker, BrokerError, Subscription, SubscriptionBroken
from classroom.broker.reading import read_forever
from classroom.hub.frames import Outgoing, text_frame
from classroom.hub.screens import CLOSE_REVOKED, CLOSE_TRY_AGAIN, Screen
from classroom.hub.wire import Message, encode
from classroom.metrics import Metrics

log = logging.getLogger(__name__)

REPLAY_SIZE = 1024
SLICE = 256
HEARTBEAT_S = 15.0
PRESENCE_INTERVAL_S = 1.0
PRESENCE_REFRESH_S = 5.0
SCREENS = "screens"
"""The broker channel on which a process tells the others to close revoked screens."""
ROLL_TICK_S = 0.05
"""How often a rolling update (:meth:`Hub.roll`) writes its next share of screens."""

#: Messages, each with the roles of the screens that get it (None: every screen).
Audiences = Iterable[tuple[Message, "frozenset[str] | None"]]


@dataclass(eq=False)
class ClassChannel:
    class_id: int
    screens: dict[Screen, None] = field(default_factory=dict)
    instructors: int = 0  # how many of the screens are instructors'
    replay: deque[Outgoing] = field(default_factory=lambda: deque(maxlen=REPLAY_SIZE))
    # Messages waiting for the pump, each with when it came (perf_counter, for the metrics).
    pending: deque[tuple[Outgoing, frozenset[str] | None, float]] = field(default_factory=deque)
    pump: asyncio.Task[None] | None = None
    # Coalesced updates: the latest message of each kind waits for its turn.
    latest: dict[str, Callable[[], Audiences]] = field(default_factory=dict)
    due: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    last_sent: dict[str, float] = field(default_factory=dict)
    rolling: dict[str, Rolling] = field(default_factory=dict)
    listener: asyncio.Task[None] | None = None
    # When each event this process published was handed to the broker (perf_counter),
    # until its listener hears it back: the broker's lag (see Hub.publish).
    published: dict[int, float] = field(default_factory=dict)
    # Goes up every time the listener starts: what was read under an older one
    # may have missed events.
    generation: int = 0
    seen: int = 0  # the newest seq heard under this generation
    # The leaderboard each role was last sent, for a screen that comes meanwhile.
    boards: dict[str, Outgoing] = field(default_factory=dict)
    # Each process's part of the presence: its participants, its displays, and when
    # it was heard (on the loop's clock). This process's own part is its screens.
    parts: dict[str, tuple[frozenset[int], int, float]] = field(default_factory=dict)
    # Messages for the broker, published in order by one task.
    outbox: deque[bytes] = field(default_factory=deque)
    sender: asyncio.Task[None] | None = None


@dataclass(eq=False)
class Rolling:
    """A state that a class's screens get in turn (see :meth:`Hub.roll`).

    A round visits every screen of the audience once, a share each tick; a screen
    that already has the newest state is skipped. Rounds start at least
    ``interval_s`` apart, so a screen gets at most one update an interval.
    """

    audience: frozenset[str] | None
    interval_s: float
    writes_per_s: float
    render: Callable[[], Message | str] | None = None  # a newer state, not encoded yet
    outgoing: Outgoing | None = None  # the newest state, encoded
    version: int = 0
    seen: dict[Screen, int] = field(default_factory=dict)  # the version each screen has
    turns: deque[Screen] = field(default_factory=deque)  # screens still to visit this round
    round_version: int = 0  # the version when this round started
    started: float = -math.inf  # when this round started, on the loop's clock
    credit: float = 0.0  # writes that may be made now
    ticked: float = 0.0  # when the credit was last counted
    timer: asyncio.TimerHandle | None = None


def class_channel(class_id: int) -> str:
    """The broker channel a class's events travel on."""
    return f"class:{class_id}"


def event_payload(seq: int, text: str) -> bytes:
    """A class event as the broker carries it: its seq, a newline, its JSON."""
    return f"{seq}\n{text}".encode()


def broadcast_payload(text: str, audience: frozenset[str] | None) -> bytes:
    """A message that is not a class event: ``@`` and the roles that get it (``*``: all)."""
    roles = "*" if audience is None else ",".join(sorted(audience))
    return f"@{roles}\n{text}".encode()


def _audience(roles: str) -> frozenset[str] | None:
    return None if roles == "*" else frozenset(roles.split(","))


class Hub:
    def __init__(
        self,
        broker: Broker,
        *,
        clock: Callable[[], int] | None = None,
        metrics: Metrics | None = None,
        node: str = "local",
    ) -> None:
        self._broker = broker
        self.node = node
        self._channels: dict[int, ClassChannel] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._clock = clock or (lambda: int(time.time() * 1000))
        metrics = metrics or Metrics()
        self._fanout = metrics.fanout
        self._broker_lag = metrics.broker_lag

    async def follow(self, class_id: int) -> None:
        """Listen to a class's events on the broker (once); returns when subscribed."""
        channel = self.channel(class_id)
        if channel.listener is None:
            subscription = await self._broker.subscribe(class_channel(class_id))
            if channel.listener is None:
                channel.generation += 1
                channel.seen = 0
                channel.listener = asyncio.get_running_loop().create_task(
                    self._listen(channel, subscription), name=f"hub-{class_id}"
                )
                self._publish_soon(channel, f"?{self.node}\n".encode())  # who is where?
            else:  # another caller subscribed while this one waited
                await subscription.close()

    async def _listen(self, channel: ClassChannel, subscription: Subscription) -> None:
        try:
            async for payload in subscription:
                if payload[:1].isdigit():
                    self._heard_event(channel, payload)
                else:
                    self._heard(channel, payload)
        except SubscriptionBroken as exc:  # fell behind, or the broker's connection dropped
            log.error("class %s: %s; its screens will reconnect", channel.class_id, exc)
            channel.listener = None
            channel.replay.clear()
            channel.published.clear()
            for screen in list(channel.screens):  # they resume from the class's log
                screen.close_soon(CLOSE_TRY_AGAIN, "missed events, reconnect")
                self.remove(screen)
        finally:
            await subscription.close()

    def _heard_event(self, channel: ClassChannel, payload: bytes) -> None:
        head, _, body = payload.partition(b"\n")
        seq = int(head)
        sent = channel.published.pop(seq, None)
        if sent is not None:
            self._broker_lag.observe(time.perf_counter() - sent)
        if seq <= channel.seen:
            return  # sent again by an owner that has just stepped down
        channel.seen = seq
        outgoing = Outgoing(body.decode(), text_frame(body), seq)
        channel.replay.append(outgoing)
        self._send(channel, outgoing, None)

    def _heard(self, channel: ClassChannel, payload: bytes) -> None:
        """A message on the class's channel that is not an event (see broadcast_payload)."""
        head, _, body = payload.partition(b"\n")
        kind, rest = head[:1], head[1:].decode()
        if kind == b"@":  # for the screens of some roles, here as everywhere
            audience = _audience(rest)
            outgoing = Outgoing(body.decode(), text_frame(body))
            if body.startswith(b'{"type":"leaderboard"'):
                for role in audience or ():
                    channel.boards[role] = outgoing
            self._send(channel, outgoing, audience)
        elif kind == b"~":  # a state the screens of a role get in turn (the phones' strip)
            key, roles, interval, writes = rest.split("|")
            text = body.decode()
            if text.startswith('{"type":"leaderboard"'):
                for role in roles.split(","):
                    channel.boards[role] = Outgoing.of(text)
            self.roll(
                channel.class_id,
                key,
                lambda: text,
                interval_s=float(interval),
                writes_per_s=float(writes),
                roles=roles.split(","),
            )
        elif kind == b"!":  # a process's part of the presence
            if rest == self.node:
                return
            data = json.loads(body)
            part = (frozenset(data["participants"]), int(data["displays"]))
            loop_now = asyncio.get_running_loop().time()
            before = channel.parts.get(rest)
            channel.parts[rest] = (*part, loop_now)
            if not part[0] and not part[1]:
                del channel.parts[rest]
            if before is None or before[:2] != part:
                self._presence_changed(channel, share=False)
        elif kind == b"?" and rest != self.node and channel.screens:
            self._share_presence(channel)  # for a process that has just come

    # -- membership --------------------------------------------------------------------

    def channel(self, class_id: int) -> ClassChannel:
        channel = self._channels.get(class_id)
        if channel is None:
            channel = self._channels[class_id] = ClassChannel(class_id)
        return channel

    def add(self, screen: Screen) -> None:
        channel = self.channel(screen.class_id)
        channel.screens[screen] = None
        if screen.role == "instructor":
            channel.instructors += 1
            self._greet(channel, screen)
        else:
            self._presence_changed(channel)

    def remove(self, screen: Screen) -> None:
        channel = self._channels.get(screen.class_id)
        if channel is not None and screen in channel.screens:
            del channel.screens[screen]
            if screen.role == "instructor":
                channel.instructors -= 1
            else:
                self._presence_changed(channel)

    def disconnect(self, source: tuple[str, int], reason: str) -> int:
        """Close every screen opened from ``source`` (a revoked display link or wall),
        on every process.

        The close code is 1008: the screen's link no longer works, so it should
        not try again. Returns how many screens this process closed.
        """
        message = json.dumps({"source": list(source), "reason": reason}).encode()
        task = asyncio.get_running_loop().create_task(self._tell_others(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return self._disconnect_here(source, reason)

    async def _tell_others(self, message: bytes) -> None:
        try:
            await self._broker.publish(SCREENS, message)
        except BrokerError as exc:  # a revoked link can't open a new socket anywhere anyway
            log.warning("other processes not told to close revoked screens: %s", exc)

    async def keep_listening(self) -> None:
        """Close this process's screens that another process revoked, for as long as it runs."""
        await read_forever(self._broker, SCREENS, self._revoked, what="revoked screens")

    def _revoked(self, payload: bytes) -> None:
        data = json.loads(payload)
        kind, number = data["source"]
        self._disconnect_here((str(kind), int(number)), str(data["reason"]))

    def _disconnect_here(self, source: Hashable, reason: str) -> int:
        closed = 0
        for channel in list(self._channels.values()):
            for screen in list(channel.screens):
                if screen.source == source:
                    screen.close_soon(CLOSE_REVOKED, reason)
                    self.remove(screen)
                    closed += 1
        return closed

    def roles(self) -> dict[str, int]:
        """How many screens are connected to this process, by role."""
        counts: dict[str, int] = {}
        for channel in self._channels.values():
            for screen in channel.screens:
                counts[screen.role] = counts.get(screen.role, 0) + 1
        return counts

    def screens(self, class_id: int) -> list[Screen]:
        channel = self._channels.get(class_id)
        return [] if channel is None else list(channel.screens)

    def generation(self, class_id: int) -> tuple[int, int]:
        """The class's listener's generation, and the newest seq it has heard."""
        channel = self.channel(class_id)
        return channel.generation, channel.seen

    def board(self, class_id: int, role: str) -> dict[str, Any] | None:
        """The leaderboard a screen of ``role`` was last sent here (None: none yet)."""
        channel = self._channels.get(class_id)
        outgoing = None if channel is None else channel.boards.get(role)
        return None if outgoing is None else cast(dict[str, Any], json.loads(outgoing.text))

    def remember_boards(self, class_id: int, boards: dict[str, Any]) -> None:
        """Keep the boards the class's owner says are the latest, until newer ones come."""
        channel = self.channel(class_id)
        for role, message in boards.items():
            if message is not None and role not in channel.boards:
                channel.boards[role] = Outgoing.of(encode(message))

    def replay_since(self, class_id: int, seq: int) -> list[Outgoing] | None:
        """The events after ``seq``, or None if the buffer no longer reaches back that far."""
        replay = self.channel(class_id).replay
        if not replay:
            return None
        first = replay[0].seq
        if first is None or seq < first - 1:
            return None
        return [out for out in replay if out.seq is not None and out.seq > seq]

    # -- fan-out -----------------------------------------------------------------------

    async def publish(self, class_id: int, events: Iterable[Message]) -> None:
        """Hand class events (each with its ``seq``) to the broker, for every follower.

        When this process follows the class too, it notes when each event left,
        and its listener measures the broker's lag when the event comes back. The
        payload is not changed for it: an event published elsewhere is not timed.
        """
        channel = self._channels.get(class_id)
        published = None if channel is None or channel.listener is None else channel.published
        if published is not None and len(published) >= REPLAY_SIZE:
            published.clear()  # events that never came back (a listener that died)
        for message in events:
            seq = message["seq"]
            if published is not None:
                published[seq] = time.perf_counter()
            await self._broker.publish(class_channel(class_id), event_payload(seq, encode(message)))

    def broadcast(
        self, class_id: int, messages: Iterable[Message], roles: Iterable[str] | None = None
    ) -> None:
        """Send messages that are not class events (no ``seq``, no replay) to the class's
        screens on every process, in the order given."""
        channel = self.channel(class_id)
        audience = None if roles is None else frozenset(roles)
        for message in messages:
            self._publish_soon(channel, broadcast_payload(encode(message), audience))

    def tell_here(self, class_id: int, messages: Iterable[Message]) -> None:
        """Send messages to the class's screens on this process only, now."""
        channel = self._channels.get(class_id)
        if channel is not None:
            for message in messages:
                self._send(channel, Outgoing.of(encode(message)), None)

    def _publish_soon(self, channel: ClassChannel, payload: bytes) -> None:
        """Publish on the class's channel, after what was queued before (no waiting)."""
        channel.outbox.append(payload)
        if channel.sender is None:
            channel.sender = asyncio.get_running_loop().create_task(
                self._publish_all(channel), name=f"hub-out-{channel.class_id}"
            )

    async def _publish_all(self, channel: ClassChannel) -> None:
        try:
            while channel.outbox:
                payload = channel.outbox.popleft()
                try:
                    await self._broker.publish(class_channel(channel.class_id), payload)
                except BrokerError as exc:  # the screens resync when the broker is back
                    log.debug("class %s: not published (%s)", channel.class_id, exc)
        finally:
            channel.sender = None

    def _send(
        self, channel: ClassChannel, outgoing: Outgoing, audience: frozenset[str] | None
    ) -> None:
        if not channel.pending and len(channel.screens) <= SLICE:
            if channel.screens:  # with nobody to write to, there is nothing to time
                started = time.perf_counter()
                _deliver(list(channel.screens), outgoing, audience)
                self._fanout.observe(time.perf_counter() - started)
            return
        channel.pending.append((outgoing, audience, time.perf_counter()))
        if channel.pump is None:
            channel.pump = asyncio.get_running_loop().create_task(
                self._pump(channel), name=f"fan-out-{channel.class_id}"
            )

    async def _pump(self, channel: ClassChannel) -> None:
        try:
            while channel.pending:
                outgoing, audience, queued_at = channel.pending.popleft()
                screens = list(channel.screens)
                for start in range(0, len(screens), SLICE):
                    _deliver(screens[start : start + SLICE], outgoing, audience)
                    await asyncio.sleep(0)
                self._fanout.observe(time.perf_counter() - queued_at)
        finally:
            channel.pump = None

    # -- coalesced updates --------------------------------------------------------------

    def coalesce(
        self,
        class_id: int,
        key: str,
        render: Callable[[], Message],
        *,
        interval_s: float,
        roles: Iterable[str] | None = None,
    ) -> None:
        """Send the latest state of ``key`` at most once every ``interval_s`` seconds.

        For updates where only the newest value matters (who is connected, a
        leaderboard): however many changes come in, screens get one message per
        interval, rendered when it is sent, never a queue of stale ones.
        """
        audience = None if roles is None else frozenset(roles)
        self.coalesce_audiences(
            class_id, key, lambda: ((render(), audience),), interval_s=interval_s
        )

    def coalesce_audiences(
        self,
        class_id: int,
        key: str,
        render: Callable[[], Audiences],
        *,
        interval_s: float,
        everywhere: bool = False,
    ) -> None:
        """:meth:`coalesce` for a state shown differently to different roles.

        ``render`` gives each message with the roles that get it (None: every
        screen), from one rendering of the state. ``everywhere``: to the class's
        screens on every process (through the broker), not only this one's.
        """
        channel = self.channel(class_id)
        if everywhere:
            channel.latest[key] = functools.partial(self._everywhere, channel, render)
        else:
            channel.latest[key] = render
        if key in channel.due:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, channel.last_sent.get(key, 0.0) + interval_s - loop.time())
        channel.due[key] = loop.call_later(wait, self._flush, channel, key)

    def _everywhere(self, channel: ClassChannel, render: Callable[[], Audiences]) -> Audiences:
        for message, audience in render():
            self._publish_soon(channel, broadcast_payload(encode(message), audience))
        return ()

    def roll_everywhere(
        self,
        class_id: int,
        key: str,
        message: Message,
        *,
        interval_s: float,
        writes_per_s: float,
        roles: Iterable[str],
    ) -> None:
        """:meth:`roll` on every process with screens of the class."""
        head = f"~{key}|{','.join(roles)}|{interval_s}|{writes_per_s}"
        self._publish_soon(self.channel(class_id), f"{head}\n{encode(message)}".encode())

    def _flush(self, channel: ClassChannel, key: str) -> None:
        channel.due.pop(key, None)
        render = channel.latest.pop(key, None)
        if render is None:
            return
        channel.last_sent[key] = asyncio.get_running_loop().time()
        for message, audience in render():
            self._send(channel, Outgoing.of(encode(message)), audience)

    def roll(
        self,
        class_id: int,
        key: str,
        render: Callable[[], Message | str],
        *,
        interval_s: float,
        writes_per_s: float,
        roles: Iterable[str] | None = None,
    ) -> None:
        """Send the latest state of ``key`` to each screen in turn, at most once an interval.

        Like :meth:`coalesce`, for an audience of thousands: the screens get the
        newest state a share at a time, every :data:`ROLL_TICK_S`, at most
        ``writes_per_s`` writes a second, rather than all in one burst. Each
        screen gets at most one update every ``interval_s`` (less often when the
        audience is larger than ``writes_per_s * interval_s``) and always, in the
        end, the newest state.
        """
        channel = self.channel(class_id)
        audience = None if roles is None else frozenset(roles)
        rolling = channel.rolling.get(key)
        if rolling is None:
            rolling = channel.rolling[key] = Rolling(audience, interval_s, writes_per_s)
        else:  # the latest call's settings hold from the next tick on
            rolling.audience, rolling.interval_s = audience, interval_s
            rolling.writes_per_s = writes_per_s
        rolling.render = render
        if rolling.timer is None:  # idle: the next round starts when it may
            self._next_round(channel, rolling)

    def _next_round(self, channel: ClassChannel, rolling: Rolling) -> None:
        when = rolling.started + rolling.interval_s
        loop = asyncio.get_running_loop()
        rolling.timer = loop.call_at(max(loop.time(), when), self._roll, channel, rolling)

    def _roll(self, channel: ClassChannel, rolling: Rolling) -> None:
        """One tick of a rolling update: start a round if one is due, write a share of it."""
        rolling.timer = None
        now = asyncio.get_running_loop().time()
        if rolling.render is not None:  # encoded once, however many screens get it
            rendered = rolling.render()
            rolling.outgoing = Outgoing.of(
                rendered if isinstance(rendered, str) else encode(rendered)
            )
            rolling.render = None
            rolling.version += 1
        turns = rolling.turns
        if not turns:
            if rolling.version == rolling.round_version:
                return  # every screen was visited since the last change
            audience = rolling.audience
            turns.extend(s for s in channel.screens if audience is None or s.role in audience)
            rolling.seen = {
                screen: rolling.seen[screen] for screen in turns if screen in rolling.seen
            }
            rolling.round_version = rolling.version
            rolling.started = now
        # Writes accrue at writes_per_s, up to one tick's share: a late tick writes no more.
        share = max(1.0, rolling.writes_per_s * ROLL_TICK_S)
        credit = min(share, rolling.credit + (now - rolling.ticked) * rolling.writes_per_s)
        rolling.ticked = now
        seen, version, outgoing = rolling.seen, rolling.version, rolling.outgoing
        screens = channel.screens
        assert outgoing is not None
        while turns and credit >= 1:
            screen = turns.popleft()
            if seen.get(screen) != version and screen in screens:
                seen[screen] = version
                screen.deliver(outgoing)
                credit -= 1
        rolling.credit = credit
        if turns:
            rolling.timer = asyncio.get_running_loop().call_later(
                ROLL_TICK_S, self._roll, channel, rolling
            )
        elif rolling.render is not None or rolling.version != rolling.round_version:
            self._next_round(channel, rolling)

    # -- presence ----------------------------------------------------------------------

    def _presence_changed(self, channel: ClassChannel, *, share: bool = True) -> None:
        """Who is here changed: instructors hear it, and (``share``) the other processes."""
        class_id = channel.class_id
        if share:
            self.coalesce_audiences(
                class_id,
                "presence-part",
                functools.partial(self._shared, channel),
                interval_s=PRESENCE_INTERVAL_S,
            )
        if channel.instructors:
            self.coalesce(
                class_id,
                "presence",
                lambda: self.presence(class_id),
                interval_s=PRESENCE_INTERVAL_S,
                roles=["instructor"],
            )

    def _shared(self, channel: ClassChannel) -> Audiences:
        self._share_presence(channel)
        return ()  # nothing for this process's screens

    def _share_presence(self, channel: ClassChannel) -> None:
        """Publish this process's part of the class's presence."""
        participants, displays = self._local_part(channel)
        body = encode({"participants": sorted(participants), "displays": displays})
        self._publish_soon(channel, f"!{self.node}\n{body}".encode())

    @staticmethod
    def _local_part(channel: ClassChannel) -> tuple[set[int], int]:
        participants = set()
        displays = 0
        for screen in channel.screens:
            if screen.role == "participant" and screen.identity is not None:
                participants.add(screen.identity)
            elif screen.role == "display":
                displays += 1
        return participants, displays

    def _greet(self, channel: ClassChannel, screen: Screen) -> None:
        """Tell a console that has just come who is here, keeping to one update a second.

        At once, unless an update is already due (it tells this console too, within
        the second); the next update then waits its second.
        """
        if "presence" in channel.due:
            return
        screen.send(self.presence(channel.class_id))
        channel.last_sent["presence"] = asyncio.get_running_loop().time()

    def presence(self, class_id: int) -> Message:
        """Who is connected to a class right now, on every process."""
        channel = self.channel(class_id)
        participants, displays = self._local_part(channel)
        stale = asyncio.get_running_loop().time() - 3 * PRESENCE_REFRESH_S
        for node, (others, their_displays, heard) in list(channel.parts.items()):
            if heard < stale:  # its process has gone quiet: it died, or lost the class
                del channel.parts[node]
                continue
            participants |= others
            displays += their_displays
        return {"type": "presence", "participants": sorted(participants), "displays": displays}

    async def keep_presence(self) -> None:
        """Publish this process's part of each class's presence every few seconds."""
        while True:
            await asyncio.sleep(PRESENCE_REFRESH_S)
            for channel in list(self._channels.values()):
                if channel.screens and channel.listener is not None:
                    self._share_presence(channel)

    # -- heartbeats --------------------------------------------------------------------

    async def keep_heartbeats(self) -> None:
        """Beat every screen, and close the ones that have gone silent, until cancelled."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self.beat()

    def beat(self) -> None:
        """Send every screen a heartbeat carrying the server's clock."""
        heartbeat = Outgoing.of(encode({"type": "heartbeat", "server_now": self._clock()}))
        for channel in list(self._channels.values()):
            self._send(channel, heartbeat, None)  # in slices, behind any fan-out under way

    async def close(self) -> None:
        for channel in self._channels.values():
            for handle in channel.due.values():
                handle.cancel()
            for rolling in channel.rolling.values():
                if rolling.timer is not None:
                    rolling.timer.cancel()
            for task in (channel.pump, channel.listener, channel.sender):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


def _deliver(screens: list[Screen], outgoing: Outgoing, audience: frozenset[str] | None) -> None:
    seq = outgoing.seq
    for screen in screens:
        if audience is not None and screen.role not in audience:
            continue
        if seq is not None:
            if screen.last_seq >= seq:
                continue  # it already has this one (from its snapshot or a replay)
            screen.last_seq = seq
        screen.deliver(outgoing)
