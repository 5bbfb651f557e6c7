"""The schema, as SQLAlchemy 2 declarative models.

Alembic migrations (``migrations/versions``) are the only way this schema
changes in a database; a test checks that the models and the migrations agree.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Instructor(Base):
    __tablename__ = "instructors"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InstructorSession(Base):
    """A signed-in console. The cookie holds a random token; we store its hash."""

    __tablename__ = "instructor_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructors.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Room(Base):
    """A studio space of an instructor's; displays paired to it follow its classes."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("instructor_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructors.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Display(Base):
    """A wall screen, paired to a room or waiting to be (see classroom.domain.rooms).

    Its cookie holds a random secret; we store its hash. Its pairing code stays
    on the row once used, so a second use can be told apart from a typo.
    """

    __tablename__ = "displays"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pairing_code: Mapped[str] = mapped_column(String(12), unique=True)
    code_expires_at: Mapped[datetime]
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), index=True
    )
    label: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paired_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class DisplayLink(Base):
    """A wall display link of one class, from the console; revoked one by one.

    The link's token names this row, so a revoked link opens nothing, while the
    class's other links keep working.
    """

    __tablename__ = "display_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Routine(Base):
    """A reusable workout, kept as its source text (YAML, JSON or .zwo)."""

    __tablename__ = "routines"
    __table_args__ = (
        UniqueConstraint("instructor_id", "slug"),
        # NULLs are distinct in the constraint above, so built-ins need their own.
        Index(
            "uq_routines_builtin_slug",
            "slug",
            unique=True,
            sqlite_where=text("instructor_id IS NULL"),
            postgresql_where=text("instructor_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instructor_id: Mapped[int | None] = mapped_column(
        ForeignKey("instructors.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(120))
    source_format: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Class(Base):
    """One live run of a routine.

    Its compiled timeline is frozen into :class:`ClassTimeline`, apart from this
    row, because the row is rewritten on every transition (every cue) and the
    timeline can be large.
    """

    __tablename__ = "classes"
    __table_args__ = (Index("ix_classes_phase", "phase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    join_code: Mapped[str] = mapped_column(String(12), unique=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructors.id", ondelete="CASCADE"), index=True
    )
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), index=True
    )
    routine_id: Mapped[int | None] = mapped_column(ForeignKey("routines.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(120))
    planned_ms: Mapped[int] = mapped_column(BigInteger)  # lead-in and timeline, as planned
    phase: Mapped[str] = mapped_column(String(16), default="lobby")
    state: Mapped[dict[str, Any]]
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # Set by the instructor in the lobby (and later): see classroom.domain.teams.
    join_locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Who runs the class now (see classroom/live/leases.py): a process's name, and a
    # fencing token that goes up at every change of owner. Every write of the owner
    # names its token. ``released_at_ms``: when an owner last handed the class back.
    owner_node: Mapped[str | None] = mapped_column(String(64))
    owner_token: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    released_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # Names the class's event history: a screen resumes within one epoch, on any process.
    epoch: Mapped[str] = mapped_column(
        String(16), default=lambda: secrets.token_hex(4), server_default=""
    )
    team_mode: Mapped[str] = mapped_column(String(16), default="total", server_default="total")
    best_n: Mapped[int] = mapped_column(Integer, default=3, server_default=text("3"))
    # When the class is due to start in its room (displays show it as the next class).
    scheduled_at: Mapped[datetime | None]


class ClassTimeline(Base):
    """The timeline a class runs: its routine, compiled and frozen when it opened."""

    __tablename__ = "class_timelines"

    class_id: Mapped[int] = mapped_column(
        ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True
    )
    timeline: Mapped[dict[str, Any]]


class ClassEvent(Base):
    """The class's event log: every transition, numbered, written before it is sent.

    Keyed by class and number, and on SQLite stored without a rowid: one b-tree
    (and one page written) per cue instead of a table and an index.
    """

    __tablename__ = "class_events"
    __table_args__ = {"sqlite_with_rowid": False}

    class_id: Mapped[int] = mapped_column(
        ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("class_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    colour: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)
    letter: Mapped[str] = mapped_column(String(1), default="", server_default="")
    pattern: Mapped[str] = mapped_column(String(16), default="", server_default="")


class TeamTemplate(Base):
    """A set of team names an instructor saved to set up later classes with."""

    __tablename__ = "team_templates"
    __table_args__ = (UniqueConstraint("instructor_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instructor_id: Mapped[int] = mapped_column(ForeignKey("instructors.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    teams: Mapped[list[str]] = mapped_column(JSON)


class Participant(Base):
    """Someone in a class. ``device_id`` (a cookie) finds them again after a reload,
    and links their classes for "my classes", without an account."""

    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("class_id", "nickname"),
        Index("ix_participants_device_id", "device_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    nickname: Mapped[str] = mapped_column(String(24))
    level: Mapped[str] = mapped_column(String(16), default="standard")
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    number: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    device_id: Mapped[str | None] = mapped_column(String(64))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    removed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Score(Base):
    """One logged input. ``client_id`` makes it count exactly once.

    An undo is an input too (``undoes`` names the one it takes back, which is
    then ``withdrawn``). ``flagged`` marks an implausible input for the instructor.
    """

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("participant_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    segment_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rounds: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    division: Mapped[str] = mapped_column(String(16), default="rx", server_default="rx")
    elapsed_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    undoes: Mapped[str] = mapped_column(String(64), default="", server_default="")
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Correction(Base):
    """The instructor's correction of a participant's result for a segment.

    The latest correction replaces the result (``deleted``: the result is
    removed); every one is kept, with who made it and when, as the audit.
    """

    __tablename__ = "score_corrections"
    __table_args__ = (Index("ix_score_corrections_class_id", "class_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    segment_index: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    previous: Mapped[str] = mapped_column(String(40), default="")  # the result as shown before
    instructor_id: Mapped[int | None] = mapped_column(
        ForeignKey("instructors.id", ondelete="SET NULL")
    )
    corrected_at: Mapped[datetime] = mapped_column(default=utcnow)


class Heartbeat(Base):
    """The last instant each server process was known alive.

    After a crash, the next start reads it to know when the server went down, so
    classes set to pause on a restart stop where they had got to.
    """

    __tablename__ = "heartbeats"

    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    alive_at_ms: Mapped[int] = mapped_column(BigInteger)
    # A digest of the process's secret key (never the key): processes that sign
    # tokens for one another must share it (see classroom/cluster_checks.py).
    secret_check: Mapped[str | None] = mapped_column(String(16))


class HeartProfile(Base):
    """What a phone told us about its owner's heart, kept with its device history
    (like "my classes", without an account): an age or a max heart rate they entered,
    the max raised by the raise rule (classroom.domain.heart), and whether walls may
    show their bpm. "Delete my history" deletes it."""

    __tablename__ = "heart_profiles"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    age: Mapped[int | None] = mapped_column(Integer)
    max_hr: Mapped[int | None] = mapped_column(Integer)  # entered by the person
    raised_max_hr: Mapped[int | None] = mapped_column(Integer)  # raised as they trained
    show_bpm: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HeartSample(Base):
    """A participant's heart rate over five seconds of a class: the mean and the peak.

    Kept ``CLASSROOM_HEART_RATE_RETENTION_DAYS`` days; :class:`HeartTotal` stays."""

    __tablename__ = "heart_samples"
    __table_args__ = (Index("ix_heart_samples_class_id", "class_id"),)

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    at_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    bpm: Mapped[int] = mapped_column(Integer)
    peak_bpm: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HeartTotal(Base):
    """A participant's effort in a class: points, time per zone, max and peak."""

    __tablename__ = "heart_totals"
    __table_args__ = (Index("ix_heart_totals_class_id", "class_id"),)

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    points: Mapped[float] = mapped_column(Float, default=0.0)
    zone_ms: Mapped[list[int]] = mapped_column(JSON)  # time in zones 0..5
    max_hr: Mapped[int] = mapped_column(Integer)
    peak_bpm: Mapped[int] = mapped_column(Integer, default=0)
    mean_bpm: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HeartBridge(Base):
    """A room's heart-rate receiver (``classroom hr-bridge``): its token, stored hashed."""

    __tablename__ = "heart_bridges"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class BridgeStrap(Base):
    """A strap a room's bridge heard lately, with its last bpm: the list phones claim from."""

    __tablename__ = "bridge_straps"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    strap: Mapped[str] = mapped_column(String(64), primary_key=True)
    bpm: Mapped[int] = mapped_column(Integer)
    seen_at_ms: Mapped[int] = mapped_column(BigInteger)


class StrapClaim(Base):
    """A participant's claim of a strap their room's bridge hears, for one class."""

    __tablename__ = "strap_claims"
    __table_args__ = (
        UniqueConstraint("class_id", "strap"),
        UniqueConstraint("participant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    strap: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A token other software uses on ``/api/v1`` for an instructor; we store its hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructors.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(60))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    can_write: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Webhook(Base):
    """Where an instructor's class events are posted. The secret signs each delivery, so
    it is kept as it is (the receiver holds the same one)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructors.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[str] = mapped_column(String(200))  # space-separated event names
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event for one webhook: the body as sent, and how its attempts went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default="pending")  # delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
