"""Sign-in throttling: wrong passwords slow down whoever sends them, not the instructor.

Three counts of failed sign-ins, each kept in this process's memory:

- **per address** (every account): after :attr:`SignInThrottle.per_address`'s free
  failures, each further one doubles the wait before the next attempt from that
  address: 1 s, 2 s, 4 s, … up to 15 minutes;
- **per account and address**: the same, with fewer free failures;
- **per account**, over every address: at most ``account_failures`` in
  ``account_window_s``. This keeps a spray of guesses from many addresses as slow as
  one address would be. Past it, only an address the account signed in from
  recently (``known_for_s``) may still try, so the instructor at the gym's desk
  still gets in while a stranger's guesses wait.

A stranger's wrong passwords never keep the instructor out: they count against the
stranger's address, and against the account only up to the account-wide rate. A
count that has seen no failure for ``forget_s`` starts over. Time is passed in, so
tests need no sleeping.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Wait {wait} and try again."
MEMORY_BOUND = 100_000
"""Keys kept before the stale ones are dropped, so a spray of addresses can't grow memory."""


def in_words(seconds: float) -> str:
    """A wait for people: "1 second", "40 seconds", "3 minutes"."""
    whole = max(1, round(seconds + 0.499))  # rounded up: never tell someone too short a wait
    if whole < 90:
        return "1 second" if whole == 1 else f"{whole} seconds"
    return f"{round(whole / 60)} minutes"


@dataclass
class Backoff:
    """Failures per key: after ``free`` of them, each further one doubles the wait."""

    free: int
    first_wait_s: float = 1.0
    longest_wait_s: float = 15 * 60
    forget_s: float = 15 * 60
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Per key: how many failures, and when the last one was."""

    def _count(self, key: str, now: float) -> tuple[int, float]:
        count, last = self._failures.get(key, (0, now))
        if now - last >= max(self.forget_s, self._wait(count)):
            self._failures.pop(key, None)
            return 0, now
        return count, last

    def _wait(self, count: int) -> float:
        if count <= self.free:
            return 0.0
        return float(min(self.longest_wait_s, self.first_wait_s * 2 ** (count - self.free - 1)))

    def retry_after(self, key: str, now: float) -> float:
        count, last = self._count(key, now)
        return max(0.0, last + self._wait(count) - now)

    def failed(self, key: str, now: float) -> None:
        count, _ = self._count(key, now)
        self._failures[key] = (count + 1, now)
        if len(self._failures) > MEMORY_BOUND:
            for stale in [
                k for k, (_, last) in self._failures.items() if now - last >= self.forget_s
            ]:
                del self._failures[stale]

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass
class SignInThrottle:
    per_address: Backoff = field(default_factory=lambda: Backoff(free=10))
    per_account_address: Backoff = field(default_factory=lambda: Backoff(free=5))
    account_failures: int = 30
    account_window_s: float = 15 * 60
    known_for_s: float = 30 * 24 * 3600
    known_per_account: int = 32
    _account: dict[str, deque[float]] = field(default_factory=dict)
    _known: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per account: the addresses it signed in from, and when it last did."""

    def _recent(self, account: str, now: float) -> deque[float]:
        times = self._account.setdefault(account, deque())
        while times and times[0] <= now - self.account_window_s:
            times.popleft()
        return times

    def known(self, account: str, address: str, now: float) -> bool:
        """Whether ``account`` signed in from ``address`` lately."""
        since = self._known.get(account, {}).get(address)
        return since is not None and now - since < self.known_for_s

    def retry_after(self, account: str, address: str, now: float) -> float:
        """Seconds to wait before ``address`` may try ``account`` again; 0: it may now."""
        waits = [
            self.per_address.retry_after(address, now),
            self.per_account_address.retry_after(f"{account}\n{address}", now),
        ]
        recent = self._recent(account, now) if account in self._account else deque()
        if len(recent) >= self.account_failures and not self.known(account, address, now):
            waits.append(recent[len(recent) - self.account_failures] + self.account_window_s - now)
        return max(waits)

    def failed(self, account: str, address: str, now: float) -> None:
        self.per_address.failed(address, now)
        self.per_account_address.failed(f"{account}\n{address}", now)
        self._recent(account, now).append(now)
        if len(self._account) > MEMORY_BOUND:
            ended = now - self.account_window_s
            for stale in [
                a for a, times in self._account.items() if not times or times[-1] <= ended
            ]:
                del self._account[stale]

    def succeeded(self, account: str, address: str, now: float) -> None:
        self.per_account_address.forget(f"{account}\n{address}")
        known = self._known.setdefault(account, {})
        known.pop(address, None)
        known[address] = now  # the newest last
        while len(known) > self.known_per_account:
            del known[next(iter(known))]
