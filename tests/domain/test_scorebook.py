"""The score book: repeats count once, undos withdraw, order doesn't matter, restarts lose nothing.

Inputs go through :func:`check_score` against a real class first, as the shell does.
Times are epoch milliseconds; every segment below starts at ``T0``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classroom.domain import commands as cmd
from classroom.domain import session
from classroom.domain.errors import CommandRejected
from classroom.domain.scorebook import ALREADY_FINISHED, NOT_IN_CLASS, Entry, Fix, ScoreBook, Taken
from classroom.domain.scoring import Division, ScoreInput, Tally, check_score
from classroom.domain.session import ClassState
from classroom.domain.timeline import ScoreKind, Segment, SegmentKind, Timeline

T0 = 1_700_000_000_000
TEN_MINUTES = 600_000
REPS, FOR_TIME, ROUNDS, LOAD, EFFORT = range(5)
KINDS = (ScoreKind.REPS, ScoreKind.TIME, ScoreKind.ROUNDS_REPS, ScoreKind.LOAD, ScoreKind.EFFORT)

TL = Timeline(
    title="Scored",
    max_reps_per_second=3.0,
    segments=tuple(
        Segment(
            index=i,
            name=kind.value,
            kind=SegmentKind.WORK,
            start_ms=i * TEN_MINUTES,
            duration_ms=TEN_MINUTES,
            score_kind=kind,
            open_ended=kind is ScoreKind.TIME,
        )
        for i, kind in enumerate(KINDS)
    ),
)


def _state(index: int) -> ClassState:
    state = session.handle(TL, session.open_class(T0), cmd.Start(), T0).state
    return session.handle(TL, state, cmd.Jump(index=index), T0).state


STATES = {index: _state(index) for index in range(len(KINDS))}


def score(
    segment: int = REPS,
    *,
    pid: int = 1,
    cid: str = "c1",
    value: int | None = None,
    rounds: int = 0,
    at_s: float = 60,
    undoes: str = "",
    division: Division = Division.RX,
) -> ScoreInput:
    kind = KINDS[segment]
    if value is None:
        value = 0 if undoes or kind in (ScoreKind.TIME, ScoreKind.ROUNDS_REPS) else 10
    return ScoreInput(
        participant_id=pid,
        client_id=cid,
        segment_index=segment,
        kind=kind,
        value=value,
        rounds=rounds,
        division=division,
        at_ms=T0 + int(at_s * 1000),
        undoes=undoes,
    )


def take(book: ScoreBook, given_score: ScoreInput) -> Taken:
    return book.take(given_score, check_score(TL, STATES[given_score.segment_index], given_score))


class Store:
    """What the shell keeps: each entry taken, and the withdrawals marked on them."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], Entry] = {}

    def write(self, taken: Taken) -> None:
        if taken.entry is None:
            return
        pid = taken.entry.participant_id
        self.rows[(pid, taken.entry.client_id)] = taken.entry
        if taken.withdraws:
            key = (pid, taken.withdraws)
            self.rows[key] = self.rows[key]._replace(withdrawn=True)

    def entries(self) -> list[Entry]:
        return list(self.rows.values())


def snapshot(book: ScoreBook) -> dict[str, Any]:
    """Everything a reader of the book can see."""
    return {
        "segments": {i: book.segment(i, KINDS[i]) for i in range(len(KINDS))},
        "results": {
            (pid, i): book.result(pid, i) for pid in range(1, 6) for i in range(len(KINDS))
        },
        "flagged": sorted(book.flagged(), key=lambda e: (e.participant_id, e.client_id)),
        "totals": book.totals({REPS: ScoreKind.REPS}),
        "removed": set(book.removed),
    }


# -- taking inputs ---------------------------------------------------------------------------


def test_a_new_input_is_stored_as_taken() -> None:
    book = ScoreBook()
    taken = take(book, score(pid=7, cid="tap-1", value=12, at_s=20, division=Division.SCALED))
    assert taken == Taken(
        Entry(
            participant_id=7,
            client_id="tap-1",
            segment_index=REPS,
            kind=ScoreKind.REPS,
            value=12,
            rounds=0,
            division=Division.SCALED,
            elapsed_ms=20_000,
        )
    )
    assert book.result(7, REPS) == Tally(12)
    assert book.segment(REPS, ScoreKind.REPS) == ({7: Tally(12)}, {7: Division.SCALED})
    assert book.version == 1


def test_nothing_logged_is_no_result() -> None:
    book = ScoreBook()
    assert book.result(1, REPS) is None
    assert book.segment(REPS, ScoreKind.REPS) == ({}, {})
    assert book.flagged() == []


def test_the_same_input_sent_twice_counts_once() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=5))
    assert take(book, score(cid="c1", value=5)) == Taken(None)
    assert book.result(1, REPS) == Tally(5)
    assert book.version == 1  # a repeat changes nothing


def test_a_repeat_is_known_by_its_id_even_with_other_contents() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=5))
    assert take(book, score(cid="c1", value=50, at_s=90)) == Taken(None)
    assert book.result(1, REPS) == Tally(5)


def test_client_ids_are_per_participant() -> None:
    book = ScoreBook()
    take(book, score(pid=1, cid="c1", value=5))
    assert take(book, score(pid=2, cid="c1", value=8)).entry is not None
    assert book.segment(REPS, ScoreKind.REPS)[0] == {1: Tally(5), 2: Tally(8)}


def test_inputs_add_up_by_the_segments_kind() -> None:
    book = ScoreBook()
    take(book, score(REPS, cid="r1", value=10))
    take(book, score(REPS, cid="r2", value=1))
    take(book, score(ROUNDS, cid="rr1", rounds=3))
    take(book, score(ROUNDS, cid="rr2", rounds=1, value=7))
    take(book, score(LOAD, cid="l1", value=80))
    take(book, score(LOAD, cid="l2", value=60))
    take(book, score(EFFORT, cid="e1", value=9))
    take(book, score(EFFORT, cid="e2", value=6))
    assert [book.result(1, i) for i in (REPS, ROUNDS, LOAD, EFFORT)] == [
        Tally(11),
        Tally(4, 7),
        Tally(80),
        Tally(6),
    ]


def test_a_finish_is_stored_as_the_time_the_server_took() -> None:
    book = ScoreBook()
    taken = take(book, score(FOR_TIME, cid="done", at_s=247))
    assert taken.entry is not None and taken.entry.value == 247_000
    assert book.result(1, FOR_TIME) == Tally(247_000)


# -- undo ------------------------------------------------------------------------------


def test_an_undo_withdraws_an_earlier_input() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10))
    take(book, score(cid="c2", value=3))
    taken = take(book, score(cid="u1", undoes="c2"))
    assert taken.withdraws == "c2"
    assert taken.entry is not None
    assert (taken.entry.undoes, taken.entry.value, taken.entry.withdrawn) == ("c2", 0, False)
    assert book.result(1, REPS) == Tally(10)
    assert book.version == 3


def test_undoing_every_input_leaves_no_result() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10))
    take(book, score(cid="u1", undoes="c1"))
    assert book.result(1, REPS) is None
    assert book.segment(REPS, ScoreKind.REPS) == ({}, {})


def test_a_second_undo_of_the_same_input_withdraws_nothing_more() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10))
    take(book, score(cid="c2", value=4))
    take(book, score(cid="u1", undoes="c2"))
    assert take(book, score(cid="u2", undoes="c2")).withdraws == ""
    assert book.result(1, REPS) == Tally(10)


def test_an_undo_of_an_undo_does_not_bring_the_input_back() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10))
    take(book, score(cid="u1", undoes="c1"))
    assert take(book, score(cid="u2", undoes="u1")).withdraws == ""
    assert book.result(1, REPS) is None


def test_an_undo_only_takes_back_the_participants_own_inputs() -> None:
    book = ScoreBook()
    take(book, score(pid=1, cid="c1", value=10))
    take(book, score(pid=2, cid="u1", undoes="c1"))
    assert book.result(1, REPS) == Tally(10)


def test_an_input_of_a_finished_segment_cannot_be_undone() -> None:
    book = ScoreBook()
    take(book, score(REPS, cid="c1", value=10))
    with pytest.raises(CommandRejected):
        take(book, score(LOAD, cid="u1", undoes="c1"))
    assert book.result(1, REPS) == Tally(10)
    assert take(book, score(REPS, cid="u1", undoes="c1")).withdraws == "c1"  # not marked seen


def test_an_undo_arriving_before_its_input_withdraws_the_input_when_it_comes() -> None:
    book = ScoreBook()
    early = take(book, score(cid="u1", undoes="c1"))
    assert early.entry is not None and early.withdraws == ""
    assert book.result(1, REPS) is None
    late = take(book, score(cid="c1", value=10))
    assert late.entry is not None and late.entry.withdrawn
    assert late.withdraws == ""  # stored withdrawn already: nothing else to mark
    assert book.result(1, REPS) is None
    take(book, score(cid="c2", value=4))
    assert book.result(1, REPS) == Tally(4)


def test_an_early_undo_withdraws_only_its_own_target() -> None:
    book = ScoreBook()
    take(book, score(cid="u1", undoes="c2"))
    take(book, score(cid="c1", value=10))
    take(book, score(cid="c2", value=4))
    take(book, score(cid="c3", value=1))
    assert book.result(1, REPS) == Tally(11)


# -- For Time -------------------------------------------------------------------------


def test_a_second_finish_is_rejected() -> None:
    book = ScoreBook()
    take(book, score(FOR_TIME, cid="f1", at_s=200))
    with pytest.raises(CommandRejected) as raised:
        take(book, score(FOR_TIME, cid="f2", at_s=210))
    assert str(raised.value) == ALREADY_FINISHED
    assert book.result(1, FOR_TIME) == Tally(200_000)


def test_the_same_finish_resent_is_a_repeat_not_a_second_finish() -> None:
    book = ScoreBook()
    take(book, score(FOR_TIME, cid="f1", at_s=200))
    assert take(book, score(FOR_TIME, cid="f1", at_s=203)) == Taken(None)


def test_an_undone_finish_can_be_finished_again() -> None:
    book = ScoreBook()
    take(book, score(FOR_TIME, cid="f1", at_s=200))
    take(book, score(FOR_TIME, cid="u1", undoes="f1", at_s=201))
    assert book.result(1, FOR_TIME) is None
    take(book, score(FOR_TIME, cid="f2", at_s=260))
    assert book.result(1, FOR_TIME) == Tally(260_000)


def test_each_participant_finishes_once() -> None:
    book = ScoreBook()
    take(book, score(FOR_TIME, pid=1, cid="f", at_s=200))
    take(book, score(FOR_TIME, pid=2, cid="f", at_s=230))
    assert book.segment(FOR_TIME, ScoreKind.TIME)[0] == {1: Tally(200_000), 2: Tally(230_000)}


# -- removed participants -----------------------------------------------------------------


def test_a_removed_participant_can_log_nothing_and_leaves_the_results() -> None:
    book = ScoreBook()
    take(book, score(pid=1, cid="c1", value=10))
    take(book, score(pid=2, cid="c1", value=20))
    book.remove(2)
    for attempt in (score(pid=2, cid="c2", value=5), score(pid=2, cid="u", undoes="c1")):
        with pytest.raises(CommandRejected) as raised:
            take(book, attempt)
        assert str(raised.value) == NOT_IN_CLASS
    with pytest.raises(CommandRejected):
        take(book, score(pid=2, cid="c1", value=20))  # even a repeat is refused
    assert book.segment(REPS, ScoreKind.REPS) == ({1: Tally(10)}, {1: Division.RX})
    assert book.totals({REPS: ScoreKind.REPS}) == {1: 10}


# -- plausibility ---------------------------------------------------------------------------


def test_an_implausible_count_is_stored_flagged_and_counted() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=30, at_s=10))  # 3/s for 10 s + 5 = 35 allowed
    taken = take(book, score(cid="c2", value=6, at_s=10))
    assert taken.entry is not None and taken.entry.flagged
    assert book.result(1, REPS) == Tally(36)
    assert book.flagged() == [taken.entry]


def test_a_count_within_the_rate_is_not_flagged() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=30, at_s=10))
    taken = take(book, score(cid="c2", value=5, at_s=10))
    assert taken.entry is not None and not taken.entry.flagged
    assert book.flagged() == []


def test_an_absurd_burst_is_flagged_never_dropped() -> None:
    book = ScoreBook()
    taken = take(book, score(cid="c1", value=500, at_s=1))
    assert taken.entry is not None and taken.entry.flagged
    assert book.result(1, REPS) == Tally(500)


def test_withdrawn_reps_no_longer_count_towards_the_rate() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=30, at_s=10))
    take(book, score(cid="u1", undoes="c1", at_s=10))
    taken = take(book, score(cid="c2", value=30, at_s=10))
    assert taken.entry is not None and not taken.entry.flagged


def test_an_undone_flagged_input_leaves_the_flags() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=500, at_s=1))
    take(book, score(cid="u1", undoes="c1", at_s=2))
    assert book.flagged() == []


def test_rounds_reps_flag_on_their_reps() -> None:
    book = ScoreBook()
    taken = take(book, score(ROUNDS, cid="c1", rounds=1, value=40, at_s=10))
    assert taken.entry is not None and taken.entry.flagged


def test_heavy_loads_and_instant_finishes_are_never_flagged() -> None:
    book = ScoreBook()
    load = take(book, score(LOAD, cid="l", value=1000, at_s=1)).entry
    finish = take(book, score(FOR_TIME, cid="f", at_s=0)).entry
    assert load is not None and not load.flagged
    assert finish is not None and not finish.flagged


# -- divisions ---------------------------------------------------------------------------


def test_a_result_is_in_the_division_of_the_latest_counted_input() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10, division=Division.SCALED))
    take(book, score(cid="c2", value=10, division=Division.RX))
    assert book.segment(REPS, ScoreKind.REPS)[1] == {1: Division.RX}
    take(book, score(cid="u2", undoes="c2"))
    assert book.segment(REPS, ScoreKind.REPS) == ({1: Tally(10)}, {1: Division.SCALED})


def test_an_input_withdrawn_on_arrival_does_not_change_the_division() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10, division=Division.BEGINNER))
    take(book, score(cid="u2", undoes="c2"))
    take(book, score(cid="c2", value=10, division=Division.RX))
    assert book.segment(REPS, ScoreKind.REPS)[1] == {1: Division.BEGINNER}


# -- corrections --------------------------------------------------------------------------


def test_a_correction_replaces_the_result() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10, division=Division.SCALED))
    before = book.version
    book.correct(Fix(participant_id=1, segment_index=REPS, result=Tally(42)))
    assert book.version == before + 1
    assert book.result(1, REPS) == Tally(42)
    assert book.segment(REPS, ScoreKind.REPS) == ({1: Tally(42)}, {1: Division.SCALED})
    assert book.totals({REPS: ScoreKind.REPS}) == {1: 42}


def test_a_correction_holds_over_later_inputs() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10))
    book.correct(Fix(participant_id=1, segment_index=REPS, result=Tally(42)))
    take(book, score(cid="c2", value=10))
    assert book.result(1, REPS) == Tally(42)


def test_a_correction_to_none_removes_the_result() -> None:
    book = ScoreBook()
    take(book, score(pid=1, cid="c1", value=10))
    take(book, score(pid=2, cid="c1", value=12))
    book.correct(Fix(participant_id=1, segment_index=REPS, result=None))
    assert book.result(1, REPS) is None
    assert book.segment(REPS, ScoreKind.REPS)[0] == {2: Tally(12)}
    assert book.totals({REPS: ScoreKind.REPS}) == {2: 12}


def test_the_latest_correction_wins() -> None:
    book = ScoreBook()
    take(book, score(cid="c1", value=10))
    book.correct(Fix(participant_id=1, segment_index=REPS, result=None))
    book.correct(Fix(participant_id=1, segment_index=REPS, result=Tally(15)))
    assert book.result(1, REPS) == Tally(15)


def test_a_correction_can_give_a_result_to_someone_who_logged_nothing() -> None:
    book = ScoreBook()
    take(book, score(pid=1, cid="c1", value=10))
    book.correct(Fix(participant_id=3, segment_index=REPS, result=Tally(25)))
    assert book.segment(REPS, ScoreKind.REPS) == (
        {1: Tally(10), 3: Tally(25)},
        {1: Division.RX, 3: Division.RX},
    )
    assert book.segments() == {REPS}
    assert book.totals({REPS: ScoreKind.REPS}) == {1: 10, 3: 25}


def test_a_corrected_time_is_the_result_of_a_for_time_segment() -> None:
    book = ScoreBook()
    take(book, score(FOR_TIME, cid="f1", at_s=300))
    book.correct(Fix(participant_id=1, segment_index=FOR_TIME, result=Tally(290_000)))
    assert book.segment(FOR_TIME, ScoreKind.TIME)[0] == {1: Tally(290_000)}


def test_totals_add_the_segments_asked_for() -> None:
    book = ScoreBook()
    take(book, score(REPS, pid=1, cid="a", value=10))
    take(book, score(LOAD, pid=1, cid="b", value=80))
    take(book, score(REPS, pid=2, cid="a", value=7))
    assert book.totals({REPS: ScoreKind.REPS}) == {1: 10, 2: 7}
    assert book.totals({REPS: ScoreKind.REPS, LOAD: ScoreKind.LOAD}) == {1: 90, 2: 7}
    assert book.totals({}) == {}


# -- restoring after a restart -----------------------------------------------------------------


def busy_class(book: ScoreBook, store: Store) -> None:
    steps = [
        score(REPS, pid=1, cid="a1", value=20, division=Division.SCALED),
        score(REPS, pid=1, cid="a2", value=15),
        score(REPS, pid=1, cid="a3", undoes="a2"),
        score(REPS, pid=2, cid="b1", value=400, at_s=5),  # flagged
        score(REPS, pid=3, cid="x9", undoes="x1"),  # early: x1 comes later
        score(REPS, pid=3, cid="x1", value=30),
        score(REPS, pid=3, cid="x2", value=12, division=Division.BEGINNER),
        score(FOR_TIME, pid=1, cid="f1", at_s=310),
        score(FOR_TIME, pid=2, cid="f1", at_s=290),
        score(FOR_TIME, pid=2, cid="f2", undoes="f1"),
        score(FOR_TIME, pid=2, cid="f3", at_s=295),
        score(ROUNDS, pid=4, cid="r1", rounds=5, value=10),
        score(LOAD, pid=4, cid="l1", value=100),
        score(EFFORT, pid=5, cid="e1", value=8),
    ]
    for step in steps:
        store.write(take(book, step))


def test_restore_rebuilds_an_equal_book_from_the_stored_entries() -> None:
    live, store = ScoreBook(), Store()
    busy_class(live, store)
    fixes = [Fix(participant_id=5, segment_index=REPS, result=Tally(3))]
    for fix in fixes:
        live.correct(fix)
    restored = ScoreBook()
    restored.restore(store.entries(), fixes)
    assert snapshot(restored) == snapshot(live)
    assert snapshot(live)["segments"][REPS] == (
        {1: Tally(20), 2: Tally(400), 3: Tally(12), 5: Tally(3)},
        {1: Division.SCALED, 2: Division.RX, 3: Division.BEGINNER, 5: Division.RX},
    )


def test_a_restored_book_goes_on_as_the_live_one_would() -> None:
    live, store = ScoreBook(), Store()
    busy_class(live, store)
    restored = ScoreBook()
    restored.restore(store.entries())
    for book in (live, restored):
        assert take(book, score(REPS, pid=1, cid="a1", value=20)) == Taken(None)
        with pytest.raises(CommandRejected):
            take(book, score(FOR_TIME, pid=1, cid="f9", at_s=400))
        assert take(book, score(REPS, pid=1, cid="a4", undoes="a1")).withdraws == "a1"
        flagged = take(book, score(REPS, pid=3, cid="x3", value=500, at_s=10))
        assert flagged.entry is not None and flagged.entry.flagged
    assert snapshot(restored) == snapshot(live)


def test_an_undo_still_waiting_for_its_input_survives_a_restart() -> None:
    live, store = ScoreBook(), Store()
    store.write(take(live, score(cid="u1", undoes="c1")))
    restored = ScoreBook()
    restored.restore(store.entries())
    for book in (live, restored):
        late = take(book, score(cid="c1", value=10))
        assert late.entry is not None and late.entry.withdrawn
        assert book.result(1, REPS) is None


def test_restore_counts_as_a_change() -> None:
    book = ScoreBook()
    book.restore([])
    assert book.version == 1


# -- order doesn't matter: the property ---------------------------------------------------------


@st.composite
def sequences(draw: st.DrawFn) -> tuple[list[ScoreInput], list[ScoreInput]]:
    """A clean sequence of reps inputs and undos, and the same as the network might deliver it.

    Undos name an earlier input or undo (or an id never sent). Delivery shuffles
    the sequence and repeats some of it.
    """
    clean: list[ScoreInput] = []
    for n in range(draw(st.integers(1, 25))):
        pid = draw(st.sampled_from([1, 2]))
        earlier = [s.client_id for s in clean if s.participant_id == pid]
        undo = draw(st.booleans())
        if earlier and undo:
            target = draw(st.sampled_from([*earlier, "ghost"]))
            clean.append(score(pid=pid, cid=f"s{n}", undoes=target, at_s=600))
        else:
            value = draw(st.integers(1, 50))
            clean.append(score(pid=pid, cid=f"s{n}", value=value, at_s=600))
    repeats = draw(st.lists(st.sampled_from(clean), max_size=15))
    delivered = draw(st.permutations(clean + repeats))
    return clean, delivered


@settings(max_examples=300)
@given(sequences(), st.data())
def test_shuffled_repeated_and_restarted_delivery_gives_the_clean_results(
    given_sequences: tuple[list[ScoreInput], list[ScoreInput]], data: st.DataObject
) -> None:
    clean, delivered = given_sequences
    expected = ScoreBook()
    for step in clean:
        take(expected, step)

    book, store = ScoreBook(), Store()
    restart_at = data.draw(st.integers(0, len(delivered)), label="restart after")
    for n, step in enumerate(delivered):
        if n == restart_at:  # the server restarts: the book is rebuilt from storage
            book = ScoreBook()
            book.restore(store.entries())
        store.write(take(book, step))

    for pid in (1, 2):
        assert book.result(pid, REPS) == expected.result(pid, REPS)
    assert book.segment(REPS, ScoreKind.REPS) == expected.segment(REPS, ScoreKind.REPS)
    # Storage holds each input once, and a book rebuilt from it agrees too.
    assert {(e.participant_id, e.client_id) for e in store.entries()} == {
        (s.participant_id, s.client_id) for s in clean
    }
    rebuilt = ScoreBook()
    rebuilt.restore(store.entries())
    assert rebuilt.segment(REPS, ScoreKind.REPS) == expected.segment(REPS, ScoreKind.REPS)


@settings(max_examples=200)
@given(sequences())
def test_a_result_read_after_every_input_matches_one_added_up_afresh(
    given_sequences: tuple[list[ScoreInput], list[ScoreInput]],
) -> None:
    # Sums are kept up to date input by input once read (boards read them often):
    # after each step they equal the sum a book rebuilt from storage adds up anew.
    _, delivered = given_sequences
    book, store = ScoreBook(), Store()
    for step in delivered:
        store.write(take(book, step))
        fresh = ScoreBook()
        fresh.restore(store.entries())
        for pid in (1, 2):
            assert book.result(pid, REPS) == fresh.result(pid, REPS)


def test_rounds_and_reps_read_between_inputs_add_up_as_they_come() -> None:
    book = ScoreBook()
    results = []
    for n, (rounds, reps) in enumerate([(1, 0), (0, 7), (2, 3)]):
        take(book, score(ROUNDS, cid=f"r{n}", rounds=rounds, value=reps, at_s=600))
        results.append(book.result(1, ROUNDS))
    take(book, score(ROUNDS, cid="u1", undoes="r1", at_s=600))
    results.append(book.result(1, ROUNDS))
    take(book, score(ROUNDS, cid="r3", rounds=1, value=0, at_s=600))
    results.append(book.result(1, ROUNDS))
    assert results == [Tally(1, 0), Tally(1, 7), Tally(3, 10), Tally(3, 3), Tally(4, 3)]
