"""Rooms: names, pairing codes, and what a display paired to a room shows."""

from __future__ import annotations

import pytest

from classroom.domain.errors import ValidationError
from classroom.domain.rooms import (
    EMPTY_ROOM_NAME,
    LOBBY_LEAD_MS,
    LONG_DISPLAY_LABEL,
    LONG_ROOM_NAME,
    MALFORMED_PAIRING_CODE,
    RESULTS_SHOWN_MS,
    RoomClass,
    WallKind,
    normalize_display_label,
    normalize_pairing_code,
    normalize_room_name,
    online,
    same_name,
    wall_view,
)
from classroom.domain.session import Phase

NOW = 1_800_000_000_000


def test_room_names_are_trimmed_visible_text_of_1_to_80_characters() -> None:
    assert normalize_room_name("  Studio   A ") == "Studio A"
    assert normalize_room_name("Salle d'été") == "Salle d'été"
    assert normalize_room_name("x" * 80) == "x" * 80
    assert same_name("Studio A", "studio a")


def test_room_names_follow_the_one_policy_for_names() -> None:
    """Controls go (classroom/domain/names.py): the name on the wall is the name stored."""
    assert normalize_room_name("Studio\nA") == "Studio A"
    assert normalize_room_name("Studio\tA\x00") == "Studio A"
    assert normalize_room_name("Studio\u200bA") == "StudioA"
    assert normalize_room_name("\u202eA oidutS") == "A oidutS"
    assert normalize_display_label("TV\x07 \u2066Left\u2069") == "TV Left"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", EMPTY_ROOM_NAME),
        ("   ", EMPTY_ROOM_NAME),
        ("x" * 81, LONG_ROOM_NAME),
        ("\u202e\u200b\u2066", EMPTY_ROOM_NAME),
    ],
)
def test_bad_room_names_are_refused_with_a_reason(raw: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        normalize_room_name(raw)
    assert str(refused.value) == message


def test_display_labels_may_be_empty_but_not_long() -> None:
    assert normalize_display_label("") == ""
    assert normalize_display_label(" Left TV ") == "Left TV"
    assert normalize_display_label("TV\r\nLeft") == "TV Left"
    with pytest.raises(ValidationError, match=LONG_DISPLAY_LABEL):
        normalize_display_label("x" * 41)


def test_pairing_codes_are_read_like_join_codes() -> None:
    assert normalize_pairing_code(" abc-234 ") == "ABC234"
    for bad in ("", "ABC23", "ABC2345", "ABC10O", "ÄBC234"):
        with pytest.raises(ValidationError, match=MALFORMED_PAIRING_CODE):
            normalize_pairing_code(bad)


def room_class(
    id: int,
    phase: Phase,
    *,
    opened: int = NOW - 60_000,
    ended: int | None = None,
    scheduled: int | None = None,
) -> RoomClass:
    return RoomClass(
        id=id,
        title=f"Class {id}",
        phase=phase,
        opened_ms=opened,
        ended_ms=ended,
        scheduled_ms=scheduled,
    )


def test_an_empty_room_shows_its_welcome_screen() -> None:
    view = wall_view([], NOW)
    assert view.kind is WallKind.WELCOME and view.shown is None and view.next_class is None


@pytest.mark.parametrize("phase", [Phase.COUNTDOWN, Phase.RUNNING, Phase.PAUSED])
def test_a_live_class_comes_before_everything_else(phase: Phase) -> None:
    classes = [
        room_class(1, Phase.FINISHED, ended=NOW - 1000),
        room_class(2, Phase.LOBBY, opened=NOW - 1000),
        room_class(3, phase, opened=NOW - 50_000),
        room_class(4, Phase.CANCELLED, opened=NOW),
    ]
    view = wall_view(classes, NOW)
    assert view.kind is WallKind.CLASS and view.shown == classes[2]


def test_then_the_results_of_one_just_finished_then_the_class_in_the_lobby() -> None:
    finished = room_class(1, Phase.FINISHED, ended=NOW - 60_000)
    lobby = room_class(2, Phase.LOBBY)
    # The next class waits in the lobby: the wall celebrates the one that ended first.
    view = wall_view([finished, lobby], NOW)
    assert view.kind is WallKind.RESULTS and view.shown == finished
    assert wall_view([finished], NOW).shown == finished
    last = NOW - 60_000 + RESULTS_SHOWN_MS
    assert wall_view([finished, lobby], last).kind is WallKind.RESULTS
    assert wall_view([finished, lobby], last + 1).shown == lobby
    assert wall_view([finished], last + 1).kind is WallKind.WELCOME
    # ... unless the next class has started; and the time is the server's to set.
    started = room_class(2, Phase.COUNTDOWN)
    assert wall_view([finished, started], NOW).shown == started
    assert wall_view([finished, lobby], NOW, results_ms=30_000).shown == lobby
    assert wall_view([finished, lobby], NOW, results_ms=60_000).shown == finished
    cancelled = room_class(3, Phase.CANCELLED, ended=NOW - 1000)
    assert wall_view([cancelled], NOW).kind is WallKind.WELCOME


def test_the_class_opened_last_wins() -> None:
    older = room_class(1, Phase.LOBBY, opened=NOW - 9000)
    newer = room_class(2, Phase.LOBBY, opened=NOW - 1000)
    assert wall_view([newer, older], NOW).shown == newer
    first = room_class(3, Phase.FINISHED, ended=NOW - 9000)
    second = room_class(4, Phase.FINISHED, ended=NOW - 1000, opened=NOW - 99_000)
    assert wall_view([second, first], NOW).shown == second


def test_a_class_scheduled_later_is_the_next_class_on_the_welcome_screen() -> None:
    soon = room_class(1, Phase.LOBBY, scheduled=NOW + 2 * 3600_000)
    later = room_class(2, Phase.LOBBY, scheduled=NOW + 3 * 3600_000)
    view = wall_view([later, soon], NOW)
    assert view.kind is WallKind.WELCOME and view.next_class == soon
    # Its lobby takes the wall a little before its time, and stays after it.
    due = soon.scheduled_ms or 0
    assert wall_view([soon], due - LOBBY_LEAD_MS - 1).kind is WallKind.WELCOME
    assert wall_view([soon], due - LOBBY_LEAD_MS).shown == soon
    assert wall_view([soon], due + 3600_000).shown == soon


def test_a_display_is_online_if_heard_from_in_the_last_minute() -> None:
    assert online(NOW - 60_000, NOW)
    assert not online(NOW - 60_001, NOW)
    assert not online(None, NOW)
