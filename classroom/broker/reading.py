"""Reading a channel for as long as a process runs, through dropped connections."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from classroom.broker.base import Broker, BrokerError, Subscription, SubscriptionBroken

log = logging.getLogger(__name__)

RESUBSCRIBE_S = 0.2
"""How often a broken subscription is tried again while the broker is away."""

#: Takes one message (and may await something for it).
Handle = Callable[[bytes], Awaitable[None] | None]


async def read_forever(
    broker: Broker,
    channel: str,
    handle: Handle,
    *,
    what: str,
    first: Subscription | None = None,
    maxsize: int = 4096,
) -> None:
    """Hand every message of ``channel`` to ``handle`` until cancelled.

    When the subscription breaks (Redis restarted), what was published meanwhile is
    lost and it is subscribed again; a message ``handle`` can't take is logged and
    skipped. ``first``: a subscription already open (say, to fail at start-up if the
    broker can't be reached); ``what`` names the channel in the log.
    """
    subscription = first
    while True:
        while subscription is None:
            try:
                subscription = await broker.subscribe(channel, maxsize=maxsize)
            except BrokerError:
                await asyncio.sleep(RESUBSCRIBE_S)
        try:
            async for payload in subscription:
                try:
                    result = handle(payload)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("%s: a message could not be read", what)
        except SubscriptionBroken as exc:
            log.warning("%s: %s; listening again", what, exc)
        finally:
            await subscription.close()
        subscription = None
