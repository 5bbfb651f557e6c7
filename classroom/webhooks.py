"""Webhooks: class events posted to the URLs instructors registered, signed and retried.

An event is stored as a delivery per webhook that wants it (classroom/db/integrations.py),
in whichever process saw it happen; every process runs a delivery loop that claims the
deliveries that are due and posts them. A delivery that gets no 2xx answer is tried again
after :data:`RETRY_AFTER_S` (8 attempts in all, over about 8 hours), then marked failed.
Each attempt is logged and kept for the console's delivery log.

Each post carries ``X-Classroom-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256, keyed by the webhook's secret, of ``<t>.<body>`` (docs/api.md shows how a
receiver checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.config import Settings
from classroom.db.integrations import Due, IntegrationStore
from classroom.db.models import Class, utcnow
from classroom.domain.errors import ValidationError
from classroom.domain.session import Phase

log = logging.getLogger(__name__)

EVENTS = (
    "class.opened",
    "class.started",
    "class.finished",
    "class.cancelled",
    "participant.joined",
)
RETRY_AFTER_S = (2, 10, 60, 300, 1800, 7200, 21600)
"""Seconds from one failed attempt to the next: 8 attempts in all."""
TIMEOUT_S = 10.0
LEASE = timedelta(seconds=60)  # longer than an attempt can take
POLL_S = 1.0
FORGET_EVERY_S = 3600.0  # finished deliveries past their time are removed hourly
URL_MAX = 2000
BAD_URL = "A webhook's URL starts with https:// or http:// and names a host."
NO_EVENTS = "Pick at least one event to send."
UNKNOWN_EVENT = "Unknown event {event!r}: the events are " + ", ".join(EVENTS) + "."
SIGNATURE_HEADER = "X-Classroom-Signature"
USER_AGENT = "classroom-webhooks/1"


def base_url_of(settings: Settings) -> str:
    """Where links in events point: the public address, else the one this server listens on."""
    if settings.public_url:
        return settings.public_url
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def checked_url(raw: object) -> str:
    """A webhook URL as typed, checked; raises ValidationError with a sentence."""
    url = str(raw or "").strip()
    parts = urlsplit(url)
    if (
        len(url) > URL_MAX
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or any(ch.isspace() for ch in url)
    ):
        raise ValidationError(BAD_URL)
    return url


def checked_events(raw: object) -> list[str]:
    """Event names from a list; raises ValidationError with a sentence."""
    names = raw
    if not isinstance(names, list | tuple) or not names:
        raise ValidationError(NO_EVENTS)
    chosen = []
    for name in names:
        if name not in EVENTS:
            raise ValidationError(UNKNOWN_EVENT.format(event=name))
        if name not in chosen:
            chosen.append(name)
    return chosen


def retry_at(attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed ones; None once they are used up."""
    if attempts > len(RETRY_AFTER_S):
        return None
    wait = RETRY_AFTER_S[attempts - 1]
    return now + timedelta(seconds=wait * random.uniform(1.0, 1.1))


def class_data(row: Class, base_url: str) -> dict[str, Any]:
    """A class as events and the API describe it (no tokens: walls get theirs elsewhere)."""
    return {
        "id": row.id,
        "title": row.title,
        "phase": row.phase,
        "room_id": row.room_id,
        "join_code": row.join_code,
        "join_url": f"{base_url}/j/{row.join_code}",
        "scheduled_at": iso_time(row.scheduled_at),
        "started_at": iso_time(row.started_at),
        "ended_at": iso_time(row.ended_at),
        "results_url": f"{base_url}/api/v1/classes/{row.id}/results",
    }


def iso_time(value: datetime | None) -> str | None:
    """A stored time as ISO 8601 in UTC (``…Z``); SQLite gives it back without a zone."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Webhooks:
    """Stores events for delivery, and delivers them (:meth:`keep_delivering`)."""

    def __init__(
        self,
        store: IntegrationStore,
        sessions: async_sessionmaker[AsyncSession],
        base_url: str,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self._sessions = sessions
        self.base_url = base_url
        self._now = now
        self._wake = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    async def emit(self, instructor_id: int, event: str, data: dict[str, Any]) -> None:
        """Store ``event`` for every webhook of the instructor's that wants it."""
        body = json.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": event,
                "created_at": iso_time(self._now()),
                "data": data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        if await self.store.enqueue(instructor_id, event, body):
            self._wake.set()

    def emit_soon(self, instructor_id: int, event: str, data: dict[str, Any]) -> None:
        """:meth:`emit` in the background: what set it off doesn't wait, nor fail with it."""
        self.run_soon(self.emit(instructor_id, event, data), event)

    def run_soon(self, work: Coroutine[Any, Any, None], event: str) -> None:
        """Store an event in the background; a failure is logged, never raised."""

        async def logged() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("webhook event %s not stored: %s", event, exc)

        task = asyncio.create_task(logged(), name=f"webhook-{event}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def class_event(self, class_id: int, event: str) -> None:
        async with self._sessions() as db:
            row: Class | None = await db.get(Class, class_id)
        if row is not None:
            await self.emit(row.instructor_id, event, {"class": class_data(row, self.base_url)})

    def phase_changed(self, class_id: int, phase: str, previous: str) -> None:
        """A class's phase moved (in the process that runs it): its event, if it has one."""
        event = None
        if previous == Phase.LOBBY.value and phase != Phase.CANCELLED.value:
            event = "class.started"
        elif phase == Phase.FINISHED.value:
            event = "class.finished"
        elif phase == Phase.CANCELLED.value:
            event = "class.cancelled"
        if event is not None:
            self.run_soon(self.class_event(class_id, event), event)

    # -- delivery -------------------------------------------------------------------------

    async def keep_delivering(self) -> None:
        """Post due deliveries, now and whenever an event is stored or a retry comes due."""
        async with httpx.AsyncClient(
            timeout=TIMEOUT_S, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        ) as client:
            forgotten_at = 0.0
            loop = asyncio.get_running_loop()
            while True:
                if loop.time() - forgotten_at > FORGET_EVERY_S:
                    forgotten_at = loop.time()
                    await self._forget_old()
                try:
                    due = await self.store.claim_due(self._now(), LEASE)
                except Exception as exc:
                    log.warning("webhook deliveries not read: %s", exc)
                    due = []
                if due:
                    await asyncio.gather(*(self._attempt(client, item) for item in due))
                    continue  # there may be more
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def _forget_old(self) -> None:
        """Remove finished deliveries past their time in the log (DELIVERIES_KEPT)."""
        try:
            removed = await self.store.forget_old(self._now())
        except Exception as exc:
            log.warning("old webhook deliveries not removed yet: %s", exc)
            return
        if removed:
            log.info("removed %d webhook deliveries older than the log keeps", removed)

    async def _attempt(self, client: httpx.AsyncClient, due: Due) -> None:
        body = due.body.encode()
        timestamp = int(self._now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "X-Classroom-Event": due.event,
            "X-Classroom-Delivery": str(due.id),
            SIGNATURE_HEADER: signature(due.secret, timestamp, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(due.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempts = due.attempts + 1
        again = None if error is None else retry_at(attempts, self._now())
        if error is None:
            log.info("webhook %s: delivered %s (delivery %s)", due.webhook_id, due.event, due.id)
        elif again is None:
            log.warning(
                "webhook %s: %s (delivery %s) failed after %d attempts: %s",
                due.webhook_id,
                due.event,
                due.id,
                attempts,
                error,
            )
        else:
            log.info(
                "webhook %s: %s (delivery %s) attempt %d: %s; trying again in %.0f s",
                due.webhook_id,
                due.event,
                due.id,
                attempts,
                error,
                (again - self._now()).total_seconds(),
            )
        try:
            await self.store.attempted(due.id, status=status, error=error, retry_at=again)
        except Exception as exc:  # the claim's lease runs out, and the attempt is repeated
            log.warning("webhook delivery %s: attempt not recorded: %s", due.id, exc)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
