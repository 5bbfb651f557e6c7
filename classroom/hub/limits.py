"""Per-socket limits: message size and rate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 4096
RATE_PER_S = 20.0
BURST = 40


@dataclass(slots=True)
class TokenBucket:
    """Allows ``rate`` messages a second on average, ``burst`` at once."""

    rate: float = RATE_PER_S
    burst: float = BURST
    _tokens: float = field(init=False)
    _at: float = field(init=False, default=-math.inf)  # when tokens were last counted

    def __post_init__(self) -> None:
        self._tokens = self.burst

    def allow(self, now: float) -> bool:
        tokens = self._tokens + (now - self._at) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self._at = now
        if tokens >= 1:
            self._tokens = tokens - 1
            return True
        self._tokens = tokens
        return False
