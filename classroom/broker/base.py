"""The broker contract.

Errors::

    BrokerError              a broker that can't be used as configured
    └── SubscriptionOverflow a subscriber fell so far behind that messages were lost

A broker carries opaque ``bytes`` on named channels. Delivery is in order per
channel, to every subscription open at the time of publishing. Each
subscription has a **bounded** queue: a subscriber that falls behind by more
than its ``maxsize`` is not slowed down and does not slow the publisher; its
next read raises :class:`SubscriptionOverflow` instead, and it must resync from
the source of truth (for the hub: its screens reconnect and resume or take a
snapshot). Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class BrokerError(Exception):
    """A broker that can't be used as configured."""


class SubscriptionOverflow(BrokerError):
    """The subscriber fell behind by more than its queue holds; messages were lost."""


class Subscription(Protocol):
    """Messages of one channel, in order, until closed."""

    channel: str

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None:
        """Stop receiving; iteration ends."""
        ...


class Broker(Protocol):
    async def publish(self, channel: str, message: bytes) -> None:
        """Deliver ``message`` to every open subscription of ``channel``."""
        ...

    async def subscribe(self, channel: str, *, maxsize: int = 4096) -> Subscription:
        """Open a subscription; it sees messages published from now on."""
        ...

    async def close(self) -> None:
        """Close every subscription and release the broker's resources."""
        ...
