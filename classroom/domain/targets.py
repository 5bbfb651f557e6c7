"""Targets: what a participant aims for during a segment.

A target is optional and every part of it is optional: a number of reps, an
effort on the RPE scale, a heart-rate zone, a power as a percentage of FTP
(with an end value for a ramp that goes from one power to another), or a
cadence. Screens show whatever parts are set.
"""

from __future__ import annotations

from dataclasses import dataclass

from classroom.domain.errors import RoutineError

MAX_REPS = 10_000
MAX_FTP_PERCENT = 1_000.0
MAX_CADENCE = 250


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What to aim for: any combination of reps, RPE, zone, power and cadence."""

    reps: int | None = None
    rpe: int | None = None  # rate of perceived exertion, 1 (easy) to 10 (all out)
    heart_rate_zone: int | None = None  # 1 to 5
    ftp_percent: float | None = None  # power, % of functional threshold power
    ftp_percent_end: float | None = None  # power at the end of a ramp
    cadence: int | None = None  # revolutions (or steps) per minute

    def __post_init__(self) -> None:
        _check_int("reps", self.reps, 1, MAX_REPS)
        _check_int("RPE", self.rpe, 1, 10)
        _check_int("heart-rate zone", self.heart_rate_zone, 1, 5)
        _check_int("cadence", self.cadence, 1, MAX_CADENCE)
        for name, value in (("power", self.ftp_percent), ("end power", self.ftp_percent_end)):
            if value is not None and not 0 <= value <= MAX_FTP_PERCENT:
                raise RoutineError(f"{name} must be between 0 and {MAX_FTP_PERCENT:g}% of FTP")
        if self.ftp_percent_end is not None and self.ftp_percent is None:
            raise RoutineError("an end power needs a start power")

    @property
    def is_empty(self) -> bool:
        return all(
            value is None
            for value in (
                self.reps,
                self.rpe,
                self.heart_rate_zone,
                self.ftp_percent,
                self.ftp_percent_end,
                self.cadence,
            )
        )

    def describe(self) -> str:
        """A short human text, e.g. ``"12 reps · RPE 8 · 90% FTP · 95 rpm"``."""
        parts: list[str] = []
        if self.reps is not None:
            parts.append(f"{self.reps} reps")
        if self.rpe is not None:
            parts.append(f"RPE {self.rpe}")
        if self.heart_rate_zone is not None:
            parts.append(f"zone {self.heart_rate_zone}")
        if self.ftp_percent is not None:
            if self.ftp_percent_end is not None and self.ftp_percent_end != self.ftp_percent:
                parts.append(f"{self.ftp_percent:g}→{self.ftp_percent_end:g}% FTP")
            else:
                parts.append(f"{self.ftp_percent:g}% FTP")
        if self.cadence is not None:
            parts.append(f"{self.cadence} rpm")
        return " · ".join(parts)


def _check_int(name: str, value: int | None, low: int, high: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RoutineError(f"{name} must be a whole number from {low} to {high}")
