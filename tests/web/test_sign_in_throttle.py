"""Sign-in throttling: a stranger's wrong passwords slow the stranger, not the instructor.

The throttle is a value with time passed in; the server tests send each client's
address in ``X-Forwarded-For``, which the test server believes from 127.0.0.1, and
a real ``classroom serve`` shows it believes it only from ``CLASSROOM_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from markupsafe import escape

from classroom import cli
from classroom.db.routines import RoutineSource
from classroom.web.auth import BAD_CREDENTIALS
from classroom.web.sign_in_throttle import TOO_MANY_ATTEMPTS, Backoff, SignInThrottle, in_words
from tests.conftest import DATA, INSTRUCTOR_EMAIL, INSTRUCTOR_PASSWORD, LiveServer
from tests.helpers import csrf, sign_in
from tests.processes import Server, serving

ACCOUNT = "coach@example.com"
STRANGER, COACH = "203.0.113.66", "198.51.100.7"


def throttled(wait: str) -> str:
    return str(escape(TOO_MANY_ATTEMPTS.format(wait=wait)))


# -- the throttle, with a fake clock ------------------------------------------------


def test_backoff_doubles_after_the_free_failures_and_forgets() -> None:
    backoff = Backoff(free=3, first_wait_s=1, longest_wait_s=60, forget_s=600)
    now = 0.0
    for _ in range(3):
        assert backoff.retry_after("a", now) == 0
        backoff.failed("a", now)
    assert backoff.retry_after("a", now) == 0  # three free failures
    waits = []
    for _ in range(8):
        backoff.failed("a", now)
        waits.append(backoff.retry_after("a", now))
        now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.retry_after("b", now) == 0  # another key
    now += 600  # ten quiet minutes: it starts over
    assert backoff.retry_after("a", now) == 0
    for _ in range(4):
        backoff.failed("a", now)
    assert backoff.retry_after("a", now) == 1


def test_a_strangers_failures_never_keep_the_instructor_out() -> None:
    throttle = SignInThrottle()
    for i in range(25):
        throttle.failed(ACCOUNT, STRANGER, now=i)
    assert throttle.retry_after(ACCOUNT, STRANGER, now=25) > 60
    assert throttle.retry_after(ACCOUNT, COACH, now=25) == 0
    assert throttle.retry_after("someone@else.example", STRANGER, now=25) > 60  # per address


def test_a_spray_over_many_addresses_is_held_to_the_account_rate() -> None:
    throttle = SignInThrottle(account_failures=30, account_window_s=900)
    throttle.succeeded(ACCOUNT, COACH, now=0)  # the instructor signed in from the gym
    for i in range(30):
        address = f"10.0.{i}.1"
        assert throttle.retry_after(ACCOUNT, address, now=100 + i) == 0
        throttle.failed(ACCOUNT, address, now=100 + i)
    # The 31st guess waits, from any new address, until the oldest failure is 15 min old.
    assert throttle.retry_after(ACCOUNT, "10.1.0.1", now=130) == pytest.approx(870)
    assert throttle.retry_after(ACCOUNT, COACH, now=130) == 0  # a known address still may
    assert throttle.retry_after("other@x", "10.1.0.1", now=130) == 0  # another account
    assert throttle.retry_after(ACCOUNT, "10.1.0.1", now=1000) == 0


def test_success_clears_the_account_and_address_count_only() -> None:
    throttle = SignInThrottle(per_address=Backoff(free=8), per_account_address=Backoff(free=2))
    for i in range(6):
        throttle.failed(ACCOUNT, STRANGER, now=i)
    assert throttle.retry_after(ACCOUNT, STRANGER, now=6) > 0  # per account and address
    throttle.succeeded("stranger@own.example", STRANGER, now=6)
    assert throttle.retry_after(ACCOUNT, STRANGER, now=6) > 0  # not cleared by another account
    throttle.succeeded(ACCOUNT, STRANGER, now=6)
    assert throttle.retry_after(ACCOUNT, STRANGER, now=6) == 0


def test_waits_are_said_in_words() -> None:
    assert [in_words(s) for s in (0.2, 1, 1.5, 40, 89, 120, 900)] == [
        "1 second",
        "1 second",
        "2 seconds",
        "40 seconds",
        "89 seconds",
        "2 minutes",
        "15 minutes",
    ]


# -- the real server ----------------------------------------------------------------


def from_address(server: LiveServer | Server, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, headers={"X-Forwarded-For": address})


async def test_wrong_passwords_from_one_address_dont_lock_the_instructor_out(
    live_server: LiveServer,
) -> None:
    async with from_address(live_server, STRANGER) as stranger:
        for _ in range(6):
            response = await sign_in(stranger, INSTRUCTOR_EMAIL, "a guess")
            assert response.status_code == 400 and str(escape(BAD_CREDENTIALS)) in response.text
        assert (await sign_in(stranger)).status_code == 429  # the stranger waits
    async with from_address(live_server, COACH) as coach:
        response = await sign_in(coach)
        assert response.status_code == 303 and response.headers["location"] == "/console"
        assert (await coach.get("/console")).status_code == 200


async def test_guesses_from_one_address_wait_longer_each_time(live_server: LiveServer) -> None:
    async with from_address(live_server, STRANGER) as stranger:
        token = await csrf(stranger, "/login")

        async def attempt(password: str) -> httpx.Response:
            data = {"csrf_token": token, "email": INSTRUCTOR_EMAIL, "password": password}
            return await stranger.post("/login", data=data)

        for _ in range(5):  # free
            assert (await attempt("a guess")).status_code == 400
        retry_afters = []
        for _ in range(3):
            assert (await attempt("a guess")).status_code == 400
            refused = await attempt(INSTRUCTOR_PASSWORD)  # even the right one waits, from here
            assert refused.status_code == 429
            retry_afters.append(int(refused.headers["retry-after"]))
            assert throttled(in_words(retry_afters[-1])) in refused.text
            await asyncio.sleep(retry_afters[-1] + 0.1)
        # 1, 2 and 4 seconds from each failure (less whatever the answer took).
        assert retry_afters[0] == 1 and 1 <= retry_afters[1] <= 2 < retry_afters[2] <= 4
        assert (await attempt(INSTRUCTOR_PASSWORD)).status_code == 303  # the wait is over


async def test_a_spray_over_many_addresses_is_slowed_overall(live_server: LiveServer) -> None:
    async with from_address(live_server, COACH) as coach:
        assert (await sign_in(coach)).status_code == 303  # the gym's desk, known from now on
    account_failures = SignInThrottle().account_failures
    for i in range(account_failures):
        async with from_address(live_server, f"10.20.{i}.1") as guesser:
            assert (await sign_in(guesser, INSTRUCTOR_EMAIL, f"guess {i}")).status_code == 400
    async with from_address(live_server, "10.30.0.1") as fresh:
        refused = await sign_in(fresh, INSTRUCTOR_EMAIL, "one more guess")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 800
    async with from_address(live_server, COACH) as coach:
        assert (await sign_in(coach)).status_code == 303


# -- trusted proxies ------------------------------------------------------------------


@pytest.fixture
def process_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """``classroom serve`` with ``CLASSROOM_TRUSTED_PROXIES`` set to the test's parameter."""
    quick = (DATA / "quick.yaml").read_text()
    original = Server.start

    def start(self: Server) -> None:
        self.env["CLASSROOM_TRUSTED_PROXIES"] = request.param
        original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Server, "start", start)
        yield from serving(tmp_path, RoutineSource("quick", "Quick test", "yaml", quick))


@pytest.mark.parametrize(
    ("process_server", "believed"),
    [("127.0.0.1", True), ("10.0.0.0/8, 192.0.2.1", False), ("none", False)],
    indirect=["process_server"],
)
async def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    process_server: Server, believed: bool
) -> None:
    async with from_address(process_server, STRANGER) as stranger:
        for _ in range(6):
            assert (await sign_in(stranger, INSTRUCTOR_EMAIL, "a guess")).status_code == 400
    async with from_address(process_server, COACH) as coach:
        # Believed, the coach's address has no failures; if not, both are 127.0.0.1.
        assert (await sign_in(coach)).status_code == (303 if believed else 429)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CLASSROOM_TRUSTED_PROXIES", "proxy.internal", "must list IP addresses or networks"),
        ("CLASSROOM_TRUSTED_PROXIES", "10.0.0.1/8", "must list IP addresses or networks"),
        ("CLASSROOM_JOINS_PER_MINUTE", "many", "must be a whole number"),
        ("CLASSROOM_JOINS_PER_MINUTE", "-5", "must be between 0 (no limit)"),
        ("CLASSROOM_MAX_PARTICIPANTS", "1.5", "must be a whole number"),
        ("CLASSROOM_MAX_PARTICIPANTS", "2000000", "must be between 0 (no limit)"),
    ],
)
def test_a_bad_limit_setting_stops_the_server_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv("CLASSROOM_SECRET_KEY", "s" * 32)
    monkeypatch.setenv("CLASSROOM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(name, value)
    assert cli.main(["serve", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"classroom: {name} {says}")
    assert value in error
    assert not (tmp_path / "classroom.db").exists()  # it stopped before touching anything
