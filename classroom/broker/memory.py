"""The in-process broker: subscriptions are bounded queues in this event loop."""

from __future__ import annotations

from classroom.broker.base import BrokerError
from classroom.broker.queue import QueuedSubscription


class MemoryBroker:
    def __init__(self) -> None:
        self._subscriptions: dict[str, set[QueuedSubscription]] = {}

    async def start(self) -> None:
        """Nothing to connect to."""

    def problem(self) -> str | None:
        return None  # in this process: always there

    async def publish(self, channel: str, message: bytes) -> int:
        if not isinstance(message, bytes):
            raise BrokerError("a broker carries bytes")
        subscriptions = tuple(self._subscriptions.get(channel, ()))
        for subscription in subscriptions:
            subscription.offer(message)
        return 1 if subscriptions else 0  # this one process heard it, or nobody did

    async def subscribe(self, channel: str, *, maxsize: int = 4096) -> QueuedSubscription:
        subscription = QueuedSubscription(channel, maxsize, self._drop)
        self._subscriptions.setdefault(channel, set()).add(subscription)
        return subscription

    async def _drop(self, subscription: QueuedSubscription) -> None:
        subscriptions = self._subscriptions.get(subscription.channel)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscriptions[subscription.channel]

    async def close(self) -> None:
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                await subscription.close()
