"""The class actor: one asyncio task per live class, the only writer of that class.

It sleeps until the earlier of the class's next deadline and the next command,
feeds the pure core (:mod:`classroom.domain.session`), writes the resulting
transition to the database, and only then publishes its events. Deadlines are
absolute instants, so waking a little late never pushes later cues back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from classroom.domain import session
from classroom.domain.commands import Command
from classroom.domain.errors import CommandRejected
from classroom.domain.events import Event
from classroom.domain.session import ClassState, Outcome
from classroom.domain.timeline import Timeline
from classroom.live.clock import Clock

log = logging.getLogger(__name__)

#: Writes a transition after the given last sequence number; returns each event's number.
Persist = Callable[[int, int, ClassState, Sequence[Event]], Awaitable[list[int]]]
#: Hands persisted, numbered events on to the screens.
Publish = Callable[[int, ClassState, Sequence[tuple[int, Event]]], None]


class ClassFailed(Exception):
    """A command that could not be saved; the class restarts from its last saved state."""

    def __init__(self) -> None:
        super().__init__(
            "The class couldn't save that and is restarting from its last saved state."
            " Try again in a moment."
        )


@dataclass(slots=True)
class _Request:
    command: Command
    done: asyncio.Future[ClassState]


class ClassActor:
    def __init__(
        self,
        class_id: int,
        timeline: Timeline,
        state: ClassState,
        *,
        last_seq: int,
        clock: Clock,
        persist: Persist,
        publish: Publish,
    ) -> None:
        self.class_id = class_id
        self.timeline = timeline
        self.state = state
        self.last_seq = last_seq
        self._clock = clock
        self._persist = persist
        self._publish = publish
        self._inbox: asyncio.Queue[_Request] = asyncio.Queue()

    async def submit(self, command: Command) -> ClassState:
        """Apply ``command`` now; returns the new state or raises ``CommandRejected``."""
        done: asyncio.Future[ClassState] = asyncio.get_running_loop().create_future()
        await self._inbox.put(_Request(command, done))
        return await done

    async def run(self) -> None:
        """Drive the class until it finishes or is cancelled."""
        while self.state.phase not in session.TERMINAL:
            request = await self._next_request()
            now = self._clock.now_ms()
            if request is None:
                await self._commit(session.tick(self.timeline, self.state, now))
                continue
            try:
                outcome = session.handle(self.timeline, self.state, request.command, now)
            except Exception as exc:  # a rejection, or a bug: either way, the caller hears
                if not request.done.done():
                    request.done.set_exception(exc)
                continue
            try:
                await self._commit(outcome)
            except BaseException as exc:
                if not request.done.done():
                    request.done.set_exception(ClassFailed() if isinstance(exc, Exception) else exc)
                raise
            if not request.done.done():
                request.done.set_result(self.state)
        self._reject_waiting()

    async def _next_request(self) -> _Request | None:
        deadline = session.next_deadline(self.timeline, self.state)
        if deadline is None:
            return await self._inbox.get()
        if not self._inbox.empty():
            return self._inbox.get_nowait()
        delay = (deadline - self._clock.now_ms()) / 1000
        if delay <= 0:
            return None
        try:
            return await asyncio.wait_for(self._inbox.get(), delay)
        except TimeoutError:
            return None

    async def _commit(self, outcome: Outcome) -> None:
        if not outcome.events and outcome.state == self.state:
            return
        seqs = await self._persist(self.class_id, self.last_seq, outcome.state, outcome.events)
        self.state = outcome.state
        self.last_seq += len(seqs)
        self._publish(self.class_id, outcome.state, list(zip(seqs, outcome.events, strict=True)))

    def fail_waiting(self) -> None:
        """Tell every command still queued that it was not applied (the actor died)."""
        while not self._inbox.empty():
            request = self._inbox.get_nowait()
            if not request.done.done():
                request.done.set_exception(ClassFailed())

    def _reject_waiting(self) -> None:
        while not self._inbox.empty():
            request = self._inbox.get_nowait()
            request.done.set_exception(CommandRejected(f"the class has {self.state.phase}"))
