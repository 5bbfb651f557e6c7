"""A hub whose broker subscription breaks sends its screens back to resume from the log."""

from __future__ import annotations

import asyncio

import pytest

from classroom.broker import MemoryBroker, SubscriptionLost, SubscriptionOverflow
from classroom.broker.base import SubscriptionBroken
from classroom.broker.queue import QueuedSubscription
from classroom.hub.hub import Hub
from classroom.hub.screens import CLOSE_TRY_AGAIN, Screen


class Closing(Screen):
    """A screen that records how the server closed it."""

    def __init__(self) -> None:
        super().__init__(None, 1, "participant")  # type: ignore[arg-type]
        self.closed_with: tuple[int, str] | None = None

    def deliver(self, outgoing) -> bool:  # type: ignore[no-untyped-def]
        return True

    async def _close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


class Recording(MemoryBroker):
    """A memory broker that keeps the subscriptions it opened."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[QueuedSubscription] = []

    async def subscribe(self, channel: str, *, maxsize: int = 4096) -> QueuedSubscription:
        subscription = await super().subscribe(channel, maxsize=maxsize)
        self.opened.append(subscription)
        return subscription


@pytest.mark.parametrize("broken", [SubscriptionLost, SubscriptionOverflow])
async def test_a_broken_subscription_sends_the_screens_back_to_resume(
    broken: type[SubscriptionBroken],
) -> None:
    broker = Recording()
    hub = Hub(broker)
    await hub.follow(1)
    screens = [Closing() for _ in range(3)]
    for screen in screens:
        hub.add(screen)
    generation, _ = hub.generation(1)
    listener = hub.channel(1).listener
    assert listener is not None

    broker.opened[0].break_with(broken, "the connection to Redis dropped")
    await asyncio.wait_for(listener, 2)
    await asyncio.sleep(0)  # the closes run as tasks of their own
    assert hub.channel(1).listener is None

    for screen in screens:
        assert screen.closed_with == (CLOSE_TRY_AGAIN, "missed events, reconnect")
    assert hub.screens(1) == []
    assert hub.replay_since(1, 0) is None  # what was missed comes from the class's log
    assert broker.opened[0].closed

    await hub.follow(1)  # the screens come back: the class is followed again
    assert len(broker.opened) == 2 and not broker.opened[1].broken
    # What was read under the broken listener is not trusted under the new one.
    assert hub.generation(1)[0] == generation + 1
    await hub.close()
