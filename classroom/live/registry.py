"""The registry of open classes: one actor per class, in the process that owns it.

A process runs a class's actor only while it holds the class's lease
(classroom/db/leases.py); inputs that reach any other process go to the owner
through the router (classroom/live/router.py). The registry keeps the
process's heartbeat, which renews every lease it holds, and steps down from a
class that another process has claimed. With several processes it watches for
classes that nobody alive owns, and claims them; when this process stops, it
hands its classes back so that others take them on without a pause.

It brings back a class whose actor died: the error is logged, the class restarts
from its last persisted state, and its screens are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from classroom import logs
from classroom.broker import BrokerError
from classroom.db.classes import ClassStore, HeartbeatStore, LoadedClass
from classroom.db.leases import Lease, LeaseStore, Owned
from classroom.db.migrate import Waiting
from classroom.domain import commands as cmd
from classroom.domain import session
from classroom.domain.codec import from_plain, to_plain
from classroom.domain.errors import CommandRejected, DomainError
from classroom.domain.events import CueFired, Event, PhaseChanged, SegmentStarted
from classroom.domain.scorebook import Fix
from classroom.domain.scoring import Division, ScoreInput, takes_late_scores
from classroom.domain.session import LIVE, TERMINAL, ClassState, Phase, RestartPolicy
from classroom.domain.timeline import ScoreKind
from classroom.hub import wire
from classroom.hub.frames import Outgoing
from classroom.hub.hub import REPLAY_SIZE, Hub
from classroom.hub.screens import Screen
from classroom.live import collector
from classroom.live.actor import ClassActor, ClassFailed
from classroom.live.clock import Clock
from classroom.live.heart import HeartKeeper
from classroom.live.router import ENDED, Answer, Router, Unavailable, answer_of
from classroom.live.scoring import ScoreKeeper
from classroom.metrics import Metrics

log = logging.getLogger(__name__)

HEARTBEAT_MS = 1000
HEARTBEATS_KEPT_MS = 7 * 24 * 3_600_000
"""A process that has not beaten for a week, and owns no class, is forgotten."""
WATCH_S = 1.0
"""How often a process of several looks for classes that nobody alive owns."""
RESTART_DELAYS_S = (0.2, 1.0, 5.0)  # after the third failure in a row, keep trying every 5 s
T = TypeVar("T")
NO_HEART = "This server doesn't take heart rates."
CLASS_RESTARTED = "The class hit a problem and was restarted from its last saved state."
#: Where a class runs: here (its actor), in another process, or nowhere (None: ended).
Place = ClassActor | Owned | None


class ClassRegistry:
    def __init__(
        self,
        store: ClassStore,
        hub: Hub,
        clock: Clock,
        *,
        leases: LeaseStore,
        heartbeats: HeartbeatStore | None = None,
        scores: ScoreKeeper | None = None,
        heart: HeartKeeper | None = None,
        asset_version: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.scores = scores
        self.heart = heart
        self.leases = leases
        self._hub = hub
        self.clock = clock
        self._heartbeats = heartbeats
        self.node = leases.node
        self.router: Router | None = None  # with several processes (see classroom/web/app.py)
        # Told of each phase change of a class this process runs (class id, phase,
        # previous): the webhooks' class events (classroom/webhooks.py).
        self.on_phase: Callable[[int, str, str], None] | None = None
        self._actors: dict[int, ClassActor] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._titles: dict[int, str] = {}
        self._epochs: dict[int, str] = {}
        self._failures: dict[int, int] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._started = False
        # What a screen of a class run elsewhere is shown first: the class as last
        # read from the database (then the events since, from the hub's replay).
        self._views: dict[int, tuple[int, LoadedClass]] = {}  # with the hub's generation
        self._viewing: dict[int, asyncio.Future[LoadedClass | None]] = {}
        self._asking: dict[int, asyncio.Future[Any]] = {}  # the owner, for its boards
        self._held: dict[int, int] = {}  # the token this process last ran each class with
        self._closing = False
        # Every snapshot and resumed message names the screens' assets: a screen
        # whose page is older reloads itself (see classroom/web/assets.py).
        self._welcome = {"version": asset_version} if asset_version else {}
        self._metrics = metrics or Metrics(self.node)

    # -- start-up ---------------------------------------------------------------------

    async def resume(self) -> list[int]:
        """Start an actor for every class that was open and that nobody alive owns.

        Each goes through :meth:`locate`, as a class a screen asks for first does,
        so its restart policy is applied once, whichever comes first.
        """
        await self._start()
        now = self.clock.now_ms()
        ids = await self.store.open_ids() if self.leases.standalone else None
        if ids is None:
            ids = await self.leases.orphans(now)
        resumed = []
        for class_id in ids:
            if isinstance(await self.locate(class_id), ClassActor):
                resumed.append(class_id)
        return resumed

    async def _start(self) -> None:
        """Read this node's last heartbeat from before this process, then beat (once)."""
        if self._started:
            return
        async with self._lock:
            if self._started:
                return
            if self._heartbeats is not None:
                now = self.clock.now_ms()
                self.leases.previous_beat = await self._heartbeats.last(self.node)
                await self._heartbeats.beat(self.node, now)
                await self._heartbeats.prune(now - HEARTBEATS_KEPT_MS)
            self._started = True

    async def _after_restart(
        self, loaded: LoadedClass, down_since: int
    ) -> tuple[LoadedClass, list[tuple[int, Event]]]:
        """Apply the class's restart policy; the class as it is then, and the events stored."""
        state = loaded.state
        if state.policy.on_restart is not RestartPolicy.PAUSE or state.phase is not Phase.RUNNING:
            return loaded, []
        try:
            outcome = session.handle(loaded.timeline, state, cmd.Pause(), down_since)
        except CommandRejected:  # it had finished by then; time will say so
            return loaded, []
        seqs = await self.store.persist(loaded.id, loaded.last_seq, outcome.state, outcome.events)
        last_seq = seqs[-1] if seqs else loaded.last_seq
        log.info("class %s paused after the restart, as its policy asks", loaded.id)
        paused = LoadedClass(
            loaded.id, loaded.title, loaded.timeline, outcome.state, last_seq, loaded.epoch
        )
        return paused, list(zip(seqs, outcome.events, strict=True))

    async def keep_heartbeat(self) -> None:
        """Beat every second (renewing this process's leases), for as long as it runs.

        After each beat, a class whose lease another process holds now (this one
        was paused or cut off for longer than a lease) is given up here.
        """
        if self._heartbeats is None:
            return
        waiting = Waiting(log, "no heartbeat yet")
        while not self._started:
            try:
                await self._start()
            except Exception as exc:
                waiting.on(exc)
                await asyncio.sleep(HEARTBEAT_MS / 1000)
        while True:
            await asyncio.sleep(HEARTBEAT_MS / 1000)
            try:
                await self._heartbeats.beat(self.node, self.clock.now_ms())
                self._metrics.lease_renewals.inc()
                if self._actors and not self.leases.standalone:
                    held = await self.leases.held()
                    for class_id, actor in list(self._actors.items()):
                        if held.get(class_id) != actor.token:
                            await self._step_down(class_id)
            except Exception as exc:  # the database may come back; keep beating
                log.warning("heartbeat not written: %s", exc)

    async def keep_watch(self) -> None:
        """Claim, every second, open classes that nobody alive owns (several processes).

        Each process takes its share of them at a time (their number over the
        processes alive), so that a dead process's classes spread over the others.
        """
        if self.leases.standalone:
            return
        while True:
            await asyncio.sleep(WATCH_S * random.uniform(0.8, 1.2))  # processes out of step
            try:
                await self._start()
                now = self.clock.now_ms()
                orphans = await self.leases.orphans(now)
                if orphans:  # a fair share each: the processes wake at different times
                    random.shuffle(orphans)
                    share = math.ceil(len(orphans) / max(1, await self.leases.alive(now)))
                    for class_id in orphans[:share]:
                        await self.locate(class_id)
                for class_id in list(self._actors):  # inputs from the others, if Redis was away
                    await self._serve_inputs(class_id)
            except Exception as exc:
                log.warning("classes without an owner not looked for: %s", exc)

    def noticed(self, kind: str, class_id: int) -> None:
        """The router heard that a class was handed back (or claimed) by another process."""
        if kind == "released" and not self._closing:  # claim it now, not at the next watch
            self._in_background(self._claim_released(class_id), f"claim-{class_id}")

    async def _claim_released(self, class_id: int) -> None:
        await asyncio.sleep(random.uniform(0, 0.05))  # the processes don't all rush at once
        with contextlib.suppress(Exception):
            await self.locate(class_id)

    # -- actors -----------------------------------------------------------------------

    def live(self) -> int:
        """How many classes are live (started, not yet ended) in this process."""
        return sum(1 for actor in self._actors.values() if actor.state.phase in LIVE)

    def phases(self) -> dict[str, int]:
        """How many classes this process runs in each phase (every phase, 0 included)."""
        counts = Counter(actor.state.phase.value for actor in self._actors.values())
        return {phase.value: counts[phase.value] for phase in Phase}

    def owned(self) -> list[int]:
        """The classes this process owns and runs now."""
        return sorted(self._actors)

    def running(self, class_id: int) -> ClassActor | None:
        """The class's actor if it is running in this process now (never loads one)."""
        return self._actors.get(class_id)

    async def actor(self, class_id: int) -> ClassActor | None:
        """The class's actor in this process, started if nobody alive owns the class.

        None if the class has ended, or another process owns it.
        """
        place = await self.locate(class_id)
        return place if isinstance(place, ClassActor) else None

    async def locate(self, class_id: int) -> Place:
        """Where the class runs: its actor here (claimed now if nobody alive owns it),
        Owned if another process runs it, None if it has ended (or never was)."""
        actor = self._actors.get(class_id)
        if actor is not None:
            return actor
        await self._start()
        async with self._lock:
            if class_id in self._actors:
                return self._actors[class_id]
            if self._closing:
                return Owned("")  # this process is stopping: another will take it
            loaded = await self.store.load(class_id)
            if loaded is None:
                return None
            if loaded.state.phase in TERMINAL and not self._takes_late_scores(loaded.state):
                return None  # ended (perhaps while its owner was down), the late scores too
            lease = await self.leases.claim(class_id, self.clock.now_ms())
            if not isinstance(lease, Lease):
                return lease
            loaded = await self.store.load(class_id)  # as it was when the lease was taken
            if loaded is None:  # pragma: no cover - a class is deleted only once it has ended
                return None
            self._fence(class_id, lease.token)
            if self.scores is not None and self._held.get(class_id) != lease.token:
                # Another process may have taken scores since this one last ran the
                # class: its book is read again from the database.
                self.scores.forget(class_id)
            self._held[class_id] = lease.token
            stored: list[tuple[int, Event]] = []
            if lease.down_since is not None and loaded.state.phase not in TERMINAL:
                # Nobody ran the class for a while (its owner died, or every process
                # stopped): its restart policy says how it goes on, once.
                loaded, stored = await self._after_restart(loaded, lease.down_since)
            actor = self._spawn(loaded, lease.token)
            if stored:  # to the screens that follow the class on every process
                await self._publish(class_id, loaded.state, stored)
        if lease.previous not in (None, self.node):
            self._metrics.lease_takeovers.inc()
        # Which process runs which class matters only when there are several.
        level = logging.DEBUG if self.leases.standalone else logging.INFO
        log.log(level, "class %s: owned by %s (lease %s)", class_id, self.node, lease.token)
        await self._serve_inputs(class_id)
        if self.router is not None:
            self.router.announce("owner", class_id)
        return actor

    def _takes_late_scores(self, state: ClassState) -> bool:
        return self.scores is not None and takes_late_scores(state, self.clock.now_ms())

    def _fence(self, class_id: int, token: int) -> None:
        self.store.fence(class_id, token)
        if self.scores is not None:
            self.scores.store.fence(class_id, token)

    def _unfence(self, class_id: int) -> None:
        self.store.unfence(class_id)
        if self.scores is not None:
            self.scores.store.unfence(class_id)
        self.leases.forget(class_id)

    async def _serve_inputs(self, class_id: int) -> None:
        """Take the class's inputs from other processes, if there can be any."""
        if self.router is None or self.router.serving(class_id) or class_id not in self._actors:
            return
        try:
            await self.router.serve(class_id)
        except BrokerError as exc:  # Redis is away: the watch tries again
            log.warning("class %s: can't take inputs from other processes yet (%s)", class_id, exc)

    def _spawn(self, loaded: LoadedClass, token: int) -> ClassActor:
        actor = ClassActor(
            loaded.id,
            loaded.timeline,
            loaded.state,
            last_seq=loaded.last_seq,
            clock=self.clock,
            persist=self.store.persist,
            publish=self._publish,
            scores=self.scores,
        )
        actor.token = token
        if self.scores is not None:
            self.scores.follow(loaded.id, loaded.timeline)
        self._actors[loaded.id] = actor
        self._titles[loaded.id] = loaded.title
        self._epochs[loaded.id] = loaded.epoch
        self._views.pop(loaded.id, None)
        # The class's task, and what its end logs, are the class's: not the request's
        # (or the watch's) that happened to start it (classroom/logs.py).
        context = contextvars.Context()
        context.run(logs.current_class.set, loaded.id)
        task = asyncio.create_task(actor.run(), name=f"class-{loaded.id}", context=context)
        self._tasks[loaded.id] = task
        task.add_done_callback(functools.partial(self._ended, loaded.id), context=context)
        return actor

    def _ended(self, class_id: int, task: asyncio.Task[None]) -> None:
        actor = self._actors.pop(class_id, None)
        if actor is not None:
            actor.fail_waiting()
        self._tasks.pop(class_id, None)
        if task.cancelled() or self._closing:
            return
        error = task.exception()
        if error is None:
            self._failures.pop(class_id, None)
            self._let_go(class_id)
            return
        if isinstance(error, BrokerError):  # Redis is away: said in one line, not a bug
            log.error("class %s stopped: %s; restarting it", class_id, error)
        elif isinstance(error, LookupError):  # its row moved on: another process took it?
            log.warning("class %s: a write was refused (%s); checking its owner", class_id, error)
        else:
            log.error("class %s stopped on an error; restarting it", class_id, exc_info=error)
        self._in_background(self._restart(class_id), f"restart-class-{class_id}")

    def _let_go(self, class_id: int) -> None:
        """Forget a class this process no longer runs (it ended, or another took it)."""
        self._unfence(class_id)
        if self.router is not None:
            self._in_background(self.router.unserve(class_id), f"unserve-{class_id}")
        if self.scores is not None:  # after the last leaderboard has gone out
            asyncio.get_running_loop().call_later(5, self._forget_scores, class_id)
        if self.heart is not None:  # its last heart rates stored, for the next owner
            self._in_background(self.heart.forget(class_id), f"heart-{class_id}")

    def _forget_scores(self, class_id: int) -> None:
        if class_id not in self._actors and self.scores is not None:
            self.scores.forget(class_id)

    def _in_background(self, work: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _step_down(self, class_id: int) -> None:
        """Give up a class that another process has claimed: stop its actor, write nothing."""
        actor = self._actors.pop(class_id, None)
        task = self._tasks.pop(class_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if actor is not None:
            actor.fail_waiting()
        log.warning("class %s: another process owns it now; this one stepped down", class_id)
        self._let_go(class_id)

    async def _restart(self, class_id: int) -> None:
        while not self._closing:
            failures = self._failures.get(class_id, 0)
            self._failures[class_id] = failures + 1
            await asyncio.sleep(RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S) - 1)])
            try:
                place = await self.locate(class_id)
            except Exception as exc:
                log.warning("class %s not restarted yet: %s", class_id, exc)
                continue
            if isinstance(place, ClassActor):
                # To this process's screens, each before its snapshot: the class's
                # screens elsewhere carry on with its events as stored.
                self._hub.tell_here(class_id, [wire.notice("class_restarted", CLASS_RESTARTED)])
                snapshot = self._snapshot(class_id, place)
                for screen in self._hub.screens(class_id):
                    self._send_snapshot(screen, snapshot)
            else:  # another process runs it now, or it has ended
                if isinstance(place, Owned):
                    log.warning("class %s: %s owns it now; stepped down", class_id, place.node)
                self._failures.pop(class_id, None)
                self._let_go(class_id)
            return

    async def _publish(
        self, class_id: int, state: ClassState, numbered: Sequence[tuple[int, Event]]
    ) -> None:
        actor = self._actors[class_id]
        if numbered:
            self._failures.pop(class_id, None)
        if any(
            isinstance(event, PhaseChanged) and event.previous == Phase.LOBBY
            for _, event in numbered
        ):
            collector.class_started()
        if any(
            isinstance(event, PhaseChanged) and event.phase in TERMINAL for _, event in numbered
        ):
            collector.class_ended(self.live)
        if numbered:
            self._time_events(numbered)
        if self.on_phase is not None:
            for _, event in numbered:
                if isinstance(event, PhaseChanged):
                    self.on_phase(class_id, event.phase, event.previous)
        messages = [wire.event_message(actor.timeline, seq, event) for seq, event in numbered]
        try:
            await self._hub.publish(class_id, messages)
        except BrokerError as exc:
            # Stored, so nothing is lost: every screen resumes from the log once the
            # broker is back (their listeners broke meanwhile). The class runs on.
            log.warning("class %s: events %s not published (%s)", class_id, numbered[0][0], exc)

    def _time_events(self, numbered: Sequence[tuple[int, Event]]) -> None:
        """Note how late each event that time set off is being published.

        An event's ``at_ms`` is the instant it was due; an event a command set
        off is due when the command came, and is not timed.
        """
        now = self.clock.now_ms()
        metrics = self._metrics
        for _, event in numbered:
            if isinstance(event, CueFired):
                observed = metrics.cue_lateness
            elif isinstance(event, SegmentStarted) and event.reason == "time":
                observed = metrics.segment_lateness
            elif isinstance(event, PhaseChanged) and event.reason in ("time", "idle"):
                observed = metrics.phase_lateness
            else:
                continue
            observed.observe(max(0, now - event.at_ms) / 1000)

    # -- inputs -------------------------------------------------------------------------

    async def submit(self, class_id: int, command: cmd.Command) -> ClassState | None:
        """Apply a command in the class's owner; the new state if it runs here.

        Raises ``CommandRejected`` (or another DomainError) if the class refused
        it, :class:`~classroom.live.router.Unavailable` or ClassFailed if it
        could not be applied now.
        """
        try:
            place = await self.locate(class_id)
            if place is None:
                raise CommandRejected(ENDED)
            if isinstance(place, ClassActor):
                state: ClassState | None = await place.submit(command)
            elif self.router is None:
                raise Unavailable()
            else:
                await self.router.call(class_id, "command", _command_plain(command))
                state = None
        except DomainError:
            self._metrics.commands_rejected.inc()
            raise
        self._metrics.commands_applied.inc()
        return state

    def post_score(self, class_id: int, score: ScoreInput, reply: Callable[[Any], None]) -> bool:
        """Hand a score to the class's owner, without waiting; False if this process
        can't tell where the class runs (the caller finds out with :meth:`locate`)."""
        actor = self._actors.get(class_id)
        if actor is not None:
            actor.post_score(score, reply)
            return True
        if self.router is None:
            return False
        self.router.send(class_id, "score", _score_plain(score), reply, again=True)
        return True

    async def sound(self, class_id: int, on: bool) -> int:
        """Switch the sound of the class's displays, through its owner; how many were told."""
        place = await self.locate(class_id)
        if isinstance(place, Owned) and self.router is not None:
            return int(await self.router.call(class_id, "sound", on))
        return self._sound_here(class_id, on)

    def _sound_here(self, class_id: int, on: bool) -> int:
        displays = int(self._hub.presence(class_id)["displays"])  # on every process
        self._hub.broadcast(class_id, [{"type": "sound", "on": on}], roles=["display"])
        return displays

    async def correct(
        self, class_id: int, fix: Fix, kind: ScoreKind, instructor_id: int | None
    ) -> None:
        """Correct a result of a live class, in the process that keeps its scores."""
        scores = self.scores
        assert scores is not None
        args = [to_plain(fix), kind.value, instructor_id]
        await self._at_owner(
            class_id, "correct", args, lambda _: scores.correct(class_id, fix, kind, instructor_id)
        )

    async def dismiss(self, class_id: int, participant_id: int, segment_index: int) -> None:
        """Clear a participant's flags in a segment, in the process that keeps its scores."""
        scores = self.scores
        assert scores is not None
        await self._at_owner(
            class_id,
            "dismiss",
            [participant_id, segment_index],
            lambda _: scores.dismiss(class_id, participant_id, segment_index),
        )

    async def _at_owner(
        self, class_id: int, op: str, args: Any, here: Callable[[Place], Awaitable[T]]
    ) -> T:
        """Run ``op`` at the class's owner: ``here`` with where the class is, if another
        process doesn't run it; else ``op`` with ``args`` through the router (see
        :meth:`serve_input`), which answers with what ``here`` returns there."""
        place = await self.locate(class_id)
        if isinstance(place, Owned) and self.router is not None:
            answer: T = await self.router.call(class_id, op, args)
            return answer
        return await here(place)

    async def roster_changed(self, class_id: int) -> None:
        """Who is in the class changed: its owner reloads the roster its boards show."""
        if self.scores is None:
            return
        place = await self.locate(class_id)
        if isinstance(place, Owned) and self.router is not None:
            with contextlib.suppress(Unavailable):  # the next owner reads the roster anyway
                await self.router.call(class_id, "roster", None)
            return
        await self._roster_here(class_id)

    async def _roster_here(self, class_id: int) -> None:
        assert self.scores is not None
        await self.scores.roster_changed(class_id)
        if self.heart is not None:
            await self.heart.roster_changed(class_id)

    # -- heart rates ----------------------------------------------------------------------

    async def heart_sample(
        self, class_id: int, participant_id: int, bpm: int, at_ms: int
    ) -> dict[str, Any]:
        """A validated heart-rate sample, taken by the class's owner; the person's own
        figures (bpm, zone, % of max, effort points) as their phone shows them."""
        args = [participant_id, bpm, at_ms]
        return await self._at_owner(
            class_id, "heart", args, lambda place: self._heart_here(class_id, place, "heart", args)
        )

    async def heart_profile(self, class_id: int, participant_id: int) -> dict[str, Any]:
        """A person's age, max or bpm choice changed: the owner reads it again."""
        return await self._at_owner(
            class_id,
            "heart_profile",
            participant_id,
            lambda place: self._heart_here(class_id, place, "heart_profile", participant_id),
        )

    async def heart_own(self, class_id: int, participant_id: int) -> dict[str, Any]:
        """A person's own figures now (a strap the room's receiver hears for them)."""
        return await self._at_owner(
            class_id,
            "heart_own",
            participant_id,
            lambda place: self._heart_here(class_id, place, "heart_own", participant_id),
        )

    async def _heart_here(self, class_id: int, place: Place, op: str, args: Any) -> dict[str, Any]:
        """A heart-rate op in this process, which runs the class (or can't: it has ended,
        or its owner can't be reached)."""
        if place is None:
            raise CommandRejected(ENDED)
        if not isinstance(place, ClassActor):
            raise Unavailable()
        if self.heart is None:
            raise CommandRejected(NO_HEART)
        actor = place
        if op == "heart":
            participant_id, bpm, at_ms = (int(arg) for arg in args)
            counting = actor.state.phase is Phase.RUNNING
            return await self.heart.take(class_id, participant_id, bpm, at_ms, counting=counting)
        if op == "heart_own":
            return await self.heart.now(class_id, int(args))
        return await self.heart.profile_changed(class_id, int(args))

    def serve_input(
        self, class_id: int, op: str, args: Any, answer: Callable[[Answer], None]
    ) -> bool:
        """An input from another process for a class that runs here (see the router)."""
        actor = self._actors.get(class_id)
        if actor is None:
            return False  # not this one's (any more): its owner answers
        if op == "score":
            try:
                score = _score_from(args)
            except DomainError as exc:
                answer(answer_of(exc))
                return True
            actor.post_score(score, lambda outcome: answer(answer_of(outcome)))
        elif op == "command":
            self._in_background(self._serve_call(self._command(actor, args), answer), "command")
        elif op == "correct":
            assert self.scores is not None
            fix, kind, instructor_id = from_plain(Fix, args[0]), ScoreKind(args[1]), args[2]
            work = self.scores.correct(class_id, fix, kind, instructor_id)
            self._in_background(self._serve_call(work, answer), "correct")
        elif op == "dismiss":
            assert self.scores is not None
            work = self.scores.dismiss(class_id, int(args[0]), int(args[1]))
            self._in_background(self._serve_call(work, answer), "dismiss")
        elif op == "roster":
            self._in_background(self._serve_call(self._roster_here(class_id), answer), "roster")
        elif op in ("heart", "heart_profile", "heart_own"):
            taking = self._heart_here(class_id, actor, op, args)
            self._in_background(self._serve_call(taking, answer), op)
        elif op == "sound":
            answer(("ok", self._sound_here(class_id, bool(args))))
        elif op == "boards":
            self._in_background(self._serve_call(self._boards(class_id), answer), "boards")
        else:
            answer(("invalid", f"unknown input {op!r}"))
        return True

    async def _command(self, actor: ClassActor, args: Any) -> None:
        try:
            await actor.post(_command_from(args))
        except DomainError:
            self._metrics.commands_rejected.inc()
            raise
        self._metrics.commands_applied.inc()

    async def _boards(self, class_id: int) -> dict[str, Any]:
        assert self.scores is not None
        await self.scores.book(class_id)
        return {role: self.scores.welcome(class_id, role) for role in WELCOMED}

    @staticmethod
    async def _serve_call(work: Any, answer: Callable[[Answer], None]) -> None:
        try:
            result = await work
        except Exception as exc:
            if not isinstance(exc, DomainError | ClassFailed | Unavailable):
                log.error("an input from another process failed", exc_info=exc)
            answer(answer_of(exc))
            return
        answer(("ok", result))

    async def where(self, class_id: int) -> str:
        """For the router: "here", "elsewhere" or "ended"."""
        place = await self.locate(class_id)
        if isinstance(place, ClassActor):
            return "here"
        return "ended" if place is None else "elsewhere"

    # -- screens ------------------------------------------------------------------------

    def _snapshot(self, class_id: int, actor: ClassActor) -> wire.Message:
        return wire.snapshot(
            class_id=class_id,
            title=self._titles[class_id],
            timeline=actor.timeline,
            state=actor.state,
            seq=actor.last_seq,
            now_ms=self.clock.now_ms(),
            epoch=self._epochs[class_id],
        )

    async def _view(self, class_id: int) -> LoadedClass | None:
        """The class as a screen of it is first shown, when it doesn't run here.

        Read from the database once for every screen that comes meanwhile, then
        kept while the hub's replay holds every event since (they follow it).
        """
        generation, seen = self._hub.generation(class_id)
        kept = self._views.get(class_id)
        if kept is not None and kept[0] == generation:
            view = kept[1]
            if seen <= view.last_seq or self._hub.replay_since(class_id, view.last_seq):
                return view
        viewing = self._viewing.get(class_id)
        if viewing is None:
            viewing = self._viewing[class_id] = asyncio.ensure_future(self.store.load(class_id))
            viewing.add_done_callback(lambda _: self._viewing.pop(class_id, None))
        loaded = await asyncio.shield(viewing)
        if loaded is not None:
            self._views[class_id] = (generation, loaded)
        return loaded

    async def attach(self, screen: Screen, since: int | None = None, epoch: str = "") -> bool:
        """Add ``screen`` to its class; False if there is no such class.

        A screen coming back with the ``seq`` it last saw and the class's
        ``epoch`` is sent exactly the events it missed (from the hub's replay, or
        the class's log), wherever the class runs; any other screen gets a
        snapshot. Either way it is registered with no await after, so it sees
        every later event exactly once.
        """
        class_id = screen.class_id
        await self._hub.follow(class_id)  # first: every event from now on reaches the hub
        place = await self.locate(class_id)
        running_here = isinstance(place, ClassActor) and place.state.phase not in TERMINAL
        if isinstance(place, ClassActor) and running_here:
            snapshot: wire.Message = self._snapshot(class_id, place)
            last_seq, class_epoch = place.last_seq, self._epochs[class_id]
        else:
            view = await self._view(class_id)
            if view is None:
                return False
            snapshot = wire.snapshot(
                class_id=class_id,
                title=view.title,
                timeline=view.timeline,
                state=view.state,
                seq=view.last_seq,
                now_ms=self.clock.now_ms(),
                epoch=view.epoch,
            )
            last_seq, class_epoch = view.last_seq, view.epoch
        live = running_here or isinstance(place, Owned)
        if running_here and self.scores is not None:
            await self.scores.book(class_id)  # so that a screen joining mid-class sees the board
        missed = None
        last_seq = max(last_seq, self._hub.generation(class_id)[1])  # the newest heard here
        if since is not None and epoch == class_epoch and since <= last_seq:
            missed = await self._missed(class_id, since)
        if missed is None:
            self._send_snapshot(screen, snapshot)
        else:
            screen.send({**wire.resumed(since or 0, epoch, self.clock.now_ms()), **self._welcome})
            screen.last_seq = since or 0
            for outgoing in missed:
                screen.deliver(outgoing)
                screen.last_seq = outgoing.seq or screen.last_seq
        # What came while this screen was being read in (the hub has it in order).
        for outgoing in self._hub.replay_since(class_id, screen.last_seq) or ():
            if outgoing.seq is not None and outgoing.seq > screen.last_seq:
                screen.deliver(outgoing)
                screen.last_seq = outgoing.seq
        self._hub.add(screen)
        if live:
            board = await self._board(class_id, screen.role, place)
            if board is not None:
                screen.send(board)
        return True

    async def _missed(self, class_id: int, since: int) -> list[Outgoing] | None:
        """The events after ``since``: from the hub's replay, else from the class's log
        (None if even that is more than a replay's worth: a snapshot is quicker)."""
        missed = self._hub.replay_since(class_id, since)
        if missed is not None:
            return missed
        view = await self._view(class_id)
        if view is None:
            return None
        numbered = await self.store.numbered_since(class_id, since, REPLAY_SIZE)
        if numbered is None:
            return None
        stored = [
            _outgoing(wire.event_message(view.timeline, seq, event)) for seq, event in numbered
        ]
        last = stored[-1].seq if stored else since
        newer = self._hub.replay_since(class_id, last or since)
        if newer is None and self._hub.replay_since(class_id, 0) is not None:
            return None  # events came that neither the log read nor the replay holds
        return stored + (newer or [])

    async def _board(self, class_id: int, role: str, place: Place) -> wire.Message | None:
        """The leaderboard a screen that has just come is shown (None: none yet)."""
        if self.scores is not None and isinstance(place, ClassActor):
            return self.scores.welcome(class_id, role)
        board = self._hub.board(class_id, role)
        if board is not None or self.router is None or not isinstance(place, Owned):
            return board
        # This process has not seen one of the class's boards yet: ask its owner, once
        # for every screen that comes meanwhile (a room of phones arrives at once).
        asking = self._asking.get(class_id)
        if asking is None:
            asking = self._asking[class_id] = asyncio.ensure_future(
                asyncio.wait_for(self.router.call(class_id, "boards", None), 2)
            )
            asking.add_done_callback(lambda _: self._asking.pop(class_id, None))
        try:
            boards = await asyncio.shield(asking)
        except (TimeoutError, DomainError, Unavailable):
            return None
        self._hub.remember_boards(class_id, boards)
        return self._hub.board(class_id, role)

    def _send_snapshot(self, screen: Screen, snapshot: wire.Message) -> None:
        screen.send({**snapshot, **self._welcome})
        screen.last_seq = int(snapshot["seq"])

    # -- stopping -----------------------------------------------------------------------

    async def drain(self) -> list[int]:
        """Hand every class this process runs to the others, without a pause.

        Each actor stops between two commits; the scores taken so far are
        written; then the leases are released and the others told, so one of
        them claims each class at once. Only with several processes: one on its
        own keeps its classes, and its next start takes them back by its policy.
        """
        if self.leases.standalone or not self._actors:
            return []
        self._closing = True
        actors = dict(self._actors)
        for actor in actors.values():
            actor.stop()
        tasks = [self._tasks[c] for c in actors if c in self._tasks]
        await asyncio.wait(tasks, timeout=5) if tasks else None
        if self.scores is not None:
            await self.scores.store.drain()
        released = await self.leases.release(actors, self.clock.now_ms())
        if self.router is not None:
            for class_id in released:
                self.router.announce("released", class_id)
                await self.router.unserve(class_id)
        log.info("handed %d classes to the other processes", len(released))
        return released

    async def close(self) -> None:
        self._closing = True
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.heart is not None:  # what the last seconds of each class's straps said
            await self.heart.close()


WELCOMED = ("instructor", "participant", "display")


def _outgoing(message: wire.Message) -> Outgoing:
    return Outgoing.of(wire.encode(message), int(message["seq"]))


def _command_plain(command: cmd.Command) -> list[Any]:
    return [type(command).__name__, to_plain(command)]


_COMMANDS: dict[str, type[cmd.Command]] = {kind.__name__: kind for kind in cmd.COMMAND_NAMES}


def _command_from(args: Any) -> cmd.Command:
    name, fields = args
    return from_plain(_COMMANDS[name], fields)


def _score_plain(score: ScoreInput) -> list[Any]:
    return [
        score.participant_id,
        score.client_id,
        score.segment_index,
        score.kind.value,
        score.value,
        score.rounds,
        score.division.value,
        score.at_ms,
        score.undoes,
    ]


def _score_from(args: Any) -> ScoreInput:
    pid, client_id, segment, kind, value, rounds, division, at_ms, undoes = args
    return ScoreInput(
        participant_id=pid,
        client_id=client_id,
        segment_index=segment,
        kind=ScoreKind(kind),
        value=value,
        rounds=rounds,
        division=Division(division),
        at_ms=at_ms,
        undoes=undoes,
    )
