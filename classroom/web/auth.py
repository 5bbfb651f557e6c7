"""Instructor accounts: password hashing, sign-in sessions, and who is signed in.

The session cookie holds a random token (HttpOnly, SameSite=Lax, Secure when the
request came over https); the database keeps only its SHA-256, so a leaked
database opens no console. Signing out deletes the row.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.responses import Response

from classroom.db.models import Instructor, InstructorSession

COOKIE = "classroom_session"
SESSION_LIFETIME = timedelta(days=14)
BAD_CREDENTIALS = "That email and password don't match an account."
PASSWORD_TOO_SHORT = "Passwords need at least 10 characters."
MIN_PASSWORD = 10

hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both failures take as long."""
    return hasher.hash(secrets.token_urlsafe(16))


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_instructor(
    db: AsyncSession, email: str, password: str, display_name: str = ""
) -> Instructor:
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise ValueError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD:
        raise ValueError(PASSWORD_TOO_SHORT)
    existing = await db.scalar(select(Instructor).where(Instructor.email == email))
    if existing is not None:
        raise ValueError(f"an instructor with the email {email} already exists")
    instructor = Instructor(
        email=email, password_hash=hasher.hash(password), display_name=display_name
    )
    db.add(instructor)
    await db.flush()
    return instructor


async def authenticate(db: AsyncSession, email: str, password: str) -> Instructor | None:
    instructor = await db.scalar(
        select(Instructor).where(Instructor.email == normalize_email(email))
    )
    stored = instructor.password_hash if instructor is not None else _dummy_hash()
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return instructor


async def open_session(db: AsyncSession, instructor: Instructor) -> str:
    token = secrets.token_urlsafe(32)
    db.add(
        InstructorSession(
            token_hash=_digest(token),
            instructor_id=instructor.id,
            expires_at=datetime.now(UTC) + SESSION_LIFETIME,
        )
    )
    await db.execute(
        delete(InstructorSession).where(InstructorSession.expires_at < datetime.now(UTC))
    )
    return token


async def close_session(db: AsyncSession, token: str) -> None:
    await db.execute(
        delete(InstructorSession).where(InstructorSession.token_hash == _digest(token))
    )


async def signed_in(db: AsyncSession, conn: HTTPConnection) -> Instructor | None:
    """The instructor whose session cookie ``conn`` carries, if it is still valid."""
    token = conn.cookies.get(COOKIE)
    if not token:
        return None
    row = await db.scalar(
        select(InstructorSession).where(InstructorSession.token_hash == _digest(token))
    )
    if row is None or row.expires_at.replace(tzinfo=row.expires_at.tzinfo or UTC) < datetime.now(
        UTC
    ):
        return None
    return await db.get(Instructor, row.instructor_id)


def set_session_cookie(response: Response, conn: HTTPConnection, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=conn.url.scheme == "https",
    )
