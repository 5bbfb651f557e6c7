"""A class whose batch of scores failed to commit: its book is rebuilt, and no empty board goes out.

The store tells the keeper a batch failed (``ScoreStore.failed``); the keeper drops
the class's book and loads it again from what was stored. Until it is back, the
board is not rendered at all (screens keep what they show), and once it is, the
rebuilt board follows.
"""

from __future__ import annotations

import asyncio

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.scores import ScoreStore
from classroom.domain.timeline import ScoreKind, Segment, SegmentKind, Timeline
from classroom.live.scoring import ScoreKeeper

TIMELINE = Timeline(
    title="One AMRAP",
    segments=(
        Segment(
            index=0,
            name="Burpees",
            kind=SegmentKind.WORK,
            start_ms=0,
            duration_ms=60_000,
            score_kind=ScoreKind.REPS,
        ),
    ),
)


async def test_no_board_goes_out_while_the_book_is_rebuilt(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        keeper = ScoreKeeper(ScoreStore(make_sessionmaker(engine)))
        keeper.follow(7, TIMELINE)
        await keeper.book(7)
        assert keeper._render(7)[0][0]["class"] is not None

        keeper.store.failed(7)  # a batch with class 7's inputs failed to commit
        assert keeper._render(7) == []  # nothing, rather than an empty board
        await asyncio.wait_for(keeper.book(7), 5)
        await asyncio.sleep(0)  # the callbacks of the load run
        rendered = keeper._render(7)
        assert rendered and all(message["class"] is not None for message, _ in rendered)
    finally:
        await engine.dispose()
