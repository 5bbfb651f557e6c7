"""Class leases: one owner at a time, and a deposed owner's writes change nothing.

On SQLite and on PostgreSQL, through the writers the server uses on each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db.classes import ClassStore, HeartbeatStore
from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.leases import LEASE_MS, Deposed, Lease, LeaseStore, Owned
from classroom.db.models import Class, Score
from classroom.db.scores import ScoreStore
from classroom.db.writer import SqliteWriter, sqlite_path, writer_for
from classroom.domain.scorebook import Taken
from classroom.domain.session import open_class
from tests.db.test_score_store import a_class, entry, write

NOW = 1_700_000_000_000


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def test_one_owner_at_a_time_until_its_heartbeat_stops(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class_id, _ = await a_class(sessions)
    beats = HeartbeatStore(sessions)
    first = LeaseStore(sessions, "a", standalone=False)
    second = LeaseStore(sessions, "b", standalone=False)
    await beats.beat("a", NOW)
    lease = await first.claim(class_id, NOW)
    assert lease == Lease(class_id, 1, None, None)
    again = await first.claim(class_id, NOW)  # its own, again: no change
    assert isinstance(again, Lease) and again.token == 1 and again.down_since is None
    assert await second.claim(class_id, NOW + LEASE_MS) == Owned("a")  # a is alive
    assert await second.alive(NOW + LEASE_MS) == 1
    assert await second.alive(NOW + LEASE_MS + 1) == 0
    assert await second.orphans(NOW + LEASE_MS) == []
    # a's heartbeat is older than a lease: b takes the class over from where a was last seen.
    assert await second.orphans(NOW + LEASE_MS + 1) == [class_id]
    taken = await second.claim(class_id, NOW + LEASE_MS + 1)
    assert taken == Lease(class_id, 2, NOW, "a")
    assert await first.held() == {}
    assert await second.held() == {class_id: 2}


async def test_a_deposed_owner_writes_no_event_and_stores_no_score(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class_id, pid = await a_class(sessions)
    first = LeaseStore(sessions, "a", standalone=False)
    lease = await first.claim(class_id, NOW)
    assert isinstance(lease, Lease)
    engine = sessions.kw["bind"]
    path = sqlite_path(engine)
    events = ClassStore(sessions, writer_for(engine))
    scores = ScoreStore(sessions, None if path is None else SqliteWriter(path))
    events.fence(class_id, lease.token)
    scores.fence(class_id, lease.token)
    state = open_class(NOW)
    assert await events.persist(class_id, 0, state, []) == []
    assert await write(scores, class_id, Taken(entry("kept", pid))) is True

    # b claims the class (a looked dead); a, unaware, writes on with its old token.
    taken = await LeaseStore(sessions, "b", standalone=True).claim(class_id, NOW + 1)
    assert isinstance(taken, Lease) and taken.token == lease.token + 1
    with pytest.raises(LookupError):
        await events.persist(class_id, 0, state, [])
    assert isinstance(await write(scores, class_id, Taken(entry("lost", pid))), Deposed)
    async with sessions() as db:
        stored = set(await db.scalars(select(Score.client_id)))
        row = await db.get(Class, class_id)
        assert row is not None and row.last_seq == 0 and row.owner_node == "b"
    assert stored == {"kept"}
    await events.close()
    await scores.close()


async def test_a_class_handed_back_runs_on_without_its_restart_policy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class_id, _ = await a_class(sessions)
    first = LeaseStore(sessions, "a", standalone=False)
    await HeartbeatStore(sessions).beat("a", NOW)
    await first.claim(class_id, NOW)
    assert await first.release([class_id], NOW) == [class_id]
    assert await first.release([class_id], NOW) == []  # not its own any more
    second = LeaseStore(sessions, "b", standalone=False)
    assert await second.claim(class_id, NOW + 100) == Lease(class_id, 3, None, None)
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Class)) == 1
    # Handed back and left for longer than a lease (every process had stopped): the
    # class was not looked after meanwhile, so its restart policy applies.
    await second.release([class_id], NOW + 200)
    third = LeaseStore(sessions, "c", standalone=False)
    late = await third.claim(class_id, NOW + 200 + LEASE_MS + 1)
    assert late == Lease(class_id, 5, NOW + 200, None)


async def test_an_input_an_earlier_owner_stored_does_not_fail_the_next_owners_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # b took the class over while a was slow; a took it back with a book from before:
    # an input b stored comes to a again. It is left as it is, and the rest of a's
    # batch is stored with it.
    class_id, pid = await a_class(sessions)
    engine = sessions.kw["bind"]
    path = sqlite_path(engine)
    earlier = ScoreStore(sessions, None if path is None else SqliteWriter(path))
    earlier.fence(class_id, 0)  # the class's token as it is: nobody has claimed it
    assert await write(earlier, class_id, Taken(entry("both", pid))) is True
    later = ScoreStore(sessions, None if path is None else SqliteWriter(path))
    later.fence(class_id, 0)
    heard = [write(later, class_id, Taken(entry(cid, pid))) for cid in ("new-1", "both", "new-2")]
    assert [await outcome for outcome in heard] == [True, True, True]
    async with sessions() as db:
        stored = list(await db.scalars(select(Score.client_id).order_by(Score.id)))
    assert stored == ["both", "new-1", "new-2"]
    await earlier.close()
    await later.close()


async def test_an_owners_inputs_and_undos_in_one_batch_are_each_stored_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class_id, pid = await a_class(sessions)
    lease = await LeaseStore(sessions, "a", standalone=False).claim(class_id, NOW)
    assert isinstance(lease, Lease)
    engine = sessions.kw["bind"]
    path = sqlite_path(engine)
    scores = ScoreStore(sessions, None if path is None else SqliteWriter(path))
    scores.fence(class_id, lease.token)
    try:
        heard = [write(scores, class_id, Taken(entry(f"t{i}", pid))) for i in range(3)]
        # an undo queued with the inputs it takes back: the same batch
        heard.append(write(scores, class_id, Taken(entry("u", pid, undoes="t1", value=0), "t1")))
        heard.append(write(scores, class_id, Taken(entry("t0", pid))))  # a repeat, by chance
        assert [await outcome for outcome in heard] == [True] * 5
        entries, _ = await scores.load(class_id)
    finally:
        await scores.close()
    assert [(e.client_id, e.withdrawn) for e in entries] == [
        ("t0", False),
        ("t1", True),
        ("t2", False),
        ("u", False),
    ]


async def test_a_batch_whose_connection_was_cut_fails_and_the_next_one_is_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's connection of the score store's own")
    class_id, pid = await a_class(sessions)
    lease = await LeaseStore(sessions, "a", standalone=False).claim(class_id, NOW)
    assert isinstance(lease, Lease)
    scores = ScoreStore(sessions)
    scores.fence(class_id, lease.token)
    failed: list[int] = []
    scores.failed = failed.append
    try:
        assert await write(scores, class_id, Taken(entry("before", pid))) is True
        async with sessions.begin() as db:  # the server ends the store's connection
            await db.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state = 'idle' AND query LIKE '%stored AS%'"
                )
            )
        cut = await write(scores, class_id, Taken(entry("cut", pid)))
        assert isinstance(cut, Exception) and failed == [class_id]
        assert await write(scores, class_id, Taken(entry("after", pid))) is True
        entries, _ = await scores.load(class_id)
    finally:
        await scores.close()
    assert [e.client_id for e in entries] == ["before", "after"]


async def test_processes_long_gone_are_forgotten_unless_they_own_a_class(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class_id, _ = await a_class(sessions)
    beats = HeartbeatStore(sessions)
    for node, at in (("old", NOW), ("old-owner", NOW), ("recent", NOW + 10)):
        await beats.beat(node, at)
    await LeaseStore(sessions, "old-owner", standalone=True).claim(class_id, NOW)
    assert await beats.prune(NOW + 5) == 1
    assert await beats.last("old") is None
    assert await beats.last("old-owner") == NOW  # its class's lease names it
    assert await beats.last("recent") == NOW + 10
