"""When the garbage collector may stop the world: between classes, not during them.

CPython's collector pauses the whole process while it scans, and a full
collection scans every object the process tracks. Each open socket holds about
135 of them for as long as it is open, so with a room of 5,000 phones connected
a full collection scans some 650,000 objects: 0.5-0.7 s in which no cue, ack or
leaderboard goes out. Python runs one whenever a quarter more objects have
reached its oldest generation than the last one found; in a class of 5,000
tapping away, that came every minute or so (docs/benchmarks.md).

A live class also keeps growing what the collector would scan: its score book
holds every input taken (a 45-minute class of 5,000 keeps millions), in sets and
dictionaries that a full collection walks entry by entry.

So, when ``classroom serve`` runs (:func:`manage`):

- when a class starts (leaves its lobby), everything alive is *frozen*: moved
  out of the collector's sight, without a scan (:func:`gc.freeze`). A room's
  sockets were opened in the lobby and live as long as the class. And while a
  class is live, no full collection runs at all;
- when a class ends and, :data:`QUIET_S` later, no class is live, everything is
  unfrozen, a full collection runs, what survives is frozen again, and full
  collections may run again. Cycles left behind by sockets that closed during a
  class are freed then. In a gym whose classes overlap all day, this also
  happens at the end of any class once :data:`AT_LEAST_EVERY_S` have passed
  since the last one.

Young and middle collections run as always, so short-lived cycles are freed
promptly, and each of them scans at most two young collections' worth of objects.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

QUIET_S = 5.0
"""How long no class must be live after one ends before the full collection runs."""
AT_LEAST_EVERY_S = 2 * 3600.0
"""Run the full collection at the end of a class if the last one is older, live classes or not."""

GC_YOUNG_THRESHOLD = 10_000
GC_OLDER_THRESHOLDS = (2, 1)
NEVER = 2**31 - 1
"""The oldest generation's threshold while a class is live: no full collection."""

_managed = False
_last_full = 0.0
_waiting: asyncio.TimerHandle | None = None


def manage() -> None:
    """Tune the collector for serving, and collect only between classes from now on.

    A busy class allocates fast (every input, ack and board), and with the
    default thresholds a young collection ran every few hundred inputs. The
    middle generation is collected after every second young collection, so it
    never piles up more than two young collections' worth (with the default of
    ten it once gathered a whole room of phones connecting and scanned them in
    one 400 ms go). What start-up made (modules, the app) lives as long as the
    process and is frozen at once.
    """
    global _managed
    _managed = True
    _collect_all()


def managed() -> bool:
    return _managed


def class_started() -> None:
    """A class has left its lobby: freeze what is alive (its screens' sockets, mostly).

    And hold full collections off until classes are over.
    """
    if _managed:
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, GC_OLDER_THRESHOLDS[0], NEVER)


def class_ended(live: Callable[[], int]) -> None:
    """A class has ended; ``live`` counts the classes still live when asked.

    The full collection runs :data:`QUIET_S` from now if no class is live then,
    or at once if the last one is :data:`AT_LEAST_EVERY_S` old.
    """
    global _waiting
    if not _managed:
        return
    if time.monotonic() - _last_full >= AT_LEAST_EVERY_S:
        _collect_all()
        if live():  # still none while those classes are live
            gc.set_threshold(GC_YOUNG_THRESHOLD, GC_OLDER_THRESHOLDS[0], NEVER)
        return
    if _waiting is not None:
        _waiting.cancel()
    _waiting = asyncio.get_running_loop().call_later(QUIET_S, _collect_if_quiet, live)


def _collect_if_quiet(live: Callable[[], int]) -> None:
    global _waiting
    _waiting = None
    if live() == 0:
        _collect_all()


def _collect_all() -> None:
    """Unfreeze everything, collect it all, freeze what survives; full collections resume."""
    global _last_full
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)
    _last_full = time.monotonic()
