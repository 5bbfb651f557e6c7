"""Circuits with teams: which station each team works at.

In a circuit every team works at once, each at its own station, and all teams
rotate together. A circuit segment carries the circuit's ``stations`` (in
order) and its ``rotation`` (0 for the first station slot of a round, 1 for
the next, …). Team ``t`` — counted from 0, in the order the class lists its
teams — works at station ``(t + rotation) % len(stations)``:

================  ==========  ==========  ==========
rotation          team 0      team 1      team 2
================  ==========  ==========  ==========
0                 station 1   station 2   station 3
1                 station 2   station 3   station 4
================  ==========  ==========  ==========

With more teams than stations, teams ``t`` and ``t + len(stations)`` share a
station. A class without teams follows team 0, which visits the stations in order.
"""

from __future__ import annotations

from classroom.domain.timeline import Exercise, Segment


def station_for_team(segment: Segment, team_index: int) -> int | None:
    """The 0-based station team ``team_index`` works at, or None outside a circuit."""
    if not segment.stations:
        return None
    if team_index < 0:
        raise ValueError("a team index counts from 0")
    return (team_index + segment.rotation) % len(segment.stations)


def exercise_for_team(segment: Segment, team_index: int) -> Exercise | None:
    """The exercise team ``team_index`` does in ``segment`` (its station's, in a circuit)."""
    station = station_for_team(segment, team_index)
    if station is None:
        return segment.exercise
    return segment.stations[station]


def station_label(segment: Segment, team_index: int) -> str:
    """What to tell a team: ``"Station 3 of 6: Kettlebell swings"``, or "" outside a circuit."""
    station = station_for_team(segment, team_index)
    if station is None:
        return ""
    count = len(segment.stations)
    return f"Station {station + 1} of {count}: {segment.stations[station].name}"
