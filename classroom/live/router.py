"""Inputs to a class's owner, from any process, and their answers back.

Theory of operation
    The process that owns a class (classroom/db/leases.py) listens on the
    class's input channel, ``class:<id>:in``. Any other process that takes an
    input for the class (a score, a command, a correction, a roster change)
    sends it there and keeps the input's answer pending; the owner answers on
    the sender's own channel, ``node:<name>``. A socket's answers still go out
    in the order of its messages: its line of replies keeps each message's
    place (see classroom/web/sockets.py).

    Both ways, inputs and answers are **batched**: everything queued for one
    class in one turn of the event loop goes in one message, and so do the
    answers for one process. A class's batches are sent one after the other,
    so the owner takes one socket's inputs in the order they came (an undo
    after the input it takes back).

    The broker says how many processes got a message. When none did, nobody
    owns the class right now (its owner died, or has just handed it back): the
    sender tries to claim the class itself, and otherwise holds the inputs and
    tries again every :data:`RETRY_S`, as it does while Redis can't be reached.
    An input that has no answer within :data:`ANSWER_WITHIN_S` is answered
    ``unavailable``; the phone sends a score
    again later, and exactly-once still rests on the database's ``(participant,
    client id)``.

    When a process claims a class it says so on the ``cluster`` channel: the
    others send their pending scores again to it (a repeat is harmless), and
    answer their pending commands ``unavailable`` (a command is not sent
    twice). A process that hands its classes back says so too, and the others
    claim them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from classroom.broker import Broker, BrokerError, Subscription, SubscriptionBroken
from classroom.broker.reading import read_forever
from classroom.domain.errors import CommandRejected, DomainError, ValidationError

log = logging.getLogger(__name__)

ANSWER_WITHIN_S = 15.0
"""An input forwarded to a class's owner is answered within this time, one way or another."""
RETRY_S = 0.2
"""How often inputs held for a class without an owner are offered again."""
CONTROL = "cluster"

#: An answer as it travels: ("ok", value) or (kind, text) for an error.
Answer = tuple[str, Any]
#: Hears an input's outcome once: its value, or the exception that refused it.
Outcome = Callable[[Any], None]
#: The owner's side: takes an input for a class this process runs, and answers it
#: (later) through the callback. False: this process doesn't run the class.
Serve = Callable[[int, str, Any, Callable[[Answer], None]], bool]
#: Whether this process can run a class now: "here" (it does, perhaps just claimed),
#: "elsewhere" (a living process owns it) or "ended" (no such class, or it has ended).
Locate = Callable[[int], Awaitable[str]]
#: Told of a class that its owner handed back, or that another process claimed.
Notice = Callable[[str, int], None]


class Unavailable(Exception):
    """An input that couldn't reach the class's owner, or that the owner couldn't take."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text or UNAVAILABLE)


UNAVAILABLE = "The class can't be reached just now. Try again in a moment."
ENDED = "this class has ended"


def inputs_channel(class_id: int) -> str:
    return f"class:{class_id}:in"


def node_channel(node: str) -> str:
    return f"node:{node}"


def answer_of(outcome: Any) -> Answer:
    """An outcome (a value, or the exception that refused the input) as it travels."""
    if isinstance(outcome, ValidationError):
        return ("invalid", str(outcome))
    if isinstance(outcome, DomainError):
        return ("rejected", str(outcome))
    if isinstance(outcome, Exception):
        return ("unavailable", str(outcome) if isinstance(outcome, Unavailable) else UNAVAILABLE)
    return ("ok", outcome)


def outcome_of(answer: Answer) -> Any:
    kind, value = answer
    if kind == "ok":
        return value
    if kind == "invalid":
        return ValidationError(str(value))
    if kind == "rejected":
        return CommandRejected(str(value))
    return Unavailable(str(value))


@dataclass(slots=True, eq=False)
class _Input:
    rid: str
    class_id: int
    op: str
    args: Any
    outcome: Outcome
    deadline: float  # on the monotonic clock
    again: bool = False  # may be sent twice (a score: its client id makes it once-only)


@dataclass(slots=True, eq=False)
class _Outbox:
    queued: deque[_Input] = field(default_factory=deque)
    sender: asyncio.Task[None] | None = None


class Router:
    def __init__(self, broker: Broker, node: str, *, serve: Serve, locate: Locate) -> None:
        self._broker = broker
        self.node = node
        self._serve = serve
        self._locate = locate
        self._ids = itertools.count(1)
        self._outboxes: dict[int, _Outbox] = {}
        self._waiting: dict[str, _Input] = {}  # sent, not answered yet
        self._served: dict[int, asyncio.Task[None]] = {}
        self._answers: dict[str, list[list[Any]]] = {}  # per process, waiting to go
        self._answering = False
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.on_notice: Notice | None = None

    async def start(self) -> None:
        """Listen for answers and for the cluster's notices (raises BrokerError if it can't)."""
        answers = await self._broker.subscribe(node_channel(self.node), maxsize=65536)
        control = await self._broker.subscribe(CONTROL)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(
                read_forever(
                    self._broker, answers.channel, self._answered, what="answers", first=answers
                ),
                name="router-answers",
            ),
            loop.create_task(
                read_forever(
                    self._broker, CONTROL, self._noticed, what="cluster notices", first=control
                ),
                name="router-notices",
            ),
            loop.create_task(self._expire(), name="router-expiry"),
        ]

    # -- the sender's side ------------------------------------------------------------

    def send(self, class_id: int, op: str, args: Any, outcome: Outcome, *, again: bool) -> None:
        """Send an input to the class's owner; ``outcome`` hears its answer once."""
        item = _Input(
            f"{next(self._ids)}",
            class_id,
            op,
            args,
            outcome,
            time.monotonic() + ANSWER_WITHIN_S,
            again,
        )
        self._queue(item)

    async def call(self, class_id: int, op: str, args: Any) -> Any:
        """Send an input to the class's owner and wait for its answer (raising a refusal)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def settle(outcome: Any) -> None:
            if done.done():
                return
            if isinstance(outcome, Exception):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

        self.send(class_id, op, args, settle, again=False)
        return await done

    def _queue(self, item: _Input) -> None:
        outbox = self._outboxes.get(item.class_id)
        if outbox is None:
            outbox = self._outboxes[item.class_id] = _Outbox()
        outbox.queued.append(item)
        if outbox.sender is None:
            outbox.sender = asyncio.get_running_loop().create_task(
                self._send_all(item.class_id, outbox), name=f"router-{item.class_id}"
            )

    async def _send_all(self, class_id: int, outbox: _Outbox) -> None:
        """Send the class's queued inputs, a batch at a time, until none are left."""
        try:
            await asyncio.sleep(0)  # what the rest of this turn of the loop queues joins in
            while outbox.queued:
                batch = list(outbox.queued)
                outbox.queued.clear()
                message = {"from": self.node, "inputs": [[i.rid, i.op, i.args] for i in batch]}
                try:
                    heard = await self._broker.publish(
                        inputs_channel(class_id), json.dumps(message).encode()
                    )
                except BrokerError as exc:  # Redis is away: held, and offered again
                    log.debug("class %s: inputs not sent (%s)", class_id, exc)
                    await self._hold(outbox, batch)
                    continue
                if heard:
                    for item in batch:
                        self._waiting[item.rid] = item
                    continue
                await self._without_owner(class_id, outbox, batch)
        finally:
            outbox.sender = None
            if not outbox.queued:
                self._outboxes.pop(class_id, None)

    async def _without_owner(self, class_id: int, outbox: _Outbox, batch: list[_Input]) -> None:
        """Nobody listens for the class's inputs: claim it here, or hold them and retry."""
        try:
            where = await self._locate(class_id)
        except Exception as exc:  # the database is away, say
            log.warning("class %s: its owner can't be found (%s)", class_id, exc)
            where = "elsewhere"
        if where == "here":
            for item in batch:
                self._serve_here(item)
            return
        if where == "ended":
            for item in batch:
                _tell(item, CommandRejected(ENDED))
            return
        await self._hold(outbox, batch)

    async def _hold(self, outbox: _Outbox, batch: list[_Input]) -> None:
        """Put a batch back at the head of the queue, to be offered again in a moment;
        an input that has waited too long is answered ``unavailable`` instead."""
        now = time.monotonic()
        held = [item for item in batch if item.deadline > now]
        for item in batch:
            if item.deadline <= now:
                _tell(item, Unavailable())
        outbox.queued.extendleft(reversed(held))
        await asyncio.sleep(RETRY_S)

    def _serve_here(self, item: _Input) -> None:
        def answer(reply: Answer) -> None:
            _tell(item, outcome_of(reply))

        if not self._serve(item.class_id, item.op, item.args, answer):
            _tell(item, Unavailable())

    def _answered(self, payload: bytes) -> None:
        for rid, kind, value in json.loads(payload)["answers"]:
            item = self._waiting.pop(rid, None)
            if item is not None:  # else: answered already (by an earlier owner, or expired)
                _tell(item, outcome_of((kind, value)))

    async def _expire(self) -> None:
        """Answer ``unavailable`` every input that has waited too long for its answer."""
        while True:
            await asyncio.sleep(1)
            now = time.monotonic()
            for rid, item in list(self._waiting.items()):
                if item.deadline <= now:
                    del self._waiting[rid]
                    _tell(item, Unavailable())

    # -- notices ------------------------------------------------------------------------

    def announce(self, kind: str, class_id: int) -> None:
        """Tell every process that this one claimed (``owner``) or handed back (``released``)."""
        message = json.dumps({"kind": kind, "class": class_id, "node": self.node}).encode()
        task = asyncio.get_running_loop().create_task(self._announce(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _announce(self, message: bytes) -> None:
        try:
            await self._broker.publish(CONTROL, message)
        except BrokerError as exc:  # the others find out by the database, more slowly
            log.warning("a notice to the other processes was not sent: %s", exc)

    def _noticed(self, payload: bytes) -> None:
        notice = json.loads(payload)
        kind, class_id = notice["kind"], int(notice["class"])
        if notice["node"] == self.node:
            return
        if kind == "owner":  # inputs sent to the old owner go to the new one
            for rid, item in list(self._waiting.items()):
                if item.class_id != class_id:
                    continue
                del self._waiting[rid]
                if item.again:
                    self._queue(item)
                else:
                    _tell(item, Unavailable())
        if self.on_notice is not None:
            self.on_notice(kind, class_id)

    # -- the owner's side ---------------------------------------------------------------

    async def serve(self, class_id: int) -> None:
        """Take the class's inputs from other processes (this process owns it)."""
        if class_id in self._served:
            return
        subscription = await self._broker.subscribe(inputs_channel(class_id), maxsize=65536)
        if class_id in self._served:  # another caller got there first
            await subscription.close()
            return
        self._served[class_id] = asyncio.get_running_loop().create_task(
            self._take_inputs(class_id, subscription), name=f"inputs-{class_id}"
        )

    def serving(self, class_id: int) -> bool:
        return class_id in self._served

    async def unserve(self, class_id: int) -> None:
        task = self._served.pop(class_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _take_inputs(self, class_id: int, subscription: Subscription) -> None:
        try:
            async for payload in subscription:
                message = json.loads(payload)
                sender = message["from"]
                for rid, op, args in message["inputs"]:
                    self._serve(class_id, op, args, self._answer_to(sender, rid))
        except SubscriptionBroken as exc:  # what was lost is answered when it expires
            log.warning("class %s: inputs from other processes: %s", class_id, exc)
            self._served.pop(class_id, None)
        finally:
            await subscription.close()

    def _answer_to(self, node: str, rid: str) -> Callable[[Answer], None]:
        def answer(reply: Answer) -> None:
            self._answers.setdefault(node, []).append([rid, *reply])
            if not self._answering:
                self._answering = True
                asyncio.get_running_loop().call_soon(self._send_answers)

        return answer

    def _send_answers(self) -> None:
        self._answering = False
        answers, self._answers = self._answers, {}
        for node, batch in answers.items():
            payload = json.dumps({"answers": batch}).encode()
            task = asyncio.get_running_loop().create_task(self._answer(node, payload))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _answer(self, node: str, payload: bytes) -> None:
        try:
            await self._broker.publish(node_channel(node), payload)
        except BrokerError as exc:  # the sender answers them itself when they expire
            log.warning("answers to %s not sent: %s", node, exc)

    async def close(self) -> None:
        tasks = [*self._tasks, *self._served.values(), *self._background]
        tasks += [o.sender for o in self._outboxes.values() if o.sender is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for item in self._waiting.values():
            _tell(item, Unavailable())
        self._waiting.clear()


def _tell(item: _Input, outcome: Any) -> None:
    try:
        item.outcome(outcome)
    except Exception:
        log.exception("an input's answer failed")
