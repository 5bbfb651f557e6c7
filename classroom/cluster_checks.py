"""Checks a process makes before it joins others: one line for each thing that is wrong.

Several processes serve one deployment only if they agree: on the database's
schema (each refuses a schema other than the one its code was written for) and
on the secret key (a token one signs, another must accept). Each process writes
a digest of its key with its heartbeat; a process that starts while another,
alive, has written a different digest refuses to start.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from classroom.db.leases import LEASE_MS
from classroom.db.models import Heartbeat


def secret_check(secret_key: str) -> str:
    """A digest of the secret key that says whether two keys are the same, and no more."""
    digest = hmac.new(secret_key.encode(), b"classroom: processes share a key", hashlib.sha256)
    return digest.hexdigest()[:16]


async def cluster_problem(
    engine: AsyncEngine, *, head: str | None, secret_key: str, now_ms: int
) -> str | None:
    """Why this process must not join the others, in one line; None if it may."""
    async with engine.connect() as conn:
        try:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except Exception:
            current = None
        if current != head:
            return (
                f"the database schema is at {current or 'nothing'} and this version of classroom"
                f" needs {head}: run `classroom migrate` with this version first"
            )
        mine = secret_check(secret_key)
        others = await conn.execute(
            select(Heartbeat.node, Heartbeat.secret_check).where(
                Heartbeat.alive_at_ms >= now_ms - LEASE_MS, Heartbeat.secret_check.is_not(None)
            )
        )
        for node, theirs in others.all():
            if theirs != mine:
                return (
                    f"process {node} runs with a different CLASSROOM_SECRET_KEY; every process"
                    " of one deployment must share one"
                )
    return None
