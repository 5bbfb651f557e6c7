"""The heart-rate store on SQLite and on PostgreSQL: samples once each, totals
rewritten, profiles kept by device, strap claims one per strap and per person."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.heart import NO_SUCH_STRAP, STRAP_TAKEN, HeartStore, SampleRow, TotalRow
from classroom.db.models import Class, Participant, Room
from classroom.domain.errors import ValidationError
from tests.db.test_score_store import a_class

NOW = 1_700_000_000_000


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[HeartStore, int, int, int, int]]:
    """A store, and a class (in a room) with two participants on two phones: the
    store, the class, Ana, Ben and the room."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    class_id, ana = await a_class(sessions)
    async with sessions.begin() as db:
        row = await db.get(Class, class_id)
        assert row is not None
        room = Room(instructor_id=row.instructor_id, name="Studio")
        db.add(room)
        await db.flush()
        row.room_id = room.id
        await db.execute(update(Participant).where(Participant.id == ana).values(device_id="dev-a"))
        ben = Participant(class_id=class_id, nickname="Ben", device_id="dev-b")
        db.add(ben)
        await db.flush()
        ben_id, room_id = ben.id, room.id
    try:
        yield HeartStore(sessions, engine.dialect.name), class_id, ana, ben_id, room_id
    finally:
        await engine.dispose()


async def test_samples_are_stored_once_and_totals_rewritten(
    store: tuple[HeartStore, int, int, int, int],
) -> None:
    heart, class_id, ana, ben, _room = store
    first = [SampleRow(ana, NOW, 120, 125), SampleRow(ana, NOW + 5000, 130, 131)]
    await heart.write(
        class_id, first, [TotalRow(ana, 1.5, (0, 0, 5000, 5000, 0, 0), 185, 131, 125)]
    )
    # A batch written again (a retry after a failure) stores nothing twice.
    again = [*first, SampleRow(ben, NOW, 90, 95)]
    totals = [TotalRow(ana, 2.5, (0, 0, 5000, 10000, 0, 0), 185, 140, 128)]
    await heart.write(class_id, again, totals)
    assert await heart.samples(class_id) == {
        ana: [(NOW, 120), (NOW + 5000, 130)],
        ben: [(NOW, 90)],
    }
    (total,) = (await heart.totals(class_id)).values()
    assert (total.points, total.zone_ms, total.peak_bpm, total.mean_bpm) == (
        2.5,
        [0, 0, 5000, 10000, 0, 0],
        140,
        128,
    )


async def test_profiles_are_kept_by_device(store: tuple[HeartStore, int, int, int, int]) -> None:
    heart, class_id, ana, ben, _room = store
    saved = await heart.save_profile(ana, age=40, max_hr=None, show_bpm=True)
    assert (saved.age, saved.max_hr, saved.show_bpm) == (40, None, True)
    await heart.raise_max(ana, 196)
    assert (await heart.profile(ana)).raised_max_hr == 196
    # The same way of saying it keeps the raised max; a new age starts afresh.
    assert (await heart.save_profile(ana, age=40, max_hr=None, show_bpm=False)).raised_max_hr == 196
    assert (
        await heart.save_profile(ana, age=41, max_hr=None, show_bpm=False)
    ).raised_max_hr is None
    assert set(await heart.profiles(class_id)) == {ana}
    assert (await heart.profile(ben)).age is None


async def test_a_strap_is_claimed_by_one_person_and_only_if_the_room_hears_it(
    store: tuple[HeartStore, int, int, int, int],
) -> None:
    heart, class_id, ana, ben, room = store
    assert await heart.room_class(room) == class_id  # the room's open class
    free, _ = await heart.straps_for(class_id, ana, NOW)
    assert free == []
    with pytest.raises(ValidationError, match=NO_SUCH_STRAP):
        await heart.claim(class_id, ana, "H10-1", NOW)
    async with heart._sessions() as db:
        room = (await db.get(Class, class_id)).room_id  # type: ignore[union-attr]
    assert room is not None
    await heart.note_straps(room, {"H10-1": 120, "H10-2": 90}, NOW)
    await heart.note_straps(room, {"H10-1": 125}, NOW + 1000)  # its bpm moves on
    free, mine = await heart.straps_for(class_id, ana, NOW + 1000)
    assert (free, mine) == ([("H10-1", 125), ("H10-2", 90)], None)
    await heart.claim(class_id, ana, "H10-1", NOW + 1000)
    with pytest.raises(ValidationError, match=STRAP_TAKEN):
        await heart.claim(class_id, ben, "H10-1", NOW + 1000)
    free, mine = await heart.straps_for(class_id, ben, NOW + 1000)
    assert (free, mine) == ([("H10-2", 90)], None)
    await heart.claim(class_id, ana, "H10-2", NOW + 1000)  # a person holds one strap
    assert await heart.claims(class_id) == {"H10-2": ana}
    await heart.release(ana)
    assert await heart.claims(class_id) == {}
    # A strap not heard for a while is no longer offered.
    free, _ = await heart.straps_for(class_id, ben, NOW + 60_000)
    assert free == []
