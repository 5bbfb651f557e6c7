"""Settings read from the environment: good values taken, bad ones refused in one line."""

from __future__ import annotations

import pytest

from classroom.config import ConfigError, Settings


def test_the_walls_show_results_for_three_minutes_unless_told_otherwise() -> None:
    assert Settings.from_env({}, demo=True).wall_results_min == 3
    assert Settings.from_env({"CLASSROOM_WALL_RESULTS": "10"}, demo=True).wall_results_min == 10


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("0", "between 1 minute and 7 days, not 0"),
        ("2.5", "a whole number of minutes, not '2.5'"),
        ("soon", "a whole number of minutes, not 'soon'"),
        ("100000", "between 1 minute and 7 days, not 100000"),
    ],
)
def test_a_bad_wall_results_time_is_refused(raw: str, said: str) -> None:
    with pytest.raises(ConfigError, match=f"CLASSROOM_WALL_RESULTS must be {said}"):
        Settings.from_env({"CLASSROOM_WALL_RESULTS": raw}, demo=True)


def test_heart_rate_settings_default_to_the_documented_formula() -> None:
    settings = Settings.from_env({"CLASSROOM_SECRET_KEY": "x" * 32})
    assert settings.heart.formula == "hunt"
    assert settings.heart.points_per_minute == (1, 2, 3, 4, 4)
    assert settings.heart_retention_days == 180
    chosen = Settings.from_env(
        {
            "CLASSROOM_SECRET_KEY": "x" * 32,
            "CLASSROOM_HEART_RATE_FORMULA": "tanaka",
            "CLASSROOM_HEART_RATE_POINTS": "0, 1, 2, 3, 5",
            "CLASSROOM_HEART_RATE_RETENTION_DAYS": "30",
        }
    )
    assert chosen.heart.formula == "tanaka"
    assert chosen.heart.points_per_minute == (0, 1, 2, 3, 5)
    assert chosen.heart_retention_days == 30


@pytest.mark.parametrize(
    ("name", "raw", "said"),
    [
        ("FORMULA", "myzone", "CLASSROOM_HEART_RATE_FORMULA must be one of hunt, tanaka, fox"),
        ("POINTS", "1,2,3", "CLASSROOM_HEART_RATE_POINTS: "),
        ("POINTS", "4,3,2,1,0", "CLASSROOM_HEART_RATE_POINTS: "),
        ("POINTS", "1,2,x,4,4", "CLASSROOM_HEART_RATE_POINTS: "),
        ("RETENTION_DAYS", "a week", "CLASSROOM_HEART_RATE_RETENTION_DAYS must be a whole"),
        ("RETENTION_DAYS", "0", "CLASSROOM_HEART_RATE_RETENTION_DAYS must be between 1"),
    ],
)
def test_bad_heart_rate_settings_are_refused_in_one_line(name: str, raw: str, said: str) -> None:
    env = {"CLASSROOM_SECRET_KEY": "x" * 32, f"CLASSROOM_HEART_RATE_{name}": raw}
    with pytest.raises(ConfigError, match=said) as refused:
        Settings.from_env(env)
    assert "\n" not in str(refused.value)
