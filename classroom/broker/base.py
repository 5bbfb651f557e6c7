"""The broker contract.

Errors::

    BrokerError                  a broker that can't be used as configured, or can't be reached
    └── SubscriptionBroken       a subscription missed messages and has ended
        ├── SubscriptionOverflow the subscriber fell so far behind that messages were lost
        └── SubscriptionLost     the connection to the broker dropped; messages were lost

A broker carries opaque ``bytes`` on named channels. Delivery is in order per
channel, to every subscription open at the time of publishing. Each
subscription has a **bounded** queue: a subscriber that falls behind by more
than its ``maxsize`` is not slowed down and does not slow the publisher; its
next read raises :class:`SubscriptionOverflow` instead. A broker that lives in
another process (Redis) can lose its connection: whatever was published while
it was gone is lost, so every subscription open at the time raises
:class:`SubscriptionLost` on its next read, rather than carrying on as if
nothing had happened. Either way the subscriber must resync from the source of
truth (for the hub: its screens reconnect and resume or take a snapshot), and
subscribe again. Nothing is dropped silently.

While a broker can't be reached, :meth:`Broker.publish` and
:meth:`Broker.subscribe` raise :class:`BrokerError` promptly rather than wait;
once it is back they work again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class BrokerError(Exception):
    """A broker that can't be used as configured, or can't be reached."""


class SubscriptionBroken(BrokerError):
    """The subscription missed messages and has ended: resync, then subscribe again."""


class SubscriptionOverflow(SubscriptionBroken):
    """The subscriber fell behind by more than its queue holds; messages were lost."""


class SubscriptionLost(SubscriptionBroken):
    """The connection to the broker dropped; what was published meanwhile is lost."""


class Subscription(Protocol):
    """Messages of one channel, in order, until closed."""

    channel: str

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None:
        """Stop receiving; iteration ends."""
        ...


class Broker(Protocol):
    async def start(self) -> None:
        """Connect, or raise :class:`BrokerError` with one line saying why it can't."""
        ...

    def problem(self) -> str | None:
        """Why the broker can't carry messages now (for ``/readyz``); None if it can."""
        ...

    async def publish(self, channel: str, message: bytes) -> int:
        """Deliver ``message`` to every open subscription of ``channel``.

        Returns how many processes had a subscription to it: 0 when nobody heard it.
        """
        ...

    async def subscribe(self, channel: str, *, maxsize: int = 4096) -> Subscription:
        """Open a subscription; it sees messages published from now on."""
        ...

    async def close(self) -> None:
        """Close every subscription and release the broker's resources."""
        ...
