"""How class events cross processes: a small publish/subscribe interface.

:func:`broker_for` picks the implementation from a URL's scheme: ``memory://``
(one process, the default) or a Redis URL (``redis://``, ``rediss://``,
``unix://``) for several processes. See :mod:`classroom.broker.base` for the
contract.
"""

from __future__ import annotations

from classroom.broker.base import (
    Broker,
    BrokerError,
    Subscription,
    SubscriptionBroken,
    SubscriptionLost,
    SubscriptionOverflow,
)
from classroom.broker.memory import MemoryBroker

__all__ = [
    "Broker",
    "BrokerError",
    "MemoryBroker",
    "Subscription",
    "SubscriptionBroken",
    "SubscriptionLost",
    "SubscriptionOverflow",
    "broker_for",
]


def broker_for(url: str, *, prefix: str = "classroom") -> Broker:
    """The broker a URL names; ``prefix`` namespaces a Redis broker's channels."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "memory":
        return MemoryBroker()
    from classroom.broker.redis import SCHEMES, RedisBroker

    if scheme in SCHEMES:
        return RedisBroker(url, prefix=prefix)
    raise BrokerError(f"unknown broker {url!r}: use memory:// or a redis:// URL")
