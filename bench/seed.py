"""A benchmark's database, written before its server starts.

An instructor, one routine, classes in the lobby and their participants are
inserted directly: thousands of joins through the join page would take minutes
and are not what a benchmark measures. The participants' tokens are then minted
with the server's secret (``bench.client.mint_tokens``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NO_AUTO_CUES = "{countdown: false, halfway: false, next: false, last_round: false, lead_in: false}"


def routine_yaml(
    title: str,
    block: str,
    duration_s: int,
    cues: Sequence[tuple[int, str]] = (),
    score: str | None = None,
) -> str:
    """One work segment with authored ``cues`` (second, text) and nothing generated."""
    lines = [
        f"title: {title}",
        "lead_in: 0",
        f"auto_cues: {NO_AUTO_CUES}",
        "blocks:",
        "  - type: work",
        f"    name: {block}",
        f"    duration: {duration_s}s",
    ]
    if score:
        lines.append(f"    score: {score}")
    if cues:
        lines.append("    cues:")
    for seconds, text in cues:
        lines += [f'      - at: "{seconds // 60}:{seconds % 60:02d}"', f'        text: "{text}"']
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Instructor:
    """Who signs in, and the routine the benchmark's classes run."""

    email: str
    password: str
    slug: str
    title: str
    yaml: str


@dataclass
class Seeded:
    """What was written: the classes, and the first class's participants and teams."""

    class_ids: list[int]
    participants: list[int] = field(default_factory=list)  # in the order of their number
    teams: list[int] = field(default_factory=list)
    team_of: dict[int, int | None] = field(default_factory=dict)

    @property
    def class_id(self) -> int:
        return self.class_ids[0]


def migrated_sqlite(path: Path) -> str:
    """A fresh SQLite database at ``path``, migrated; its URL."""
    from classroom.db.migrate import upgrade

    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


async def seed(
    url: str,
    who: Instructor,
    *,
    classes: int = 1,
    participants: int = 0,
    teams: int = 0,
    started_at_ms: int | None = None,
) -> Seeded:
    """The instructor, the routine and ``classes`` classes, in the lobby (or started at
    ``started_at_ms``); the first has ``participants`` spread over ``teams`` teams."""
    from sqlalchemy import select

    from classroom.db.classes import ClassStore, open_class
    from classroom.db.engine import make_engine, make_sessionmaker
    from classroom.db.models import Routine
    from classroom.db.routines import RoutineSource, seed_builtin
    from classroom.web.auth import create_instructor

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions.begin() as db:
            instructor = await create_instructor(db, who.email, who.password, "Bench")
            await seed_builtin(db, [RoutineSource(who.slug, who.title, "yaml", who.yaml)])
            routine = await db.scalar(select(Routine).where(Routine.slug == who.slug))
            assert routine is not None
            now = int(time.time() * 1000)
            ids = [(await open_class(db, instructor.id, routine, now_ms=now)).id]
            for _ in range(classes - 1):
                ids.append((await open_class(db, instructor.id, routine, now_ms=now)).id)
            seeded = Seeded(ids)
            if participants:
                await add_participants(db, seeded, participants, teams)
        if started_at_ms is not None:
            store = ClassStore(sessions)
            for class_id in ids:
                await start(store, class_id, started_at_ms)
        return seeded
    finally:
        await engine.dispose()


async def start(store: Any, class_id: int, at_ms: int) -> None:
    """Start a class at ``at_ms`` through the server's own state machine and store."""
    from classroom.domain import commands, session

    loaded = await store.load(class_id)
    assert loaded is not None
    outcome = session.handle(loaded.timeline, loaded.state, commands.Start(), at_ms)
    await store.persist(class_id, loaded.last_seq, outcome.state, outcome.events)


async def add_participants(db: Any, seeded: Seeded, count: int, teams: int) -> None:
    """``count`` participants ("athlete-N", number N) in the first class, spread over
    ``teams`` teams (none if 0)."""
    from sqlalchemy import insert, select

    from classroom.db.models import Participant, Team
    from classroom.domain.teams import default_team_names, team_specs

    class_id = seeded.class_id
    if teams:
        specs = team_specs(default_team_names(teams))
        await db.execute(
            insert(Team),
            [
                {
                    "class_id": class_id,
                    "name": spec.name,
                    "colour": spec.look.colour,
                    "letter": spec.look.letter,
                    "pattern": spec.look.pattern,
                    "position": position,
                }
                for position, spec in enumerate(specs)
            ],
        )
        seeded.teams = list(
            await db.scalars(
                select(Team.id).where(Team.class_id == class_id).order_by(Team.position)
            )
        )
    team_ids = seeded.teams
    await db.execute(
        insert(Participant),
        [
            {
                "class_id": class_id,
                "nickname": f"athlete-{i + 1}",
                "level": "standard",
                "number": i + 1,
                "team_id": team_ids[i % len(team_ids)] if team_ids else None,
            }
            for i in range(count)
        ],
    )
    rows = (
        await db.execute(
            select(Participant.id, Participant.team_id)
            .where(Participant.class_id == class_id)
            .order_by(Participant.number)
        )
    ).all()
    seeded.participants = [pid for pid, _ in rows]
    seeded.team_of = {pid: team for pid, team in rows}
