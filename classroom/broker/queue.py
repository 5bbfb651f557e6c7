"""A subscription's bounded queue, shared by every broker implementation.

The broker offers each message without waiting; a full queue breaks the
subscription (:class:`~classroom.broker.base.SubscriptionOverflow`) instead of
growing or holding the publisher back. A broker that loses its connection
breaks it too (:class:`~classroom.broker.base.SubscriptionLost`). Either way the
next read raises, and what was still queued is dropped with it: the subscriber
resyncs from the source of truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from classroom.broker.base import BrokerError, SubscriptionBroken, SubscriptionOverflow

_WAKE = object()


class QueuedSubscription:
    """Messages of one channel in a queue of at most ``maxsize``, until closed or broken."""

    def __init__(
        self,
        channel: str,
        maxsize: int,
        on_close: Callable[[QueuedSubscription], Awaitable[None]] | None = None,
    ) -> None:
        if not isinstance(maxsize, int) or maxsize < 1:
            raise BrokerError("a subscription needs room for at least one message")
        self.channel = channel
        self._on_close = on_close
        self._queue: asyncio.Queue[bytes | object] = asyncio.Queue(maxsize=maxsize)
        self._broken: tuple[type[SubscriptionBroken], str] | None = None
        self.closed = False

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def offer(self, message: bytes) -> None:
        """Queue ``message`` without waiting; a full queue breaks the subscription."""
        if self._broken is not None or self.closed:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.break_with(
                SubscriptionOverflow,
                f"a subscriber of {self.channel!r} fell too far behind; messages were lost",
            )

    def break_with(self, error: type[SubscriptionBroken], message: str) -> None:
        """Make the next read raise ``error(message)``; later messages are ignored."""
        if self._broken is None and not self.closed:
            self._broken = (error, message)
            self._wake()

    def _wake(self) -> None:
        # Make room for the wake-up marker: what is queued is lost either way.
        while True:
            try:
                self._queue.put_nowait(_WAKE)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            if self._broken is not None:
                error, message = self._broken
                raise error(message)
            item = await self._queue.get()
            if item is _WAKE:
                if self._broken is not None:
                    continue  # raise above
                return
            if not isinstance(item, bytes):  # only bytes and the marker are ever queued
                raise TypeError(f"unexpected item in a subscription's queue: {item!r}")
            yield item

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._on_close is not None:
            await self._on_close(self)
        self._wake()
