"""Settings, read once from ``CLASSROOM_*`` environment variables.

=========================  ==================================================
variable                   meaning (default)
=========================  ==================================================
CLASSROOM_DATABASE_URL     SQLAlchemy URL (SQLite file in the data directory)
CLASSROOM_SECRET_KEY       signs sessions and tokens (required outside demo)
CLASSROOM_HOST             address to listen on (127.0.0.1)
CLASSROOM_PORT             port to listen on (8000)
CLASSROOM_DATA_DIR         where the SQLite file and demo secret live (./data)
CLASSROOM_ALLOWED_ORIGINS  extra origins allowed to open sockets and post (comma list)
CLASSROOM_PUBLIC_URL       the address phones use, for QR codes (the request's)
CLASSROOM_NODE             this server process's name in the database (host name)
CLASSROOM_BROKER_URL       how class events cross processes (memory://)
CLASSROOM_REDIS_URL        a Redis server: when set, class events cross processes there (none)
CLASSROOM_REDIS_PREFIX     names this deployment's Redis channels and keys (classroom)
CLASSROOM_LOBBY_TIMEOUT    minutes a class may wait in the lobby before it closes (360)
CLASSROOM_PAUSE_TIMEOUT    minutes a class may stay paused before it ends (120)
CLASSROOM_WALL_RESULTS     minutes a room's walls show a finished class's results (3)
CLASSROOM_ASSET_SALT       mixed into the asset version: change it to reload every screen ("")
CLASSROOM_MAX_SOCKETS_PER_PARTICIPANT  sockets one participant may hold open at once (5)
CLASSROOM_MAX_SOCKETS_PER_DISPLAY      sockets one display link may hold open at once (20)
CLASSROOM_MAX_SOCKETS_PER_ADDRESS      sockets one client address may hold open at once (500)
CLASSROOM_TRUSTED_PROXIES  proxies whose X-Forwarded-For is believed (127.0.0.1,::1)
CLASSROOM_JOINS_PER_MINUTE joins a minute from one address; 0 for no limit (120)
CLASSROOM_MAX_PARTICIPANTS participants a class may have; 0 for no cap (0)
CLASSROOM_API_REQUESTS_PER_MINUTE  API requests a minute per token; 0: no limit (600)
CLASSROOM_METRICS          /metrics: off, token, or an address of its own (off; token if one is set)
CLASSROOM_METRICS_TOKEN    the bearer token /metrics asks for (none)
CLASSROOM_HEART_RATE_FORMULA         max heart rate from age: hunt, tanaka or fox (hunt)
CLASSROOM_HEART_RATE_POINTS          effort points a minute in zones 1 to 5 (1,2,3,4,4)
CLASSROOM_HEART_RATE_RETENTION_DAYS  days heart-rate samples are kept; totals stay (180)
CLASSROOM_LOG_FORMAT       the log's lines: text or json (text)
=========================  ==================================================
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from classroom.broker.base import BrokerError
from classroom.broker.redis import PREFIX_RULE, SCHEMES, check_prefix, check_url
from classroom.domain.errors import ValidationError
from classroom.domain.heart import FORMULAS, HeartRules, parse_points
from classroom.hub.admission import SocketLimits
from classroom.logs import FORMATS as LOG_FORMATS

PREFIX = "CLASSROOM_"
MISSING_SECRET = (
    "CLASSROOM_SECRET_KEY is not set: set it to a long random string "
    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
    "or run with --demo"
)


DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")


class ConfigError(Exception):
    """A setting that is missing or malformed; the message is one line for people."""


# -- metrics (docs/metrics.md) -----------------------------------------------------------

METRICS_TOKEN_MIN = 16
_BEARER = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750's b64token: fits in a header as is


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsAccess:
    """Who may read ``/metrics``: no one (the default), a token's holder, or a listener's.

    ``listen`` moves ``/metrics`` off the server's port to a listener of its own
    (the main port then answers 404); ``token``, when set, is asked for wherever
    ``/metrics`` is served, as ``Authorization: Bearer <token>``.
    """

    enabled: bool = False
    token: str = ""
    listen: tuple[str, int] | None = None


def _metrics_access(mode: str, token: str, server: tuple[str, int]) -> MetricsAccess:
    """``CLASSROOM_METRICS`` (off, token, or HOST:PORT) with ``CLASSROOM_METRICS_TOKEN``.

    Off unless asked for: behind a reverse proxy on the same machine, every
    request comes from the loopback address, so "loopback only" would not keep
    the figures private. Unset, it is ``token`` if a token is set, else ``off``.
    """
    chosen = mode.lower() or ("token" if token else "off")
    if chosen == "off":
        return MetricsAccess()
    if token and (len(token) < METRICS_TOKEN_MIN or not _BEARER.fullmatch(token)):
        raise ConfigError(
            f"CLASSROOM_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN} characters of "
            "letters, digits and -._~+/ (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )
    if chosen == "token":
        if not token:
            raise ConfigError("CLASSROOM_METRICS=token needs CLASSROOM_METRICS_TOKEN to be set")
        return MetricsAccess(enabled=True, token=token)
    listen = _address(mode)
    if listen is None:
        raise ConfigError(
            "CLASSROOM_METRICS must be off, token, or an address to serve /metrics on, "
            f"like 127.0.0.1:9100, not {mode[:60]!r}"
        )
    if _same_port(listen, server):
        raise ConfigError(
            f"CLASSROOM_METRICS can't listen on {mode}: the server itself listens there"
        )
    return MetricsAccess(enabled=True, token=token, listen=listen)


def _address(raw: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (an IPv6 host in brackets) as a host and a port, or None if it isn't one."""
    host, colon, port = raw.rpartition(":")
    if not colon or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    elif not re.fullmatch(r"[A-Za-z0-9.-]+", host):
        return None
    return host, int(port)


def _same_port(one: tuple[str, int], other: tuple[str, int]) -> bool:
    """Whether two listeners would ask for the same port (0 is a free one, never the same)."""
    wildcards = ("0.0.0.0", "::", "")
    return one[1] == other[1] != 0 and (
        one[0] == other[0] or one[0] in wildcards or other[0] in wildcards
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    database_url: str
    secret_key: str
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    demo: bool = False
    allowed_origins: tuple[str, ...] = field(default=())
    public_url: str = ""
    node: str = "local"
    #: How many processes `serve --workers N` runs (each worker knows; 1 otherwise).
    workers: int = 1
    # Several processes: see docs/scaling.md. Without Redis, one process and memory://.
    broker_url: str = "memory://"
    redis_prefix: str = "classroom"
    lobby_timeout_min: int = 360
    wall_results_min: int = 3
    pause_timeout_min: int = 120
    asset_salt: str = ""
    socket_limits: SocketLimits = field(default_factory=SocketLimits)
    # Limits for strangers: see docs/deployment.md, "Limits for a public server".
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    joins_per_minute: int = 120
    max_participants: int = 0
    api_requests_per_minute: int = 600
    metrics: MetricsAccess = field(default_factory=MetricsAccess)
    heart: HeartRules = field(default_factory=HeartRules)
    heart_retention_days: int = 180
    #: How log lines are written: ``text`` or ``json`` (classroom/logs.py).
    log_format: str = "text"
    #: ``serve --demo``: the token of the demo room's receiver of simulated straps.
    demo_receiver_token: str = ""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        demo: bool = False,
        host: str | None = None,
        port: int | None = None,
        require_secret: bool = True,
    ) -> Settings:
        """Read the settings; command-line values (``host``, ``port``) win over the env."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(PREFIX + name, "").strip() or default

        data_dir = Path(get("DATA_DIR", "data")).expanduser()
        raw_port = get("PORT", "8000")
        try:
            env_port = int(raw_port)
        except ValueError:
            raise ConfigError(f"CLASSROOM_PORT must be a number, not {raw_port!r}") from None
        chosen_port = env_port if port is None else port
        if not 0 <= chosen_port <= 65535:
            raise ConfigError(f"the port must be between 0 and 65535, not {chosen_port}")

        secret = get("SECRET_KEY")
        if not secret:
            if demo:
                secret = _demo_secret(data_dir)
            elif require_secret:
                raise ConfigError(MISSING_SECRET)
        elif len(secret) < 16:
            raise ConfigError("CLASSROOM_SECRET_KEY is too short: use at least 16 characters")

        database_url = get("DATABASE_URL") or default_database_url(data_dir)
        broker_url, redis_prefix = _broker(get)
        origins = tuple(
            o.strip().rstrip("/") for o in get("ALLOWED_ORIGINS").split(",") if o.strip()
        )
        return cls(
            database_url=database_url,
            secret_key=secret,
            host=host or get("HOST", "127.0.0.1"),
            port=chosen_port,
            data_dir=data_dir,
            demo=demo,
            allowed_origins=origins,
            public_url=get("PUBLIC_URL").rstrip("/"),
            node=get("NODE", default_node())[:64],
            broker_url=broker_url,
            redis_prefix=redis_prefix,
            lobby_timeout_min=_minutes(get("LOBBY_TIMEOUT", "360"), "CLASSROOM_LOBBY_TIMEOUT"),
            wall_results_min=_minutes(get("WALL_RESULTS", "3"), "CLASSROOM_WALL_RESULTS"),
            pause_timeout_min=_minutes(get("PAUSE_TIMEOUT", "120"), "CLASSROOM_PAUSE_TIMEOUT"),
            asset_salt=get("ASSET_SALT")[:200],
            socket_limits=SocketLimits(
                per_participant=_count(get, "MAX_SOCKETS_PER_PARTICIPANT", 5),
                per_display=_count(get, "MAX_SOCKETS_PER_DISPLAY", 20),
                per_address=_count(get, "MAX_SOCKETS_PER_ADDRESS", 500),
            ),
            trusted_proxies=_trusted_proxies(
                get("TRUSTED_PROXIES", ",".join(DEFAULT_TRUSTED_PROXIES))
            ),
            joins_per_minute=_count(get, "JOINS_PER_MINUTE", 120),
            max_participants=_count(get, "MAX_PARTICIPANTS", 0),
            api_requests_per_minute=_count(get, "API_REQUESTS_PER_MINUTE", 600),
            metrics=_metrics_access(
                get("METRICS"),
                get("METRICS_TOKEN"),
                (host or get("HOST", "127.0.0.1"), chosen_port),
            ),
            heart=_heart_rules(get("HEART_RATE_FORMULA", "hunt"), get("HEART_RATE_POINTS")),
            heart_retention_days=_days(get("HEART_RATE_RETENTION_DAYS", "180")),
            log_format=_log_format(get("LOG_FORMAT", "text")),
        )


def default_node() -> str:
    """A name for this process, unique even among several on one host (never just the host's)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(2)}"


def _broker(get: Callable[[str, str], str]) -> tuple[str, str]:
    """The broker's URL and its Redis prefix: Redis when CLASSROOM_REDIS_URL is set."""
    redis_url = get("REDIS_URL", "")
    broker_url = get("BROKER_URL", "memory://")
    if redis_url:
        if broker_url not in ("memory://", redis_url):
            raise ConfigError("set CLASSROOM_REDIS_URL or CLASSROOM_BROKER_URL, not both")
        broker_url = redis_url
    name = "CLASSROOM_REDIS_URL" if redis_url else "CLASSROOM_BROKER_URL"
    scheme = broker_url.split("://", 1)[0] if "://" in broker_url else ""
    if scheme in SCHEMES:
        try:
            check_url(broker_url)
        except BrokerError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    elif redis_url:
        raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL")
    elif broker_url != "memory://":
        raise ConfigError(f"{name} must be memory:// or a redis:// URL")
    prefix = get("REDIS_PREFIX", "classroom")
    try:
        check_prefix(prefix)
    except BrokerError:
        raise ConfigError(f"CLASSROOM_REDIS_PREFIX must be {PREFIX_RULE}, not {prefix!r}") from None
    return broker_url, prefix


def _count(get: Callable[[str, str], str], name: str, default: int) -> int:
    """A limit on how many of something at once: a whole number, 0 for no limit."""
    raw = get(name, str(default))
    try:
        count = int(raw)
    except ValueError:
        raise ConfigError(
            f"{PREFIX}{name} must be a whole number (0 for no limit), not {raw!r}"
        ) from None
    if not 0 <= count <= 1_000_000:
        raise ConfigError(f"{PREFIX}{name} must be between 0 (no limit) and 1000000, not {count}")
    return count


def _heart_rules(formula: str, points: str) -> HeartRules:
    if formula not in FORMULAS:
        known = ", ".join(FORMULAS)
        raise ConfigError(f"CLASSROOM_HEART_RATE_FORMULA must be one of {known}, not {formula!r}")
    if not points:
        return HeartRules(formula=formula)
    try:
        return HeartRules(formula=formula, points_per_minute=parse_points(points))
    except ValidationError as exc:
        raise ConfigError(f"CLASSROOM_HEART_RATE_POINTS: {exc}") from None


def _log_format(raw: str) -> str:
    if raw.lower() not in LOG_FORMATS:
        raise ConfigError(f"CLASSROOM_LOG_FORMAT must be text or json, not {raw[:60]!r}")
    return raw.lower()


def _days(raw: str) -> int:
    return _whole(raw, "CLASSROOM_HEART_RATE_RETENTION_DAYS", "days", 36500, "1 and 36500 days")


def _minutes(raw: str, name: str) -> int:
    return _whole(raw, name, "minutes", 7 * 24 * 60, "1 minute and 7 days")


def _whole(raw: str, name: str, unit: str, most: int, between: str) -> int:
    """A whole number of ``unit`` from 1 to ``most`` (``between`` says the range)."""
    try:
        number = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of {unit}, not {raw!r}") from None
    if not 1 <= number <= most:
        raise ConfigError(f"{name} must be between {between}, not {number}")
    return number


def _trusted_proxies(raw: str) -> tuple[str, ...]:
    """Addresses and networks (CIDR) of trusted proxies; ``*`` trusts every peer, ``none`` none."""
    if raw.lower() == "none":
        return ()
    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    if entries == ("*",):
        return entries
    for entry in entries:
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)
            else:
                ipaddress.ip_address(entry)
        except ValueError:
            raise ConfigError(
                "CLASSROOM_TRUSTED_PROXIES must list IP addresses or networks like "
                f"10.0.0.0/8 (or be * or none), not {entry!r}"
            ) from None
    return entries


def default_database_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'classroom.db').resolve()}"


def _demo_secret(data_dir: Path) -> str:
    """A secret kept in the data directory, so demo logins survive a restart."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "demo-secret"
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret
