"""Settings for Redis, and what `classroom serve` says when Redis is wrong or away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from classroom.config import ConfigError, Settings
from tests.conftest import SECRET, free_port

ROOT = Path(__file__).resolve().parents[1]


def settings(**env: str) -> Settings:
    return Settings.from_env({"CLASSROOM_SECRET_KEY": SECRET, **env})


def test_without_redis_the_broker_stays_in_memory() -> None:
    assert settings().broker_url == "memory://"
    assert settings().redis_prefix == "classroom"


def test_a_redis_url_makes_the_broker_redis_under_its_prefix() -> None:
    chosen = settings(
        CLASSROOM_REDIS_URL="redis://cache.internal:6379/0", CLASSROOM_REDIS_PREFIX="gym-north"
    )
    assert chosen.broker_url == "redis://cache.internal:6379/0"
    assert chosen.redis_prefix == "gym-north"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CLASSROOM_REDIS_URL": "redis://cache:port/0"}, "CLASSROOM_REDIS_URL: the Redis URL"),
        ({"CLASSROOM_REDIS_URL": "cache:6379"}, "CLASSROOM_REDIS_URL must be a redis://"),
        ({"CLASSROOM_REDIS_PREFIX": "gym:north"}, "CLASSROOM_REDIS_PREFIX must be"),
        (
            {"CLASSROOM_REDIS_URL": "redis://a", "CLASSROOM_BROKER_URL": "redis://b"},
            "not both",
        ),
        ({"CLASSROOM_BROKER_URL": "kafka://x"}, "CLASSROOM_BROKER_URL must be memory://"),
    ],
)
def test_a_bad_redis_setting_is_one_line(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        settings(**env)
    assert "\n" not in str(caught.value)


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "classroom.cli", "serve", "--port", str(free_port())],
        cwd=ROOT,
        env={
            **os.environ,
            "CLASSROOM_SECRET_KEY": SECRET,
            "CLASSROOM_DATA_DIR": str(tmp_path),
            "CLASSROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_with_redis_down_says_so_in_one_line_and_stops(tmp_path: Path) -> None:
    done = serve(tmp_path, CLASSROOM_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 1
    assert done.stderr.startswith("classroom: can't reach Redis at redis://127.0.0.1:")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stdout + done.stderr


def test_serve_with_a_malformed_redis_url_says_so_in_one_line(tmp_path: Path) -> None:
    done = serve(tmp_path, CLASSROOM_REDIS_URL="redis://:s3cret@cache:notaport/0")
    assert done.returncode == 2
    assert done.stderr.startswith("classroom: CLASSROOM_REDIS_URL: the Redis URL")
    assert done.stderr.count("\n") == 1
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
