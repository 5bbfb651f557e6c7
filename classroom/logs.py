"""The server's log: one line per record, as text or JSON, with no secret in it.

:func:`configure` gives the process one handler, on the root logger, that every
logger reaches (uvicorn's too: ``classroom serve`` starts uvicorn without a
logging set-up of its own). The handler does three things to each record:

- :class:`ContextFilter` copies the class and the request the line belongs to
  from two context variables: :data:`current_class`, set where a class's work
  runs (its actor, its sockets, its console pages), and :data:`current_request`,
  set for each HTTP request and WebSocket (:mod:`classroom.web.request_ids`).
- :class:`RedactingFilter` takes secrets out of the message and the traceback
  (see :class:`Redactor` for what counts as one). It is on the handler, not on a
  logger, so no logger can go around it.
- :class:`TextFormatter` (``LEVEL logger: message class=7 request=…``) or
  :class:`JsonFormatter` (one JSON object a line) writes it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from classroom.config import Settings

FORMATS = ("text", "json")
MASK = "***"
#: Known secrets shorter than this are not looked for word by word: they would
#: match ordinary text. (The patterns still hide them where they have a name.)
MIN_SECRET = 8

#: The class whose work the current task is doing (its id), for the lines it logs.
current_class: ContextVar[int | None] = ContextVar("current_class", default=None)
#: The id of the HTTP request or WebSocket the current task is serving.
current_request: ContextVar[str | None] = ContextVar("current_request", default=None)

# -- what a secret looks like ------------------------------------------------------------

_NAMED = r"[\w.-]*(?:token|secret|password|passwd|pwd|key|csrf|session|signature)[\w.-]*"
_COOKIE = r"(?-i:classroom_\w+)"  # our cookies: session, csrf, device, participant, display

#: (pattern, replacement), applied in turn to every message and traceback.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A URL's password: postgresql://user:pass@host, redis://:pass@host.
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]*@", re.I), rf"\1{MASK}@"),
    # An Authorization header's value, whatever its scheme; a bearer token anywhere.
    (re.compile(r"\b(authorization[\"']?\s*[:=]\s*[\"']?)[^\r\n\"',]+", re.I), rf"\1{MASK}"),
    (re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/-]{8,}=*", re.I), rf"\1{MASK}"),
    # A Cookie or Set-Cookie header's value.
    (re.compile(r"\b((?:set-)?cookie:\s*)[^\r\n]+", re.I), rf"\1{MASK}"),
    # Tokens with a prefix: heart-rate receivers, API tokens (api_, crm_), webhook secrets.
    (re.compile(r"\b(hrb|api|crm|whsec)_[A-Za-z0-9_-]{20,}"), rf"\1_{MASK}"),
    # Signed tokens (screen links, participants, signed cookies): base64 JSON, dot, ….
    (
        re.compile(r"(?<![\w.-])\.?e(?:yJ|J)[\w-]*(?:\.[\w-]+)?\.[A-Za-z0-9_-]{16,}"),
        MASK,
    ),
    # name=value where the name says secret: query strings, forms, cookies, settings.
    (re.compile(rf"(?<![\w.-])((?:{_NAMED}|{_COOKIE})=)[^&\s;,\"'<>]+", re.I), rf"\1{MASK}"),
    # 'name': 'value' where the name says secret: dicts and JSON.
    (
        re.compile(rf"([\"']{_NAMED}[\"']\s*:\s*)([\"'])(?:(?!\2).)*\2", re.I),
        rf"\1\2{MASK}\2",
    ),
    # A password's hash.
    (re.compile(r"\$argon2(?:id|i|d)\$[^\s\"']+"), f"$argon2{MASK}"),
    # Anything else that looks random: 20 or more URL-safe characters, with upper
    # and lower case letters and digits (session tokens, CSRF tokens, display secrets).
    (
        re.compile(
            r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])"
            r"(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])"
        ),
        MASK,
    ),
)


class Redactor:
    """Hides secrets in text: the ones it was told of, and whatever looks like one.

    Told of: the secret key, the metrics token, passwords in the database and
    Redis URLs (:func:`secrets_of`), a password being set from the command line.
    Looks like one: see :data:`PATTERNS`. The project's own tokens all match one
    of them, so a token nobody told it of is hidden too.
    """

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        self._exact: re.Pattern[str] | None = None
        for secret in known:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Hide ``secret`` wherever it appears (if it is long enough to look for)."""
        if len(secret) < MIN_SECRET or secret in self._known:
            return
        self._known.add(secret)
        longest_first = sorted(self._known, key=len, reverse=True)
        self._exact = re.compile("|".join(re.escape(known) for known in longest_first))

    def __call__(self, text: str) -> str:
        if self._exact is not None:
            text = self._exact.sub(MASK, text)
        for pattern, replacement in PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def secrets_of(settings: Settings) -> list[str]:
    """The secrets among the settings, for :class:`Redactor` to hide word for word."""
    found = [settings.secret_key, settings.metrics.token, settings.demo_receiver_token]
    for url in (settings.database_url, settings.broker_url):
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            found += [password, unquote(password)]
    return [secret for secret in found if secret]


# -- the filters -------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Puts the class and request ids of the current task on the record (None: no such)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "class_id", None) is None:
            record.class_id = current_class.get()
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request.get()
        return True


class RedactingFilter(logging.Filter):
    """Takes secrets out of a record's message, arguments and traceback, in place.

    The message is formatted here, then redacted as a whole, so a secret split
    between the format and its arguments is still found; the record then carries
    the finished text and no arguments.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a format that doesn't fit its arguments: show both
            message = f"{record.msg!s} (arguments: {record.args!r})"
        record.msg, record.args = self.redactor(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


class QuietSockets(logging.Filter):
    """Drops uvicorn's line for each WebSocket opened or closed.

    A class can have thousands of phones: one line per socket would bury the rest.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.error":
            return True
        message = record.getMessage()
        return not (message.startswith("connection ") or '"WebSocket ' in message)


# -- the formats -------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message``, then `` class=<id>`` and `` request=<id>`` if known."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        class_id = getattr(record, "class_id", None)
        request_id = getattr(record, "request_id", None)
        if class_id is not None:
            line += f" class={class_id}"
        if request_id is not None:
            line += f" request={request_id}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, and
    ``class_id``, ``request_id`` and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, object] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("class_id", "request_id"):
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


# -- the set-up --------------------------------------------------------------------------


class LogHandler(logging.Handler):
    """Writes each line to standard error, as it is when the line is written.

    (A stream taken once would outlive a test that swapped ``sys.stderr``.)
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self._stream or sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


#: Loggers that say too much at INFO for a server's log.
QUIET = {"alembic.runtime.plugins": logging.WARNING}


def handler_for(
    log_format: str = "text", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> LogHandler:
    """A handler with the filters and the format of :func:`configure`, for any logger."""
    if log_format not in FORMATS:
        raise ValueError(f"the log format must be text or json, not {log_format!r}")
    handler = LogHandler(stream)
    handler.addFilter(QuietSockets())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(Redactor(secrets)))
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure(
    log_format: str = "text", secrets: Iterable[str] = (), level: int = logging.INFO
) -> bool:
    """Send every logger's records at ``level`` and above to standard error, in ``log_format``.

    Called again, it replaces its own handler (the command line calls it once
    before the settings are read, and again with them). A process whose logging
    someone else set up (a test runner) is left as it is, as
    :func:`logging.basicConfig` would; returns whether the set-up was made.
    """
    handler = handler_for(log_format, secrets)
    root = logging.getLogger()
    ours = [existing for existing in root.handlers if isinstance(existing, LogHandler)]
    if len(ours) < len(root.handlers):
        return False
    for existing in ours:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(quiet)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # what uvicorn's own set-up may have left
        logger.propagate = True
    return True


def keep_secret(secret: str) -> None:
    """Hide ``secret`` from the log from now on (a password the command line was given)."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, RedactingFilter):
                found.redactor.add(secret)
