"""Teams: their looks, their names, and where a newcomer goes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.domain.errors import ValidationError
from classroom.domain.teams import (
    BAD_COUNT,
    BAD_NAME,
    LOOKS,
    MAX_TEAMS,
    MIN_TEAMS,
    SAME_NAME,
    TEAM_NAME_MAX,
    Look,
    TeamMode,
    TeamSpec,
    balanced_team,
    default_team_names,
    team_specs,
)

OKABE_ITO = {"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"}

# -- looks ---------------------------------------------------------------------------------


def test_there_is_one_look_per_possible_team() -> None:
    assert (MIN_TEAMS, MAX_TEAMS) == (2, 8)
    assert len(LOOKS) == MAX_TEAMS


def test_looks_use_the_okabe_ito_palette_without_black() -> None:
    assert {look.colour for look in LOOKS} == OKABE_ITO
    assert all(re.fullmatch(r"#[0-9A-F]{6}", look.colour) for look in LOOKS)
    assert "#000000" not in {look.colour for look in LOOKS}


@pytest.mark.parametrize("cue", ["colour", "colour_name", "letter", "pattern"])
def test_every_cue_of_a_look_tells_the_teams_apart_on_its_own(cue: str) -> None:
    # Colour is never the only cue: the letter and the pattern each separate all teams too.
    values = [getattr(look, cue) for look in LOOKS]
    assert len(set(values)) == len(values)
    assert all(values)


def test_letters_run_from_a_in_display_order() -> None:
    assert [look.letter for look in LOOKS] == list("ABCDEFGH")


def test_the_first_team_is_blue_stripes_a() -> None:
    assert LOOKS[0] == Look(colour="#0072B2", colour_name="Blue", letter="A", pattern="stripes")


# -- team specs ----------------------------------------------------------------------------


def test_team_specs_give_each_name_the_next_look() -> None:
    specs = team_specs(["Red Devils", "Night Owls", "Early Birds"])
    assert specs == (
        TeamSpec(name="Red Devils", look=LOOKS[0]),
        TeamSpec(name="Night Owls", look=LOOKS[1]),
        TeamSpec(name="Early Birds", look=LOOKS[2]),
    )


@pytest.mark.parametrize("count", range(MIN_TEAMS, MAX_TEAMS + 1))
def test_two_to_eight_teams_are_allowed(count: int) -> None:
    specs = team_specs([f"T{i}" for i in range(count)])
    assert [spec.look for spec in specs] == list(LOOKS[:count])


@pytest.mark.parametrize("count", [0, 1, MAX_TEAMS + 1, 20])
def test_fewer_than_two_or_more_than_eight_teams_are_refused(count: int) -> None:
    with pytest.raises(ValidationError) as raised:
        team_specs([f"T{i}" for i in range(count)])
    assert str(raised.value) == BAD_COUNT


def test_names_are_trimmed_and_inner_runs_of_space_collapsed() -> None:
    specs = team_specs(["  Night\t  Owls ", "Larks\n"])
    assert [spec.name for spec in specs] == ["Night Owls", "Larks"]


@pytest.mark.parametrize("length", [1, TEAM_NAME_MAX])
def test_names_of_one_to_24_characters_are_allowed(length: int) -> None:
    name = "x" * length
    assert team_specs([name, "Other"])[0].name == name


@pytest.mark.parametrize("bad", ["", "   ", "\t\n", "x" * (TEAM_NAME_MAX + 1)])
def test_empty_blank_or_long_names_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as raised:
        team_specs(["Fine", bad])
    assert str(raised.value) == BAD_NAME


def test_a_long_name_counts_after_its_spaces_are_collapsed() -> None:
    padded = "  " + "x" * TEAM_NAME_MAX + "  "
    assert team_specs([padded, "Other"])[0].name == "x" * TEAM_NAME_MAX


@pytest.mark.parametrize(
    "names",
    [
        ["Owls", "Owls"],
        ["Owls", "owls"],
        ["OWLS", "Larks", "owls"],
        ["Night Owls", "night   owls"],
        ["Straße", "STRASSE"],  # case-insensitive the Unicode way
    ],
)
def test_two_teams_cannot_share_a_name_whatever_the_case(names: list[str]) -> None:
    with pytest.raises(ValidationError) as raised:
        team_specs(names)
    assert str(raised.value) == SAME_NAME


@given(st.lists(st.text(min_size=1, max_size=30), min_size=MIN_TEAMS, max_size=MAX_TEAMS))
def test_team_specs_either_refuse_or_return_valid_distinct_teams(names: list[str]) -> None:
    try:
        specs = team_specs(names)
    except ValidationError as error:
        assert str(error) in (BAD_NAME, SAME_NAME)
        return
    assert len(specs) == len(names)
    assert all(1 <= len(spec.name) <= TEAM_NAME_MAX for spec in specs)
    assert all(spec.name == spec.name.strip() for spec in specs)
    assert len({spec.name.casefold() for spec in specs}) == len(specs)
    assert [spec.look for spec in specs] == list(LOOKS[: len(names)])


# -- default names -------------------------------------------------------------------------


def test_default_names_match_the_colours() -> None:
    assert default_team_names(2) == ("Team Blue", "Team Orange")
    assert default_team_names(MAX_TEAMS)[-1] == "Team Grey"


@pytest.mark.parametrize("count", range(MIN_TEAMS, MAX_TEAMS + 1))
def test_default_names_are_themselves_valid_team_names(count: int) -> None:
    names = default_team_names(count)
    specs = team_specs(names)
    assert [spec.name for spec in specs] == list(names)
    assert all(spec.name == f"Team {spec.look.colour_name}" for spec in specs)


@pytest.mark.parametrize("count", [-1, 0, 1, MAX_TEAMS + 1])
def test_default_names_refuse_a_bad_count(count: int) -> None:
    with pytest.raises(ValidationError) as raised:
        default_team_names(count)
    assert str(raised.value) == BAD_COUNT


# -- auto-balance --------------------------------------------------------------------------


def test_a_newcomer_joins_the_smallest_team() -> None:
    assert balanced_team({10: 4, 11: 2, 12: 3}) == 11


def test_among_the_smallest_the_team_with_least_strength_wins() -> None:
    sizes = {10: 3, 11: 3, 12: 3, 13: 5}
    assert balanced_team(sizes, {10: 300.0, 11: 120.0, 12: 250.0, 13: 0.0}) == 11


def test_strength_never_beats_size() -> None:
    # Team 13 is weakest but bigger: the newcomer still goes to a smaller team.
    assert balanced_team({10: 2, 13: 3}, {10: 900.0, 13: 0.0}) == 10


def test_a_team_without_known_strength_counts_as_zero() -> None:
    assert balanced_team({10: 2, 11: 2}, {10: 50.0}) == 11


def test_full_ties_go_to_the_first_team_in_display_order() -> None:
    # Display order is the mapping's order, not the ids' order.
    assert balanced_team({30: 2, 10: 2, 20: 2}) == 30
    assert balanced_team({30: 2, 10: 2, 20: 2}, {30: 5.0, 10: 5.0, 20: 5.0}) == 30
    assert balanced_team({30: 3, 10: 2, 20: 2}) == 10


def test_there_must_be_a_team_to_join() -> None:
    with pytest.raises(ValidationError):
        balanced_team({})


def test_newcomers_one_by_one_keep_teams_within_one_of_each_other() -> None:
    sizes = {1: 0, 2: 0, 3: 0}
    joined = []
    for _ in range(10):
        team = balanced_team(sizes)
        joined.append(team)
        sizes[team] += 1
        assert max(sizes.values()) - min(sizes.values()) <= 1
    assert joined[:6] == [1, 2, 3, 1, 2, 3]
    assert sizes == {1: 4, 2: 3, 3: 3}


@given(
    st.dictionaries(st.integers(1, 100), st.integers(0, 30), min_size=1, max_size=MAX_TEAMS),
    st.dictionaries(st.integers(1, 100), st.floats(0, 1000)),
)
def test_the_balanced_team_is_always_one_of_the_smallest(
    sizes: dict[int, int], strengths: dict[int, float]
) -> None:
    team = balanced_team(sizes, strengths)
    assert sizes[team] == min(sizes.values())
    smallest = [t for t in sizes if sizes[t] == sizes[team]]
    assert strengths.get(team, 0.0) == min(strengths.get(t, 0.0) for t in smallest)


# -- team modes ----------------------------------------------------------------------------


def test_team_modes_are_the_words_stored_per_class() -> None:
    assert [mode.value for mode in TeamMode] == ["total", "average", "best_n"]
    assert TeamMode("average") is TeamMode.AVERAGE
