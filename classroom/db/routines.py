"""Stored routines: the built-in library, an instructor's own, and compiling them."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from classroom.db.models import Routine
from classroom.domain.compiler import compile_routine
from classroom.domain.formats.text import parse_routine
from classroom.domain.timeline import Timeline

LIBRARY = Path(__file__).resolve().parent.parent / "library"


@dataclass(frozen=True, slots=True)
class RoutineSource:
    slug: str
    title: str
    source_format: str  # "yaml" or "json"; imported .zwo files are stored as YAML
    source: str


@dataclass(frozen=True, slots=True)
class RoutineSummary:
    row: Routine
    minutes: int
    segments: int


@functools.lru_cache(maxsize=256)
def compile_source(source: str, source_format: str) -> Timeline:
    """The timeline of a stored routine; raises the domain's routine errors.

    Compiling is pure, so a routine's timeline is kept for the next page.
    """
    if source_format == "yaml":
        return compile_routine(parse_routine(source, "yaml"))
    if source_format == "json":
        return compile_routine(parse_routine(source, "json"))
    raise ValueError(f"unknown routine format {source_format!r}")


def library_sources() -> list[RoutineSource]:
    """The built-in routines shipped in ``classroom/library``, by file name."""
    sources = []
    for path in sorted(LIBRARY.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        # Only the title is needed here; the fast C reader is fine for our own files.
        title = str(yaml.load(text, Loader=yaml.CSafeLoader)["title"])
        sources.append(RoutineSource(path.stem, title, "yaml", text))
    return sources


def timeline_for(row: Routine) -> Timeline:
    return compile_source(row.source, row.source_format)


async def seed_library(url: str) -> int:
    """Store (or refresh) the routines of ``classroom/library`` as every instructor's
    built-in ones, in the database at ``url``; returns how many were new."""
    from classroom.db.engine import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            return await seed_builtin(db, library_sources())
    finally:
        await engine.dispose()


async def seed_builtin(db: AsyncSession, sources: Iterable[RoutineSource]) -> int:
    """Store (or refresh) the built-in routines; returns how many were new."""
    added = 0
    for item in sources:
        row = await db.scalar(
            select(Routine).where(Routine.instructor_id.is_(None), Routine.slug == item.slug)
        )
        if row is None:
            db.add(
                Routine(
                    instructor_id=None,
                    slug=item.slug,
                    title=item.title,
                    source_format=item.source_format,
                    source=item.source,
                )
            )
            added += 1
        elif row.source != item.source or row.title != item.title:
            row.source, row.title = item.source, item.title
    await db.flush()
    return added


async def visible_to(db: AsyncSession, instructor_id: int) -> list[RoutineSummary]:
    """The built-in routines and the instructor's own, not archived, by title."""
    rows = await db.scalars(
        select(Routine)
        .where(
            or_(Routine.instructor_id.is_(None), Routine.instructor_id == instructor_id),
            Routine.archived.is_(False),
        )
        .order_by(Routine.title)
    )
    summaries = []
    for row in rows:
        timeline = timeline_for(row)
        minutes = round((timeline.lead_in_ms + timeline.total_ms) / 60_000)
        summaries.append(RoutineSummary(row, minutes, len(timeline.segments)))
    return summaries


async def get_visible(db: AsyncSession, instructor_id: int, routine_id: int) -> Routine | None:
    row = await db.get(Routine, routine_id)
    if row is None or row.archived or row.instructor_id not in (None, instructor_id):
        return None
    return row


def slugify(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKD", title).lower())
    return "-".join(words)[:60].strip("-") or "routine"


async def store_routine(
    db: AsyncSession, instructor_id: int, title: str, source_format: str, source: str
) -> Routine:
    """Save an instructor's routine under a slug of its title not yet taken."""
    compile_source(source, source_format)  # refuse what can't run, before storing it
    base = slugify(title)
    slug, n = base, 1
    while await db.scalar(
        select(Routine.id).where(Routine.instructor_id == instructor_id, Routine.slug == slug)
    ):
        n += 1
        slug = f"{base}-{n}"
    row = Routine(
        instructor_id=instructor_id,
        slug=slug,
        title=title,
        source_format=source_format,
        source=source,
    )
    db.add(row)
    await db.flush()
    return row


async def library_rows(db: AsyncSession, instructor_id: int, *, archived: bool) -> list[Routine]:
    """The routines on an instructor's library page, by title.

    Not ``archived``: the built-in routines and the instructor's own that are in
    use. ``archived``: only the instructor's own archived routines.
    """
    if archived:
        condition = (Routine.instructor_id == instructor_id) & Routine.archived.is_(True)
    else:
        condition = or_(
            Routine.instructor_id.is_(None), Routine.instructor_id == instructor_id
        ) & Routine.archived.is_(False)
    rows = await db.scalars(select(Routine).where(condition).order_by(Routine.title, Routine.id))
    return list(rows)


async def get_viewable(db: AsyncSession, instructor_id: int, routine_id: int) -> Routine | None:
    """A built-in routine, or one of the instructor's own (archived or not)."""
    row = await db.get(Routine, routine_id)
    if row is None or row.instructor_id not in (None, instructor_id):
        return None
    return row


async def get_own(db: AsyncSession, instructor_id: int, routine_id: int) -> Routine | None:
    """One of the instructor's own routines (archived or not); never a built-in."""
    row = await db.get(Routine, routine_id)
    if row is None or row.instructor_id is None or row.instructor_id != instructor_id:
        return None
    return row


async def update_routine(
    db: AsyncSession, row: Routine, title: str, source_format: str, source: str
) -> Routine:
    """Replace an instructor's routine's text; the slug stays, so links keep working.

    Classes already opened keep the timeline they froze when they opened.
    """
    if row.instructor_id is None:
        raise ValueError("a built-in routine can't be changed")
    compile_source(source, source_format)  # refuse what can't run, before storing it
    row.title, row.source_format, row.source = title, source_format, source
    await db.flush()
    return row
