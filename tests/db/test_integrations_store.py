"""API tokens and webhook deliveries as stored, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.integrations import (
    DELIVERIES_KEPT,
    MAX_WEBHOOKS,
    TOO_MANY_WEBHOOKS,
    IntegrationStore,
)
from classroom.db.models import ApiToken, Instructor, WebhookDelivery, utcnow
from classroom.domain.errors import ValidationError

LEASE = timedelta(seconds=60)


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[list[IntegrationStore], int]]:
    """Three stores on three engines (as three processes have), and an instructor."""
    engines = [make_engine(database_url) for _ in range(3)]
    async with make_sessionmaker(engines[0]).begin() as db:
        coach = Instructor(email="api@example.com", password_hash="x")
        db.add(coach)
        await db.flush()
        coach_id = coach.id
    try:
        yield [IntegrationStore(make_sessionmaker(engine)) for engine in engines], coach_id
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_token_is_kept_as_its_hash_and_revoked_for_good(
    stores: tuple[list[IntegrationStore], int],
) -> None:
    (store, *_), coach = stores
    row, token = await store.add_token(coach, "  Booking\nsystem ", can_write=True)
    assert row.label == "Booking system"
    grant = await store.grant(token)
    assert grant is not None and grant.instructor_id == coach and grant.can_write
    async with store._sessions() as db:
        hashes = list(await db.scalars(select(ApiToken.token_hash)))
    assert hashes == [hashlib.sha256(token.encode()).hexdigest()]
    for wrong in ("", token[:-1], token + "x", token.upper(), "api_" + "A" * 200):
        assert await store.grant(wrong) is None
    assert await store.revoke_token(coach, row.id)
    assert not await store.revoke_token(coach, row.id)
    assert await store.grant(token) is None
    with pytest.raises(ValidationError):
        await store.add_token(coach, " \n ", can_write=False)


async def test_each_due_delivery_is_claimed_by_one_process(
    stores: tuple[list[IntegrationStore], int],
) -> None:
    all_stores, coach = stores
    store = all_stores[0]
    await store.add_webhook(coach, "https://a.example/h", ["class.opened"])
    await store.add_webhook(coach, "https://b.example/h", ["class.opened", "class.finished"])
    for n in range(20):
        assert await store.enqueue(coach, "class.opened", f'{{"n": {n}}}') == 2
    assert await store.enqueue(coach, "participant.joined", "{}") == 0  # nobody wants it
    now = utcnow() + timedelta(seconds=1)
    claims = await asyncio.gather(*(s.claim_due(now, LEASE, limit=100) for s in all_stores))
    taken = Counter(due.id for claimed in claims for due in claimed)
    assert len(taken) == 40
    assert set(taken.values()) == {1}, "a delivery was claimed by two processes"
    # Claimed ones aren't due again until the lease runs out.
    assert await store.claim_due(now, LEASE) == []
    again = await store.claim_due(now + LEASE + timedelta(seconds=1), LEASE, limit=100)
    assert len(again) == 40


async def test_attempts_are_recorded_and_end_delivered_or_failed(
    stores: tuple[list[IntegrationStore], int],
) -> None:
    (store, *_), coach = stores
    hook, secret = await store.add_webhook(coach, "https://a.example/h", ["class.started"])
    assert secret.startswith("whsec_")
    await store.enqueue(coach, "class.started", "{}")
    await store.enqueue(coach, "class.started", "{}")
    now = utcnow() + timedelta(seconds=1)
    first, second = await store.claim_due(now, LEASE)
    later = now + timedelta(seconds=10)
    await store.attempted(
        first.id, status=500, error="the receiver answered HTTP 500", retry_at=later
    )
    await store.attempted(second.id, status=None, error="ConnectError", retry_at=None)
    assert [d.id for d in await store.claim_due(later, LEASE)] == [first.id]
    await store.attempted(first.id, status=200, error=None, retry_at=None)
    rows = {row.id: row for row in await store.deliveries(coach)}
    assert (rows[first.id].state, rows[first.id].attempts, rows[first.id].last_status) == (
        "delivered",
        2,
        200,
    )
    assert (rows[second.id].state, rows[second.id].last_error) == ("failed", "ConnectError")
    # Removing a webhook ends what was pending for it.
    await store.enqueue(coach, "class.started", "{}")
    assert await store.remove_webhook(coach, hook.id)
    assert await store.claim_due(utcnow() + timedelta(hours=1), LEASE) == []
    async with store._sessions() as db:
        states = Counter(await db.scalars(select(WebhookDelivery.state)))
    assert states == {"delivered": 1, "failed": 2}


async def test_an_instructor_has_at_most_so_many_webhooks(
    stores: tuple[list[IntegrationStore], int],
) -> None:
    (store, *_), coach = stores
    for n in range(MAX_WEBHOOKS):
        await store.add_webhook(coach, f"https://a.example/{n}", ["class.opened"])
    with pytest.raises(ValidationError, match=TOO_MANY_WEBHOOKS):
        await store.add_webhook(coach, "https://a.example/one-more", ["class.opened"])
    assert len(await store.webhooks(coach)) == MAX_WEBHOOKS


async def test_finished_deliveries_are_forgotten_after_their_time_and_pending_ones_kept(
    stores: tuple[list[IntegrationStore], int],
) -> None:
    (store, *_), coach = stores
    await store.add_webhook(coach, "https://a.example/h", ["class.opened"])
    for _ in range(3):
        await store.enqueue(coach, "class.opened", "{}")
    first, second, _third = await store.claim_due(utcnow() + timedelta(seconds=1), LEASE)
    await store.attempted(first.id, status=204, error=None, retry_at=None)
    await store.attempted(second.id, status=None, error="ConnectError", retry_at=None)
    assert await store.forget_old(utcnow()) == 0  # all within the time kept
    later = utcnow() + DELIVERIES_KEPT + timedelta(minutes=1)
    assert await store.forget_old(later) == 2
    left = await store.deliveries(coach)
    assert [row.state for row in left] == ["pending"]
