"""One contract for every broker implementation, run on memory and on a real Redis.

The Redis runs use the server at CLASSROOM_TEST_REDIS_URL (the local one by
default), with a prefix of their own per test, so they neither see nor leave
anything another test or deployment could. Without Redis they skip, saying why;
in CI they fail.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from classroom.broker import (
    Broker,
    BrokerError,
    MemoryBroker,
    SubscriptionBroken,
    SubscriptionOverflow,
    broker_for,
)
from classroom.broker.base import Subscription
from classroom.broker.redis import RedisBroker
from tests.conftest import REDIS_URL, need_service

BACKENDS = ("memory", "redis")

MakeBroker = Callable[[str], Awaitable[Broker]]


@pytest.fixture(params=BACKENDS)
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[MakeBroker]:
    """Makes the brokers of a test: one per deployment name, closed at the end.

    On Redis two deployments share the server and differ by their prefix; in
    memory each is a broker of its own.
    """
    run = secrets.token_hex(6)
    made: list[Broker] = []

    async def make(deployment: str = "main") -> Broker:
        broker: Broker
        if request.param == "memory":
            broker = MemoryBroker()
        else:
            broker = RedisBroker(REDIS_URL, prefix=f"test-{run}-{deployment}")
        try:
            await broker.start()
        except BrokerError as exc:
            need_service("Redis", exc)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


@pytest.fixture
async def broker(make_broker: MakeBroker) -> Broker:
    return await make_broker("main")


async def take(subscription: Subscription, n: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(5):
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


async def test_order_holds_per_channel_under_many_messages_on_many_channels(
    broker: Broker,
) -> None:
    channels = [f"class:{n}" for n in range(4)]
    subscriptions = [await broker.subscribe(channel, maxsize=10_000) for channel in channels]
    sent: dict[str, list[bytes]] = {channel: [] for channel in channels}

    async def publisher(channel: str) -> None:
        for i in range(2_000):
            message = f"{channel}/{i}".encode()
            sent[channel].append(message)
            await broker.publish(channel, message)

    # Four publishers at once, interleaved on the loop as the class actors would be.
    async with asyncio.TaskGroup() as group:
        for channel in channels:
            group.create_task(publisher(channel))
    for channel, subscription in zip(channels, subscriptions, strict=True):
        assert await take(subscription, 2_000) == sent[channel]


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


async def test_two_deployments_never_hear_each_other(make_broker: MakeBroker) -> None:
    """On one Redis, deployments differ by prefix only (pub/sub ignores databases)."""
    gym = await make_broker("gym")
    studio = await make_broker("studio")
    at_gym = await gym.subscribe("class:1")
    at_studio = await studio.subscribe("class:1")
    await gym.publish("class:1", b"gym")
    await studio.publish("class:1", b"studio")
    assert await take(at_gym, 1) == [b"gym"]
    assert await take(at_studio, 1) == [b"studio"]
    await gym.publish("class:1", b"gym again")
    assert await take(at_gym, 1) == [b"gym again"]
    await studio.publish("class:1", b"studio again")
    assert await take(at_studio, 1) == [b"studio again"]  # not the gym's message


async def test_publishing_with_no_subscriber_is_fine_and_reaches_no_one_later(
    broker: Broker,
) -> None:
    for i in range(10):
        await broker.publish("class:nobody", str(i).encode())
    late = await broker.subscribe("class:nobody")
    await broker.publish("class:nobody", b"now")
    assert await take(late, 1) == [b"now"]


async def test_a_closed_subscription_ends_and_hears_nothing_more(broker: Broker) -> None:
    subscription = await broker.subscribe("class:1")
    other = await broker.subscribe("class:1")
    await subscription.close()
    await broker.publish("class:1", b"late")
    async with asyncio.timeout(2):
        assert [m async for m in subscription] == []
    assert await take(other, 1) == [b"late"]  # the channel's other subscriber still hears


async def test_closing_the_last_subscription_and_subscribing_again_works(broker: Broker) -> None:
    for round_ in range(3):
        subscription = await broker.subscribe("class:1")
        await broker.publish("class:1", str(round_).encode())
        assert await take(subscription, 1) == [str(round_).encode()]
        await subscription.close()


async def test_closing_the_broker_ends_every_subscription(make_broker: MakeBroker) -> None:
    broker = await make_broker("main")
    subscription = await broker.subscribe("class:1")
    await broker.close()
    async with asyncio.timeout(2):
        assert [m async for m in subscription] == []


async def test_a_subscriber_that_falls_behind_is_told_not_silently_dropped(broker: Broker) -> None:
    slow = await broker.subscribe("class:1", maxsize=3)
    fast = await broker.subscribe("class:1", maxsize=100)
    for i in range(10):
        await broker.publish("class:1", str(i).encode())
    # Once the fast one has all ten, all ten were offered to the slow one too.
    assert len(await take(fast, 10)) == 10  # the others are not held back
    with pytest.raises(SubscriptionOverflow, match="fell too far behind"):
        async with asyncio.timeout(2):
            async for _ in slow:
                pass
    assert issubclass(SubscriptionOverflow, SubscriptionBroken)


async def test_bad_input_is_refused(broker: Broker) -> None:
    with pytest.raises(BrokerError):
        await broker.publish("class:1", "text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(BrokerError):
        await broker.subscribe("class:1", maxsize=0)


def test_a_broker_is_chosen_by_url() -> None:
    assert isinstance(broker_for("memory://"), MemoryBroker)
    redis = broker_for("redis://127.0.0.1:6379/0", prefix="gym-1")
    assert isinstance(redis, RedisBroker)
    assert redis.prefix == "gym-1"
    with pytest.raises(BrokerError, match="unknown broker"):
        broker_for("carrier-pigeon://loft")


async def test_a_subscription_hears_what_is_published_right_after_it_opens(
    broker: Broker,
) -> None:
    channels = [f"class:{n}" for n in range(300)]
    subscriptions = await asyncio.gather(*(broker.subscribe(channel) for channel in channels))
    await asyncio.gather(*(broker.publish(channel, channel.encode()) for channel in channels))
    for channel, subscription in zip(channels, subscriptions, strict=True):
        assert await take(subscription, 1) == [channel.encode()]


async def test_a_publish_says_whether_anyone_heard_it(broker: Broker) -> None:
    # How a process finds out that nobody owns a class right now (classroom/live/router.py).
    assert await broker.publish("class:1:in", b"anyone?") == 0
    subscription = await broker.subscribe("class:1:in")
    second = await broker.subscribe("class:1:in")  # one process: counted once
    assert await broker.publish("class:1:in", b"hello") == 1
    assert await take(subscription, 1) == [b"hello"]
    await subscription.close()
    await second.close()
    assert await broker.publish("class:1:in", b"anyone now?") == 0
