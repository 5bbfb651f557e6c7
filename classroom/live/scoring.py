"""Scores of live classes: the score book of each, batched writes, and live leaderboards.

The class actor checks each input against the class's state (the current
segment, its score kind) and hands it here, in turn with the class's commands,
so each class's book has a single writer. The book decides at once whether the
input is new; the write is queued and the input acknowledged when its batch has
committed. If a batch fails, the class's book is dropped and rebuilt from what
was stored, so an input that was never stored can be sent again and count.

Every change asks the hub for a leaderboard update; the hub sends the newest
board at most four times a second however fast inputs arrive, rendered when it
goes out. Public boards (wall display, phones) hide the names of participants
who asked; the instructor's board shows everyone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from classroom.db.scores import Reply, Roster, ScoreStore
from classroom.domain import boards
from classroom.domain.codec import to_plain
from classroom.domain.scorebook import Fix, ScoreBook
from classroom.domain.scoring import CheckedScore, ScoreInput, show
from classroom.domain.teams import TeamMode
from classroom.domain.timeline import ScoreKind, Timeline
from classroom.hub import wire
from classroom.hub.limits import TokenBucket

if TYPE_CHECKING:
    from classroom.hub.hub import Hub

log = logging.getLogger(__name__)

BOARD_INTERVAL_S = 0.25
"""At most four leaderboard updates a second per class, to the wall and the console."""
BOARD_ROWS = 10
"""People shown on a live board (every team is always shown)."""
PHONE_INTERVAL_S = 0.5
PHONE_ROWS = 3
"""Phones show a strip (teams, the top 3): they get the wall's board, cut, twice a second."""
PHONE_WRITES_PER_S = 5_000
"""The most strips a class sends a second, one write to each phone's socket each.

In a big class the strips are half of what the server writes (the other half is
the acks). They go out in turn, a share every few milliseconds (see
:meth:`Hub.roll <classroom.hub.hub.Hub.roll>`), so past 2,500 phones each gets a
strip less often (a class of 5,000: once a second), and no input waits behind a
burst of thousands of writes.
"""
WALL = frozenset({"display"})
PHONES = frozenset({"participant"})
INSTRUCTOR = frozenset({"instructor"})
INPUTS_PER_S = 10.0
INPUT_BURST = 40
"""Inputs a participant may send: 10 a second on average, 40 at once."""

#: A class's live boards: the current segment's (None if it isn't scored) and the class's.
Boards = tuple["boards.Board | None", "boards.Board | None"]
#: A class's ``leaderboard`` messages: the public one and the instructor's.
Messages = tuple[dict[str, Any], dict[str, Any]]


class ScoreKeeper:
    def __init__(self, store: ScoreStore, hub: Hub | None = None) -> None:
        self.store = store
        self._hub = hub
        self._books: dict[int, ScoreBook] = {}
        self._loading: dict[int, asyncio.Future[ScoreBook]] = {}
        self._timelines: dict[int, Timeline] = {}
        self._rosters: dict[int, Roster] = {}
        self._settings: dict[int, tuple[TeamMode, int]] = {}
        # The boards last sent, (segment, class), that rank moves are counted from.
        self._previous: dict[int, Boards] = {}
        self._sent: dict[int, Messages] = {}
        self._refreshing: dict[int, asyncio.Task[None]] = {}
        self._buckets: dict[tuple[int, int], TokenBucket] = {}
        self._renders: dict[int, Callable[[], list[tuple[dict[str, Any], frozenset[str]]]]] = {}
        store.failed = self._write_failed

    def follow(self, class_id: int, timeline: Timeline) -> None:
        """Keep scores for a live class running ``timeline``."""
        self._timelines[class_id] = timeline

    def forget(self, class_id: int) -> None:
        """Drop a class that has ended (its scores stay stored)."""
        self._books.pop(class_id, None)
        self._timelines.pop(class_id, None)
        self._rosters.pop(class_id, None)
        self._settings.pop(class_id, None)
        for key in [key for key in self._buckets if key[0] == class_id]:
            del self._buckets[key]
        self._previous.pop(class_id, None)
        self._sent.pop(class_id, None)
        self._renders.pop(class_id, None)

    async def book(self, class_id: int) -> ScoreBook:
        """The class's book, rebuilt from storage on first use."""
        book = self._books.get(class_id)
        if book is not None:
            return book
        return await asyncio.shield(self._start_loading(class_id))

    def _start_loading(self, class_id: int) -> asyncio.Future[ScoreBook]:
        """The class's book being loaded from storage (started now if it isn't yet)."""
        loading = self._loading.get(class_id)
        if loading is None:
            loading = self._loading[class_id] = asyncio.ensure_future(self._load(class_id))
            loading.add_done_callback(lambda _: self._loading.pop(class_id, None))
        return loading

    async def stored(self, class_id: int) -> ScoreBook:
        """The class's book as storage holds it now: read afresh, and not kept.

        Every acknowledged input is in it (an input is acknowledged once stored).
        """
        entries, fixes = await self.store.load(class_id)
        book = ScoreBook()
        book.restore(entries, fixes)
        for pid in await self.store.removed(class_id):
            book.remove(pid)
        return book

    async def _load(self, class_id: int) -> ScoreBook:
        book = await self.stored(class_id)
        self._rosters[class_id] = await self.store.roster(class_id)
        self._settings[class_id] = await self.store.team_settings(class_id)
        self._books[class_id] = book
        return book

    def allow(self, class_id: int, participant_id: int, now_s: float) -> bool:
        """Whether a participant may send another input now (on every socket they have).

        The limit is well above anyone's real pace (a +1 button mashed, a queue of
        inputs sent after a dropped connection) and well below a script's.
        """
        key = (class_id, participant_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(INPUTS_PER_S, INPUT_BURST)
        return bucket.allow(now_s)

    async def ready(self, class_id: int) -> None:
        """Have the class's book in memory, so that :meth:`take` can run at once."""
        if class_id not in self._books:
            await self.book(class_id)

    def take(self, class_id: int, score: ScoreInput, checked: CheckedScore, reply: Reply) -> None:
        """Take an input into the class's book; ``reply`` hears once it is stored.

        Call :meth:`ready` first, in the same turn of the loop. Raises
        ``CommandRejected`` at once if the input can't count; ``reply`` hears
        False at once for a repeat (already counted).
        """
        book = self._books[class_id]
        taken = book.take(score, checked)
        roster = self._rosters.get(class_id)
        if roster is not None and score.participant_id not in roster.people:
            self._refresh(class_id)  # someone who joined since the roster was read
        if taken.entry is None:
            reply(False)
            return
        self.store.write(class_id, taken, reply)
        self.changed(class_id)

    def _write_failed(self, class_id: int) -> None:
        """A batch with this class's inputs failed: rebuild its book from what was stored.

        Screens keep the board they have until the book is back, rather than get an
        empty one meanwhile; then the rebuilt board goes out.
        """
        if self._books.pop(class_id, None) is None:
            return
        loading = self._start_loading(class_id)
        loading.add_done_callback(functools.partial(self._rebuilt, class_id))

    def _rebuilt(self, class_id: int, loading: asyncio.Future[ScoreBook]) -> None:
        if loading.cancelled():
            return
        error = loading.exception()
        if error is not None:  # the next input, or screen, loads it again
            log.warning("scores of class %s not reloaded yet: %s", class_id, error)
            return
        self.changed(class_id)

    def _refresh(self, class_id: int) -> None:
        if class_id in self._refreshing:
            return
        task = asyncio.create_task(self.roster_changed(class_id))
        self._refreshing[class_id] = task
        task.add_done_callback(lambda done: self._refreshed(class_id, done))

    def _refreshed(self, class_id: int, done: asyncio.Task[None]) -> None:
        self._refreshing.pop(class_id, None)
        if not done.cancelled() and done.exception() is not None:
            log.warning("roster of class %s not reloaded: %s", class_id, done.exception())

    # -- the instructor's changes --------------------------------------------------------

    async def correct(
        self, class_id: int, fix: Fix, kind: ScoreKind, instructor_id: int | None
    ) -> None:
        """Replace a participant's result for a segment; the audit keeps who and when."""
        book = await self.book(class_id)
        before = book.result(fix.participant_id, fix.segment_index)
        previous = "" if before is None else show(kind, before)
        await self.store.correct(class_id, fix, previous=previous, instructor_id=instructor_id)
        book.correct(fix)
        self.changed(class_id)
        if self._hub is not None:  # the phone shows the corrected result as its own
            self._hub.broadcast(class_id, [wire.corrected(fix)], roles=["participant"])

    async def dismiss(self, class_id: int, participant_id: int, segment_index: int) -> None:
        """Clear a participant's flags in a segment: the instructor judged them plausible."""
        book = await self.book(class_id)
        await self.store.dismiss(class_id, participant_id, segment_index)
        if book.dismiss(participant_id, segment_index):
            self.changed(class_id)

    async def roster_changed(self, class_id: int) -> None:
        """Reload who is in the class (a join, a move, a rename, a removal)."""
        self._rosters[class_id] = roster = await self.store.roster(class_id)
        self._settings[class_id] = await self.store.team_settings(class_id)
        book = self._books.get(class_id)
        if book is not None:
            removed = await self.store.removed(class_id)
            for pid in removed:
                if pid not in book.removed:
                    book.remove(pid)
        if roster.people or roster.teams:
            self.changed(class_id)

    # -- boards ---------------------------------------------------------------------

    def changed(self, class_id: int) -> None:
        if self._hub is not None:
            render = self._renders.get(class_id)
            if render is None:  # one per class, not one per input
                render = self._renders[class_id] = functools.partial(self._render, class_id)
            self._hub.coalesce_audiences(
                class_id, "leaderboard", render, interval_s=BOARD_INTERVAL_S, everywhere=True
            )

    def boards(
        self,
        class_id: int,
        segment_index: int | None,
        *,
        public: bool,
        previous: Boards = (None, None),
        limit: int | None = None,
    ) -> Boards | None:
        """The segment's board (if it is scored) and the class's board, from live scores.

        ``limit``: rows for that many people only (everyone is still ranked).
        """
        book = self._books.get(class_id)
        timeline = self._timelines.get(class_id)
        roster = self._rosters.get(class_id)
        if book is None or timeline is None:
            return None
        if roster is None:
            roster = Roster(people={}, teams=())
        return live_boards(
            book,
            timeline,
            roster,
            segment_index,
            self._settings.get(class_id, (TeamMode.TOTAL, 3)),
            public=public,
            previous=previous,
            limit=limit,
        )

    def _render(self, class_id: int) -> list[tuple[dict[str, Any], frozenset[str]]]:
        loading = self._loading.get(class_id)
        if loading is not None:  # the book is being (re)built: the board goes out after
            loading.add_done_callback(functools.partial(self._rebuilt, class_id))
            return []
        public, instructor = self._sent[class_id] = self.latest(class_id, remember=True)
        if self._hub is not None:  # each process rolls them out to its own phones
            self._hub.roll_everywhere(
                class_id,
                "leaderboard:phones",
                for_phones(public),
                interval_s=PHONE_INTERVAL_S,
                writes_per_s=PHONE_WRITES_PER_S,
                roles=PHONES,
            )
        return [(public, WALL), (instructor, INSTRUCTOR)]

    def welcome(self, class_id: int, role: str) -> dict[str, Any] | None:
        """The board for a screen of ``role`` that has just connected (None before there is one).

        It is the last board sent (if anything changed since, a newer one is on
        its way to every screen), so a room of screens reconnecting at once
        costs one board, not one each.
        """
        messages = self._sent.get(class_id)
        if messages is None:
            messages = self._sent[class_id] = self.latest(class_id)
        public, instructor = messages
        board = public["class"]
        if board is None or not (board["people"] or board["teams"]):
            return None
        if role == "instructor":
            return instructor
        return for_phones(public) if role == "participant" else public

    def latest(self, class_id: int, *, remember: bool = False) -> Messages:
        """The newest ``leaderboard`` messages, public and the instructor's.

        The boards are ranked once, with every name; the public message then hides
        the names that asked to be hidden. ``remember``: later rank moves count
        from these boards. Each message carries each team's look (colour, letter,
        pattern) so that screens never show a team by colour alone.
        """
        book = self._books.get(class_id)
        latest = max(book.segments(), default=None) if book else None
        pair = self.boards(
            class_id,
            latest,
            public=False,
            previous=self._previous.get(class_id, (None, None)),
            limit=BOARD_ROWS,
        )
        if pair is None:
            empty: dict[str, Any] = {
                "type": "leaderboard",
                "segment": None,
                "class": None,
                "teams": [],
            }
            return empty, empty
        if remember:
            self._previous[class_id] = pair
        roster = self._rosters.get(class_id)
        people = {} if roster is None else roster.people
        teams = [] if roster is None else [to_plain(team) for team in roster.teams]

        def message(segment: boards.Board | None, whole: boards.Board) -> dict[str, Any]:
            return {
                "type": "leaderboard",
                "segment": None if segment is None else board_message(segment),
                "class": board_message(whole),
                "teams": teams,
            }

        segment_board, class_board = pair
        assert class_board is not None
        public_segment = None if segment_board is None else boards.public(segment_board, people)
        return (
            message(public_segment, boards.public(class_board, people)),
            message(segment_board, class_board),
        )


def live_boards(
    book: ScoreBook,
    timeline: Timeline,
    roster: Roster,
    segment_index: int | None,
    settings: tuple[TeamMode, int],
    *,
    public: bool,
    previous: Boards = (None, None),
    limit: int | None = None,
) -> Boards:
    """A class's live boards: the given segment's (None if it isn't scored) and the class's.

    Rank moves count from ``previous``, the boards last sent (a segment's board
    only from the same segment's).
    """
    mode, best_n = settings
    previous_segment, previous_class = previous
    if previous_segment is not None and previous_segment.segment_index != segment_index:
        previous_segment = None
    scored = {
        index: _scored(book, timeline, index)
        for index in sorted(book.segments())
        if timeline.segments[index].score_kind is not ScoreKind.NONE
    }
    teams = roster.teams
    segment_board = None
    if segment_index is not None and timeline.segments[segment_index].score_kind is not (
        ScoreKind.NONE
    ):
        segment_board = boards.segment_board(
            scored.get(segment_index) or _scored(book, timeline, segment_index),
            roster.people,
            teams,
            mode=mode,
            best_n=best_n,
            public=public,
            previous=previous_segment,
            limit=limit,
        )
    class_board = boards.class_board(
        list(scored.values()),
        roster.people,
        teams,
        mode=mode,
        best_n=best_n,
        public=public,
        previous=previous_class,
        limit=limit,
    )
    return segment_board, class_board


def _scored(book: ScoreBook, timeline: Timeline, index: int) -> boards.Scored:
    segment = timeline.segments[index]
    results, divisions = book.segment(index, segment.score_kind)
    per_round = segment.target.reps if segment.target is not None else None
    return boards.Scored(
        index=index,
        kind=segment.score_kind,
        results=results,
        divisions=divisions,
        reps_per_round=per_round,
    )


def for_phones(message: dict[str, Any]) -> dict[str, Any]:
    """A public ``leaderboard`` message as phones get it: every team, the top few people."""
    return {
        **message,
        "segment": _cut(message["segment"], PHONE_ROWS),
        "class": _cut(message["class"], PHONE_ROWS),
    }


def _cut(board: dict[str, Any] | None, rows: int) -> dict[str, Any] | None:
    return None if board is None else {**board, "people": board["people"][:rows]}


def board_message(board: boards.Board, rows: int = BOARD_ROWS) -> dict[str, Any]:
    """A board as it goes over the wire: every team, the top ``rows`` people."""
    shown = dataclasses.replace(board, people=board.people[:rows], ranks={})
    data: dict[str, Any] = to_plain(shown)
    del data["ranks"]  # everyone's rank: kept for the next board, not sent
    return data
