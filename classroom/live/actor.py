"""The class actor: one asyncio task per live class, the only writer of that class.

It sleeps until the earlier of the class's next deadline and the next command,
feeds the pure core (:mod:`classroom.domain.session`), writes the resulting
transition to the database, and only then publishes its events. Deadlines are
absolute instants, so waking a little late never pushes later cues back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from classroom import logs
from classroom.db.scores import Reply
from classroom.domain import session
from classroom.domain.commands import Command
from classroom.domain.errors import CommandRejected, DomainError
from classroom.domain.events import Event
from classroom.domain.scoring import (
    CheckedScore,
    ScoreInput,
    check_score,
    late_scores_until,
    takes_late_scores,
)
from classroom.domain.session import ClassState, Outcome
from classroom.domain.timeline import Timeline
from classroom.live.clock import Clock

log = logging.getLogger(__name__)

#: Writes a transition after the given last sequence number; returns each event's number.
Persist = Callable[[int, int, ClassState, Sequence[Event]], Awaitable[list[int]]]
#: Hands persisted, numbered events on to the screens.
Publish = Callable[[int, ClassState, Sequence[tuple[int, Event]]], Awaitable[None]]


class Scores(Protocol):
    """Where a class's checked scores go (:class:`classroom.live.scoring.ScoreKeeper`)."""

    async def ready(self, class_id: int) -> None:
        """Be ready to take the class's scores at once (load what was stored)."""

    def take(self, class_id: int, score: ScoreInput, checked: CheckedScore, reply: Reply) -> None:
        """Take a score now (raising if it can't count); ``reply`` hears once it is stored."""


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
    done: asyncio.Future[Any]


@dataclass(slots=True)
class _Score:
    score: ScoreInput
    reply: Reply


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
        scores: Scores | None = None,
    ) -> None:
        self.class_id = class_id
        self.timeline = timeline
        self.state = state
        self.last_seq = last_seq
        self._clock = clock
        self._persist = persist
        self._publish = publish
        self._scores = scores
        self._inbox: deque[_Request | _Score] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False
        self.token = 0  # the fencing token of its lease (classroom/db/leases.py)

    async def submit(self, command: Command) -> ClassState:
        """Apply ``command`` now; returns the new state or raises ``CommandRejected``."""
        return await self.post(command)

    def post(self, command: Command) -> asyncio.Future[ClassState]:
        """Queue ``command`` now, in turn with the scores posted so far; the future hears."""
        done: asyncio.Future[ClassState] = asyncio.get_running_loop().create_future()
        self._post(_Request(command, done))
        return done

    def stop(self) -> None:
        """End :meth:`run` at its next wait, between two commits (this process is stopping).

        Whatever is still queued then is answered with :class:`ClassFailed`, so
        it is sent again, to the class's next owner.
        """
        self._stopping = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def post_score(self, score: ScoreInput, reply: Reply) -> None:
        """Check and store a score, in turn with the class's commands, without waiting.

        ``reply`` hears once: True when the score is stored, False when it was a
        repeat of one already stored, or the exception that kept it from counting.
        """
        self._post(_Score(score, reply))

    def _post(self, request: _Request | _Score) -> None:
        self._inbox.append(request)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Drive the class until it ends, then take late scores until their grace ends.

        A finished class still takes the scores phones tapped before the end and
        could only send later (see :data:`~classroom.domain.scoring.LATE_INPUT_MS`);
        commands are refused as for any class that has ended.
        """
        # What this task logs is the class's, not the request's that happened to start it
        # (the registry starts it in a context of its own; this holds wherever it runs).
        logs.current_class.set(self.class_id)
        logs.current_request.set(None)
        while self.state.phase not in session.TERMINAL or self._takes_late_scores():
            request = await self._next_request()
            if self._stopping:
                if request is not None:
                    self._inbox.appendleft(request)
                self.fail_waiting()
                return
            now = self._clock.now_ms()
            if request is None:
                if self.state.phase in session.TERMINAL:
                    break  # the grace for late scores is over
                await self._commit(session.tick(self.timeline, self.state, now))
                continue
            if isinstance(request, _Score):
                await self._take_scores(request, now)
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

    def _takes_late_scores(self) -> bool:
        return self._scores is not None and takes_late_scores(self.state, self._clock.now_ms())

    def _deadline(self) -> int | None:
        """When the actor must wake: the class's next deadline, or the end of the grace."""
        if self.state.phase in session.TERMINAL:
            return late_scores_until(self.state)
        return session.next_deadline(self.timeline, self.state)

    async def _take_scores(self, first: _Score, now: int) -> None:
        """Take ``first`` and every score queued right behind it, in one go.

        Phones send scores far more often than anything else, so they are taken
        in runs: the class is brought up to ``now`` and the book readied once,
        then each score is checked and taken without a pause between them (none
        can arrive meanwhile). A command behind them waits for the run to end.
        """
        try:
            await self._commit(session.tick(self.timeline, self.state, now))
            if self._scores is not None:
                await self._scores.ready(self.class_id)
        except BaseException:
            first.reply(ClassFailed())
            raise
        self._take_score(first)
        inbox = self._inbox
        while inbox and isinstance(inbox[0], _Score):
            request = inbox.popleft()
            assert isinstance(request, _Score)
            self._take_score(request)

    def _take_score(self, request: _Score) -> None:
        try:
            checked = check_score(self.timeline, self.state, request.score)
            if self._scores is None:
                raise CommandRejected("this class doesn't take scores")
            self._scores.take(self.class_id, request.score, checked, request.reply)
        except DomainError as exc:
            request.reply(exc)
        except Exception:
            request.reply(ClassFailed())
            raise

    async def _next_request(self) -> _Request | _Score | None:
        """The next command, or None when the next deadline has come.

        One future and one timer handle per wait: with hundreds of classes idling
        between cues, this is most of what the process does.
        """
        loop = asyncio.get_running_loop()
        while not self._inbox and not self._stopping:
            deadline = self._deadline()
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
                return None  # the deadline came, or the actor is stopping
        return self._inbox.popleft() if self._inbox else None

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
        self._refuse_waiting(ClassFailed)

    def _reject_waiting(self) -> None:
        self._refuse_waiting(lambda: CommandRejected(f"the class has {self.state.phase}"))

    def _refuse_waiting(self, error: Callable[[], Exception]) -> None:
        while self._inbox:
            request = self._inbox.popleft()
            if isinstance(request, _Score):
                request.reply(error())
            elif not request.done.done():
                request.done.set_exception(error())
