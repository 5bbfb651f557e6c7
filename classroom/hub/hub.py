"""The hub: connected screens grouped by class, fan-out, replay, presence, heartbeats.

Fan-out
    A message is encoded once (JSON, then one WebSocket frame) and written to
    every screen of its class. Audiences of a few hundred are written at once;
    larger ones are written by the class's pump task in slices of
    :data:`SLICE`, yielding to the event loop between slices, so a class with
    thousands of phones never holds back another class's cue. Per class,
    messages always go out in order.

Events arrive through the broker
    The class actor publishes each event to the broker's channel ``class:<id>``
    as ``b"<seq>\n<json>"``; the hub follows that channel for every class with
    screens on this process, so the actor never waits on a fan-out and another
    process's screens can follow the same class. A listener that falls behind
    the broker closes the class's screens with 1013; they come back and resume.

Replay
    Each class keeps its last :data:`REPLAY_SIZE` events. A screen that comes
    back with the last ``seq`` it saw, and the class's current ``epoch``, gets
    exactly the events it missed; otherwise it gets a fresh snapshot. The epoch
    is new every time this process starts serving a class, so after a restart
    (when the buffer is empty) screens take a snapshot.

Presence and heartbeats
    Instructors' screens hear who is connected, coalesced by :meth:`Hub.coalesce`
    to one update a second (leaderboards use the same). Every
    :data:`HEARTBEAT_S` seconds each screen gets a heartbeat, so a browser
    (which can't see WebSocket pings) notices a server that has gone quiet and
    reconnects. Half-open sockets on the server's side (a phone that vanished)
    are closed by the WebSocket pings uvicorn sends every 20 s, which browsers
    answer by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from classroom.broker import Broker, Subscription, SubscriptionOverflow
from classroom.hub.frames import Outgoing, text_frame
from classroom.hub.screens import CLOSE_TRY_AGAIN, Screen
from classroom.hub.wire import Message, encode

log = logging.getLogger(__name__)

REPLAY_SIZE = 1024
SLICE = 256
HEARTBEAT_S = 15.0
PRESENCE_INTERVAL_S = 1.0

#: Messages, each with the roles of the screens that get it (None: every screen).
Audiences = Iterable[tuple[Message, "frozenset[str] | None"]]


@dataclass(eq=False)
class ClassChannel:
    class_id: int
    epoch: str = field(default_factory=lambda: secrets.token_hex(4))
    screens: dict[Screen, None] = field(default_factory=dict)
    replay: deque[Outgoing] = field(default_factory=lambda: deque(maxlen=REPLAY_SIZE))
    pending: deque[tuple[Outgoing, frozenset[str] | None]] = field(default_factory=deque)
    pump: asyncio.Task[None] | None = None
    # Coalesced updates: the latest message of each kind waits for its turn.
    latest: dict[str, Callable[[], Audiences]] = field(default_factory=dict)
    due: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    last_sent: dict[str, float] = field(default_factory=dict)
    listener: asyncio.Task[None] | None = None


def class_channel(class_id: int) -> str:
    """The broker channel a class's events travel on."""
    return f"class:{class_id}"


def event_payload(seq: int, text: str) -> bytes:
    """A class event as the broker carries it: its seq, a newline, its JSON."""
    return f"{seq}\n{text}".encode()


class Hub:
    def __init__(self, broker: Broker, *, clock: Callable[[], int] | None = None) -> None:
        self._broker = broker
        self._channels: dict[int, ClassChannel] = {}
        self._clock = clock or (lambda: int(time.time() * 1000))

    async def follow(self, class_id: int) -> None:
        """Listen to a class's events on the broker (once); returns when subscribed."""
        channel = self.channel(class_id)
        if channel.listener is None:
            subscription = await self._broker.subscribe(class_channel(class_id))
            if channel.listener is None:
                channel.listener = asyncio.get_running_loop().create_task(
                    self._listen(channel, subscription), name=f"hub-{class_id}"
                )
            else:  # another caller subscribed while this one waited
                await subscription.close()

    async def _listen(self, channel: ClassChannel, subscription: Subscription) -> None:
        try:
            async for payload in subscription:
                head, _, body = payload.partition(b"\n")
                outgoing = Outgoing(body.decode(), text_frame(body), int(head))
                channel.replay.append(outgoing)
                self._send(channel, outgoing, None)
        except SubscriptionOverflow as exc:
            log.error("class %s: %s; its screens will reconnect", channel.class_id, exc)
            channel.listener = None
            channel.replay.clear()
            channel.epoch = secrets.token_hex(4)  # what they missed is gone: snapshots
            for screen in list(channel.screens):
                screen.close_soon(CLOSE_TRY_AGAIN, "fell behind, reconnect")
                self.remove(screen)
        finally:
            await subscription.close()

    # -- membership --------------------------------------------------------------------

    def channel(self, class_id: int) -> ClassChannel:
        channel = self._channels.get(class_id)
        if channel is None:
            channel = self._channels[class_id] = ClassChannel(class_id)
        return channel

    def epoch(self, class_id: int) -> str:
        return self.channel(class_id).epoch

    def add(self, screen: Screen) -> None:
        channel = self.channel(screen.class_id)
        channel.screens[screen] = None
        if screen.role == "instructor":
            screen.send(self.presence(screen.class_id))  # who is here already
        else:
            self._presence_changed(channel)

    def remove(self, screen: Screen) -> None:
        channel = self._channels.get(screen.class_id)
        if channel is not None and screen in channel.screens:
            del channel.screens[screen]
            if screen.role != "instructor":
                self._presence_changed(channel)

    def screens(self, class_id: int) -> list[Screen]:
        channel = self._channels.get(class_id)
        return [] if channel is None else list(channel.screens)

    def count(self, class_id: int) -> int:
        """How many screens are connected to a class (on this process)."""
        channel = self._channels.get(class_id)
        return 0 if channel is None else len(channel.screens)

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
        """Hand class events (each with its ``seq``) to the broker, for every follower."""
        for message in events:
            await self._broker.publish(
                class_channel(class_id), event_payload(message["seq"], encode(message))
            )

    def broadcast(
        self, class_id: int, messages: Iterable[Message], roles: Iterable[str] | None = None
    ) -> None:
        """Send messages that are not class events (no ``seq``, no replay)."""
        channel = self._channels.get(class_id)
        if channel is None:
            return
        audience = None if roles is None else frozenset(roles)
        for message in messages:
            self._send(channel, Outgoing.of(encode(message)), audience)

    def _send(
        self, channel: ClassChannel, outgoing: Outgoing, audience: frozenset[str] | None
    ) -> None:
        if not channel.pending and len(channel.screens) <= SLICE:
            _deliver(list(channel.screens), outgoing, audience)
            return
        channel.pending.append((outgoing, audience))
        if channel.pump is None:
            channel.pump = asyncio.get_running_loop().create_task(
                self._pump(channel), name=f"fan-out-{channel.class_id}"
            )

    async def _pump(self, channel: ClassChannel) -> None:
        try:
            while channel.pending:
                outgoing, audience = channel.pending.popleft()
                screens = list(channel.screens)
                for start in range(0, len(screens), SLICE):
                    _deliver(screens[start : start + SLICE], outgoing, audience)
                    await asyncio.sleep(0)
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
        self, class_id: int, key: str, render: Callable[[], Audiences], *, interval_s: float
    ) -> None:
        """:meth:`coalesce` for a state shown differently to different roles.

        ``render`` gives each message with the roles that get it (None: every
        screen), from one rendering of the state.
        """
        channel = self.channel(class_id)
        channel.latest[key] = render
        if key in channel.due:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, channel.last_sent.get(key, 0.0) + interval_s - loop.time())
        channel.due[key] = loop.call_later(wait, self._flush, channel, key)

    def _flush(self, channel: ClassChannel, key: str) -> None:
        channel.due.pop(key, None)
        render = channel.latest.pop(key, None)
        if render is None:
            return
        channel.last_sent[key] = asyncio.get_running_loop().time()
        for message, audience in render():
            self._send(channel, Outgoing.of(encode(message)), audience)

    # -- presence ----------------------------------------------------------------------

    def _presence_changed(self, channel: ClassChannel) -> None:
        class_id = channel.class_id
        self.coalesce(
            class_id,
            "presence",
            lambda: self.presence(class_id),
            interval_s=PRESENCE_INTERVAL_S,
            roles=["instructor"],
        )

    def presence(self, class_id: int) -> Message:
        """Who is connected to a class right now."""
        participants = set()
        displays = 0
        for screen in self.screens(class_id):
            if screen.role == "participant" and screen.identity is not None:
                participants.add(screen.identity)
            elif screen.role == "display":
                displays += 1
        return {"type": "presence", "participants": sorted(participants), "displays": displays}

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
            for task in (channel.pump, channel.listener):
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
