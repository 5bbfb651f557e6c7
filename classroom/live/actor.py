"""The class actor: one asyncio task per live class, the only writer of that class.

It sleeps until the earlier of the class's next deadline and the next command,
feeds the pure core (:mod:`classroom.domain.session`), writes the resulting
transition to the database, and only then publishes its events. Deadlines are
absolute instants, so waking a little late never pushes later cues back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from classroom.domain import session
from classroom.domain.commands import Command
from classroom.domain.errors import CommandRejected, DomainError
from classroom.domain.events import Event
from classroom.domain.scoring import CheckedScore, ScoreInput, check_score
from classroom.domain.session import ClassState, Outcome
from classroom.domain.timeline import Timeline
from classroom.live.clock import Clock

log = logging.getLogger(__name__)

#: Writes a transition after the given last sequence number; returns each event's number.
Persist = Callable[[int, int, ClassState, Sequence[Event]], Awaitable[list[int]]]
#: Takes a checked score (raising if it can't count) and returns a future that says,
#: once the score is stored, whether it was new (False: a repeat of its client id).
RecordScore = Callable[[int, ScoreInput, CheckedScore], Awaitable["asyncio.Future[bool]"]]
#: Hands persisted, numbered events on to the screens.
Publish = Callable[[int, ClassState, Sequence[tuple[int, Event]]], Awaitable[None]]


class ClassFailed(Exception):
    """A command that could not be saved; the class restarts from its last saved state."""

    def __init__(self) -> None:
        super().__init__(
            "The class couldn't save that and is restarting from its last saved state."
            " Try again in a moment."
        )


@dataclass(slots=True)
class _Request:
    command: Command | ScoreInput
    done: asyncio.Future[Any]


def _settle(done: asyncio.Future[Any], stored: asyncio.Future[bool]) -> None:
    if done.done():
        return
    if stored.cancelled() or stored.exception() is not None:
        done.set_exception(ClassFailed())
    else:
        done.set_result(stored.result())


def _wake_up(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)


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
        record_score: RecordScore | None = None,
    ) -> None:
        self.class_id = class_id
        self.timeline = timeline
        self.state = state
        self.last_seq = last_seq
        self._clock = clock
        self._persist = persist
        self._publish = publish
        self._record_score = record_score
        self._inbox: deque[_Request] = deque()
        self._wake: asyncio.Future[None] | None = None

    async def submit(self, command: Command) -> ClassState:
        """Apply ``command`` now; returns the new state or raises ``CommandRejected``."""
        done: asyncio.Future[ClassState] = asyncio.get_running_loop().create_future()
        self._post(_Request(command, done))
        return await done

    def post_score(self, score: ScoreInput) -> asyncio.Future[bool]:
        """Check and store a score, in turn with the class's commands, without waiting.

        The future's result is False when the score was a repeat of one already
        stored; it raises when the score can't count.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._post(_Request(score, done))
        return done

    def _post(self, request: _Request) -> None:
        self._inbox.append(request)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Drive the class until it finishes or is cancelled."""
        while self.state.phase not in session.TERMINAL:
            request = await self._next_request()
            now = self._clock.now_ms()
            if request is None:
                await self._commit(session.tick(self.timeline, self.state, now))
                continue
            if isinstance(request.command, ScoreInput):
                await self._score(request, request.command, now)
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

    async def _score(self, request: _Request, score: ScoreInput, now: int) -> None:
        try:
            await self._commit(session.tick(self.timeline, self.state, now))
            checked = check_score(self.timeline, self.state, score)
            if self._record_score is None:
                raise CommandRejected("this class doesn't take scores")
            stored = await self._record_score(self.class_id, score, checked)
        except DomainError as exc:
            request.done.set_exception(exc)
        except Exception:
            request.done.set_exception(ClassFailed())
            raise
        else:
            # The write is batched with other inputs: answer when it has committed,
            # without holding up the class's next command or input meanwhile.
            stored.add_done_callback(functools.partial(_settle, request.done))

    async def _next_request(self) -> _Request | None:
        """The next command, or None when the next deadline has come.

        One future and one timer handle per wait: with hundreds of classes idling
        between cues, this is most of what the process does.
        """
        loop = asyncio.get_running_loop()
        while not self._inbox:
            deadline = session.next_deadline(self.timeline, self.state)
            timer = None
            if deadline is not None:
                delay = (deadline - self._clock.now_ms()) / 1000
                if delay <= 0:
                    return None
                wake = self._wake = loop.create_future()
                timer = loop.call_at(loop.time() + delay, _wake_up, wake)
            else:
                wake = self._wake = loop.create_future()
            try:
                await wake
            finally:
                self._wake = None
                if timer is not None:
                    timer.cancel()
            if not self._inbox:
                return None  # the deadline came
        return self._inbox.popleft()

    async def _commit(self, outcome: Outcome) -> None:
        if not outcome.events and outcome.state == self.state:
            return
        seqs = await self._persist(self.class_id, self.last_seq, outcome.state, outcome.events)
        self.state = outcome.state
        self.last_seq += len(seqs)
        await self._publish(
            self.class_id, outcome.state, list(zip(seqs, outcome.events, strict=True))
        )

    def fail_waiting(self) -> None:
        """Tell every command still queued that it was not applied (the actor died)."""
        while self._inbox:
            request = self._inbox.popleft()
            if not request.done.done():
                request.done.set_exception(ClassFailed())

    def _reject_waiting(self) -> None:
        while self._inbox:
            request = self._inbox.popleft()
            request.done.set_exception(CommandRejected(f"the class has {self.state.phase}"))
