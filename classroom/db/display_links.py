"""A class's wall display links, and whether a display token still opens its class.

The console hands out display links; each is a row here, named by its token,
so the instructor can revoke one without touching the others. A wall paired
to a room gets a token naming the wall instead: it opens the class only while
the wall is still paired to the class's room and not revoked.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.db import rooms as rooms_db
from classroom.db.models import Class, Display, DisplayLink


async def create(db: AsyncSession, class_id: int, now_ms: int) -> DisplayLink:
    link = DisplayLink(class_id=class_id, created_at=rooms_db.stamp(now_ms))
    db.add(link)
    await db.flush()
    return link


async def of_class(db: AsyncSession, class_id: int) -> list[DisplayLink]:
    """Every link of the class, revoked ones too, oldest first."""
    rows = await db.scalars(
        select(DisplayLink).where(DisplayLink.class_id == class_id).order_by(DisplayLink.id)
    )
    return list(rows)


async def revoke(db: AsyncSession, class_id: int, link_id: int, now_ms: int) -> bool:
    """Revoke a link of the class; False if the class has no such link, or it was revoked."""
    link = await db.get(DisplayLink, link_id)
    if link is None or link.class_id != class_id or link.revoked_at is not None:
        return False
    link.revoked_at = rooms_db.stamp(now_ms)
    return True


async def opens(db: AsyncSession, class_id: int, link_id: int | None, wall_id: int | None) -> bool:
    """Whether a display token of ``class_id`` from this link or wall still opens it.

    A token that names neither (made before links could be revoked) opens its
    class until it expires.
    """
    if link_id is not None:
        link = await db.get(DisplayLink, link_id)
        return link is not None and link.class_id == class_id and link.revoked_at is None
    if wall_id is not None:
        wall = await db.get(Display, wall_id)
        if wall is None or rooms_db.retired(wall) or not rooms_db.paired(wall):
            return False
        row = await db.get(Class, class_id)
        return row is not None and row.room_id is not None and row.room_id == wall.room_id
    return True
