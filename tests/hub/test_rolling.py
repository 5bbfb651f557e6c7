"""Rolling updates: thousands of screens get the newest state in turn, within a budget."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from classroom.broker import MemoryBroker
from classroom.hub.hub import ROLL_TICK_S, Hub
from classroom.hub.screens import Screen


class Recording(Screen):
    """A screen that records what it is sent, and when (on the loop's clock)."""

    def __init__(self, role: str = "participant") -> None:
        super().__init__(None, 1, role)  # type: ignore[arg-type]
        self.got: list[tuple[float, dict[str, Any]]] = []

    def deliver(self, outgoing) -> bool:  # type: ignore[no-untyped-def]
        self.got.append((asyncio.get_running_loop().time(), json.loads(outgoing.text)))
        return True


def class_of(hub: Hub, screens: list[Recording]) -> None:
    hub.channel(1).screens.update(dict.fromkeys(screens))


def a_class(phones: int) -> tuple[Hub, list[Recording]]:
    """A hub with one class of ``phones`` phones."""
    hub = Hub(MemoryBroker())
    screens = [Recording() for _ in range(phones)]
    class_of(hub, screens)
    return hub, screens


def numbers(screen: Recording) -> list[int]:
    return [message["n"] for _, message in screen.got]


def ticks(screens: list[Recording]) -> list[int]:
    """How many screens were written in each tick (writes a tick apart are apart in time)."""
    times = sorted(at for screen in screens for at, _ in screen.got)
    sizes, size = [], 1
    for a, b in itertools.pairwise(times):
        if b - a > ROLL_TICK_S / 2:
            sizes.append(size)
            size = 0
        size += 1
    return [*sizes, size] if times else []


async def test_a_state_reaches_every_screen_once_a_share_each_tick() -> None:
    hub = Hub(MemoryBroker())
    phones = [Recording() for _ in range(1_000)]
    coach = Recording("instructor")
    class_of(hub, [*phones, coach])
    hub.roll(
        1,
        "strip",
        lambda: {"type": "leaderboard", "n": 1},
        interval_s=0.2,
        writes_per_s=4_000,  # 200 a tick: five ticks for 1,000 phones
        roles=["participant"],
    )
    await asyncio.sleep(0.6)
    assert [len(phone.got) for phone in phones] == [1] * 1_000
    assert coach.got == []  # not its audience
    shares = ticks(phones)
    assert sum(shares) == 1_000 and max(shares) <= 200 and len(shares) >= 5, shares
    await hub.close()


async def test_each_screen_gets_the_newest_at_most_once_an_interval() -> None:
    hub, phones = a_class(300)
    value = 0

    def strip() -> dict[str, Any]:
        return {"type": "leaderboard", "n": value}

    for value in range(1, 101):  # noqa: B007 - strip() reads the latest value
        hub.roll(1, "strip", strip, interval_s=0.3, writes_per_s=3_000)  # 2 ticks a round
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    for phone in phones:
        times = [at for at, _ in phone.got]
        values = numbers(phone)
        assert values[-1] == 100  # the newest, in the end
        assert values == sorted(set(values))  # never an older one after a newer one
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 0.3 * 0.9 for gap in gaps), gaps  # a little timer slack
        assert 2 <= len(values) <= 6  # ~1 s of changes: a round every 0.3 s, not 100
    await hub.close()


async def test_a_change_mid_round_reaches_the_rest_now_and_the_first_next_round() -> None:
    hub, phones = a_class(400)
    hub.roll(1, "strip", lambda: {"n": 1}, interval_s=0.3, writes_per_s=2_000)  # 100 a tick
    await asyncio.sleep(ROLL_TICK_S / 2)  # the first share has the first state
    hub.roll(1, "strip", lambda: {"n": 2}, interval_s=0.3, writes_per_s=2_000)
    await asyncio.sleep(1.0)
    got = [numbers(phone) for phone in phones]
    assert got.count([1, 2]) == 100  # the first share, again in the next round
    assert got.count([2]) == 300  # the rest got the newest in their turn, and only once
    await hub.close()


async def test_a_small_audience_gets_a_change_at_once_and_then_it_goes_quiet() -> None:
    hub, phones = a_class(20)
    loop = asyncio.get_running_loop()
    changed = loop.time()
    hub.roll(1, "strip", lambda: {"n": 1}, interval_s=0.5, writes_per_s=5_000)
    await asyncio.sleep(0.1)
    assert ticks(phones) == [20]  # all in one tick: no spreading needed
    assert all(phone.got[0][0] - changed < 0.05 for phone in phones)
    rolling = hub.channel(1).rolling["strip"]
    assert rolling.timer is None  # nothing left to send: no timer keeps running
    await asyncio.sleep(0.6)
    changed = loop.time()  # after a quiet interval, the next change goes out at once too
    hub.roll(1, "strip", lambda: {"n": 2}, interval_s=0.5, writes_per_s=5_000)
    await asyncio.sleep(0.1)
    assert [numbers(phone) for phone in phones] == [[1, 2]] * 20
    assert all(phone.got[1][0] - changed < 0.05 for phone in phones)
    await hub.close()


async def test_screens_that_leave_mid_round_are_skipped_and_newcomers_join_the_next() -> None:
    hub, phones = a_class(400)
    hub.roll(1, "strip", lambda: {"n": 1}, interval_s=0.1, writes_per_s=2_000)  # 100 a tick
    await asyncio.sleep(ROLL_TICK_S / 2)  # the first share is out
    gone = [phone for phone in phones if not phone.got][:150]
    for phone in gone:
        hub.remove(phone)
    newcomer = Recording()
    class_of(hub, [newcomer])
    await asyncio.sleep(0.4)
    assert all(phone.got == [] for phone in gone)
    stayed = [phone for phone in phones if phone not in gone]
    assert all(len(phone.got) == 1 for phone in stayed)
    assert newcomer.got == []  # it joined after the round began, and nothing changed since
    hub.roll(1, "strip", lambda: {"n": 2}, interval_s=0.1, writes_per_s=2_000)
    await asyncio.sleep(0.4)
    assert numbers(newcomer) == [2]
    assert all(phone.got == [] for phone in gone)
    await hub.close()


async def test_a_tiny_budget_is_kept_across_rounds() -> None:
    hub, phones = a_class(2)
    for n in range(12):  # a change every 0.1 s for 1.2 s; two writes a second allowed
        hub.roll(1, "strip", lambda n=n: {"n": n}, interval_s=0.1, writes_per_s=2)
        await asyncio.sleep(0.1)
    writes = sorted(at for phone in phones for at, _ in phone.got)
    assert 2 <= len(writes) <= 4, writes  # one at once, then two a second
    assert all(b - a >= 0.5 * 0.9 for a, b in itertools.pairwise(writes)), writes
    await hub.close()
