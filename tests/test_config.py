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
