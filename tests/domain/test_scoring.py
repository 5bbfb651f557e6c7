"""Score inputs: what a phone may send, and whether the class can take it now.

Times are epoch milliseconds; ``T0`` is when the class starts (no lead-in).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.domain import commands as cmd
from classroom.domain import session
from classroom.domain.errors import CommandRejected, ValidationError
from classroom.domain.limits import DEFAULT_MAX_REPS_PER_SECOND
from classroom.domain.scoring import (
    BAD_CLIENT_ID,
    BAD_ROUNDS,
    BAD_VALUE,
    EMPTY_ROUNDS,
    FINISH_HAS_NO_VALUE,
    LATE_FINISH,
    LATE_INPUT_MS,
    MAX_INPUT,
    MAX_ROUNDS,
    NOT_REACHED,
    NOT_RUNNING,
    NOT_SCORED,
    PLAUSIBLE_GRACE,
    TOO_LATE,
    UNDO_HAS_NO_VALUE,
    UNITS,
    WRONG_KIND,
    CheckedScore,
    Division,
    Logged,
    ScoreInput,
    Tally,
    check_score,
    implausible,
    show,
    tally,
)
from classroom.domain.session import ClassState, Phase
from classroom.domain.timeline import ScoreKind, Segment, SegmentKind, Timeline

T0 = 1_700_000_000_000
MINUTE = 60_000

# One segment of each kind, a minute each; segment 1 is an unscored rest.
KINDS = (
    ScoreKind.REPS,
    ScoreKind.NONE,
    ScoreKind.ROUNDS_REPS,
    ScoreKind.TIME,
    ScoreKind.LOAD,
    ScoreKind.CALORIES,
    ScoreKind.DISTANCE,
    ScoreKind.EFFORT,
)
SCORED = [kind for kind in KINDS if kind is not ScoreKind.NONE]
INDEX = {kind: i for i, kind in enumerate(KINDS)}
RANGED = [kind for kind in MAX_INPUT if kind is not ScoreKind.ROUNDS_REPS]


def timeline(max_reps_per_second: float = DEFAULT_MAX_REPS_PER_SECOND) -> Timeline:
    return Timeline(
        title="Every kind",
        max_reps_per_second=max_reps_per_second,
        segments=tuple(
            Segment(
                index=i,
                name=kind.value,
                kind=SegmentKind.REST if kind is ScoreKind.NONE else SegmentKind.WORK,
                start_ms=i * MINUTE,
                duration_ms=MINUTE,
                score_kind=kind,
                open_ended=kind is ScoreKind.TIME,
            )
            for i, kind in enumerate(KINDS)
        ),
    )


TL = timeline()


def at_segment(index: int, at: int = T0) -> ClassState:
    """A class started at ``T0`` and moved to segment ``index`` at ``at``."""
    state = session.handle(TL, session.open_class(T0), cmd.Start(), T0).state
    if index or at != T0:
        state = session.handle(TL, state, cmd.Jump(index=index), at).state
    assert state.phase is Phase.RUNNING and state.segment_index == index
    return state


def score(kind: ScoreKind, **fields: Any) -> ScoreInput:
    values: dict[str, Any] = {
        "participant_id": 1,
        "client_id": "c1",
        "segment_index": INDEX[kind],
        "kind": kind,
    }
    if kind not in (ScoreKind.TIME, ScoreKind.ROUNDS_REPS):
        values["value"] = 1
    if kind is ScoreKind.ROUNDS_REPS:
        values["rounds"] = 1
    values.update(fields)
    return ScoreInput(**values)


def refused(message: str, **fields: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        ScoreInput(**{"participant_id": 1, "client_id": "c1", "segment_index": 0, **fields})
    assert str(raised.value) == message


# -- what an input may carry ---------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 20, MAX_INPUT[ScoreKind.REPS]])
def test_reps_are_1_to_500_per_input(value: int) -> None:
    assert score(ScoreKind.REPS, value=value).value == value


@pytest.mark.parametrize("value", [0, -1, -500, 501, 10**9])
def test_reps_outside_1_to_500_are_refused(value: int) -> None:
    refused(BAD_VALUE.format(unit="reps", limit=500), kind=ScoreKind.REPS, value=value)
    assert BAD_VALUE.format(unit="reps", limit=500) == "reps must be a whole number from 1 to 500"


@pytest.mark.parametrize("kind", RANGED)
def test_each_kind_takes_1_to_its_limit(kind: ScoreKind) -> None:
    limit = MAX_INPUT[kind]
    assert score(kind, value=1).value == 1
    assert score(kind, value=limit).value == limit
    for bad in (0, -1, limit + 1, 10**9, -(10**9)):
        refused(BAD_VALUE.format(unit=UNITS[kind], limit=limit), kind=kind, value=bad)


def test_the_limits_per_kind() -> None:
    assert MAX_INPUT == {
        ScoreKind.REPS: 500,
        ScoreKind.ROUNDS_REPS: 999,
        ScoreKind.LOAD: 1_000,
        ScoreKind.CALORIES: 2_000,
        ScoreKind.DISTANCE: 100_000,
        ScoreKind.EFFORT: 10,
    }
    assert MAX_ROUNDS == 100


@pytest.mark.parametrize("kind", RANGED)
def test_kinds_without_rounds_refuse_rounds(kind: ScoreKind) -> None:
    refused(f"{UNITS[kind]} scores have no rounds", kind=kind, value=1, rounds=1)


@pytest.mark.parametrize(
    ("rounds", "reps"), [(0, 1), (1, 0), (MAX_ROUNDS, 0), (0, 999), (12, 5), (MAX_ROUNDS, 999)]
)
def test_rounds_reps_take_rounds_0_to_100_and_reps_0_to_999(rounds: int, reps: int) -> None:
    taken = score(ScoreKind.ROUNDS_REPS, rounds=rounds, value=reps)
    assert (taken.rounds, taken.value) == (rounds, reps)


@pytest.mark.parametrize("rounds", [-1, MAX_ROUNDS + 1, 10**9])
def test_rounds_outside_0_to_100_are_refused(rounds: int) -> None:
    refused(BAD_ROUNDS, kind=ScoreKind.ROUNDS_REPS, rounds=rounds, value=5)


@pytest.mark.parametrize("reps", [-1, 1000, 10**9])
def test_reps_of_rounds_reps_outside_0_to_999_are_refused(reps: int) -> None:
    refused(
        BAD_VALUE.format(unit="reps", limit=999), kind=ScoreKind.ROUNDS_REPS, rounds=1, value=reps
    )


def test_rounds_reps_need_a_round_or_a_rep() -> None:
    refused(EMPTY_ROUNDS, kind=ScoreKind.ROUNDS_REPS, rounds=0, value=0)


def test_a_finish_carries_no_value() -> None:
    finish = score(ScoreKind.TIME)
    assert (finish.value, finish.rounds) == (0, 0)
    for fields in ({"value": 1}, {"value": -1}, {"value": 10**9}, {"rounds": 1}):
        refused(FINISH_HAS_NO_VALUE, kind=ScoreKind.TIME, **fields)


def test_an_unscored_kind_is_refused() -> None:
    refused(NOT_SCORED, kind=ScoreKind.NONE, value=1)


@pytest.mark.parametrize("field", ["value", "rounds", "segment_index"])
@pytest.mark.parametrize("number", [True, False, 1.0, 2.5, "3", None])
def test_numbers_must_be_real_ints_not_bools_floats_or_text(field: str, number: object) -> None:
    fields: dict[str, Any] = {"kind": ScoreKind.ROUNDS_REPS, "rounds": 1, "value": 1}
    fields[field] = number
    refused("scores are whole numbers", **fields)


def test_an_undo_names_its_target_and_carries_no_value() -> None:
    undo = score(ScoreKind.REPS, client_id="c2", value=0, undoes="c1")
    assert (undo.undoes, undo.value, undo.rounds) == ("c1", 0, 0)
    refused(UNDO_HAS_NO_VALUE, kind=ScoreKind.REPS, value=5, undoes="c1")
    refused(UNDO_HAS_NO_VALUE, kind=ScoreKind.ROUNDS_REPS, rounds=1, undoes="c1")
    refused(UNDO_HAS_NO_VALUE, kind=ScoreKind.REPS, value=-5, undoes="c1")
    refused(BAD_CLIENT_ID, kind=ScoreKind.REPS, undoes="no spaces")


def test_an_undo_of_any_kind_needs_no_value_even_for_a_finish() -> None:
    for kind in SCORED:
        assert score(kind, value=0, rounds=0, undoes="c0").undoes == "c0"


@pytest.mark.parametrize(
    "client_id", ["a", "A-b_9", "x" * 64, "0196b2c4-5f1e-7abc-8def-0123456789ab"]
)
def test_client_ids_are_1_to_64_letters_digits_dashes_underscores(client_id: str) -> None:
    assert score(ScoreKind.REPS, client_id=client_id).client_id == client_id


@pytest.mark.parametrize(
    "client_id", ["", "x" * 65, "a b", "a.b", "é", "a\n", "\na", "a\x00", "<script>", 123, None]
)
def test_other_client_ids_are_refused(client_id: object) -> None:
    refused(BAD_CLIENT_ID, kind=ScoreKind.REPS, value=1, client_id=client_id)
    refused(BAD_CLIENT_ID, kind=ScoreKind.REPS, undoes=client_id or "\n")


def test_an_input_is_rx_and_received_at_zero_unless_told() -> None:
    plain = score(ScoreKind.REPS)
    assert (plain.division, plain.at_ms, plain.undoes) == (Division.RX, 0, "")


# -- whether the class can take it now -------------------------------------------------------


@pytest.mark.parametrize("kind", [k for k in SCORED if k is not ScoreKind.TIME])
def test_a_valid_input_in_the_current_segment_keeps_its_value(kind: ScoreKind) -> None:
    state = at_segment(INDEX[kind], at=T0 + 5_000)
    given_score = score(kind, value=7, at_ms=T0 + 17_000)
    assert check_score(TL, state, given_score) == CheckedScore(
        kind=kind,
        value=7,
        rounds=given_score.rounds,
        elapsed_ms=12_000,
        max_reps_per_second=DEFAULT_MAX_REPS_PER_SECOND,
    )


def test_a_finish_is_the_time_from_the_segments_start_taken_by_the_server() -> None:
    state = at_segment(INDEX[ScoreKind.TIME], at=T0 + 30_000)
    checked = check_score(TL, state, score(ScoreKind.TIME, at_ms=T0 + 30_000 + 247_000))
    assert (checked.kind, checked.value, checked.elapsed_ms) == (ScoreKind.TIME, 247_000, 247_000)


def test_paused_time_does_not_count_towards_a_finish() -> None:
    state = at_segment(INDEX[ScoreKind.TIME], at=T0)
    state = session.handle(TL, state, cmd.Pause(), T0 + 40_000).state
    state = session.handle(TL, state, cmd.Resume(), T0 + 100_000).state
    checked = check_score(TL, state, score(ScoreKind.TIME, at_ms=T0 + 110_000))
    assert checked.value == 50_000


def test_a_paused_class_still_takes_inputs_timed_at_the_pause() -> None:
    state = at_segment(INDEX[ScoreKind.TIME], at=T0)
    paused = session.handle(TL, state, cmd.Pause(), T0 + 40_000).state
    assert paused.phase is Phase.PAUSED
    checked = check_score(TL, paused, score(ScoreKind.TIME, at_ms=T0 + 90_000))
    assert checked.value == 40_000


def test_an_input_stamped_before_the_segment_began_is_at_zero() -> None:
    state = at_segment(INDEX[ScoreKind.REPS], at=T0)
    assert check_score(TL, state, score(ScoreKind.REPS, at_ms=T0 - 5)).elapsed_ms == 0


def test_the_cap_comes_from_the_routine() -> None:
    tl = timeline(max_reps_per_second=1.5)
    state = session.handle(tl, session.open_class(T0), cmd.Start(), T0).state
    assert check_score(tl, state, score(ScoreKind.REPS, at_ms=T0)).max_reps_per_second == 1.5


@pytest.mark.parametrize("phase", ["lobby", "countdown", "cancelled"])
def test_inputs_are_refused_unless_the_class_is_running_paused_or_just_finished(
    phase: str,
) -> None:
    tl_with_lead_in = Timeline(title="t", segments=TL.segments, lead_in_ms=3000)
    state = session.open_class(T0)
    if phase != "lobby":
        state = session.handle(tl_with_lead_in, state, cmd.Start(), T0).state
    if phase == "cancelled":
        state = session.handle(tl_with_lead_in, state, cmd.Cancel(), T0 + 5000).state
    assert state.phase.value == phase
    with pytest.raises(CommandRejected) as raised:
        check_score(tl_with_lead_in, state, score(ScoreKind.REPS, segment_index=0))
    assert str(raised.value) == NOT_RUNNING


def test_an_input_for_a_segment_not_reached_yet_is_refused() -> None:
    state = at_segment(INDEX[ScoreKind.CALORIES])
    for index in (INDEX[ScoreKind.DISTANCE], INDEX[ScoreKind.EFFORT]):
        kind = KINDS[index]
        with pytest.raises(CommandRejected) as raised:
            check_score(TL, state, score(kind, segment_index=index))
        assert str(raised.value) == NOT_REACHED


def test_an_input_sent_late_counts_in_the_segment_it_was_tapped_in() -> None:
    """A phone that was offline sends its taps after the class has moved on."""
    state = at_segment(INDEX[ScoreKind.CALORIES], at=T0 + 5 * MINUTE)
    for kind in (ScoreKind.REPS, ScoreKind.ROUNDS_REPS, ScoreKind.LOAD):
        late = score(kind, value=3, at_ms=T0 + 6 * MINUTE)
        checked = check_score(TL, state, late)
        # Timed as if it came at the end of its segment: a burst is not flagged.
        assert checked.kind is kind and checked.value == 3 and checked.elapsed_ms == MINUTE
    undo = score(ScoreKind.REPS, value=0, undoes="c0", at_ms=T0 + 6 * MINUTE)
    assert check_score(TL, state, undo).value == 0


def test_a_late_input_still_needs_its_segments_kind_and_a_scored_segment() -> None:
    state = at_segment(INDEX[ScoreKind.CALORIES])
    with pytest.raises(CommandRejected) as raised:
        check_score(TL, state, score(ScoreKind.LOAD, segment_index=INDEX[ScoreKind.REPS]))
    assert str(raised.value) == WRONG_KIND.format(expected="reps", given="kg")
    with pytest.raises(CommandRejected) as raised:
        check_score(TL, state, score(ScoreKind.REPS, segment_index=INDEX[ScoreKind.NONE]))
    assert str(raised.value) == NOT_SCORED


def test_a_finish_counts_only_while_its_segment_runs() -> None:
    """The server times a finish as it arrives, so a late one has no time to give."""
    state = at_segment(INDEX[ScoreKind.LOAD])
    with pytest.raises(CommandRejected) as raised:
        check_score(TL, state, score(ScoreKind.TIME))
    assert str(raised.value) == LATE_FINISH


def test_inputs_are_taken_until_the_grace_after_the_class_finishes() -> None:
    state = at_segment(INDEX[ScoreKind.CALORIES])
    ended_at = T0 + 30_000
    finished = session.handle(TL, state, cmd.Finish(), ended_at).state
    assert finished.phase is Phase.FINISHED
    for index in (INDEX[ScoreKind.REPS], INDEX[ScoreKind.CALORIES]):
        kind = KINDS[index]
        checked = check_score(TL, finished, score(kind, at_ms=ended_at + LATE_INPUT_MS))
        assert checked.kind is kind
        with pytest.raises(CommandRejected) as raised:
            check_score(TL, finished, score(kind, at_ms=ended_at + LATE_INPUT_MS + 1))
        assert str(raised.value) == TOO_LATE
    with pytest.raises(CommandRejected) as raised:
        check_score(TL, finished, score(ScoreKind.DISTANCE, at_ms=ended_at))
    assert str(raised.value) == NOT_REACHED


def test_an_unscored_segment_takes_no_inputs_not_even_undos() -> None:
    state = at_segment(INDEX[ScoreKind.NONE])
    for given_score in (
        score(ScoreKind.REPS, segment_index=1),
        score(ScoreKind.REPS, segment_index=1, value=0, undoes="c0"),
    ):
        with pytest.raises(CommandRejected) as raised:
            check_score(TL, state, given_score)
        assert str(raised.value) == NOT_SCORED


@pytest.mark.parametrize("expected", SCORED)
@pytest.mark.parametrize("given_kind", SCORED)
def test_an_input_of_another_kind_than_the_segments_is_refused(
    expected: ScoreKind, given_kind: ScoreKind
) -> None:
    state = at_segment(INDEX[expected])
    given_score = score(given_kind, segment_index=INDEX[expected])
    if given_kind is expected:
        assert check_score(TL, state, given_score).kind is expected
        return
    with pytest.raises(CommandRejected) as raised:
        check_score(TL, state, given_score)
    assert str(raised.value) == WRONG_KIND.format(expected=UNITS[expected], given=UNITS[given_kind])


def test_an_undo_takes_the_segments_kind_and_no_value() -> None:
    state = at_segment(INDEX[ScoreKind.LOAD], at=T0)
    undo = score(ScoreKind.REPS, segment_index=INDEX[ScoreKind.LOAD], value=0, undoes="c0")
    checked = check_score(TL, state, undo)
    assert (checked.kind, checked.value, checked.rounds) == (ScoreKind.LOAD, 0, 0)


# -- plausibility ----------------------------------------------------------------------------


def test_reps_up_to_the_rate_times_the_seconds_plus_grace_are_plausible() -> None:
    # 3 reps/s for 10 s is 30, plus the grace of 5.
    assert PLAUSIBLE_GRACE == 5
    assert not implausible(ScoreKind.REPS, 35, 10_000, 3.0)
    assert implausible(ScoreKind.REPS, 36, 10_000, 3.0)
    assert not implausible(ScoreKind.ROUNDS_REPS, 35, 10_000, 3.0)
    assert implausible(ScoreKind.ROUNDS_REPS, 36, 10_000, 3.0)


def test_the_first_second_gets_a_full_seconds_allowance() -> None:
    for elapsed in (0, 1, 999, 1000):
        assert not implausible(ScoreKind.REPS, 8, elapsed, 3.0)
        assert implausible(ScoreKind.REPS, 9, elapsed, 3.0)


def test_a_slower_routine_allows_fewer_reps() -> None:
    # Half a rep a second for a minute is 30, plus the grace of 5.
    assert not implausible(ScoreKind.REPS, 35, 60_000, 0.5)
    assert implausible(ScoreKind.REPS, 36, 60_000, 0.5)
    assert not implausible(ScoreKind.REPS, 36, 60_000, 3.0)


@pytest.mark.parametrize(
    "kind",
    [ScoreKind.TIME, ScoreKind.LOAD, ScoreKind.CALORIES, ScoreKind.DISTANCE, ScoreKind.EFFORT],
)
def test_only_rep_counts_are_checked(kind: ScoreKind) -> None:
    assert not implausible(kind, 10**9, 0, 3.0)


@given(st.integers(0, 10_000), st.integers(0, 3_600_000), st.floats(0.1, 10, allow_nan=False))
def test_more_reps_in_the_same_time_is_never_less_implausible(
    reps: int, elapsed: int, rate: float
) -> None:
    if implausible(ScoreKind.REPS, reps, elapsed, rate):
        assert implausible(ScoreKind.REPS, reps + 1, elapsed, rate)
        assert implausible(ScoreKind.REPS, reps, max(0, elapsed - 1000), rate)


# -- results -----------------------------------------------------------------------------


def logged(*values: int) -> list[Logged]:
    return [Logged(value=v) for v in values]


def test_nothing_logged_is_no_result() -> None:
    for kind in SCORED:
        assert tally(kind, []) is None


@pytest.mark.parametrize("kind", [ScoreKind.REPS, ScoreKind.CALORIES, ScoreKind.DISTANCE])
def test_additive_kinds_sum(kind: ScoreKind) -> None:
    assert tally(kind, logged(10, 1, 1, 25)) == Tally(37)


def test_load_is_the_heaviest() -> None:
    assert tally(ScoreKind.LOAD, logged(60, 85, 70)) == Tally(85)


def test_time_is_the_fastest_finish() -> None:
    assert tally(ScoreKind.TIME, logged(247_000)) == Tally(247_000)
    assert tally(ScoreKind.TIME, logged(250_000, 247_000)) == Tally(247_000)


def test_effort_is_the_latest() -> None:
    assert tally(ScoreKind.EFFORT, logged(6, 9, 7)) == Tally(7)


def test_rounds_and_reps_are_summed_apart() -> None:
    inputs = [Logged(rounds=5, value=0), Logged(rounds=0, value=12), Logged(rounds=7, value=3)]
    assert tally(ScoreKind.ROUNDS_REPS, inputs) == Tally(12, 15)


def test_tally_takes_any_iterable_once() -> None:
    assert tally(ScoreKind.REPS, (Logged(value=v) for v in (3, 4))) == Tally(7)


@pytest.mark.parametrize(
    ("kind", "result", "text"),
    [
        (ScoreKind.REPS, Tally(120), "120 reps"),
        (ScoreKind.REPS, Tally(1_500), "1,500 reps"),
        (ScoreKind.ROUNDS_REPS, Tally(12, 5), "12 + 5"),
        (ScoreKind.ROUNDS_REPS, Tally(0, 0), "0 + 0"),
        (ScoreKind.TIME, Tally(247_000), "4:07"),
        (ScoreKind.TIME, Tally(247_999), "4:07"),
        (ScoreKind.TIME, Tally(5_000), "0:05"),
        (ScoreKind.TIME, Tally(3_725_000), "62:05"),
        (ScoreKind.LOAD, Tally(85), "85 kg"),
        (ScoreKind.CALORIES, Tally(2_400), "2,400 cal"),
        (ScoreKind.DISTANCE, Tally(5_000), "5,000 m"),
        (ScoreKind.EFFORT, Tally(7), "7 RPE"),
        (ScoreKind.REPS, 12.0, "12"),
        (ScoreKind.REPS, 1234.5, "1,234.5"),
    ],
)
def test_show_prints_a_result_as_the_screens_do(
    kind: ScoreKind, result: Tally | float, text: str
) -> None:
    assert show(kind, result) == text
