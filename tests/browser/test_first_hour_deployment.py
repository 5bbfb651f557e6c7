"""The first hour of a gym on PostgreSQL, following docs/deployment.md word for word.

The test reads the environment and the commands from the document (the blocks
marked ``first-hour``), gives the environment its own values (a database of its own,
a free port, a folder of its own), and runs the commands as they are written, with
``/opt/classroom/bin/classroom`` being this checkout's. Then it does what the
document's "first class" says, in real Chromium: a tablet pairs a wall, opens a
built-in routine in the room, two phones join from the wall's QR code, and the class
runs to its end. The wall then shows the results, and each phone its own.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PHONE, TABLET, WALL, NewPage, live
from tests.browser.test_display_pairing import add_room, pair, pairing_code
from tests.conftest import free_port
from tests.db.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
INSTALLED = "/opt/classroom/bin/classroom"
PASSWORD = "a long password for the coach"


def block(name: str) -> list[str]:
    """The lines of the code block marked ``<!-- first-hour: name -->`` in the document."""
    text = DEPLOYMENT.read_text()
    found = re.search(rf"<!-- first-hour: {name} -->\s*```sh\n(.*?)\n\s*```", text, re.S)
    assert found, f"docs/deployment.md has no first-hour {name} block"
    return [line.strip() for line in found.group(1).splitlines() if line.strip()]


class Documented:
    """The server the document sets up: its environment, and ``classroom serve``."""

    def __init__(self, database_url: str, data: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        ours = {
            "CLASSROOM_SECRET_KEY": secrets.token_urlsafe(32),
            "CLASSROOM_DATABASE_URL": database_url,
            "CLASSROOM_HOST": "127.0.0.1",
            "CLASSROOM_PORT": str(self.port),
            "CLASSROOM_DATA_DIR": str(data),
            "CLASSROOM_PUBLIC_URL": self.base_url,
        }
        documented = [line.split("=", 1)[0] for line in block("environment")]
        assert sorted(documented) == sorted(ours), "the document's environment changed"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
        self.env.update(ours)
        self.serving: subprocess.Popen[bytes] | None = None
        self.log = data / "serve.log"

    def run(self, line: str) -> None:
        """Run one of the document's commands, with this checkout's ``classroom``."""
        assert line.startswith(f"{INSTALLED} "), line
        args = [sys.executable, "-m", "classroom.cli", *shlex.split(line)[1:]]
        if args[3] == "serve":
            with self.log.open("ab") as out:
                self.serving = subprocess.Popen(
                    args, env=self.env, stdout=out, stderr=subprocess.STDOUT
                )
            self.wait_ready()
            return
        # No terminal: the password prompts read it from standard input.
        done = subprocess.run(
            args,
            env=self.env,
            input=f"{PASSWORD}\n{PASSWORD}\n".encode(),
            capture_output=True,
            timeout=120,
            start_new_session=True,
        )
        assert done.returncode == 0, (line, done.stdout, done.stderr)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.serving is not None and self.serving.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("classroom serve did not become ready")

    def stop(self) -> None:
        if self.serving is not None and self.serving.poll() is None:
            self.serving.terminate()
            self.serving.wait(15)


@pytest.fixture
def documented(postgres_url: str, tmp_path: Path) -> Iterator[Documented]:  # noqa: F811
    server = Documented(postgres_url, tmp_path)
    try:
        for line in block("commands"):
            server.run(line)
        yield server
    finally:
        server.stop()


async def join_from_the_wall(phone: Page, wall: Page, nickname: str) -> None:
    """Follow the wall's join link (its QR code's address), and join as ``nickname``."""
    link = await wall.locator("[data-lobby] .join-code-label strong").inner_text()
    assert link.startswith("http"), f"the wall's lobby shows no join link: {link!r}"
    await phone.goto(link)
    await phone.get_by_label("Nickname").fill(nickname)
    await phone.get_by_label("Standard").check()
    await phone.get_by_role("button", name="Join").tap()
    await expect(phone).to_have_url(re.compile(r"/play/\d+$"))
    await live(phone)


async def test_a_gym_follows_the_deployment_guide_to_a_class_with_results(
    documented: Documented, new_page: NewPage
) -> None:
    server = documented
    console = await new_page(server, TABLET)  # type: ignore[arg-type]
    await console.goto("/console")
    await console.get_by_label("Email").fill("coach@mygym.example")
    await console.get_by_label("Password").fill(PASSWORD)
    await console.get_by_role("button", name="Sign in").click()
    await expect(console).to_have_url(re.compile(r"/console$"))

    # 1. Pair the wall.
    wall = await new_page(server, WALL)  # type: ignore[arg-type]
    await wall.goto("/display")
    code = await pairing_code(wall)
    await add_room(console, "Studio 1")
    await pair(console, code, "Studio 1", "Front wall")
    await expect(wall.get_by_role("heading", name="Welcome to Studio 1")).to_be_visible(
        timeout=10_000
    )

    # 2. Open a class of a built-in routine in the room.
    await console.goto("/console")
    amrap = console.locator("ul.routines li").filter(
        has=console.locator(".routine-title", has_text="AMRAP 15")
    )
    await amrap.locator('select[name="room_id"]').select_option(label="Studio 1")
    await amrap.get_by_role("button", name="Open class").click()
    await expect(console).to_have_url(re.compile(r"/console/classes/\d+$"))
    await expect(wall.locator("[data-lobby] .qr svg")).to_be_visible(timeout=10_000)

    # 3. Two phones join from the wall.
    phones = [await new_page(server, PHONE) for _ in range(2)]  # type: ignore[arg-type]
    for phone, nickname in zip(phones, ("Robin", "Sam"), strict=True):
        await join_from_the_wall(phone, wall, nickname)

    # 4. Run it: the lead-in, the warm-up (skipped), the AMRAP with rounds logged, the
    # cool-down (skipped) to the end.
    await live(console)
    await console.get_by_role("button", name="Start", exact=True).tap()
    segment = '[data-field="segment"]'
    for page in (wall, *phones):
        await expect(page.locator(segment)).to_have_text("Get ready")
    await console.get_by_role("button", name="Next").tap()
    await expect(wall.locator(segment)).to_have_text("Warm-up")
    await console.get_by_role("button", name="Next").tap()
    await expect(wall.locator(segment)).to_have_text("Cindy-style AMRAP")
    for phone, rounds in zip(phones, (3, 2), strict=True):
        add_round = phone.get_by_role("button", name="Add one round")
        for _ in range(rounds):
            await add_round.tap()
        await phone.wait_for_function("() => window.classroomScreen.outbox.items.length === 0")
    await console.get_by_role("button", name="Next").tap()
    await expect(wall.locator(segment)).to_have_text("Lat and chest stretch")
    await console.get_by_role("button", name="Next").tap()

    # The wall shows the results, and each phone its own.
    await expect(wall.get_by_role("heading", name="Results: AMRAP 15")).to_be_visible(
        timeout=30_000
    )
    people = wall.locator('[data-board="people"] tbody tr')
    await expect(people.nth(0)).to_contain_text("Robin")
    await expect(people.nth(0).locator("[data-total]")).to_have_text("3 + 0")
    await expect(people.nth(1)).to_contain_text("Sam")
    for phone, nickname, rounds in zip(phones, ("Robin", "Sam"), (3, 2), strict=True):
        await phone.get_by_role("link", name="Results of this class").tap()
        await expect(phone).to_have_url(re.compile(r"/results$"))
        mine = phone.locator('[data-board="people"] tr[aria-current="true"]')
        await expect(mine).to_contain_text(nickname)
        # One scored segment: the class's result is its rounds and reps, not points.
        await expect(mine.locator("[data-total]")).to_have_text(f"{rounds} + 0")
        await expect(mine.locator("[data-division]")).to_have_text("Rx")
        rules = phone.locator("[data-results-rules]")
        await expect(rules).to_have_text(re.compile("one segment was scored, so the total is"))
        await expect(rules).not_to_contain_text("points")
