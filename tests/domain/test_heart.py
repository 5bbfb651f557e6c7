"""Heart rate: reading a strap's measurements, max heart rate, zones, points and safety."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.domain.errors import ValidationError
from classroom.domain.heart import (
    BAD_AGE,
    BAD_MAX_HR,
    BAD_POINTS,
    EMPTY_MEASUREMENT,
    FORMULAS,
    HALF_RR,
    HEART_RATE_MEASUREMENT,
    HEART_RATE_SERVICE,
    LONG_MEASUREMENT,
    MAX_AGE,
    MAX_BPM,
    MAX_MAX_HR,
    MAX_MEASUREMENT_BYTES,
    MAX_RR_MS,
    MIN_AGE,
    MIN_BPM,
    MIN_MAX_HR,
    NO_BPM,
    NO_ENERGY,
    PROBLEMS,
    SAFETY_AFTER_MS,
    SAFETY_PERCENT,
    ZONES,
    BadMeasurement,
    Effort,
    HeartRules,
    Measurement,
    TeamEffort,
    check_max_hr,
    encode_measurement,
    high_for_ms,
    max_from_age,
    needs_attention,
    parse_measurement,
    parse_points,
    percent_of_max,
    sample_problem,
    take,
    team_effort,
    zone_of,
)

RULES = HeartRules()


def test_the_bluetooth_numbers_are_the_standards() -> None:
    assert (HEART_RATE_SERVICE, HEART_RATE_MEASUREMENT) == (0x180D, 0x2A37)
    assert (MIN_BPM, MAX_BPM, MAX_MEASUREMENT_BYTES) == (25, 250, 64)


# -- parsing: every flag combination, laid out by hand -------------------------------------

# Each part of a measurement: its flag bits, its bytes as the standard lays them out, and
# what it reads as. The bytes are written here, not made by encode_measurement.
BPM_PARTS = {
    "uint8": (0b0, [72], 72),
    "uint16": (0b1, [0x2C, 0x01], 300),  # 0x012C: the high byte catches a wrong byte order
}
CONTACT_PARTS = {
    "not supported": (0b000, None),
    "detected bit alone": (0b010, None),  # bit 1 means nothing without bit 2
    "not detected": (0b100, False),
    "detected": (0b110, True),
}
ENERGY_PARTS = {
    "no energy": (0b0000, [], None),
    "energy": (0b1000, [0x39, 0x05], 1337),
}
RR_PARTS = {
    "no RR": (0b0_0000, [], ()),
    "RR flag, no intervals": (0b1_0000, [], ()),
    "one RR": (0b1_0000, [0x00, 0x04], (1000,)),  # 1024/1024 s
    # 819/1024 s = 799.8 ms; 1434/1024 s = 1400.4 ms; 65535/1024 s = 63999.0 ms
    "several RR": (
        0b1_0000,
        [0x00, 0x04, 0x33, 0x03, 0x9A, 0x05, 0xFF, 0xFF],
        (1000, 800, 1400, 63999),
    ),
}


@pytest.mark.parametrize(
    ("bpm", "contact", "energy", "rr"),
    list(itertools.product(BPM_PARTS, CONTACT_PARTS, ENERGY_PARTS, RR_PARTS)),
)
def test_every_flag_combination_parses(bpm: str, contact: str, energy: str, rr: str) -> None:
    bpm_flag, bpm_bytes, bpm_value = BPM_PARTS[bpm]
    contact_flag, contact_value = CONTACT_PARTS[contact]
    energy_flag, energy_bytes, energy_value = ENERGY_PARTS[energy]
    rr_flag, rr_bytes, rr_value = RR_PARTS[rr]
    flags = bpm_flag | contact_flag | energy_flag | rr_flag
    data = bytes([flags, *bpm_bytes, *energy_bytes, *rr_bytes])
    expected = Measurement(
        bpm=bpm_value, contact=contact_value, energy_kj=energy_value, rr_ms=rr_value
    )

    assert parse_measurement(data) == expected
    # Bits 5-7 are reserved: set, they change nothing.
    for reserved in (0b0010_0000, 0b0100_0000, 0b1000_0000, 0b1110_0000):
        assert parse_measurement(bytes([flags | reserved]) + data[1:]) == expected
    assert parse_measurement(bytearray(data)) == expected
    assert parse_measurement(memoryview(data)) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes([0b0000_0000, 60]), Measurement(60, None, None, ())),
        (bytes([0b0001_0110, 72, 0x00, 0x04]), Measurement(72, True, None, (1000,))),
        (bytes([0b0000_0100, 150]), Measurement(150, False, None, ())),
        (bytes([0b0000_0001, 0xB4, 0x00]), Measurement(180, None, None, ())),
        (bytes([0b0000_1111, 0x05, 0x01, 0x10, 0x27]), Measurement(261, True, 10_000, ())),
        (
            bytes([0b0001_1110, 95, 0x00, 0x00, 0x00, 0x03, 0x00, 0x02]),
            Measurement(95, True, 0, (750, 500)),
        ),
    ],
)
def test_measurements_written_out_byte_by_byte(data: bytes, expected: Measurement) -> None:
    assert parse_measurement(data) == expected


def test_bytes_after_the_announced_fields_are_ignored() -> None:
    # No RR flag: what follows the last announced field is left for later standards.
    assert parse_measurement(bytes([0b0000_0000, 72, 0xFF])) == Measurement(72, None, None, ())
    assert parse_measurement(bytes([0b0000_1000, 72, 0x01, 0x00, 0xAA, 0xBB])).energy_kj == 1


def test_a_measurement_of_the_longest_length_parses() -> None:
    data = bytes([0b0001_0000, 72]) + bytes([0x00, 0x04]) * 31
    assert len(data) == MAX_MEASUREMENT_BYTES
    assert parse_measurement(data).rr_ms == (1000,) * 31


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        (b"", EMPTY_MEASUREMENT),
        (bytearray(), EMPTY_MEASUREMENT),
        (bytes([0b0000_0000, 72]) + bytes(MAX_MEASUREMENT_BYTES - 1), LONG_MEASUREMENT),
        (bytes([0b0001_0000, 72]) + bytes(MAX_MEASUREMENT_BYTES - 1), LONG_MEASUREMENT),
        (bytes([0b0000_0000]), NO_BPM),
        (bytes([0b0001_1110]), NO_BPM),
        (bytes([0b0000_0001, 72]), NO_BPM),  # uint16 announced, one byte sent
        (bytes([0b0000_1000, 72]), NO_ENERGY),
        (bytes([0b0000_1000, 72, 0x39]), NO_ENERGY),
        (bytes([0b0001_1001, 0x2C, 0x01, 0x39]), NO_ENERGY),
        (bytes([0b0001_0000, 72, 0x00]), HALF_RR),
        (bytes([0b0001_0000, 72, 0x00, 0x04, 0x33]), HALF_RR),
        (bytes([0b0001_1001, 0x2C, 0x01, 0x39, 0x05, 0x00, 0x04, 0x33]), HALF_RR),
    ],
)
def test_malformed_measurements_are_refused_with_a_sentence(data: bytes, sentence: str) -> None:
    with pytest.raises(BadMeasurement) as refused:
        parse_measurement(data)
    assert str(refused.value) == sentence
    assert isinstance(refused.value, ValidationError)


@pytest.mark.parametrize(
    "sentence", [EMPTY_MEASUREMENT, LONG_MEASUREMENT, NO_BPM, NO_ENERGY, HALF_RR]
)
def test_refusals_are_sentences(sentence: str) -> None:
    assert sentence[0].isupper() and sentence.endswith(".")


@given(st.binary(max_size=MAX_MEASUREMENT_BYTES + 4))
def test_any_bytes_parse_or_are_refused_as_a_bad_measurement(data: bytes) -> None:
    try:
        measurement = parse_measurement(data)
    except BadMeasurement:
        return
    assert 0 <= measurement.bpm <= 0xFFFF
    assert all(0 <= ms <= MAX_RR_MS for ms in measurement.rr_ms)


# -- encoding ------------------------------------------------------------------------------


def test_encoding_lays_out_the_bytes_as_the_standard_does() -> None:
    assert encode_measurement(72, contact=True, rr_ms=[1000]) == bytes(
        [0b0001_0110, 72, 0x00, 0x04]
    )
    assert encode_measurement(60) == bytes([0b0000_0000, 60])
    assert encode_measurement(180, wide=True) == bytes([0b0000_0001, 0xB4, 0x00])
    assert encode_measurement(261, wide=True, contact=True, energy_kj=10_000) == bytes(
        [0b0000_1111, 0x05, 0x01, 0x10, 0x27]
    )
    assert encode_measurement(150, contact=False) == bytes([0b0000_0100, 150])


@given(
    wide=st.booleans(),
    data=st.data(),
    contact=st.sampled_from([None, False, True]),
    energy_kj=st.none() | st.integers(0, 0xFFFF),
    rr_ms=st.lists(st.integers(0, MAX_RR_MS), max_size=29),
)
def test_encoding_then_parsing_gives_back_the_values(
    wide: bool,
    data: st.DataObject,
    contact: bool | None,
    energy_kj: int | None,
    rr_ms: list[int],
) -> None:
    bpm = data.draw(st.integers(0, 0xFFFF if wide else 0xFF))
    value = encode_measurement(bpm, wide=wide, contact=contact, energy_kj=energy_kj, rr_ms=rr_ms)
    assert parse_measurement(value) == Measurement(bpm, contact, energy_kj, tuple(rr_ms))


def test_every_realistic_rr_interval_survives_the_trip_through_1024ths_exactly() -> None:
    rr = list(range(300, 2001))
    for start in range(0, len(rr), 31):
        chunk = rr[start : start + 31]
        assert parse_measurement(encode_measurement(60, rr_ms=chunk)).rr_ms == tuple(chunk)


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_measurement(256),
        lambda: encode_measurement(-1),
        lambda: encode_measurement(0x10000, wide=True),
        lambda: encode_measurement(72, energy_kj=-1),
        lambda: encode_measurement(72, energy_kj=0x10000),
        lambda: encode_measurement(72, rr_ms=[-1]),
        lambda: encode_measurement(72, rr_ms=[MAX_RR_MS + 1]),
        lambda: encode_measurement(72, rr_ms=[1000] * 32),
        lambda: encode_measurement(72, wide=True, energy_kj=1, rr_ms=[1000] * 30),
    ],
)
def test_encoding_refuses_what_does_not_fit(call: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        call()


def test_encoding_the_largest_values_that_fit() -> None:
    assert encode_measurement(256, wide=True)[1:] == bytes([0x00, 0x01])
    assert len(encode_measurement(72, rr_ms=[MAX_RR_MS] * 31)) == MAX_MEASUREMENT_BYTES
    # A uint16 heart rate and energy leave room for 29 intervals (63 bytes), not 30.
    assert len(encode_measurement(72, wide=True, energy_kj=1, rr_ms=[1] * 29)) == 63


# -- unusable samples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measurement", "problem"),
    [
        (Measurement(72, None, None, ()), None),
        (Measurement(72, True, None, ()), None),
        (Measurement(72, False, None, ()), "no_contact"),
        (Measurement(0, False, None, ()), "no_contact"),  # no contact says more than the value
        (Measurement(MIN_BPM - 1, True, None, ()), "out_of_range"),
        (Measurement(MIN_BPM, True, None, ()), None),
        (Measurement(MAX_BPM, None, None, ()), None),
        (Measurement(MAX_BPM + 1, None, None, ()), "out_of_range"),
        (Measurement(0, None, None, ()), "out_of_range"),
    ],
)
def test_sample_problem(measurement: Measurement, problem: str | None) -> None:
    assert sample_problem(measurement) == problem


def test_every_problem_has_a_sentence_for_people() -> None:
    assert PROBLEMS == {
        "no_contact": "The strap isn't touching the skin: wet it and tighten it.",
        "out_of_range": "Heart rate must be between 25 and 250 bpm.",
    }


# -- max heart rate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "age", "max_hr"),
    [
        ("hunt", 40, 185),  # 211 - 25.6 = 185.4
        ("hunt", 30, 192),  # 191.8
        ("hunt", MIN_AGE, 205),  # 204.6
        ("hunt", MAX_AGE, 147),
        ("tanaka", 40, 180),
        ("tanaka", 25, 191),  # 190.5: half rounds up
        ("tanaka", 33, 185),  # 184.9
        ("fox", 40, 180),
        ("fox", MAX_AGE, 120),
    ],
)
def test_max_from_age(formula: str, age: int, max_hr: int) -> None:
    assert max_from_age(age, formula) == max_hr


def test_the_default_formula_is_hunt() -> None:
    assert max_from_age(40) == 185
    assert HeartRules().formula == "hunt"


def test_formulas_read_as_people_write_them() -> None:
    assert FORMULAS == {
        "hunt": "211 \u2212 0.64 \u00d7 age",
        "tanaka": "208 \u2212 0.7 \u00d7 age",
        "fox": "220 \u2212 age",
    }


@pytest.mark.parametrize("formula", sorted(FORMULAS))
def test_each_formula_computes_what_its_text_says(formula: str) -> None:
    shown = re.fullmatch(r"(\d+) \u2212 (?:([\d.]+) \u00d7 )?age", FORMULAS[formula])
    assert shown is not None
    intercept, slope = Fraction(shown[1]), Fraction(shown[2] or 1)
    for age in range(MIN_AGE, MAX_AGE + 1):
        exact = intercept - slope * age
        assert abs(max_from_age(age, formula) - exact) <= Fraction(1, 2)


@pytest.mark.parametrize("formula", sorted(FORMULAS))
def test_every_estimate_is_a_max_a_person_can_set(formula: str) -> None:
    estimates = [max_from_age(age, formula) for age in range(MIN_AGE, MAX_AGE + 1)]
    assert all(check_max_hr(estimate) == estimate for estimate in estimates)
    assert estimates == sorted(estimates, reverse=True)


@pytest.mark.parametrize("age", [MIN_AGE - 1, MAX_AGE + 1, 0, -40, True])
def test_ages_outside_the_range_are_refused(age: int) -> None:
    with pytest.raises(ValidationError, match=re.escape(BAD_AGE)):
        max_from_age(age)


def test_an_unknown_formula_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="hunt, tanaka, fox"):
        max_from_age(40, "karvonen")
    with pytest.raises(ValidationError, match="hunt, tanaka, fox"):
        HeartRules(formula="karvonen")


@pytest.mark.parametrize("value", [MIN_MAX_HR, 185, MAX_MAX_HR])
def test_a_max_a_person_can_have_is_kept(value: int) -> None:
    assert check_max_hr(value) == value


@pytest.mark.parametrize("value", [MIN_MAX_HR - 1, MAX_MAX_HR + 1, 0, -185, True])
def test_a_max_no_person_has_is_refused(value: int) -> None:
    with pytest.raises(ValidationError, match=re.escape(BAD_MAX_HR)):
        check_max_hr(value)


# -- zones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bpm", "max_hr", "percent", "zone"),
    [
        (0, 200, 0, 0),
        (99, 200, 49, 0),
        (100, 200, 50, 1),
        (119, 200, 59, 1),
        (120, 200, 60, 2),
        (139, 200, 69, 2),
        (140, 200, 70, 3),
        (159, 200, 79, 3),
        (160, 200, 80, 4),
        (179, 200, 89, 4),
        (180, 200, 90, 5),
        (200, 200, 100, 5),
        (250, 200, 125, 5),
        (92, 185, 49, 0),  # 49.7 %: rounded down
        (93, 185, 50, 1),
        (166, 185, 89, 4),  # 89.7 %
    ],
)
def test_zones_by_percent_of_max(bpm: int, max_hr: int, percent: int, zone: int) -> None:
    assert percent_of_max(bpm, max_hr) == percent
    assert zone_of(bpm, max_hr) == zone
    effort = Effort(max_hr=max_hr, bpm=bpm)
    assert (effort.percent, effort.zone) == (percent, zone)


def test_percent_of_max_needs_a_max() -> None:
    with pytest.raises(ValueError):
        percent_of_max(100, 0)


@given(st.integers(1, 400), st.integers(-50, 500), st.integers(-50, 500))
def test_zone_and_percent_never_fall_as_the_heart_rate_rises(max_hr: int, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert percent_of_max(low, max_hr) <= percent_of_max(high, max_hr)
    assert zone_of(low, max_hr) <= zone_of(high, max_hr)
    assert 0 <= zone_of(low, max_hr) <= zone_of(high, max_hr) <= ZONES


# -- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("1,2,3,4,4", (1.0, 2.0, 3.0, 4.0, 4.0)),
        (" 0, 1.5 ,2,3 , 3.5 ", (0.0, 1.5, 2.0, 3.0, 3.5)),
        ("0,0,0,0,0", (0.0, 0.0, 0.0, 0.0, 0.0)),
        ("2,2,2,2,2", (2.0, 2.0, 2.0, 2.0, 2.0)),
    ],
)
def test_parse_points(text: str, points: tuple[float, ...]) -> None:
    assert parse_points(text) == points
    assert HeartRules(points_per_minute=parse_points(text)).points_per_minute == points


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1,2,3,4",
        "1,2,3,4,5,6",
        "1,2,x,4,4",
        "-1,2,3,4,4",
        "1,3,2,4,4",
        "1,2,3,4,nan",
        "1,2,3,4,inf",
        "1;2;3;4;4",
        "1,,3,4,4",
    ],
)
def test_parse_points_refuses_anything_but_five_rising_numbers(text: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(BAD_POINTS)):
        parse_points(text)


def test_rules_refuse_points_that_fall() -> None:
    with pytest.raises(ValidationError, match=re.escape(BAD_POINTS)):
        HeartRules(points_per_minute=(4.0, 3.0, 2.0, 1.0, 0.0))


def test_the_default_rules() -> None:
    assert (RULES.formula, RULES.points_per_minute) == ("hunt", (1, 2, 3, 4, 4))
    assert (RULES.raise_after_ms, RULES.raise_step, RULES.gap_ms) == (30_000, 10, 5_000)


# -- effort: time in zones and points ------------------------------------------------------


def feed(
    effort: Effort,
    samples: list[tuple[int, int]],
    rules: HeartRules = RULES,
    counting: bool = True,
) -> tuple[Effort, list[int | None]]:
    """Take each (bpm, at_ms) sample in turn; the efforts and what each raise returned."""
    raises = []
    for bpm, at_ms in samples:
        effort, raised = take(effort, rules, bpm, at_ms, counting=counting)
        raises.append(raised)
    return effort, raises


def every_second(bpm: int, start_s: int, end_s: int) -> list[tuple[int, int]]:
    """A sample each second from start_s to end_s inclusive."""
    return [(bpm, s * 1000) for s in range(start_s, end_s + 1)]


def test_the_first_sample_credits_nothing() -> None:
    effort, raised = take(Effort(max_hr=200), RULES, 150, 10_000)
    assert raised is None
    assert effort == Effort(max_hr=200, bpm=150, at_ms=10_000, peak_bpm=150)


def test_time_goes_to_the_previous_samples_zone() -> None:
    effort, _ = feed(Effort(max_hr=200), [(150, 0), (190, 1000), (100, 3000)])
    # 150 (zone 3) held 1 s, then 190 (zone 5) held 2 s; the last sample's time is still to come.
    assert effort.zone_ms == (0, 0, 0, 1000, 0, 2000)
    assert effort.points == pytest.approx(3 * 1 / 60 + 4 * 2 / 60)
    assert (effort.bpm, effort.at_ms, effort.zone) == (100, 3000, 1)


def test_a_minute_in_a_zone_earns_its_points_per_minute() -> None:
    rules = HeartRules(points_per_minute=(1, 2, 3, 5, 8))
    for bpm, zone in [(130, 2), (170, 4), (195, 5)]:
        effort, _ = feed(Effort(max_hr=200), every_second(bpm, 0, 60), rules)
        assert effort.zone_ms[zone] == 60_000
        assert effort.points == pytest.approx(rules.points_per_minute[zone - 1])


def test_zone_0_earns_nothing_but_its_time_is_kept() -> None:
    effort, _ = feed(Effort(max_hr=200), every_second(80, 0, 60))
    assert effort.points == 0
    assert effort.zone_ms == (60_000, 0, 0, 0, 0, 0)


def test_a_sample_counts_for_at_most_the_gap() -> None:
    effort, _ = feed(Effort(max_hr=200), [(150, 0), (150, 60_000)])
    assert effort.zone_ms == (0, 0, 0, RULES.gap_ms, 0, 0)
    assert effort.points == pytest.approx(3 * RULES.gap_ms / 60_000)
    longer = HeartRules(gap_ms=20_000)
    effort, _ = feed(Effort(max_hr=200), [(150, 0), (150, 60_000)], longer)
    assert effort.zone_ms[3] == 20_000


def test_before_the_class_runs_time_is_kept_but_earns_no_points() -> None:
    effort, _ = feed(Effort(max_hr=200), every_second(150, 0, 30), counting=False)
    assert effort.zone_ms[3] == 30_000
    assert effort.points == 0
    effort, _ = take(effort, RULES, 150, 31_000)
    assert effort.points == pytest.approx(3 / 60)


def test_a_sample_no_later_than_the_last_changes_nothing() -> None:
    effort, _ = feed(Effort(max_hr=185), every_second(190, 0, 29))
    for at_ms in (29_000, 28_000, 0, -5):
        assert take(effort, RULES, 200, at_ms) == (effort, None)


def test_the_peak_is_the_highest_heart_rate_taken() -> None:
    effort, _ = feed(Effort(max_hr=200), [(120, 0), (171, 1000), (150, 2000), (200, 1500)])
    assert effort.peak_bpm == 171


# -- effort: raising the max ---------------------------------------------------------------


def test_30_seconds_above_the_max_raises_it() -> None:
    effort, raises = feed(Effort(max_hr=185), every_second(190, 0, 30))
    assert raises == [None] * 30 + [190]
    assert (effort.max_hr, effort.raised) == (190, 5)
    # 190 is not above the new max: the count stops.
    assert effort.above_since_ms is None


def test_29_seconds_above_the_max_is_not_enough() -> None:
    effort, raises = feed(Effort(max_hr=185), every_second(190, 0, 29))
    assert raises == [None] * 30
    assert (effort.max_hr, effort.raised) == (185, 0)
    assert effort.above_since_ms == 0


def test_a_dip_to_the_max_starts_the_count_again() -> None:
    samples = [*every_second(190, 0, 20), (185, 21_000), *every_second(190, 22, 51)]
    effort, _ = feed(Effort(max_hr=185), samples)
    assert effort.max_hr == 185  # 29 s since the dip
    effort, raised = take(effort, RULES, 190, 52_000)
    assert (raised, effort.max_hr) == (190, 190)


def test_the_max_rises_to_the_lowest_heart_rate_of_the_stretch() -> None:
    # 195 and 188 in turn, ending on 195: the stretch's lowest, 188, is the new max.
    samples = [(188 if s % 2 else 195, s * 1000) for s in range(31)]
    effort, raises = feed(Effort(max_hr=185), samples)
    assert raises[-1] == 188
    assert effort.max_hr == 188
    assert (effort.above_since_ms, effort.above_floor) == (30_000, 195)


def test_a_raise_is_at_most_the_step_and_a_further_one_needs_another_30_seconds() -> None:
    effort, raises = feed(Effort(max_hr=185), every_second(200, 0, 30))
    assert raises[-1] == 195  # 185 + 10, not 200
    assert (effort.above_since_ms, effort.above_floor) == (30_000, 200)
    effort, raises = feed(effort, every_second(200, 31, 59))
    assert raises == [None] * 29 and effort.max_hr == 195
    effort, raised = take(effort, RULES, 200, 60_000)
    assert (raised, effort.max_hr, effort.raised) == (200, 200, 15)


def test_the_step_and_time_come_from_the_rules() -> None:
    rules = HeartRules(raise_after_ms=10_000, raise_step=3)
    effort, raises = feed(Effort(max_hr=185), every_second(200, 0, 10), rules)
    assert raises == [None] * 10 + [188]
    assert effort.max_hr == 188


def test_a_gap_in_the_samples_starts_the_count_again() -> None:
    effort, raises = feed(Effort(max_hr=185), [(190, 0), (190, 30_000)])
    assert raises == [None, None]
    assert effort.above_since_ms == 30_000
    samples = every_second(190, 0, 10) + every_second(190, 20, 39)
    effort, raises = feed(Effort(max_hr=185), samples)
    assert effort.max_hr == 185
    effort, raised = take(effort, RULES, 190, 50_000)
    assert raised is None  # 10 s gap: the count restarted at 50 s
    # Samples exactly gap_ms apart are still continuous; a millisecond more apart, not.
    effort, raises = feed(Effort(max_hr=185), [(190, s * 5_000) for s in range(7)])
    assert raises[-1] == 190
    effort, raises = feed(Effort(max_hr=185), [(190, s * 5_001) for s in range(7)])
    assert raises == [None] * 7


def test_the_max_is_never_raised_beyond_the_highest_a_person_can_set() -> None:
    effort, raises = feed(Effort(max_hr=225), every_second(245, 0, 90))
    assert effort.max_hr == MAX_MAX_HR
    assert [r for r in raises if r is not None] == [MAX_MAX_HR]


# -- effort: safety ------------------------------------------------------------------------

# With a max of 200, SAFETY_PERCENT is 190 bpm; 192 is 96 %.


def test_the_safety_line() -> None:
    assert SAFETY_PERCENT == 95 and SAFETY_AFTER_MS == 60_000
    effort, _ = take(Effort(max_hr=200), RULES, 190, 0)
    assert effort.high_since_ms == 0
    effort, _ = take(Effort(max_hr=200), RULES, 189, 0)
    assert effort.high_since_ms is None


def test_61_seconds_at_96_percent_needs_attention() -> None:
    effort, _ = feed(Effort(max_hr=200), every_second(192, 0, 61))
    assert high_for_ms(effort, 61_000) == 61_000
    assert needs_attention(effort, 61_000)


def test_59_seconds_at_96_percent_does_not() -> None:
    effort, _ = feed(Effort(max_hr=200), every_second(192, 0, 59))
    assert high_for_ms(effort, 59_000) == 59_000
    assert not needs_attention(effort, 59_000)
    assert not needs_attention(effort, 60_000)  # more than a minute, not a minute
    assert needs_attention(effort, 60_001)  # still high, as the last sample says


def test_a_dip_below_95_percent_starts_the_count_again() -> None:
    samples = [*every_second(192, 0, 40), (185, 41_000), *every_second(192, 42, 101)]
    effort, _ = feed(Effort(max_hr=200), samples)
    assert high_for_ms(effort, 101_000) == 59_000
    assert not needs_attention(effort, 101_000)
    effort, _ = feed(effort, every_second(192, 102, 103))
    assert needs_attention(effort, 103_000)


def test_a_gap_in_the_samples_starts_the_safety_count_again() -> None:
    samples = every_second(192, 0, 30) + every_second(192, 40, 80)
    effort, _ = feed(Effort(max_hr=200), samples)
    assert high_for_ms(effort, 80_000) == 40_000


def test_not_high_means_no_time_high() -> None:
    effort, _ = feed(Effort(max_hr=200), [*every_second(192, 0, 70), (150, 71_000)])
    assert high_for_ms(effort, 71_000) == 0
    assert not needs_attention(effort, 500_000)
    assert high_for_ms(Effort(max_hr=200), 10_000) == 0


# -- effort: properties over any samples ---------------------------------------------------

rules_strategy = st.builds(
    HeartRules,
    raise_after_ms=st.integers(1, 40_000),
    raise_step=st.integers(0, 20),
    gap_ms=st.integers(1, 20_000),
)
samples_strategy = st.lists(
    st.tuples(
        st.integers(0, 300),  # bpm
        st.integers(-20_000, 10**9) | st.integers(-3_000, 8_000),  # a step in time
        st.booleans(),  # counting
    ),
    max_size=80,
)


@given(st.integers(MIN_MAX_HR, MAX_MAX_HR), rules_strategy, samples_strategy)
def test_effort_keeps_its_invariants_over_any_samples(
    max_hr: int, rules: HeartRules, samples: list[tuple[int, int, bool]]
) -> None:
    effort = Effort(max_hr=max_hr)
    at_ms = 0
    taken: list[tuple[int, int]] = []
    for bpm, step, counting in samples:
        at_ms += step
        before = effort
        effort, raised = take(before, rules, bpm, at_ms, counting=counting)
        if before.at_ms is not None and at_ms <= before.at_ms:
            assert effort is before and raised is None
            continue
        taken.append((bpm, at_ms))
        # Points never fall; the max never falls, and rises by at most a step at a time.
        assert effort.points >= before.points
        assert before.max_hr <= effort.max_hr <= before.max_hr + rules.raise_step
        assert effort.max_hr <= max(MAX_MAX_HR, max_hr)
        assert raised == (effort.max_hr if effort.max_hr != before.max_hr else None)
        assert effort.raised == effort.max_hr - max_hr
        # Time never counts twice: the zones hold at most the time from first to last sample.
        assert sum(effort.zone_ms) <= at_ms - taken[0][1]
        assert all(ms >= 0 for ms in effort.zone_ms)
        assert effort.peak_bpm == max(b for b, _ in taken)
        assert (effort.bpm, effort.at_ms) == (bpm, at_ms)
        if effort.above_since_ms is not None:
            assert effort.bpm > effort.max_hr and effort.above_since_ms <= at_ms
        if effort.high_since_ms is not None:
            assert 100 * effort.bpm >= SAFETY_PERCENT * effort.max_hr


# -- teams ---------------------------------------------------------------------------------


def test_uneven_teams_are_ranked_by_points_per_member() -> None:
    ranked = team_effort({1: [10.0, 10.0, 10.0], 2: [12.0, 12.0], 3: []})
    assert ranked == [
        TeamEffort(team_id=2, members=2, points=24.0, per_member=12.0),
        TeamEffort(team_id=1, members=3, points=30.0, per_member=10.0),
        TeamEffort(team_id=3, members=0, points=0.0, per_member=0.0),
    ]


def test_team_ties_go_to_the_higher_total_then_the_lower_team_id() -> None:
    ranked = team_effort({1: [5.0, 5.0], 2: [5.0, 5.0, 5.0], 7: [4.0], 4: [4.0]})
    assert [team.team_id for team in ranked] == [2, 1, 4, 7]


def test_no_teams_no_ranking() -> None:
    assert team_effort({}) == []
