"""Teams: how many, what they look like, and who goes where.

A class has 2 to 8 teams. Each gets a colour from the Okabe-Ito palette, which
stays distinct under the common forms of colour blindness, and a letter and a
pattern, so that colour is never the only cue: a wall screen shows "A" on blue
stripes, a phone shows the same. Auto-balance puts a newcomer in the smallest
team; with past results, ties go to the team with the least strength, so
strong regulars spread out instead of piling into one team.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from classroom.domain.errors import ValidationError
from classroom.domain.names import one_line

MIN_TEAMS = 2
MAX_TEAMS = 8
TEAM_NAME_MAX = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class Look:
    """How a team shows on every screen: a colour plus a letter and a pattern."""

    colour: str  # CSS hex
    colour_name: str
    letter: str
    pattern: str  # a CSS class suffix: the screens draw it over the colour


# Okabe & Ito's palette (black left out: it is the screens' text colour).
LOOKS: tuple[Look, ...] = (
    Look(colour="#0072B2", colour_name="Blue", letter="A", pattern="stripes"),
    Look(colour="#E69F00", colour_name="Orange", letter="B", pattern="dots"),
    Look(colour="#009E73", colour_name="Green", letter="C", pattern="checks"),
    Look(colour="#CC79A7", colour_name="Pink", letter="D", pattern="waves"),
    Look(colour="#56B4E9", colour_name="Sky", letter="E", pattern="grid"),
    Look(colour="#D55E00", colour_name="Vermilion", letter="F", pattern="zigzag"),
    Look(colour="#F0E442", colour_name="Yellow", letter="G", pattern="diamonds"),
    Look(colour="#999999", colour_name="Grey", letter="H", pattern="crosses"),
)
assert len(LOOKS) == MAX_TEAMS

BAD_COUNT = f"A class has {MIN_TEAMS} to {MAX_TEAMS} teams."
BAD_NAME = f"Team names are 1 to {TEAM_NAME_MAX} characters."
SAME_NAME = "Two teams can't share a name."


class TeamMode(StrEnum):
    """How a team's score is made from its members' scores; set per class."""

    TOTAL = "total"  # the sum: fine when teams are the same size
    AVERAGE = "average"  # per active member: fair between a team of 3 and one of 5
    BEST_N = "best_n"  # the sum of the N best members


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamSpec:
    """A team as the instructor sets it up, before it has members."""

    name: str
    look: Look


def team_specs(names: Sequence[str]) -> tuple[TeamSpec, ...]:
    """Teams with these names, each given the next look; raises on bad names."""
    if not MIN_TEAMS <= len(names) <= MAX_TEAMS:
        raise ValidationError(BAD_COUNT)
    cleaned = tuple(one_line(str(name)) for name in names)
    if any(not 1 <= len(name) <= TEAM_NAME_MAX for name in cleaned):
        raise ValidationError(BAD_NAME)
    if len({name.casefold() for name in cleaned}) != len(cleaned):
        raise ValidationError(SAME_NAME)
    return tuple(TeamSpec(name=name, look=look) for name, look in zip(cleaned, LOOKS, strict=False))


def default_team_names(count: int) -> tuple[str, ...]:
    """ "Team Blue", "Team Orange", …: names that match the colours."""
    if not MIN_TEAMS <= count <= MAX_TEAMS:
        raise ValidationError(BAD_COUNT)
    return tuple(f"Team {look.colour_name}" for look in LOOKS[:count])


def balanced_team(
    sizes: Mapping[int, int],
    strengths: Mapping[int, float] | None = None,
) -> int:
    """The team a newcomer should join: the smallest one.

    ``sizes`` maps each team (by id, in display order) to its member count.
    Among the smallest, the team with the least total ``strengths`` (members'
    past results, when known) wins; then the first in display order.
    """
    if not sizes:
        raise ValidationError("There are no teams to join.")
    strength = strengths or {}
    order = {team: position for position, team in enumerate(sizes)}
    return min(sizes, key=lambda team: (sizes[team], strength.get(team, 0.0), order[team]))
