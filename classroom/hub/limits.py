"""Per-socket limits: message size and rate."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 4096
RATE_PER_S = 20.0
BURST = 40


@dataclass
class TokenBucket:
    """Allows ``rate`` messages a second on average, ``burst`` at once."""

    rate: float = RATE_PER_S
    burst: float = BURST
    _tokens: float = field(init=False)
    _at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._tokens = self.burst

    def allow(self, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
