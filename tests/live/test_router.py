"""The router: inputs reach a class's owner in batches, answers come back, none is left hanging."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from classroom.broker import MemoryBroker
from classroom.domain.errors import CommandRejected, ValidationError
from classroom.live import router as router_module
from classroom.live.router import Router, Unavailable, inputs_channel


class Owner:
    """The owner's side: answers each input with what it was, counting the batches."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, str, Any]] = []

    def serve(self, class_id: int, op: str, args: Any, answer: Any) -> bool:
        self.taken.append((class_id, op, args))
        if args == "bad":
            answer(("invalid", "that is not a rep"))
        elif args == "refused":
            answer(("rejected", "the class has ended"))
        else:
            answer(("ok", args))
        return True


class Heard(list[Any]):
    """Outcomes as they are heard; :meth:`at_least` waits for some."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def __call__(self, outcome: Any) -> None:
        self.append(outcome)
        self._changed.set()

    async def at_least(self, count: int, within: float = 5) -> None:
        async with asyncio.timeout(within):
            while len(self) < count:
                self._changed.clear()
                await self._changed.wait()


async def nowhere(class_id: int) -> str:
    return "elsewhere"


@pytest.fixture
async def pair() -> Any:
    broker = MemoryBroker()
    owner = Owner()
    sender = Router(broker, "a", serve=lambda *args: False, locate=nowhere)
    serving = Router(broker, "b", serve=owner.serve, locate=nowhere)
    await sender.start()
    await serving.start()
    await serving.serve(1)
    yield sender, serving, owner, broker
    await sender.close()
    await serving.close()
    await broker.close()


async def test_inputs_go_in_one_batch_and_each_answer_comes_back(pair: Any) -> None:
    sender, _, owner, broker = pair
    batches: list[int] = []
    watch = await broker.subscribe(inputs_channel(1))
    heard = Heard()
    for n in range(50):
        sender.send(1, "score", n, heard, again=True)
    sender.send(1, "score", "bad", heard, again=True)
    sender.send(1, "score", "refused", heard, again=True)
    await heard.at_least(52)
    async for payload in watch:
        batches.append(len(json.loads(payload)["inputs"]))
        break
    assert batches == [52]  # one message for everything queued in one turn of the loop
    assert [args for _, _, args in owner.taken] == [*range(50), "bad", "refused"]
    assert heard[:50] == list(range(50))
    assert isinstance(heard[50], ValidationError) and isinstance(heard[51], CommandRejected)
    assert await sender.call(1, "boards", {"x": 1}) == {"x": 1}


async def test_inputs_for_a_class_nobody_owns_are_held_then_answered_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(router_module, "ANSWER_WITHIN_S", 0.6)
    broker = MemoryBroker()
    asked: list[int] = []

    async def locate(class_id: int) -> str:
        asked.append(class_id)
        return "elsewhere"  # an owner that is alive but not listening yet

    sender = Router(broker, "a", serve=lambda *args: False, locate=locate)
    await sender.start()
    heard = Heard()
    sender.send(7, "score", 1, heard, again=True)
    sender.send(7, "command", 2, heard, again=False)
    await heard.at_least(2)
    assert all(isinstance(outcome, Unavailable) for outcome in heard)
    assert len(asked) >= 2  # offered again while held
    await sender.close()
    await broker.close()


async def test_an_input_held_until_an_owner_comes_is_taken_by_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = MemoryBroker()
    owner = Owner()
    sender = Router(broker, "a", serve=lambda *args: False, locate=nowhere)
    serving = Router(broker, "b", serve=owner.serve, locate=nowhere)
    await sender.start()
    await serving.start()
    heard = Heard()
    sender.send(3, "score", "late", heard, again=True)
    await asyncio.sleep(0.3)  # nobody listens: held
    assert heard == []
    await serving.serve(3)  # the class gets an owner
    await heard.at_least(1)
    assert heard == ["late"]
    await sender.close()
    await serving.close()
    await broker.close()


async def test_a_new_owner_gets_the_scores_sent_to_the_old_one_and_commands_are_not_resent(
    pair: Any,
) -> None:
    sender, serving, _, broker = pair
    silent = Heard()

    def never_answers(class_id: int, op: str, args: Any, answer: Any) -> bool:
        silent((op, args))
        return True

    deaf = Router(broker, "c", serve=never_answers, locate=nowhere)
    await deaf.start()
    await serving.unserve(1)
    await deaf.serve(1)  # an owner that takes inputs and dies before answering
    heard = Heard()
    sender.send(1, "score", "rep", heard, again=True)
    sender.send(1, "command", "pause", heard, again=False)
    await silent.at_least(2)
    await deaf.unserve(1)
    await serving.serve(1)
    serving.announce("owner", 1)  # the new owner says so
    await heard.at_least(2)
    assert isinstance(heard[0], Unavailable)  # the command: never applied twice
    assert heard[1] == "rep"  # the score: sent again, to the new owner
    await deaf.close()
