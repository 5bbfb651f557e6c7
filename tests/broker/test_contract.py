"""One contract for every broker implementation (parametrised over the backends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from classroom.broker import Broker, BrokerError, MemoryBroker, SubscriptionOverflow, broker_for
from classroom.broker.base import Subscription

BACKENDS: dict[str, Callable[[], Broker]] = {"memory": MemoryBroker}


@pytest.fixture(params=sorted(BACKENDS))
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    made = BACKENDS[request.param]()
    yield made
    await made.close()


async def take(subscription: Subscription, n: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(2):
        async for message in subscription:
            got.append(message)
            if len(got) == n:
                break
    return got


async def test_every_subscriber_gets_every_message_in_order(broker: Broker) -> None:
    a = await broker.subscribe("class:1")
    b = await broker.subscribe("class:1")
    for i in range(100):
        await broker.publish("class:1", str(i).encode())
    expected = [str(i).encode() for i in range(100)]
    assert await take(a, 100) == expected
    assert await take(b, 100) == expected


async def test_channels_are_apart_and_a_subscription_sees_only_what_comes_after(
    broker: Broker,
) -> None:
    await broker.publish("class:1", b"before anyone listened")
    one = await broker.subscribe("class:1")
    two = await broker.subscribe("class:2")
    await broker.publish("class:2", b"for two")
    await broker.publish("class:1", b"for one")
    assert await take(one, 1) == [b"for one"]
    assert await take(two, 1) == [b"for two"]


async def test_a_closed_subscription_ends_and_hears_nothing_more(broker: Broker) -> None:
    subscription = await broker.subscribe("class:1")
    await subscription.close()
    await broker.publish("class:1", b"late")
    async with asyncio.timeout(2):
        assert [m async for m in subscription] == []


async def test_a_subscriber_that_falls_behind_is_told_not_silently_dropped(broker: Broker) -> None:
    slow = await broker.subscribe("class:1", maxsize=3)
    fast = await broker.subscribe("class:1", maxsize=100)
    for i in range(10):
        await broker.publish("class:1", str(i).encode())
    with pytest.raises(SubscriptionOverflow, match="fell too far behind"):
        async with asyncio.timeout(2):
            async for _ in slow:
                pass
    assert len(await take(fast, 10)) == 10  # the others are not held back


async def test_bad_input_is_refused(broker: Broker) -> None:
    with pytest.raises(BrokerError):
        await broker.publish("class:1", "text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(BrokerError):
        await broker.subscribe("class:1", maxsize=0)


def test_a_broker_is_chosen_by_url() -> None:
    assert isinstance(broker_for("memory://"), MemoryBroker)
    with pytest.raises(BrokerError, match="unknown broker"):
        broker_for("carrier-pigeon://loft")
