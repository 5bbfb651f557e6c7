"""One policy for names people type: NFC, no invisible controls, joiners only where they join."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.domain.commands import Shout
from classroom.domain.formats.text import parse_routine
from classroom.domain.joining import normalize_nickname
from classroom.domain.names import one_line, visible
from classroom.domain.rooms import normalize_display_label, normalize_room_name
from classroom.domain.teams import team_specs

CASES = [
    # (what was typed, what is kept, why)
    ("Robin", "Robin", "plain text"),
    ("Cafe\u0301", "Caf\u00e9", "NFC: e + combining acute is é"),
    ("\u212b ngstr\u00f6m", "\u00c5 ngstr\u00f6m", "NFC: the angstrom sign is Å"),
    ("Team \u202eeulB", "Team eulB", "right-to-left override"),
    ("\u202dBlue\u202c", "Blue", "left-to-right override and pop"),
    ("\u202aBlue\u202b", "Blue", "embeddings"),
    ("\u2066Red\u2069 \u2067Team\u2069 \u2068X\u2069", "Red Team X", "isolates"),
    ("A\u200eB\u200fC\u061cD", "ABCD", "directional marks"),
    ("Ro\u200bbin", "Robin", "zero-width space"),
    ("Ro\u2060bin\ufeff", "Robin", "word joiner, byte-order mark"),
    ("Ro\u00adbin", "Robin", "soft hyphen"),
    ("Rob\x00in\x07\x1b[31m", "Robin[31m", "C0 controls"),
    ("Rob\x9bin", "Robin", "a C1 control"),
    ("\u3164", "", "Hangul filler alone"),
    ("\u2800\u2800", "", "blank Braille patterns"),
    ("R\u115fobin", "Robin", "a Hangul choseong filler"),
    ("\U0001f469\u200d\U0001f4bb", "\U0001f469\u200d\U0001f4bb", "👩‍💻 keeps its ZWJ"),
    (
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "👨‍👩‍👧, a family of three",
    ),
    ("\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f3f3\ufe0f\u200d\U0001f308", "🏳️‍🌈 after VS16"),
    (
        "\U0001f9d1\U0001f3fd\u200d\U0001f680",
        "\U0001f9d1\U0001f3fd\u200d\U0001f680",
        "🧑🏽‍🚀 after a skin tone",
    ),
    ("\u2764\ufe0f\u200d\U0001f525", "\u2764\ufe0f\u200d\U0001f525", "❤️‍🔥"),
    ("\U0001f469\u200d\u200d\U0001f4bb", "\U0001f469\u200d\U0001f4bb", "a doubled ZWJ: one"),
    ("Ro\u200dbin", "Robin", "a ZWJ between Latin letters joins nothing"),
    ("\u200dRobin\u200d", "Robin", "a ZWJ at either end"),
    ("\U0001f469\u200dRobin", "\U0001f469Robin", "a ZWJ between an emoji and a letter"),
    ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u200d\u0937", "Devanagari half form keeps its ZWJ"),
    (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "Persian keeps its ZWNJ",
    ),
    ("\u0dc1\u0dca\u200d\u0dbb\u0dd3", "\u0dc1\u0dca\u200d\u0dbb\u0dd3", "Sinhala keeps its ZWJ"),
    ("ab\u200ccd", "abcd", "a ZWNJ between Latin letters"),
    (
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "the flag of Scotland keeps its tags",
    ),
    ("Robin\U000e0041\U000e0042", "Robin", "tags outside a flag"),
    ("1\ufe0f\u20e3 Team", "1\ufe0f\u20e3 Team", "a keycap"),
    ("Line\u2028two\u2029three", "Line\ntwo\nthree", "separators become line breaks"),
    ("\ud800Robin", "Robin", "a lone surrogate"),
    ("e\u200b\u0301", "\u00e9", "an accent after a removed control still composes"),
    ("Ζωή Ōkawa 李小龍 Андрей", "Ζωή Ōkawa 李小龍 Андрей", "any script"),
]


@pytest.mark.parametrize(("typed", "kept", "why"), CASES, ids=[case[2] for case in CASES])
def test_the_policy(typed: str, kept: str, why: str) -> None:
    assert visible(typed) == kept


def test_a_name_is_one_line_with_single_spaces() -> None:
    assert one_line("  Team\t\u202e Blue \n\n Sharks\u2029 ") == "Team Blue Sharks"
    assert visible("Warm up\n  slowly") == "Warm up\n  slowly"


@given(st.text())
def test_what_is_kept_is_nfc_and_has_no_override_or_control(typed: str) -> None:
    kept = visible(typed)
    assert unicodedata.is_normalized("NFC", kept)
    forbidden = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200e\u200f")
    assert not forbidden & set(kept)
    assert all(unicodedata.category(c) not in ("Cc", "Cs") or c in "\n\t" for c in kept)
    assert visible(kept) == kept  # the policy is settled after one pass
    kept.encode("utf-8")  # every name can be stored and sent


# -- every place a person types a name follows the policy --------------------------------


def _routine_title(typed: str) -> str:
    title = json.dumps(typed, ensure_ascii=False)
    source = f"title: {title}\nblocks:\n  - type: work\n    name: Row\n    duration: 30\n"
    return parse_routine(source).title


def _exercise_name(typed: str) -> str:
    source = (
        "title: T\nblocks:\n  - type: work\n    name: Row\n    duration: 30\n"
        f"    exercise: {{name: {json.dumps(typed, ensure_ascii=False)}}}\n"
    )
    block = parse_routine(source).blocks[0]
    exercise = getattr(block, "exercise", None)
    assert exercise is not None
    return str(exercise.name)


PLACES: dict[str, Callable[[str], str]] = {
    "nickname": normalize_nickname,
    "team": lambda typed: team_specs([typed, "Other"])[0].name,
    "room": normalize_room_name,
    "display label": normalize_display_label,
    "shout-out": lambda typed: Shout(text=typed).text,
    "routine title": _routine_title,
    "exercise": _exercise_name,
}
TYPED = [
    ("Team \u202eeulB", "Team eulB"),
    ("\u2066Ann\u2069\u200b", "Ann"),
    ("Cafe\u0301", "Caf\u00e9"),
    ("\U0001f469\u200d\U0001f4bb Coder", "\U0001f469\u200d\U0001f4bb Coder"),
    ("\u0645\u06cc\u200c\u062e", "\u0645\u06cc\u200c\u062e"),
    ("Ro\u200dbin", "Robin"),
]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize(("typed", "kept"), TYPED)
def test_every_name_people_type_follows_the_policy(place: str, typed: str, kept: str) -> None:
    assert PLACES[place](typed) == kept
