"""The shell's clock: wall-clock milliseconds that advance with the monotonic clock.

The domain takes time as an argument; this is where it comes from. Readings
are epoch milliseconds (what screens understand) but are derived from
``time.monotonic`` after one wall-clock reading at start-up, so a wall-clock
step (NTP, a manual change) never makes a class jump.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class MonotonicClock:
    def __init__(self) -> None:
        self._wall_base = time.time()
        self._mono_base = time.monotonic()

    def now_ms(self) -> int:
        return int((self._wall_base + (time.monotonic() - self._mono_base)) * 1000)
