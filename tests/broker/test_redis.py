"""What only the Redis broker has: a server that can go away, URLs, prefixes.

The restart tests run a private ``redis-server`` of their own on a free port
(tests/processes.py), and kill it; the machine's own Redis is never touched.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from classroom.broker import BrokerError, SubscriptionLost
from classroom.broker.base import Subscription
from classroom.broker.redis import RedisBroker, check_prefix, check_url
from tests.broker.test_contract import take
from tests.conftest import REDIS_URL, free_port, need_service
from tests.processes import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def shared_redis() -> AsyncIterator[Redis]:
    """A plain client of the test Redis, to look at what the broker did there."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        need_service("Redis", exc)
    yield client
    await client.aclose()


async def subscribe_when_back(broker: RedisBroker, channel: str, within_s: float) -> Subscription:
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await broker.subscribe(channel)
        except BrokerError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def read_all(subscription: Subscription) -> None:
    async with asyncio.timeout(5):
        async for _ in subscription:
            pass


async def test_after_a_restart_old_subscriptions_say_so_and_new_ones_work(
    private_redis: PrivateRedis,
) -> None:
    broker = RedisBroker(private_redis.url, prefix="restart", ping_s=0.5, retry_cap_s=0.5)
    await broker.start()
    try:
        old = await broker.subscribe("class:1")
        await broker.publish("class:1", b"before")
        assert await take(old, 1) == [b"before"]

        private_redis.kill()
        with pytest.raises(SubscriptionLost, match="connection to Redis dropped"):
            await read_all(old)

        # While Redis is down, neither publishing nor subscribing hangs.
        started = time.monotonic()
        with pytest.raises(BrokerError, match="can't publish to Redis"):
            await broker.publish("class:1", b"into the void")
        with pytest.raises(BrokerError, match="unreachable"):
            await broker.subscribe("class:1")
        assert time.monotonic() - started < 1.0

        private_redis.start()
        new = await subscribe_when_back(broker, "class:1", within_s=10)
        await broker.publish("class:1", b"after")
        assert await take(new, 1) == [b"after"]
        # The old subscription does not come back to life: it stays lost.
        with pytest.raises(SubscriptionLost):
            await read_all(old)
    finally:
        await broker.close()


async def test_the_first_publish_after_a_restart_goes_through(
    private_redis: PrivateRedis,
) -> None:
    """No publish failed while Redis was down, so nothing noticed its sockets were dead."""
    broker = RedisBroker(private_redis.url, prefix="first", ping_s=0.5, retry_cap_s=0.5)
    await broker.start()
    try:
        old = await broker.subscribe("class:1")
        await broker.publish("class:1", b"before")  # leaves a connection in the pool
        assert await take(old, 1) == [b"before"]
        private_redis.kill()
        with pytest.raises(SubscriptionLost):
            await read_all(old)
        private_redis.start()
        new = await subscribe_when_back(broker, "class:1", within_s=10)
        await broker.publish("class:1", b"after")
        assert await take(new, 1) == [b"after"]
    finally:
        await broker.close()


async def test_a_redis_that_stops_answering_is_given_up_on(private_redis: PrivateRedis) -> None:
    """A link that is open but silent (a cut network, a frozen server) counts as dropped."""
    broker = RedisBroker(private_redis.url, prefix="frozen", ping_s=0.2, retry_cap_s=0.2)
    await broker.start()
    admin = Redis.from_url(private_redis.url)
    try:
        quiet = await broker.subscribe("class:1")
        await admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
        started = time.monotonic()
        with pytest.raises(SubscriptionLost, match="no answer to pings"):
            await read_all(quiet)
        assert time.monotonic() - started < 2.0
        await admin.execute_command("CLIENT", "UNPAUSE")
        again = await subscribe_when_back(broker, "class:1", within_s=10)
        await broker.publish("class:1", b"awake")
        assert await take(again, 1) == [b"awake"]
    finally:
        await admin.aclose()
        await broker.close()


async def test_subscribe_returns_only_once_redis_has_confirmed(shared_redis: Redis) -> None:
    """Even when the SUBSCRIBE is slow to leave, a publish right after subscribe() arrives."""
    broker = RedisBroker(REDIS_URL, prefix=f"test-{secrets.token_hex(6)}")
    await broker.start()
    link = broker._link
    assert link is not None
    send = link.pubsub.subscribe
    delayed: set[asyncio.Task[None]] = set()

    async def slow_subscribe(*names: bytes) -> None:
        async def later() -> None:
            await asyncio.sleep(0.3)
            await send(*names)

        delayed.add(asyncio.get_running_loop().create_task(later()))

    link.pubsub.subscribe = slow_subscribe  # type: ignore[method-assign]
    try:
        subscription = await broker.subscribe("class:1")
        await broker.publish("class:1", b"right after")
        assert await take(subscription, 1) == [b"right after"]
    finally:
        await asyncio.gather(*delayed)
        await broker.close()


async def test_a_reader_that_crashes_says_so_and_leaves_no_one_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = RedisBroker(REDIS_URL, prefix=f"test-{secrets.token_hex(6)}")
    try:
        await broker.start()
    except BrokerError as exc:
        need_service("Redis", exc)

    def bug(*_: object) -> None:
        raise RuntimeError("a bug in the reader")

    try:
        subscription = await broker.subscribe("class:1")
        broker._dispatch = bug  # type: ignore[method-assign]
        await broker.publish("class:1", b"boom")
        with pytest.raises(SubscriptionLost, match="a bug in the reader"):
            await read_all(subscription)
        assert "the Redis broker's reader stopped" in caplog.text
        with pytest.raises(BrokerError, match="has stopped"):
            await broker.subscribe("class:1")
    finally:
        await broker.close()


async def test_redis_down_at_start_is_one_line_quickly() -> None:
    broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0", prefix="nobody")
    started = time.monotonic()
    with pytest.raises(BrokerError, match=r"can't reach Redis at redis://127\.0\.0\.1") as caught:
        await broker.start()
    assert time.monotonic() - started < 3.0
    assert "\n" not in str(caught.value)
    with pytest.raises(BrokerError, match="not been started"):
        await broker.publish("class:1", b"x")
    await broker.close()


async def test_a_channel_is_subscribed_on_redis_once_per_process(shared_redis: Redis) -> None:
    prefix = f"test-{secrets.token_hex(6)}"
    broker = RedisBroker(REDIS_URL, prefix=prefix)
    await broker.start()
    name = f"{prefix}:class:1"
    try:
        screens = [await broker.subscribe("class:1") for _ in range(5)]
        assert await shared_redis.pubsub_numsub(name) == [(name.encode(), 1)]
        for subscription in screens:
            await subscription.close()

        for _ in range(250):  # the UNSUBSCRIBE is on its way
            if await shared_redis.pubsub_numsub(name) == [(name.encode(), 0)]:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("Redis still has the channel subscribed after its last subscription closed")
    finally:
        await broker.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://127.0.0.1:notaport/0", "is malformed"),
        ("http://127.0.0.1:6379", "must start with redis://"),
        ("redis:///0", "names no host"),
        ("redis://127.0.0.1:6379/zero", "database number"),
        ("unix://", "names no socket path"),
        ("redis://127.0.0.1/0?decode_responses=true", "can't set decode_responses"),
        ("redis://127.0.0.1/0?protocol=3", "can't set protocol"),
    ],
)
def test_a_bad_url_is_refused_in_one_line(url: str, says: str) -> None:
    with pytest.raises(BrokerError, match=says) as caught:
        check_url(url)
    assert "\n" not in str(caught.value)


def test_a_password_never_shows_in_a_message() -> None:
    with pytest.raises(BrokerError) as caught:
        check_url("redis://:hunter2-secret@127.0.0.1:6379/zero")
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize("prefix", ["", "a:b", "with space", "x" * 65, "gym!1"])
def test_a_prefix_that_could_collide_is_refused(prefix: str) -> None:
    with pytest.raises(BrokerError, match="prefix"):
        check_prefix(prefix)


def test_good_urls_and_prefixes_pass() -> None:
    for url in (
        "redis://127.0.0.1:6379/0",
        "redis://redis",
        "rediss://user:secret@cache.example:6380/2",
        "unix:///run/redis.sock",
        "redis://127.0.0.1:6379/0?socket_keepalive=true",
    ):
        check_url(url)
    for prefix in ("classroom", "gym-north.prod", "a_1"):
        check_prefix(prefix)
