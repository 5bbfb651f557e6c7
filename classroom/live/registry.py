"""The registry of live classes: starts one actor per class and routes commands to it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence

from classroom.db.classes import ClassStore, LoadedClass
from classroom.domain.commands import Command
from classroom.domain.errors import CommandRejected
from classroom.domain.events import Event
from classroom.domain.session import TERMINAL, ClassState
from classroom.hub import wire
from classroom.hub.hub import Hub, Screen
from classroom.live.actor import ClassActor
from classroom.live.clock import Clock

log = logging.getLogger(__name__)


class ClassRegistry:
    def __init__(self, store: ClassStore, hub: Hub, clock: Clock) -> None:
        self._store = store
        self._hub = hub
        self.clock = clock
        self._actors: dict[int, ClassActor] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._titles: dict[int, str] = {}
        self._seqs: dict[int, int] = {}
        self._lock = asyncio.Lock()

    async def resume_live(self) -> list[int]:
        """Start an actor for every class that was live when the server last stopped."""
        ids = await self._store.open_ids()
        for class_id in ids:
            await self.actor(class_id)
        return ids

    async def actor(self, class_id: int) -> ClassActor | None:
        """The running actor of a class, started if needed; None if the class has ended."""
        async with self._lock:
            if class_id in self._actors:
                return self._actors[class_id]
            loaded = await self._store.load(class_id)
            if loaded is None or loaded.state.phase in TERMINAL:
                return None
            return self._spawn(loaded)

    def _spawn(self, loaded: LoadedClass) -> ClassActor:
        actor = ClassActor(
            loaded.id,
            loaded.timeline,
            loaded.state,
            clock=self.clock,
            persist=self._store.persist,
            publish=self._publish,
        )
        self._actors[loaded.id] = actor
        self._titles[loaded.id] = loaded.title
        self._seqs[loaded.id] = loaded.last_seq
        task = asyncio.create_task(actor.run(), name=f"class-{loaded.id}")
        self._tasks[loaded.id] = task
        task.add_done_callback(functools.partial(self._ended, loaded.id))
        return actor

    def _ended(self, class_id: int, task: asyncio.Task[None]) -> None:
        self._actors.pop(class_id, None)
        self._tasks.pop(class_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("class %s stopped on an error", class_id, exc_info=task.exception())

    def _publish(
        self, class_id: int, state: ClassState, numbered: Sequence[tuple[int, Event]]
    ) -> None:
        actor = self._actors[class_id]
        if numbered:
            self._seqs[class_id] = numbered[-1][0]
        self._hub.broadcast(
            class_id, [wire.event_message(actor.timeline, seq, event) for seq, event in numbered]
        )

    async def submit(self, class_id: int, command: Command) -> ClassState:
        actor = await self.actor(class_id)
        if actor is None:
            raise CommandRejected("this class has ended")
        return await actor.submit(command)

    async def attach(self, screen: Screen) -> bool:
        """Add ``screen`` to its class and queue it a snapshot; False if there's no class.

        The snapshot is taken and the screen registered with no await in between,
        so the screen sees exactly the events after its snapshot.
        """
        class_id = screen.class_id
        actor = await self.actor(class_id)
        if actor is not None:
            title, timeline, state, seq = (
                self._titles[class_id],
                actor.timeline,
                actor.state,
                self._seqs[class_id],
            )
        else:
            loaded = await self._store.load(class_id)
            if loaded is None:
                return False
            title, timeline, state, seq = (
                loaded.title,
                loaded.timeline,
                loaded.state,
                loaded.last_seq,
            )
        screen.send(
            wire.snapshot(
                class_id=class_id,
                title=title,
                timeline=timeline,
                state=state,
                seq=seq,
                now_ms=self.clock.now_ms(),
            )
        )
        self._hub.add(screen)
        return True

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
