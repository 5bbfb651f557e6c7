"""Stored integrations: API tokens, webhooks, and the deliveries of webhook events.

An API token is random and only its SHA-256 is kept, like a session's or a bridge's.
A webhook's secret signs what is posted to it, so it is kept as it is.

Deliveries are an outbox: an event is stored once per webhook that wants it, and a
delivery loop in each process claims the ones that are due (a claim moves the next
attempt a lease ahead, and only one process's update can match the old time), posts
them, and records how each attempt went.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classroom.db.heart import digest
from classroom.db.models import ApiToken, Webhook, WebhookDelivery, utcnow
from classroom.domain.errors import ValidationError
from classroom.domain.names import one_line

TOKEN_PREFIX = "api_"
SECRET_PREFIX = "whsec_"
LABEL_MAX = 60
TOKEN_LABEL_EMPTY = "Name the token after what will use it, such as “Booking system”."
MAX_TOKENS = 50
TOO_MANY_TOKENS = f"An instructor can have at most {MAX_TOKENS} API tokens; revoke one first."
MAX_WEBHOOKS = 20
TOO_MANY_WEBHOOKS = f"An instructor can have at most {MAX_WEBHOOKS} webhooks; remove one first."
DELIVERIES_KEPT = timedelta(days=30)
"""Finished deliveries are kept this long for the console's delivery log."""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a presented API token allows: whose resources, and whether it may change them."""

    token_id: int
    instructor_id: int
    can_write: bool


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery claimed for an attempt: where to post what, signed with which secret."""

    id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    body: str
    attempts: int  # before this one


class IntegrationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # -- API tokens -----------------------------------------------------------------------

    async def add_token(
        self, instructor_id: int, label: str, *, can_write: bool
    ) -> tuple[ApiToken, str]:
        """A new token for an instructor, and its text (shown once; only its hash is kept)."""
        name = one_line(label)[:LABEL_MAX]
        if not name:
            raise ValidationError(TOKEN_LABEL_EMPTY)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._sessions.begin() as db:
            if len(await self._live_tokens(db, instructor_id)) >= MAX_TOKENS:
                raise ValidationError(TOO_MANY_TOKENS)
            row = ApiToken(
                instructor_id=instructor_id,
                label=name,
                token_hash=digest(token),
                can_write=can_write,
            )
            db.add(row)
        return row, token

    async def tokens(self, instructor_id: int) -> list[ApiToken]:
        async with self._sessions() as db:
            return await self._live_tokens(db, instructor_id)

    @staticmethod
    async def _live_tokens(db: AsyncSession, instructor_id: int) -> list[ApiToken]:
        rows = await db.scalars(
            select(ApiToken)
            .where(ApiToken.instructor_id == instructor_id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id)
        )
        return list(rows)

    async def revoke_token(self, instructor_id: int, token_id: int) -> bool:
        async with self._sessions.begin() as db:
            result: Any = await db.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token_id,
                    ApiToken.instructor_id == instructor_id,
                    ApiToken.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            return bool(result.rowcount)

    async def grant(self, token: str) -> TokenGrant | None:
        """What a presented token allows; None for an unknown or revoked one."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        async with self._sessions.begin() as db:
            row = await db.scalar(
                select(ApiToken).where(
                    ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None)
                )
            )
            if row is None:
                return None
            now = utcnow()
            last = row.last_used_at
            # Marked at most once a minute: a busy integration shouldn't write every call.
            if last is None or _aware(last) < now - timedelta(minutes=1):
                row.last_used_at = now
            return TokenGrant(row.id, row.instructor_id, row.can_write)

    # -- webhooks -------------------------------------------------------------------------

    async def add_webhook(
        self, instructor_id: int, url: str, events: Sequence[str]
    ) -> tuple[Webhook, str]:
        """A new webhook, and its signing secret (shown once here, kept to sign with)."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        async with self._sessions.begin() as db:
            if len(await self._live_webhooks(db, instructor_id)) >= MAX_WEBHOOKS:
                raise ValidationError(TOO_MANY_WEBHOOKS)
            row = Webhook(
                instructor_id=instructor_id, url=url, events=" ".join(events), secret=secret
            )
            db.add(row)
        return row, secret

    async def webhooks(self, instructor_id: int) -> list[Webhook]:
        async with self._sessions() as db:
            return await self._live_webhooks(db, instructor_id)

    async def webhook(self, instructor_id: int, webhook_id: int) -> Webhook | None:
        async with self._sessions() as db:
            row = await db.get(Webhook, webhook_id)
        if row is None or row.instructor_id != instructor_id or row.revoked_at is not None:
            return None
        return row

    @staticmethod
    async def _live_webhooks(db: AsyncSession, instructor_id: int) -> list[Webhook]:
        rows = await db.scalars(
            select(Webhook)
            .where(Webhook.instructor_id == instructor_id, Webhook.revoked_at.is_(None))
            .order_by(Webhook.id)
        )
        return list(rows)

    async def remove_webhook(self, instructor_id: int, webhook_id: int) -> bool:
        """Stop a webhook: nothing more is posted to it, and its pending deliveries end."""
        async with self._sessions.begin() as db:
            result: Any = await db.execute(
                update(Webhook)
                .where(
                    Webhook.id == webhook_id,
                    Webhook.instructor_id == instructor_id,
                    Webhook.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            if not result.rowcount:
                return False
            await db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.state == "pending")
                .values(state="failed", last_error="the webhook was removed", finished_at=utcnow())
            )
            return True

    # -- deliveries -----------------------------------------------------------------------

    async def enqueue(self, instructor_id: int, event: str, body: str) -> int:
        """Store ``event`` for each of the instructor's webhooks that wants it."""
        async with self._sessions.begin() as db:
            hooks = await self._live_webhooks(db, instructor_id)
            wanted = [hook for hook in hooks if event in hook.events.split()]
            for hook in wanted:
                db.add(WebhookDelivery(webhook_id=hook.id, event=event, body=body))
            return len(wanted)

    async def claim_due(self, now: datetime, lease: timedelta, limit: int = 20) -> list[Due]:
        """Deliveries due by ``now``, each claimed for this process for ``lease``."""
        async with self._sessions.begin() as db:
            found = (
                await db.execute(
                    select(WebhookDelivery, Webhook)
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(
                        WebhookDelivery.state == "pending",
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(limit)
                )
            ).all()
        claimed = []
        for delivery, hook in found:
            async with self._sessions.begin() as db:
                result: Any = await db.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == delivery.id,
                        WebhookDelivery.state == "pending",
                        WebhookDelivery.next_attempt_at == delivery.next_attempt_at,
                    )
                    .values(next_attempt_at=now + lease)
                )
            if result.rowcount:  # another process's update didn't get there first
                claimed.append(
                    Due(
                        delivery.id,
                        hook.id,
                        hook.url,
                        hook.secret,
                        delivery.event,
                        delivery.body,
                        delivery.attempts,
                    )
                )
        return claimed

    async def attempted(
        self,
        delivery_id: int,
        *,
        status: int | None,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """Record an attempt: delivered (a 2xx), to be retried at ``retry_at``, or failed."""
        now = utcnow()
        if status is not None and 200 <= status < 300:
            state, finished, next_at = "delivered", now, now
        elif retry_at is None:
            state, finished, next_at = "failed", now, now
        else:
            state, finished, next_at = "pending", None, retry_at
        async with self._sessions.begin() as db:
            await db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(
                    state=state,
                    attempts=WebhookDelivery.attempts + 1,
                    last_status=status,
                    last_error=None if error is None else error[:300],
                    next_attempt_at=next_at,
                    finished_at=finished,
                )
            )

    async def deliveries(
        self, instructor_id: int, webhook_id: int | None = None, limit: int = 50
    ) -> list[WebhookDelivery]:
        """The latest deliveries of the instructor's webhooks (or of one), newest first."""
        query = (
            select(WebhookDelivery)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(Webhook.instructor_id == instructor_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
        if webhook_id is not None:
            query = query.where(WebhookDelivery.webhook_id == webhook_id)
        async with self._sessions() as db:
            return list(await db.scalars(query))

    async def forget_old(self, now: datetime) -> int:
        """Remove finished deliveries older than :data:`DELIVERIES_KEPT`."""
        async with self._sessions.begin() as db:
            result: Any = await db.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.state != "pending",
                    WebhookDelivery.created_at < now - DELIVERIES_KEPT,
                )
            )
            return int(result.rowcount or 0)


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)
