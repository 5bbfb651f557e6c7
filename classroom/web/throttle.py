"""Attempts counted in a sliding window, per account and per address.

Wrong pairing codes (per instructor and address) and new wall displays (per
address) are counted here; sign-in has a throttle of its own, with backoff
(classroom/web/sign_in_throttle.py). Once either count reaches its limit,
further attempts are refused until the oldest one leaves the window. Time is
passed in, so tests need no sleeping. Counts live in this process's memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class AttemptWindow:
    per_account: int = 5
    per_address: int = 20
    window_s: float = 15 * 60
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, account: str, address: str, now: float) -> float:
        """Seconds to wait before trying again; 0 when an attempt is allowed."""
        waits = []
        for key, limit in ((f"a:{account}", self.per_account), (f"ip:{address}", self.per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[len(times) - limit] + self.window_s - now)
        return max(waits, default=0.0)

    def failed(self, account: str, address: str, now: float) -> None:
        for key in (f"a:{account}", f"ip:{address}"):
            self._recent(key, now).append(now)
        if len(self._failures) > 100_000:  # bound memory under a spray of addresses
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]

    def succeeded(self, account: str) -> None:
        self._failures.pop(f"a:{account}", None)
