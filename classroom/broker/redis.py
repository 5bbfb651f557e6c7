"""The Redis broker: class events cross processes on Redis pub/sub.

Theory of operation
    Publishing goes through a small pool of connections of its own
    (:data:`PUBLISH_CONNECTIONS`). A publish is never retried, so a message is
    never sent twice; one that fails raises
    :class:`~classroom.broker.base.BrokerError` at once. Messages of one channel
    keep the order in which their publishes were awaited (a class has one actor,
    which publishes one event after the other).

    Every subscription of the process shares one pub/sub connection, the
    *link*. Redis is subscribed to a channel once, however many subscriptions
    this process has on it, and unsubscribed when the last one closes. One
    reader task reads the link and offers each message to the bounded queue of
    every subscription of its channel (:mod:`classroom.broker.queue`): it never
    waits on a subscriber, and a slow one breaks alone. :meth:`RedisBroker.subscribe`
    returns once Redis has confirmed the subscription, so a message published
    after it returns is delivered.

    Channels and keys are named ``<prefix>:<channel>``: Redis logical databases
    don't separate pub/sub, so the prefix (``CLASSROOM_REDIS_PREFIX``) is what
    keeps two deployments on one Redis apart. A prefix has no ``:``, so one
    deployment's names can't be another's.

When the link drops
    Redis keeps nothing for a subscriber that was away. So when the link drops
    (Redis restarted, the network cut it, or Redis left a ping unanswered for
    three ping intervals while the link was idle), every subscription on it
    raises :class:`~classroom.broker.base.SubscriptionLost` on its next read:
    the subscriber resyncs from the database and subscribes again. The
    publishing connections are closed too, so a publish after Redis is back
    doesn't fail on a socket of the old server. The reader
    connects a new link, waiting twice as long after each failed attempt, up to
    ``retry_cap_s``. Until the link is back, :meth:`RedisBroker.subscribe`
    raises :class:`~classroom.broker.base.BrokerError` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from classroom.broker.base import BrokerError, SubscriptionLost
from classroom.broker.queue import QueuedSubscription

# redis is imported where it is used: commands that don't serve (routine check,
# migrate) needn't pay the tenth of a second importing it takes.
if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

SCHEMES = ("redis", "rediss", "unix")
PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PREFIX_RULE = "1 to 64 letters, digits, '_', '.' or '-'"
RETRY_FIRST_S = 0.1
# Options a URL's query could set that would change what the broker reads.
FIXED_OPTIONS = frozenset({"decode_responses", "protocol", "encoding"})
PUBLISH_CONNECTIONS = 8


def shown(url: str) -> str:
    """``url`` without its password, fit for a log line or an error message."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "(a malformed URL)"


def check_url(url: str) -> None:
    """Raise :class:`BrokerError` (one line) unless ``url`` can name a Redis server."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise BrokerError(f"the Redis URL {shown(url)!r} is malformed: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise BrokerError(
            f"the Redis URL must start with redis://, rediss:// or unix://, not {shown(url)!r}"
        )
    fixed = sorted(FIXED_OPTIONS & parse_qs(parts.query).keys())
    if fixed:
        raise BrokerError(
            f"the Redis URL can't set {', '.join(fixed)}: the broker reads raw bytes (RESP2)"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise BrokerError(f"the Redis URL {shown(url)!r} names no socket path")
        return
    if not parts.hostname:
        raise BrokerError(f"the Redis URL {shown(url)!r} names no host")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise BrokerError(
            f"the Redis URL {shown(url)!r} must end with a database number, not {database!r}"
        )


def check_prefix(prefix: str) -> None:
    if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix):
        raise BrokerError(f"the Redis prefix must be {PREFIX_RULE}, not {prefix!r}")


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


@dataclass(eq=False)
class _Link:
    """One pub/sub connection and what this process is subscribed to on it."""

    pubsub: PubSub
    alive: bool = True
    subscriptions: dict[bytes, set[QueuedSubscription]] = field(default_factory=dict)
    # The latest SUBSCRIBE of each channel, resolved True once Redis confirms it
    # (False if the link dropped first); ``sent`` holds every unconfirmed one in
    # the order sent, since Redis confirms in that order.
    wanted: dict[bytes, asyncio.Future[bool]] = field(default_factory=dict)
    sent: dict[bytes, deque[asyncio.Future[bool]]] = field(default_factory=dict)


class RedisBroker:
    """Pub/sub on a Redis server, namespaced by ``prefix``; see the module's docstring."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "classroom",
        timeout_s: float = 2.0,
        ping_s: float = 5.0,
        retry_cap_s: float = 5.0,
    ) -> None:
        check_url(url)
        check_prefix(prefix)
        self.url = url
        self.prefix = prefix
        self._timeout_s = timeout_s
        self._ping_s = ping_s
        self._retry_cap_s = retry_cap_s
        # Nobody publishes on it: it keeps the link subscribed, so the reader
        # reads (and answers pings) even when this process follows no class.
        self._keepalive = f"{prefix}!keepalive".encode()
        self._client: Redis | None = None
        self._listener: Redis | None = None
        self._link: _Link | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stopped: str | None = None  # why the reader stopped for good, if it did

    # -- the contract -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis, or raise :class:`BrokerError` saying why it can't."""
        if self._reader is not None:
            return
        self._stopped = None
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        options: dict[str, Any] = {
            "socket_connect_timeout": self._timeout_s,
            "retry": Retry(NoBackoff(), 0),
        }
        try:
            # A few connections, shared by every class's publishes: beyond them a
            # publish waits (up to the timeout) rather than open yet another.
            self._client = Redis.from_pool(
                BlockingConnectionPool.from_url(
                    self.url,
                    max_connections=PUBLISH_CONNECTIONS,
                    timeout=self._timeout_s,
                    socket_timeout=self._timeout_s,
                    **options,
                )
            )
            # No read timeout on the link: it waits for messages, and pings when idle.
            self._listener = Redis.from_url(self.url, socket_timeout=None, **options)
        except ValueError as exc:
            raise BrokerError(f"the Redis URL {shown(self.url)!r} is malformed: {exc}") from None
        try:
            await self._client.ping()
            link = await self._connect()
        except (RedisError, OSError) as exc:
            await self._release()
            raise BrokerError(f"can't reach Redis at {shown(self.url)}: {_reason(exc)}") from exc
        self._link = link
        self._reader = asyncio.get_running_loop().create_task(
            self._read_forever(link), name="redis-broker-reader"
        )

    def problem(self) -> str | None:
        """Why the broker can't carry messages now, in a few words; None if it can."""
        if self._stopped is not None:
            return f"Redis broker stopped: {self._stopped}"
        if self._link is None:
            return f"Redis at {shown(self.url)} unreachable; reconnecting"
        return None

    async def publish(self, channel: str, message: bytes) -> int:
        from redis.exceptions import RedisError

        if not isinstance(message, bytes):
            raise BrokerError("a broker carries bytes")
        name = self._name(channel)
        if self._client is None:
            raise BrokerError("the Redis broker has not been started")
        try:
            # Each process listens on one connection: Redis counts processes.
            heard: int = await self._client.publish(name, message)
        except (RedisError, OSError) as exc:
            raise BrokerError(
                f"can't publish to Redis at {shown(self.url)}: {_reason(exc)}"
            ) from exc
        return heard

    async def subscribe(self, channel: str, *, maxsize: int = 4096) -> QueuedSubscription:
        from redis.exceptions import RedisError

        name = self._name(channel)
        link = self._link
        if link is None:
            if self._client is None:
                raise BrokerError("the Redis broker has not been started")
            if self._stopped is not None:
                raise BrokerError(f"the Redis broker has stopped: {self._stopped}")
            raise BrokerError(
                f"Redis at {shown(self.url)} is unreachable: can't subscribe to {channel!r} now"
            )
        subscription = QueuedSubscription(channel, maxsize, partial(self._drop, link, name))
        link.subscriptions.setdefault(name, set()).add(subscription)
        confirmed = link.wanted.get(name)
        try:
            if confirmed is None:
                confirmed = link.wanted[name] = asyncio.get_running_loop().create_future()
                link.sent.setdefault(name, deque()).append(confirmed)
                await link.pubsub.subscribe(name)
            async with asyncio.timeout(self._timeout_s):
                ok = await asyncio.shield(confirmed)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            await subscription.close()
            raise BrokerError(
                f"can't subscribe to {channel!r} on Redis at {shown(self.url)}: "
                + (_reason(exc) if not isinstance(exc, TimeoutError) else "no confirmation")
            ) from exc
        except BaseException:
            await subscription.close()
            raise
        if not ok:
            await subscription.close()
            raise BrokerError(
                f"the connection to Redis at {shown(self.url)} dropped "
                f"while subscribing to {channel!r}"
            )
        return subscription

    async def close(self) -> None:
        """Close every subscription, stop the reader and release the connections."""
        self._stopped = "it was closed"
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])
            if not reader.cancelled():
                reader.exception()  # a failure of its own was logged where it happened
        link, self._link = self._link, None
        if link is not None:
            link.alive = False
            for subscriptions in list(link.subscriptions.values()):
                for subscription in list(subscriptions):
                    await subscription.close()
            await self._close_link(link)
        await self._release()

    # -- the link -----------------------------------------------------------------------

    def _name(self, channel: str) -> bytes:
        if not isinstance(channel, str) or not channel:
            raise BrokerError("a channel is named by a non-empty string")
        return f"{self.prefix}:{channel}".encode()

    async def _connect(self) -> _Link:
        """A new link, subscribed to the keepalive channel (which proves it works)."""
        assert self._listener is not None  # start() made it before anything connects
        pubsub = self._listener.pubsub()
        try:
            async with asyncio.timeout(self._timeout_s):
                await pubsub.subscribe(self._keepalive)
                while True:
                    message = await pubsub.get_message(timeout=self._timeout_s)
                    if message is not None and message["type"] == "subscribe":
                        break
        except BaseException:
            await _quietly_close(pubsub)
            raise
        return _Link(pubsub)

    async def _read_forever(self, link: _Link | None) -> None:
        from redis.exceptions import RedisError

        delay = RETRY_FIRST_S
        try:
            while True:
                if link is not None:
                    reason = await self._read(link)
                    self._lose(link, reason)
                    await self._close_link(link)
                    await self._drop_publish_connections()
                    log.warning(
                        "lost the connection to Redis at %s (%s); reconnecting",
                        shown(self.url),
                        reason,
                    )
                    link, delay = None, RETRY_FIRST_S
                await asyncio.sleep(delay)
                try:
                    link = await self._connect()
                except (RedisError, OSError) as exc:
                    log.debug("can't reconnect to Redis yet: %s", _reason(exc))
                    delay = min(delay * 2, self._retry_cap_s)
                    continue
                self._link = link
                log.info("reconnected to Redis at %s", shown(self.url))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug, not Redis: fail loudly, and let no subscription wait for nothing.
            log.exception("the Redis broker's reader stopped")
            self._stopped = f"its reader failed ({_reason(exc)})"
            if link is not None:
                self._lose(link, self._stopped)
            raise

    async def _read(self, link: _Link) -> str:
        """Read the link until it drops; return why it did."""
        from redis.exceptions import RedisError

        loop = asyncio.get_running_loop()
        heard = loop.time()
        try:
            while True:
                message = await link.pubsub.get_message(timeout=self._ping_s)
                now = loop.time()
                if message is None:
                    if now - heard >= 3 * self._ping_s:
                        return f"no answer to pings for {now - heard:.0f} s"
                    await link.pubsub.ping()
                    continue
                heard = now
                self._dispatch(link, message)
        except (RedisError, OSError) as exc:
            return _reason(exc)

    def _dispatch(self, link: _Link, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            for subscription in tuple(link.subscriptions.get(message["channel"], ())):
                subscription.offer(message["data"])
        elif kind == "subscribe":
            sent = link.sent.get(message["channel"])
            if sent:
                confirmed = sent.popleft()
                if not confirmed.done():
                    confirmed.set_result(True)
                if not sent:
                    del link.sent[message["channel"]]

    def _lose(self, link: _Link, reason: str) -> None:
        """The link is gone: every subscription on it breaks, every wait on it ends."""
        link.alive = False
        if self._link is link:
            self._link = None
        for subscriptions in link.subscriptions.values():
            for subscription in subscriptions:
                subscription.break_with(
                    SubscriptionLost,
                    f"the connection to Redis dropped ({reason}); "
                    f"messages on {subscription.channel!r} published meanwhile are lost",
                )
        for sent in link.sent.values():
            for confirmed in sent:
                if not confirmed.done():
                    confirmed.set_result(False)
        link.sent.clear()

    async def _drop(self, link: _Link, name: bytes, subscription: QueuedSubscription) -> None:
        """A subscription closed: unsubscribe Redis when it was the channel's last."""
        from redis.exceptions import RedisError

        subscriptions = link.subscriptions.get(name)
        if subscriptions is None:
            return
        subscriptions.discard(subscription)
        if subscriptions:
            return
        del link.subscriptions[name]
        link.wanted.pop(name, None)
        if link.alive:
            with contextlib.suppress(RedisError, OSError):  # the reader sees the link drop
                await link.pubsub.unsubscribe(name)

    async def _drop_publish_connections(self) -> None:
        """Redis went away: the next publish connects afresh rather than fail on a dead socket."""
        if self._client is not None:
            try:
                await self._client.connection_pool.disconnect()
            except Exception:
                log.debug("closing the publishing connections failed", exc_info=True)

    async def _close_link(self, link: _Link) -> None:
        await _quietly_close(link.pubsub)

    async def _release(self) -> None:
        for client in (self._client, self._listener):
            if client is not None:
                try:
                    await client.aclose()
                except Exception:
                    log.debug("closing a Redis client failed", exc_info=True)
        self._client = self._listener = None


async def _quietly_close(pubsub: PubSub) -> None:
    try:
        await pubsub.aclose()
    except Exception:
        log.debug("closing a Redis pub/sub connection failed", exc_info=True)
