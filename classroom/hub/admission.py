"""Who may open another socket: limits per participant, display link and address.

A phone needs one socket, a wall one, and a page that reconnects may hold a
second for a few seconds while the old one is closing. A script holding a
participant's token could open thousands, and every socket is a file
descriptor: past the process's limit, nothing else (another phone, the join
page, the database file a class writes to) can be opened at all. So every
socket is counted, under each key it belongs to, before it is accepted:

* per participant of a class, and per display link (the link a wall opened);
* per client address (the proxy's, unless the proxy is trusted);
* in all, against the process's file descriptors, leaving a reserve for the
  database, HTTP requests and logs.

A socket over a per-key limit is refused with HTTP 429 and one over the
process's budget with HTTP 503; neither is ever accepted, so a flood of them
costs a class nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import resource
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 64
"""File descriptors never given to sockets (at least; a tenth of a large limit)."""

TOO_MANY_FOR_ONE = "Too many connections for this screen or address at once; try again in a moment."
SERVER_FULL = "The server is at its connection limit; try again in a moment."


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketLimits:
    """The most sockets open at once per key; 0 means no limit for that key."""

    per_participant: int = 5
    per_display: int = 20
    per_address: int = 500


def socket_budget(descriptors: int | None = None) -> int:
    """How many sockets the process may hold, from its soft descriptor limit."""
    if descriptors is None:
        descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if descriptors == resource.RLIM_INFINITY or descriptors <= 0:
        descriptors = 1 << 20
    reserve = max(RESERVED_DESCRIPTORS, descriptors // 10)
    return max(1, descriptors - reserve)


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one; returns (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):  # as high as it goes, then
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A socket's place: the keys it is counted under, given back when it closes."""

    keys: tuple[Hashable, ...]


@dataclass(slots=True)
class Refused:
    """Why a socket was not admitted: the HTTP status and the sentence to show."""

    status: int
    message: str


@dataclass(slots=True)
class Admission:
    """Counts the open sockets under each key, and admits a new one within the limits."""

    limits: SocketLimits
    budget: int = field(default_factory=socket_budget)
    open: int = 0
    refused: int = 0  # sockets turned away since the process started
    _counts: Counter[Hashable] = field(default_factory=Counter)
    _unlogged: int = 0
    _logged_at: float = -math.inf

    def enter(
        self, *, address: str, participant: Hashable = None, display: Hashable = None
    ) -> Ticket | Refused:
        """Count a new socket, or say why it can't be opened (and count nothing)."""
        if self.open >= self.budget:
            return self._refuse(Refused(503, SERVER_FULL))
        keys: list[tuple[Hashable, int]] = [(("address", address), self.limits.per_address)]
        if participant is not None:
            keys.append((("participant", participant), self.limits.per_participant))
        if display is not None:
            keys.append((("display", display), self.limits.per_display))
        for key, limit in keys:
            if limit and self._counts[key] >= limit:
                return self._refuse(Refused(429, TOO_MANY_FOR_ONE))
        for key, _ in keys:
            self._counts[key] += 1
        self.open += 1
        return Ticket(tuple(key for key, _ in keys))

    def _refuse(self, refused: Refused) -> Refused:
        """Count a refusal; log them at most once a minute, not once each (a flood)."""
        self.refused += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= 60:
            log.warning(
                "refused %d sockets over the connection limits (latest: HTTP %d)",
                self._unlogged,
                refused.status,
            )
            self._unlogged, self._logged_at = 0, now
        return refused

    def leave(self, ticket: Ticket) -> None:
        """A socket counted by ``ticket`` has closed."""
        counts = self._counts
        for key in ticket.keys:
            left = counts[key] - 1
            if left > 0:
                counts[key] = left
            else:
                del counts[key]
        self.open -= 1

    def count(self, key: Hashable) -> int:
        return self._counts[key]
