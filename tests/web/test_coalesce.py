"""Coalesced updates: many changes, one message per interval, always the newest."""

from __future__ import annotations

import asyncio
import json

from classroom.broker import MemoryBroker
from classroom.hub.hub import Hub
from classroom.hub.screens import Screen


class Recording(Screen):
    """A screen that records what it is sent (the fan-out itself is tested over sockets)."""

    def __init__(self, role: str) -> None:
        super().__init__(None, 1, role)  # type: ignore[arg-type]
        self.got: list[dict[str, object]] = []

    def deliver(self, outgoing) -> bool:  # type: ignore[no-untyped-def]
        self.got.append(json.loads(outgoing.text))
        return True


async def test_a_burst_of_updates_sends_the_latest_once_per_interval() -> None:
    hub = Hub(MemoryBroker())
    coach, phone = Recording("instructor"), Recording("participant")
    hub.channel(1).screens.update({coach: None, phone: None})
    value = 0

    def board() -> dict[str, object]:
        return {"type": "leaderboard", "total": value}

    for value in range(1, 101):  # noqa: B007 - board() reads the latest value
        hub.coalesce(1, "board", board, interval_s=0.2, roles=["instructor"])
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.45)
    totals = [m["total"] for m in coach.got]
    assert 2 <= len(totals) <= 5  # ~0.7 s of changes at 5 a second, not 100 messages
    assert totals[-1] == 100 and totals == sorted(totals)
    assert phone.got == []  # not its audience
    await hub.close()
