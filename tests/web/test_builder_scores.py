"""What each block of the builder scores: chosen per block, written to the routine."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import FormData

from classroom.domain.timeline import ScoreKind
from classroom.web.routine_form import (
    block_data,
    block_row,
    check_data,
    new_block,
    routine_data,
    state_from_form,
)


def scores_of(data: dict[str, Any]) -> list[str]:
    checked = check_data(data)
    assert checked.timeline is not None, checked.problems
    return [segment.score_kind.value for segment in checked.timeline.segments]


def form(*blocks: dict[str, str]) -> FormData:
    items = [("title", "Test")]
    for i, fields in enumerate(blocks):
        items += [(f"b-{i}-{key}", value) for key, value in fields.items()]
    return FormData(items)


def test_new_blocks_start_with_a_sensible_score() -> None:
    assert {kind: new_block(kind).values.get("score") for kind in ("work", "intervals")} == {
        "work": "none",
        "intervals": "reps",
    }
    assert new_block("emom").values["score"] == "reps"
    assert new_block("tabata").values["score"] == "reps"
    assert "score" not in new_block("amrap").values  # always rounds + reps
    assert new_block("amrap").fixed_score == "Scored in rounds + reps"


@pytest.mark.parametrize(
    ("block", "scored"),
    [
        ({"type": "emom", "rounds": "2", "x-0-name": "Burpees", "score": "reps"}, ["reps"] * 2),
        ({"type": "emom", "rounds": "2", "x-0-name": "Burpees", "score": "none"}, ["none"] * 2),
        ({"type": "tabata", "x-0-name": "Squats", "score": "none"}, ["none"] * 16),
        ({"type": "work", "duration": "0:30", "score": "calories"}, ["calories"]),
        (
            {"type": "intervals", "rounds": "2", "work": "0:40", "rest": "0:20", "score": "load"},
            ["load", "none", "load", "none"],
        ),
    ],
)
def test_the_chosen_score_is_what_the_segments_score(
    block: dict[str, str], scored: list[str]
) -> None:
    state = state_from_form(form(block))
    data = routine_data(state)
    assert scores_of(data) == scored
    # ... and it reads back into the builder as chosen.
    assert block_row(data["blocks"][0]).values["score"] == block["score"]


def test_an_intervals_score_goes_on_its_work_step_and_comes_off_again() -> None:
    row = block_row({"type": "intervals", "rounds": 3, "work": "0:40", "rest": "0:20"})
    row.values["score"] = "reps"
    assert block_data(row)["work"] == {"duration": "0:40", "score": "reps"}
    again = block_row(block_data(row))
    again.values["score"] = "none"
    assert block_data(again)["work"] == "0:40"


def test_an_unknown_score_is_a_problem_not_a_crash() -> None:
    state = state_from_form(form({"type": "work", "duration": "0:30", "score": "vibes"}))
    checked = check_data(routine_data(state))
    assert checked.timeline is None and checked.problems
    assert "score" in str(checked.problems[0])


def test_a_routine_with_nothing_scored_is_flagged_before_saving() -> None:
    quiet = routine_data(state_from_form(form({"type": "work", "duration": "0:30"})))
    assert check_data(quiet).unscored
    loud = routine_data(
        state_from_form(form({"type": "work", "duration": "0:30", "score": "reps"}))
    )
    assert not check_data(loud).unscored
    assert ScoreKind.REPS.value in scores_of(loud)
