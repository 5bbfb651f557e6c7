"""The registry of open classes: one actor per class, commands routed to it.

It also keeps the process's heartbeat, so that after a crash the next start
knows when the server went down, and it brings back a class whose actor died:
the error is logged, the class restarts from its last persisted state, and its
screens are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Sequence

from classroom.broker import BrokerError
from classroom.db.classes import ClassStore, HeartbeatStore, LoadedClass
from classroom.domain import commands as cmd
from classroom.domain import session
from classroom.domain.errors import CommandRejected, DomainError
from classroom.domain.events import CueFired, Event, PhaseChanged, SegmentStarted
from classroom.domain.scoring import takes_late_scores
from classroom.domain.session import LIVE, TERMINAL, ClassState, Phase, RestartPolicy
from classroom.hub import wire
from classroom.hub.hub import Hub
from classroom.hub.screens import Screen
from classroom.live import collector
from classroom.live.actor import ClassActor
from classroom.live.clock import Clock
from classroom.live.scoring import ScoreKeeper
from classroom.metrics import Metrics

log = logging.getLogger(__name__)

HEARTBEAT_MS = 1000
RESTART_DELAYS_S = (0.2, 1.0, 5.0)  # after the third failure in a row, keep trying every 5 s
CLASS_RESTARTED = "The class hit a problem and was restarted from its last saved state."


class ClassRegistry:
    def __init__(
        self,
        store: ClassStore,
        hub: Hub,
        clock: Clock,
        *,
        heartbeats: HeartbeatStore | None = None,
        scores: ScoreKeeper | None = None,
        node: str = "local",
        asset_version: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.scores = scores
        self._hub = hub
        self.clock = clock
        self._heartbeats = heartbeats
        self._node = node
        self._actors: dict[int, ClassActor] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._titles: dict[int, str] = {}
        self._failures: dict[int, int] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._down_lock = asyncio.Lock()
        self._down_at: int | None = None
        # Classes loaded since this process started: the restart policy applies
        # to each once, at its first load, whoever asks first.
        self._recovered: set[int] = set()
        self._closing = False
        # Every snapshot and resumed message names the screens' assets: a screen
        # whose page is older reloads itself (see classroom/web/assets.py).
        self._welcome = {"version": asset_version} if asset_version else {}
        self._metrics = metrics or Metrics(node)

    # -- start-up ---------------------------------------------------------------------

    async def resume(self) -> list[int]:
        """Start an actor for every class that was open when the server last stopped.

        Each goes through :meth:`actor`, as a class a screen asks for first does,
        so its restart policy is applied once, whichever comes first.
        """
        ids = await self.store.open_ids()
        for class_id in ids:
            await self.actor(class_id)
        return ids

    async def _down_since(self) -> int:
        """When this node was last known alive before this process started (read once).

        The last heartbeat of the node's previous process, or now if there was
        none; then this process's first heartbeat is written. Every class loaded
        in this process that had been left running is paused at this instant if
        its policy says so.
        """
        async with self._down_lock:
            if self._down_at is None:
                now = self.clock.now_ms()
                down_since = now
                if self._heartbeats is not None:
                    last = await self._heartbeats.last(self._node)
                    if last is not None:
                        down_since = min(last, now)
                    await self._heartbeats.beat(self._node, now)
                self._down_at = down_since
            return self._down_at

    async def _after_restart(self, loaded: LoadedClass, down_since: int) -> LoadedClass:
        state = loaded.state
        if state.policy.on_restart is not RestartPolicy.PAUSE or state.phase is not Phase.RUNNING:
            return loaded
        try:
            outcome = session.handle(loaded.timeline, state, cmd.Pause(), down_since)
        except CommandRejected:  # it had finished by then; time will say so
            return loaded
        seqs = await self.store.persist(loaded.id, loaded.last_seq, outcome.state, outcome.events)
        last_seq = seqs[-1] if seqs else loaded.last_seq
        log.info("class %s paused after the restart, as its policy asks", loaded.id)
        return LoadedClass(loaded.id, loaded.title, loaded.timeline, outcome.state, last_seq)

    async def keep_heartbeat(self) -> None:
        """Write this process's heartbeat every second, for as long as it runs."""
        if self._heartbeats is None:
            return
        while self._down_at is None:  # the last beat before the restart is read first
            try:
                await self._down_since()
            except Exception as exc:
                log.warning("heartbeat not read yet: %s", exc)
                await asyncio.sleep(HEARTBEAT_MS / 1000)
        while True:
            await asyncio.sleep(HEARTBEAT_MS / 1000)
            try:
                await self._heartbeats.beat(self._node, self.clock.now_ms())
            except Exception as exc:  # the database may come back; keep beating
                log.warning("heartbeat not written: %s", exc)

    # -- actors -----------------------------------------------------------------------

    def live(self) -> int:
        """How many classes are live (started, not yet ended) in this process."""
        return sum(1 for actor in self._actors.values() if actor.state.phase in LIVE)

    def phases(self) -> dict[str, int]:
        """How many classes this process runs in each phase (every phase, 0 included)."""
        counts = Counter(actor.state.phase.value for actor in self._actors.values())
        return {phase.value: counts[phase.value] for phase in Phase}

    def running(self, class_id: int) -> ClassActor | None:
        """The class's actor if it is running in this process now (never loads one)."""
        return self._actors.get(class_id)

    async def actor(self, class_id: int) -> ClassActor | None:
        """The running actor of a class, started if needed; None if the class has ended."""
        async with self._lock:
            if class_id in self._actors:
                return self._actors[class_id]
            loaded = await self.store.load(class_id)
            if loaded is None:
                return None
            if loaded.state.phase in TERMINAL:
                # Ended, perhaps while this process was down: only late scores are left.
                if self.scores is None or not takes_late_scores(loaded.state, self.clock.now_ms()):
                    return None
            elif class_id not in self._recovered:
                # The first load in this process: the class was left as it was when
                # the last process stopped, so its restart policy applies, once.
                loaded = await self._after_restart(loaded, await self._down_since())
                self._recovered.add(class_id)
            return self._spawn(loaded)

    def _spawn(self, loaded: LoadedClass) -> ClassActor:
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
        if self.scores is not None:
            self.scores.follow(loaded.id, loaded.timeline)
        self._actors[loaded.id] = actor
        self._titles[loaded.id] = loaded.title
        task = asyncio.create_task(actor.run(), name=f"class-{loaded.id}")
        self._tasks[loaded.id] = task
        task.add_done_callback(functools.partial(self._ended, loaded.id))
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
            if self.scores is not None:  # after the last leaderboard has gone out
                asyncio.get_running_loop().call_later(5, self.scores.forget, class_id)
            return
        if isinstance(error, BrokerError):  # Redis is away: said in one line, not a bug
            log.error("class %s stopped: %s; restarting it", class_id, error)
        else:
            log.error("class %s stopped on an error; restarting it", class_id, exc_info=error)
        restart = asyncio.create_task(self._restart(class_id), name=f"restart-class-{class_id}")
        self._background.add(restart)
        restart.add_done_callback(self._background.discard)

    async def _restart(self, class_id: int) -> None:
        while not self._closing:
            failures = self._failures.get(class_id, 0)
            self._failures[class_id] = failures + 1
            await asyncio.sleep(RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S) - 1)])
            try:
                actor = await self.actor(class_id)
            except Exception as exc:
                log.warning("class %s not restarted yet: %s", class_id, exc)
                continue
            if actor is not None:
                self._hub.broadcast(class_id, [wire.notice("class_restarted", CLASS_RESTARTED)])
                snapshot = self._snapshot(class_id, actor)
                for screen in self._hub.screens(class_id):
                    self._send_snapshot(screen, snapshot)
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
        await self._hub.publish(
            class_id, [wire.event_message(actor.timeline, seq, event) for seq, event in numbered]
        )

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

    async def submit(self, class_id: int, command: cmd.Command) -> ClassState:
        try:
            actor = await self.actor(class_id)
            if actor is None:
                raise CommandRejected("this class has ended")
            state = await actor.submit(command)
        except DomainError:
            self._metrics.commands_rejected.inc()
            raise
        self._metrics.commands_applied.inc()
        return state

    def _snapshot(self, class_id: int, actor: ClassActor) -> wire.Message:
        return wire.snapshot(
            class_id=class_id,
            title=self._titles[class_id],
            timeline=actor.timeline,
            state=actor.state,
            seq=actor.last_seq,
            now_ms=self.clock.now_ms(),
            epoch=self._hub.epoch(class_id),
        )

    async def attach(self, screen: Screen, since: int | None = None, epoch: str = "") -> bool:
        """Add ``screen`` to its class; False if there is no such class.

        A screen coming back with the ``seq`` it last saw and the class's current
        ``epoch`` is sent exactly the events it missed, if the replay buffer still
        holds them; any other screen gets a snapshot. Either way it is registered
        with no await after, so it sees every later event exactly once.
        """
        class_id = screen.class_id
        actor = await self.actor(class_id)
        await self._hub.follow(class_id)
        if actor is None or actor.state.phase in TERMINAL:
            loaded = await self.store.load(class_id)
            if loaded is None:
                return False
            self._send_snapshot(
                screen,
                wire.snapshot(
                    class_id=class_id,
                    title=loaded.title,
                    timeline=loaded.timeline,
                    state=loaded.state,
                    seq=loaded.last_seq,
                    now_ms=self.clock.now_ms(),
                    epoch=self._hub.epoch(class_id),
                ),
            )
            self._hub.add(screen)
            return True
        if self.scores is not None:
            await self.scores.book(class_id)  # so that a screen joining mid-class sees the board
        missed = None
        if since is not None and epoch == self._hub.epoch(class_id) and since <= actor.last_seq:
            missed = self._hub.replay_since(class_id, since)
            if since == actor.last_seq:
                missed = []
        if missed is None:
            self._send_snapshot(screen, self._snapshot(class_id, actor))
        else:
            screen.send({**wire.resumed(since or 0, epoch, self.clock.now_ms()), **self._welcome})
            screen.last_seq = since or 0
            for outgoing in missed:
                screen.deliver(outgoing)
                screen.last_seq = outgoing.seq or screen.last_seq
        self._hub.add(screen)
        if self.scores is not None:
            board = self.scores.welcome(class_id, screen.role)
            if board is not None:
                screen.send(board)
        return True

    def _send_snapshot(self, screen: Screen, snapshot: wire.Message) -> None:
        screen.send({**snapshot, **self._welcome})
        screen.last_seq = int(snapshot["seq"])

    async def close(self) -> None:
        self._closing = True
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _started(event: Event) -> bool:
    """Whether ``event`` is a class leaving its lobby."""
    return isinstance(event, PhaseChanged) and event.previous == Phase.LOBBY
