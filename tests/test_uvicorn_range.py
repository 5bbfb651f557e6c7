"""The uvicorn versions classroom runs on, and what `classroom serve` says outside them.

classroom.hub.protocol reaches into uvicorn's internals, which change in minor
releases: it only imports with the range it has been tested with, and that
range is the one pyproject.toml declares.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from classroom.hub.protocol import UVICORN_RANGE, uvicorn_problem
from tests.conftest import SECRET, free_port

ROOT = Path(__file__).resolve().parents[1]
NEEDS = f"classroom needs uvicorn {UVICORN_RANGE} (pip install 'uvicorn[standard]{UVICORN_RANGE}')"

# Runs classroom.cli with importlib.metadata reporting argv[1] as uvicorn's version.
FAKED = """
import sys
from importlib import metadata

real, fake = metadata.version, sys.argv.pop(1)
metadata.version = lambda name: fake if name == "uvicorn" else real(name)
from classroom import cli

if sys.argv[1] == "worker_app":
    cli.worker_app()
    sys.exit(0)
sys.exit(cli.main(sys.argv[1:]))
"""


def run_faked(tmp_path: Path, version: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", FAKED, version, *args],
        cwd=ROOT,
        env={
            **os.environ,
            "CLASSROOM_SECRET_KEY": SECRET,
            "CLASSROOM_DATA_DIR": str(tmp_path),
            "CLASSROOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("version", ["0.34.3", "0.56.0", "1.0"])
def test_serve_with_an_unsupported_uvicorn_says_so_in_one_line_and_stops(
    tmp_path: Path, version: str
) -> None:
    done = run_faked(tmp_path, version, "serve", "--port", str(free_port()))
    assert done.returncode == 1
    assert done.stderr == f"classroom: uvicorn {version} is installed; {NEEDS}\n"
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "c.db").exists()  # it stopped before touching the database


def test_serve_with_several_workers_checks_uvicorn_first(tmp_path: Path) -> None:
    done = run_faked(tmp_path, "0.34.3", "serve", "--workers", "2", "--port", str(free_port()))
    assert done.returncode == 1
    assert done.stderr == f"classroom: uvicorn 0.34.3 is installed; {NEEDS}\n"


def test_a_worker_started_with_an_unsupported_uvicorn_says_so_in_one_line(tmp_path: Path) -> None:
    done = run_faked(tmp_path, "0.34.3", "worker_app")
    assert done.returncode == 1
    assert done.stderr == f"classroom: uvicorn 0.34.3 is installed; {NEEDS}\n"


def test_the_protocol_module_refuses_to_import_with_an_unsupported_uvicorn() -> None:
    code = (
        "from importlib import metadata\n"
        "metadata.version = lambda name: '0.34.3'\n"
        "try:\n"
        "    import classroom.hub.protocol\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc, sep='|')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stdout == f"ImportError|uvicorn|uvicorn 0.34.3 is installed; {NEEDS}\n"


def test_the_installed_uvicorn_is_supported() -> None:
    assert uvicorn_problem() is None


def test_pyproject_declares_the_supported_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"uvicorn[standard]{UVICORN_RANGE}" in project["dependencies"]


@pytest.mark.parametrize(
    "version",
    ["0.52.1", "0.52.4", "0.52.10", "0.53", "0.55.0", "0.55.9", "0.55.0.post1", "0.54.0+local"],
)
def test_versions_inside_the_range(version: str) -> None:
    assert UVICORN_RANGE == ">=0.52.1,<0.56"  # the cases below are written for this range
    assert uvicorn_problem(version) is None


@pytest.mark.parametrize(
    "version",
    [
        "0.34.3",
        "0.35.0",
        "0.51.9",
        "0.52",
        "0.52.0",  # its sockets refuse no connection (tests/web/test_socket_limits.py)
        "0.52.1rc1",
        "0.52.1.dev3",
        "0.52.1a1",
        "0.56",
        "0.56.0",
        "0.56.0rc1",
        "0.60.1",
        "1.0",
        "1",
        "0",
    ],
)
def test_versions_outside_the_range(version: str) -> None:
    assert uvicorn_problem(version) == f"uvicorn {version} is installed; {NEEDS}"


@pytest.mark.parametrize("version", ["", "unknown", "v0.53.0", "0.53.x", "0..53"])
def test_a_version_that_cant_be_read_is_outside(version: str) -> None:
    problem = uvicorn_problem(version)
    assert problem == f"uvicorn {version!r} is installed, a version that can't be read; {NEEDS}"
    assert "\n" not in problem


def test_without_uvicorn_installed_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert uvicorn_problem() == f"uvicorn is not installed; {NEEDS}"
