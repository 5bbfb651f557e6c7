"""The in-process broker: subscriptions are bounded queues in this event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from classroom.broker.base import BrokerError, SubscriptionOverflow

_CLOSED = object()


class MemorySubscription:
    def __init__(self, broker: MemoryBroker, channel: str, maxsize: int) -> None:
        if maxsize < 1:
            raise BrokerError("a subscription needs room for at least one message")
        self.channel = channel
        self._broker = broker
        self._queue: asyncio.Queue[bytes | object] = asyncio.Queue(maxsize=maxsize)
        self._overflowed = False
        self._closed = False

    def _offer(self, message: bytes) -> None:
        if self._overflowed or self._closed:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._overflowed = True
            self._wake()

    def _wake(self) -> None:
        # Make room for the wake-up marker: what is queued is lost either way.
        while True:
            try:
                self._queue.put_nowait(_CLOSED)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            if self._overflowed:
                raise SubscriptionOverflow(
                    f"a subscriber of {self.channel!r} fell too far behind; messages were lost"
                )
            item = await self._queue.get()
            if item is _CLOSED:
                if self._overflowed:
                    continue  # raise above
                return
            assert isinstance(item, bytes)  # only bytes and the marker are ever queued
            yield item

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._broker._drop(self)
            self._wake()


class MemoryBroker:
    def __init__(self) -> None:
        self._subscriptions: dict[str, set[MemorySubscription]] = {}

    async def publish(self, channel: str, message: bytes) -> None:
        if not isinstance(message, bytes):
            raise BrokerError("a broker carries bytes")
        for subscription in tuple(self._subscriptions.get(channel, ())):
            subscription._offer(message)

    async def subscribe(self, channel: str, *, maxsize: int = 4096) -> MemorySubscription:
        subscription = MemorySubscription(self, channel, maxsize)
        self._subscriptions.setdefault(channel, set()).add(subscription)
        return subscription

    def _drop(self, subscription: MemorySubscription) -> None:
        subscriptions = self._subscriptions.get(subscription.channel)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscriptions[subscription.channel]

    async def close(self) -> None:
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                await subscription.close()
