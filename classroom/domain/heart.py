"""Heart rate: what a strap sends, and the effort a class makes of it.

A chest strap sends the Bluetooth Heart Rate Measurement characteristic
(0x2A37 of the Heart Rate service, 0x180D); :func:`parse_measurement` reads it
as the GATT specification lays it out, and :func:`encode_measurement` writes
it (for the strap simulator and the tests)::

    byte 0      flags  bit 0   heart rate format: 0 uint8, 1 uint16
                       bit 1   skin contact detected
                       bit 2   skin contact detection supported
                       bit 3   energy expended present
                       bit 4   RR intervals present
                       bits 5-7 reserved: ignored
    then        the heart rate, bpm (uint8 or uint16)
    then        energy expended, kJ (uint16), if announced
    then        RR intervals, 1/1024 s each (uint16), if announced: zero or
                more, filling the rest of the value

Numbers are little-endian. Bytes after the last field the flags announce are
ignored, as later versions of the standard may add fields there. A sample
that parses may still be unusable (:func:`sample_problem`): a strap that has
lost contact with the skin, or a heart rate no person has.

Effort is measured against a person's **max** heart rate: one they set, or
one estimated from their age (:data:`FORMULAS`). The percentage of max puts a
sample in a **zone**: 0 under 50 %, 1 from 50 %, 2 from 60 %, 3 from 70 %,
4 from 80 %, 5 from 90 % (over 100 % too). Each sample counts for the time
until the next one, at most :attr:`HeartRules.gap_ms` (a dropped strap earns
nothing beyond that): that time goes into the zone's time, and, while the class
runs, earns the zone's **points** per minute. Zone 0 earns nothing.

A max estimated from age is often too low. Held above the max for
:attr:`HeartRules.raise_after_ms` (30 s), the max is raised to the lowest heart
rate of that stretch, by at most :attr:`HeartRules.raise_step` at a time, and
never beyond :data:`MAX_MAX_HR`. Continuously means samples no further apart
than :attr:`HeartRules.gap_ms`: a longer gap starts the count again.

For safety, someone at or above :data:`SAFETY_PERCENT` % of max for more than
:data:`SAFETY_AFTER_MS` needs the instructor's attention.

Texts shown to people are module-level constants so tests can import them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import pairwise

from classroom.domain.errors import ValidationError

HEART_RATE_SERVICE = 0x180D
HEART_RATE_MEASUREMENT = 0x2A37
MAX_MEASUREMENT_BYTES = 64
MIN_BPM, MAX_BPM = 25, 250

# The flags of a measurement (its byte 0).
WIDE = 0b0000_0001
CONTACT_DETECTED = 0b0000_0010
CONTACT_SUPPORTED = 0b0000_0100
ENERGY_PRESENT = 0b0000_1000
RR_PRESENT = 0b0001_0000

UINT16_MAX = 0xFFFF
MAX_RR_MS = 63_999
"""The longest RR interval a measurement can carry (65,535/1024 s, in whole ms)."""

EMPTY_MEASUREMENT = "The strap sent an empty heart-rate measurement."
LONG_MEASUREMENT = f"A heart-rate measurement is at most {MAX_MEASUREMENT_BYTES} bytes."
NO_BPM = "The heart-rate measurement ends before its heart rate."
NO_ENERGY = "The heart-rate measurement ends before the energy expended its flags announce."
NOT_HEX = 'A heart-rate measurement is sent as hex, like "0048".'
HALF_RR = "The heart-rate measurement's RR intervals end with half an interval (an odd byte)."

NO_CONTACT = "no_contact"
OUT_OF_RANGE = "out_of_range"
PROBLEMS: dict[str, str] = {
    NO_CONTACT: "The strap isn't touching the skin: wet it and tighten it.",
    OUT_OF_RANGE: f"Heart rate must be between {MIN_BPM} and {MAX_BPM} bpm.",
}
"""Why a sample can't be used: each reason code with its sentence for people."""

_MINUS = "\N{MINUS SIGN}"
_TIMES = "\N{MULTIPLICATION SIGN}"
# Each formula as (intercept, slope): max = intercept - slope * age, exactly.
_LINES: dict[str, tuple[int, Fraction]] = {
    "hunt": (211, Fraction("0.64")),
    "tanaka": (208, Fraction("0.7")),
    "fox": (220, Fraction(1)),
}
FORMULAS: dict[str, str] = {
    "hunt": f"211 {_MINUS} 0.64 {_TIMES} age",
    "tanaka": f"208 {_MINUS} 0.7 {_TIMES} age",
    "fox": f"220 {_MINUS} age",
}
"""Each formula for max heart rate by name, as people read it."""
assert FORMULAS.keys() == _LINES.keys()

MIN_AGE, MAX_AGE = 10, 100
MIN_MAX_HR, MAX_MAX_HR = 100, 230
BAD_AGE = f"Age must be a whole number from {MIN_AGE} to {MAX_AGE}."
UNKNOWN_FORMULA = "The max heart rate formula must be one of: {names}."
BAD_MAX_HR = f"Max heart rate must be a whole number from {MIN_MAX_HR} to {MAX_MAX_HR} bpm."

ZONES = 5
BAD_POINTS = (
    "Points per minute are five numbers, one for each zone from 1 to 5, "
    "each 0 or more and none smaller than the one before, such as 1,2,3,4,4."
)

SAFETY_PERCENT = 95
SAFETY_AFTER_MS = 60_000

Points = tuple[float, float, float, float, float]
"""Points per minute in zones 1 to 5."""
ZoneTimes = tuple[int, int, int, int, int, int]
"""Time in zones 0 to 5, ms."""


class BadMeasurement(ValidationError):
    """A heart-rate measurement that can't be read; the message says why."""


# -- measurements -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measurement:
    """One Heart Rate Measurement, as the strap sent it."""

    bpm: int
    contact: bool | None  # None: the strap doesn't support contact detection
    energy_kj: int | None  # Energy Expended, if present
    rr_ms: tuple[int, ...]  # RR intervals, ms (rounded from 1/1024 s)


def parse_measurement(data: bytes | bytearray | memoryview) -> Measurement:
    """Read a Heart Rate Measurement value; raises :class:`BadMeasurement`."""
    raw = bytes(data)
    if not raw:
        raise BadMeasurement(EMPTY_MEASUREMENT)
    if len(raw) > MAX_MEASUREMENT_BYTES:
        raise BadMeasurement(LONG_MEASUREMENT)
    flags = raw[0]
    end = 3 if flags & WIDE else 2
    if len(raw) < end:
        raise BadMeasurement(NO_BPM)
    bpm = int.from_bytes(raw[1:end], "little")
    contact = bool(flags & CONTACT_DETECTED) if flags & CONTACT_SUPPORTED else None
    energy_kj = None
    if flags & ENERGY_PRESENT:
        if len(raw) < end + 2:
            raise BadMeasurement(NO_ENERGY)
        energy_kj = int.from_bytes(raw[end : end + 2], "little")
        end += 2
    rr_ms: tuple[int, ...] = ()
    if flags & RR_PRESENT:
        if (len(raw) - end) % 2:
            raise BadMeasurement(HALF_RR)
        rr_ms = tuple(
            _ms(int.from_bytes(raw[at : at + 2], "little")) for at in range(end, len(raw), 2)
        )
    return Measurement(bpm=bpm, contact=contact, energy_kj=energy_kj, rr_ms=rr_ms)


def measurement_from_hex(text: object) -> Measurement:
    """A Heart Rate Measurement sent as hex text, as phones and receivers send it;
    raises :class:`BadMeasurement` (:data:`NOT_HEX` for text that isn't a measurement's
    worth of hex)."""
    if not isinstance(text, str) or len(text) > 2 * MAX_MEASUREMENT_BYTES:
        raise BadMeasurement(NOT_HEX)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise BadMeasurement(NOT_HEX) from None
    return parse_measurement(raw)


def encode_measurement(
    bpm: int,
    *,
    wide: bool = False,
    contact: bool | None = None,
    energy_kj: int | None = None,
    rr_ms: Sequence[int] = (),
) -> bytes:
    """Write a Heart Rate Measurement value: the inverse of :func:`parse_measurement`.

    ``wide`` writes the heart rate as uint16 (needed above 255). RR intervals
    go through 1/1024 s and come back exactly: any whole ms from 0 to
    :data:`MAX_RR_MS` parses back to itself. Raises ValueError for a value
    that doesn't fit.
    """
    if not 0 <= bpm <= UINT16_MAX:
        raise ValueError(f"a heart rate is 0 to {UINT16_MAX}, not {bpm}")
    if bpm > 0xFF and not wide:
        raise ValueError(f"a heart rate of {bpm} needs wide=True")
    flags = WIDE if wide else 0
    if contact is not None:
        flags |= CONTACT_SUPPORTED | (CONTACT_DETECTED if contact else 0)
    if energy_kj is not None:
        flags |= ENERGY_PRESENT
    if rr_ms:
        flags |= RR_PRESENT
    value = bytearray([flags])
    value += bpm.to_bytes(2 if wide else 1, "little")
    if energy_kj is not None:
        if not 0 <= energy_kj <= UINT16_MAX:
            raise ValueError(f"energy expended is 0 to {UINT16_MAX} kJ, not {energy_kj}")
        value += energy_kj.to_bytes(2, "little")
    for ms in rr_ms:
        if not 0 <= ms <= MAX_RR_MS:
            raise ValueError(f"an RR interval is 0 to {MAX_RR_MS} ms, not {ms}")
        value += _units(ms).to_bytes(2, "little")
    if len(value) > MAX_MEASUREMENT_BYTES:
        raise ValueError(f"a measurement is at most {MAX_MEASUREMENT_BYTES} bytes")
    return bytes(value)


def _ms(units: int) -> int:
    """1/1024 s in ms, rounded half up."""
    return (units * 1000 + 512) // 1024


def _units(ms: int) -> int:
    """Ms in 1/1024 s, rounded half up (off by at most 1/2, which :func:`_ms` undoes)."""
    return (ms * 1024 + 500) // 1000


def sample_problem(m: Measurement) -> str | None:
    """Why a sample can't be used, as a key of :data:`PROBLEMS`; None if it can."""
    if m.contact is False:
        return NO_CONTACT
    if not MIN_BPM <= m.bpm <= MAX_BPM:
        return OUT_OF_RANGE
    return None


# -- max heart rate and zones -------------------------------------------------------------


def max_from_age(age: int, formula: str = "hunt") -> int:
    """The max heart rate a formula gives for an age, rounded to nearest (half up)."""
    if formula not in _LINES:
        raise ValidationError(UNKNOWN_FORMULA.format(names=", ".join(FORMULAS)))
    if isinstance(age, bool) or not isinstance(age, int) or not MIN_AGE <= age <= MAX_AGE:
        raise ValidationError(BAD_AGE)
    intercept, slope = _LINES[formula]
    return math.floor(intercept - slope * age + Fraction(1, 2))


def check_max_hr(value: int) -> int:
    """A max heart rate a person set, if it is one a person can have."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(BAD_MAX_HR)
    if not MIN_MAX_HR <= value <= MAX_MAX_HR:
        raise ValidationError(BAD_MAX_HR)
    return value


def percent_of_max(bpm: int, max_hr: int) -> int:
    """``bpm`` as a whole percentage of ``max_hr``, rounded down."""
    if max_hr <= 0:
        raise ValueError(f"a max heart rate is above 0, not {max_hr}")
    return 100 * bpm // max_hr


def zone_of(bpm: int, max_hr: int) -> int:
    """The zone of a heart rate: 0 under 50 % of max, then one per 10 %, 5 from 90 %."""
    return max(0, min(ZONES, percent_of_max(bpm, max_hr) // 10 - 4))


# -- effort -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeartRules:
    """One gym's settings for heart-rate effort."""

    formula: str = "hunt"
    points_per_minute: Points = (1.0, 2.0, 3.0, 4.0, 4.0)  # zones 1..5; zone 0 earns nothing
    raise_after_ms: int = 30_000  # held above max this long raises the max
    raise_step: int = 10  # by at most this much at a time
    gap_ms: int = 5_000  # the longest time one sample counts for

    def __post_init__(self) -> None:
        if self.formula not in FORMULAS:
            raise ValidationError(UNKNOWN_FORMULA.format(names=", ".join(FORMULAS)))
        _check_points(self.points_per_minute)
        if self.raise_after_ms <= 0 or self.gap_ms <= 0 or self.raise_step < 0:
            raise ValueError("heart-rate rules need times above 0 and a step of 0 or more")


def parse_points(text: str) -> Points:
    """Points per minute from configuration, such as ``"1,2,3,4,4"``."""
    numbers: list[float] = []
    for part in text.split(","):
        try:
            numbers.append(float(part))
        except ValueError:
            raise ValidationError(BAD_POINTS) from None
    return _check_points(numbers)


def _check_points(points: Sequence[float]) -> Points:
    if len(points) != ZONES or not all(math.isfinite(p) and p >= 0 for p in points):
        raise ValidationError(BAD_POINTS)
    if any(later < earlier for earlier, later in pairwise(points)):
        raise ValidationError(BAD_POINTS)
    one, two, three, four, five = points
    return (one, two, three, four, five)


@dataclass(frozen=True, slots=True)
class Effort:
    """One person's heart during one class, as of their last sample."""

    max_hr: int
    bpm: int = 0  # the last sample's
    at_ms: int | None = None  # when the last sample came
    points: float = 0.0
    zone_ms: ZoneTimes = (0, 0, 0, 0, 0, 0)  # time in zones 0..5
    above_since_ms: int | None = None  # continuously above max_hr since
    above_floor: int = 0  # the lowest bpm while continuously above max_hr
    high_since_ms: int | None = None  # continuously at or above SAFETY_PERCENT of max since
    peak_bpm: int = 0
    raised: int = 0  # how far max_hr has been raised in this class, in all

    @property
    def zone(self) -> int:
        """The last sample's zone."""
        return zone_of(self.bpm, self.max_hr)

    @property
    def percent(self) -> int:
        """The last sample as a percentage of max."""
        return percent_of_max(self.bpm, self.max_hr)


def take(
    effort: Effort, rules: HeartRules, bpm: int, at_ms: int, *, counting: bool = True
) -> tuple[Effort, int | None]:
    """Effort after a sample, and the new max if the sample raised it (else None).

    The time since the previous sample, at most ``rules.gap_ms``, is credited to
    the previous sample's zone; it earns points only while ``counting`` (the
    class runs). A sample no later than the previous one changes nothing.
    """
    previous = effort.at_ms
    if previous is not None and at_ms <= previous:
        return effort, None
    zone_ms = effort.zone_ms
    points = effort.points
    unbroken = previous is not None and at_ms - previous <= rules.gap_ms
    if previous is not None:
        dt = min(at_ms - previous, rules.gap_ms)
        zone = zone_of(effort.bpm, effort.max_hr)
        times = list(zone_ms)
        times[zone] += dt
        zone_ms = (times[0], times[1], times[2], times[3], times[4], times[5])
        if counting and zone:
            points += rules.points_per_minute[zone - 1] * dt / 60_000

    max_hr = effort.max_hr
    new_max: int | None = None
    above_since: int | None = None
    floor = 0
    if bpm > max_hr:
        if unbroken and effort.above_since_ms is not None:
            above_since, floor = effort.above_since_ms, min(effort.above_floor, bpm)
        else:
            above_since, floor = at_ms, bpm
        if at_ms - above_since >= rules.raise_after_ms:
            target = min(max_hr + rules.raise_step, floor, MAX_MAX_HR)
            if target > max_hr:
                max_hr = new_max = target
                above_since, floor = (at_ms, bpm) if bpm > max_hr else (None, 0)

    high_since: int | None = None
    if percent_of_max(bpm, max_hr) >= SAFETY_PERCENT:
        kept = effort.high_since_ms if unbroken else None
        high_since = at_ms if kept is None else kept

    return (
        replace(
            effort,
            max_hr=max_hr,
            bpm=bpm,
            at_ms=at_ms,
            points=points,
            zone_ms=zone_ms,
            above_since_ms=above_since,
            above_floor=floor,
            high_since_ms=high_since,
            peak_bpm=max(effort.peak_bpm, bpm),
            raised=effort.raised + (max_hr - effort.max_hr),
        ),
        new_max,
    )


def high_for_ms(effort: Effort, at_ms: int) -> int:
    """How long, at ``at_ms``, the heart has been at or above SAFETY_PERCENT of max (0: not)."""
    if effort.high_since_ms is None:
        return 0
    return max(0, at_ms - effort.high_since_ms)


def needs_attention(effort: Effort, at_ms: int) -> bool:
    """Whether the heart has been high for more than SAFETY_AFTER_MS: check on them."""
    return high_for_ms(effort, at_ms) > SAFETY_AFTER_MS


# -- teams --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamEffort:
    """A team's heart-rate points: the total and the average per member."""

    team_id: int
    members: int
    points: float
    per_member: float


def team_effort(points: Mapping[int, Sequence[float]]) -> list[TeamEffort]:
    """Each team's effort from its members' points, best average per member first.

    Ties go to the higher total, then the lower team id. A team with no members
    has 0.
    """
    teams = [
        TeamEffort(
            team_id=team_id,
            members=len(members),
            points=sum(members, 0.0),
            per_member=sum(members, 0.0) / len(members) if members else 0.0,
        )
        for team_id, members in points.items()
    ]
    teams.sort(key=lambda team: (-team.per_member, -team.points, team.team_id))
    return teams
