"""The log's two formats, the context of a line, and the secrets no line may hold."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from classroom import cli, logs
from classroom.config import ConfigError, Settings
from classroom.web.request_ids import TracedStarlette
from classroom.web.tokens import Tokens

KEY = "a-secret-key-for-these-tests-0123"


class Captured:
    """A logger whose lines go through a handler like the server's, into a string."""

    def __init__(self, log_format: str, known: tuple[str, ...] = ()) -> None:
        self.stream = io.StringIO()
        self.handler = logs.handler_for(log_format, known, self.stream)
        self.logger = logging.getLogger(f"tests.logs.{secrets.token_hex(4)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines()]

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


@pytest.fixture
def text() -> Iterator[Captured]:
    captured = Captured("text", (KEY,))
    yield captured
    captured.close()


@pytest.fixture
def as_json() -> Iterator[Captured]:
    captured = Captured("json", (KEY,))
    yield captured
    captured.close()


# -- the formats -----------------------------------------------------------------------------


def test_text_is_level_logger_and_message(text: Captured) -> None:
    text.logger.info("class %s started with %d phones", 7, 12)
    text.logger.warning("done")
    assert text.lines() == [
        f"INFO {text.logger.name}: class 7 started with 12 phones",
        f"WARNING {text.logger.name}: done",
    ]


def test_text_names_the_class_and_the_request_when_there_are_some(text: Captured) -> None:
    async def in_a_class() -> None:
        logs.current_class.set(7)
        text.logger.info("in the class")
        logs.current_request.set("abc-123")
        text.logger.info("and a request")

    asyncio.run(in_a_class())
    text.logger.info("outside")  # the task's context was its own
    assert text.lines() == [
        f"INFO {text.logger.name}: in the class class=7",
        f"INFO {text.logger.name}: and a request class=7 request=abc-123",
        f"INFO {text.logger.name}: outside",
    ]


def test_json_is_one_object_a_line_with_its_fields(as_json: Captured) -> None:
    as_json.logger.info("two\nlines, %s", "one record")
    as_json.logger.error("bad")
    lines = as_json.lines()
    assert len(lines) == 2
    first, second = as_json.records()
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["message"] == "two\nlines, one record"
    assert (first["level"], first["logger"]) == ("INFO", as_json.logger.name)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["time"]))
    assert second["level"] == "ERROR"


def test_json_has_class_id_and_request_id_only_when_set(as_json: Captured) -> None:
    async def request() -> None:
        logs.current_request.set("req-1")
        as_json.logger.info("a request")
        logs.current_class.set(3)
        as_json.logger.info("about a class")

    asyncio.run(request())
    as_json.logger.info("neither")
    one, two, three = as_json.records()
    assert one["request_id"] == "req-1" and "class_id" not in one
    assert (two["class_id"], two["request_id"]) == (3, "req-1")
    assert "class_id" not in three and "request_id" not in three


def test_two_tasks_keep_their_own_context(as_json: Captured) -> None:
    async def serve(class_id: int, started: asyncio.Event, other: asyncio.Event) -> None:
        logs.current_class.set(class_id)
        started.set()
        await other.wait()
        as_json.logger.info("class %s", class_id)

    async def both() -> None:
        one, two = asyncio.Event(), asyncio.Event()
        await asyncio.gather(serve(1, one, two), serve(2, two, one))

    asyncio.run(both())
    assert sorted((r["message"], r["class_id"]) for r in as_json.records()) == [
        ("class 1", 1),
        ("class 2", 2),
    ]


def fail() -> None:
    raise ValueError("it broke")


def test_an_exception_is_text_in_both_formats(text: Captured, as_json: Captured) -> None:
    for captured in (text, as_json):
        try:
            fail()
        except ValueError:
            captured.logger.exception("while working")
    assert text.lines()[0] == f"ERROR {text.logger.name}: while working"
    assert text.lines()[1] == "Traceback (most recent call last):"
    assert text.lines()[-1] == "ValueError: it broke"
    (record,) = as_json.records()
    assert record["message"] == "while working"
    exception = str(record["exception"])
    assert exception.startswith("Traceback") and exception.endswith("ValueError: it broke")


def test_an_ill_formed_message_is_still_logged(as_json: Captured) -> None:
    as_json.logger.info("%d phones", "many")
    (record,) = as_json.records()
    assert "%d phones" in str(record["message"]) and "many" in str(record["message"])


# -- the secrets -----------------------------------------------------------------------------

TOKENS = Tokens(KEY)


def minted() -> str:
    return secrets.token_urlsafe(32)


#: Each kind of secret: how a line might hold it (format, value), and the value.
SECRETS: dict[str, Callable[[], tuple[str, str]]] = {
    "a screen link's token": lambda: (
        "GET /display/4?token={} HTTP/1.1",
        TOKENS.display(4, link=2),
    ),
    "a participant's token": lambda: ("cookie classroom_p4={}", TOKENS.participant(4, 9)),
    "a token in a query string": lambda: ("GET /x?lang=en&token={}&a=b", minted()),
    "an API key in a query string": lambda: ("GET /x?api_key={}", minted()),
    "a secret in a query string": lambda: ("GET /x?client_secret={}", minted()),
    "a password in a query string": lambda: ("GET /x?password={}", "hunter22"),
    "a signed-in session's cookie": lambda: ("Cookie: classroom_session={}", minted()),
    "a session token alone": lambda: ("session {} is gone", minted()),
    "a CSRF token": lambda: ("form csrf_token={}&email=a", minted()),
    "a bearer token": lambda: ("Authorization: Bearer {}", minted()),
    "a header of basic credentials": lambda: ("Authorization: Basic {}", "dXNlcjpwYXNz"),
    "a cookie header": lambda: ("Cookie: theme=dark; sid={}", "abcdefgh12"),
    "a bearer token in prose": lambda: ("refused bearer {} (revoked)", "0123456789abcdef"),
    "a receiver's token": lambda: ("bridge hrb_{} connected", minted()),
    "an API token": lambda: ("token api_{} used", minted()),
    "a webhook's secret": lambda: ("signing with whsec_{}", minted()),
    "the secret key": lambda: ("key is {}!", KEY),
    "a database URL's password": lambda: (
        "can't reach postgresql+asyncpg://classroom:{}@db:5432/classroom",
        "pa55w0rd",
    ),
    "a Redis URL's password": lambda: ("Redis at redis://:{}@cache:6379/0 is away", "s3cret"),
    "a password in a dict": lambda: ("form {{'email': 'a@b.c', 'password': '{}'}}", "hunter22"),
    "a password's hash": lambda: (
        "row ('$argon2id$v=19$m=65536,t=3,p=4${}$abc')",
        "c2FsdHNhbHQ",
    ),
}


@pytest.mark.parametrize("kind", SECRETS)
@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("where", ["msg", "args"])
def test_no_secret_reaches_a_line(kind: str, log_format: str, where: str) -> None:
    template, secret = SECRETS[kind]()
    captured = Captured(log_format, (KEY,))
    try:
        if where == "msg":
            captured.logger.warning(template.format(secret).replace("%", "%%"))
        else:
            captured.logger.warning(template.replace("%", "%%").format("%s"), secret)
    finally:
        captured.close()
    (line,) = captured.lines()
    assert secret not in line, line
    assert logs.MASK in line, line
    if log_format == "json":
        assert secret not in str(json.loads(line)["message"])


def test_the_rest_of_a_line_stays_as_it_was(text: Captured) -> None:
    token = TOKENS.display(4)
    text.logger.info('127.0.0.1:5 - "GET /display/4?sound=on&token=%s&lang=en HTTP/1.1" 200', token)
    text.logger.info("postgresql+asyncpg://classroom:pw@db/classroom")
    text.logger.info("Running upgrade 0009 -> 0010_api_tokens_webhooks, API tokens")
    text.logger.info("class 7: lobby -> running at /console/classes/7/results")
    text.logger.info("screen %s opened", token)
    name = text.logger.name
    assert text.lines() == [
        f'INFO {name}: 127.0.0.1:5 - "GET /display/4?sound=on&token=*** HTTP/1.1" 200'.replace(
            " HTTP", "&lang=en HTTP"
        ),
        f"INFO {name}: postgresql+asyncpg://classroom:***@db/classroom",
        f"INFO {name}: Running upgrade 0009 -> 0010_api_tokens_webhooks, API tokens",
        f"INFO {name}: class 7: lobby -> running at /console/classes/7/results",
        f"INFO {name}: screen *** opened",
    ]


def test_no_secret_reaches_a_traceback(as_json: Captured) -> None:
    token = "hrb_" + minted()
    try:
        raise PermissionError(f"refused token {token}")
    except PermissionError:
        as_json.logger.exception("bridge %s refused", token)
    (record,) = as_json.records()
    assert token not in json.dumps(record)
    assert "PermissionError: refused token hrb_***" in str(record["exception"])


def test_a_secret_told_later_is_hidden_from_then_on(text: Captured) -> None:
    password = "correct horse battery staple"
    text.logger.info("before: %s", password)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logging.getLogger(), "handlers", [text.handler])
        logs.keep_secret(password)
    text.logger.info("after: %s", password)
    assert text.lines()[1].endswith("after: ***")


def test_secrets_of_the_settings() -> None:
    settings = Settings.from_env(
        {
            "CLASSROOM_SECRET_KEY": KEY,
            "CLASSROOM_DATABASE_URL": "postgresql+asyncpg://app:p%40ss-word-1@db/app",
            "CLASSROOM_REDIS_URL": "redis://:redis-password-1@cache:6379/0",
            "CLASSROOM_METRICS_TOKEN": "metrics-token-0123456789",
        }
    )
    found = logs.secrets_of(settings)
    for secret in (KEY, "p%40ss-word-1", "p@ss-word-1", "redis-password-1"):
        assert secret in found
    assert "metrics-token-0123456789" in found


# -- the set-up ------------------------------------------------------------------------------


def test_configure_leaves_a_logging_set_up_by_someone_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    theirs = logging.NullHandler()
    monkeypatch.setattr(root, "handlers", [theirs])
    assert logs.configure("json") is False
    assert root.handlers == [theirs]


def test_configure_replaces_its_own_handler_and_routes_uvicorn_through_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(access, "propagate", False)
    # As `classroom serve` leaves it (tests before this one may have run uvicorn quieter).
    monkeypatch.setattr(access, "level", logging.INFO)
    monkeypatch.setattr(access, "disabled", False)
    assert logs.configure("text")
    assert logs.configure("json", [KEY])
    assert len(root.handlers) == 1 and isinstance(root.handlers[0], logs.LogHandler)
    access.info('127.0.0.1:1 - "GET /display/1?token=%s HTTP/1.1" 200', KEY)
    logging.getLogger("uvicorn.error").info("connection open")  # one per socket: dropped
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["message"] == '127.0.0.1:1 - "GET /display/1?token=*** HTTP/1.1" 200'


def test_a_bad_log_format_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"CLASSROOM_SECRET_KEY": KEY, "CLASSROOM_LOG_FORMAT": "xml"}
    refusal = "CLASSROOM_LOG_FORMAT must be text or json, not 'xml'"
    with pytest.raises(ConfigError, match=f"^{refusal}$"):
        Settings.from_env(environ)
    assert Settings.from_env({**environ, "CLASSROOM_LOG_FORMAT": "JSON"}).log_format == "json"
    assert Settings.from_env({"CLASSROOM_SECRET_KEY": KEY}).log_format == "text"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        assert cli.main(["serve"]) == 2
    assert capsys.readouterr().err == f"classroom: {refusal}\n"


# -- request ids -----------------------------------------------------------------------------


def app_logging(seen: list[str | None]) -> TracedStarlette:
    async def page(request: Request) -> Response:
        seen.append(logs.current_request.get())
        return PlainTextResponse("ok")

    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    return TracedStarlette(routes=[Route("/", page), Route("/broken", broken)])


async def test_a_request_keeps_a_well_formed_id_and_gets_one_otherwise() -> None:
    seen: list[str | None] = []
    transport = httpx.ASGITransport(app=app_logging(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        given = await client.get("/", headers={"X-Request-ID": "edge-7.a_B"})
        assert given.headers["x-request-id"] == "edge-7.a_B"
        longest = await client.get("/", headers={"X-Request-ID": "x" * 64})
        assert longest.headers["x-request-id"] == "x" * 64
        made = []
        for bad in (None, b"", b"x" * 65, b"a b", b"a;b", "é".encode("latin-1")):
            headers: dict[bytes, bytes] = {} if bad is None else {b"X-Request-ID": bad}
            answer = await client.get("/", headers=headers)
            assert re.fullmatch(r"[0-9a-f]{16}", answer.headers["x-request-id"]), bad
            made.append(answer.headers["x-request-id"])
    assert len(set(made)) == len(made)
    # The id is the request's while it is served, and only then.
    assert seen[:3] == ["edge-7.a_B", "x" * 64, made[0]]
    assert logs.current_request.get() is None


async def test_an_unhandled_error_answers_with_its_request_id() -> None:
    transport = httpx.ASGITransport(app=app_logging([]), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/broken", headers={"X-Request-ID": "oops-1"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "oops-1"
    assert answer.headers["x-frame-options"] == "DENY"  # still a SecuredStarlette
