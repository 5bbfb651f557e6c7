"""Each live class's heart rates, in the process that owns the class.

Samples come from phones (Web Bluetooth) and from a room's bridge, about once a
second per strap, already parsed and validated where they arrived. Here each one
moves its person's :class:`~classroom.domain.heart.Effort` (zone, % of max, effort
points, the raise rule), answers the phone with its own figures, and asks the hub
for the wall's tiles, which go out at most once a second however many samples
came. Every five seconds the closed five-second windows and the changed totals
are written in one transaction; a crash loses at most those seconds, and the next
owner carries on from the stored totals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from classroom.db.heart import HeartStore, Profile, SampleRow, TotalRow
from classroom.db.scores import Roster
from classroom.domain import heart
from classroom.domain.heart import Effort, HeartRules
from classroom.hub.hub import Hub

log = logging.getLogger(__name__)

TILES_INTERVAL_S = 1.0
"""The wall's tiles change at most once a second, however many samples come."""
WINDOW_MS = 5_000
"""Samples are stored as one row per person per five seconds (mean and peak)."""
FLUSH_EVERY_S = 1.0
"""How often the windows that are over are written, with their people's totals. Each
person's five seconds start at an offset of their own (:func:`window_start`), so each
write holds a fifth of a class, not all of it at once every five seconds."""
STALE_MS = 10_000
"""A tile whose strap has said nothing this long is shown as lost."""
DEFAULT_AGE = 35
"""Whose max is assumed for a person who gave neither an age nor a max."""

WALL = frozenset({"display"})
INSTRUCTOR = frozenset({"instructor"})


@dataclass(slots=True)
class _Person:
    effort: Effort
    show_bpm: bool
    source: str  # how the max was found: "entered", "age", "raised" or "assumed"
    window_at: int = -1  # the start of the five seconds being gathered
    window: list[int] = field(default_factory=list)
    beats: int = 0  # the sum and count of every sample, for the class's mean
    samples: int = 0
    dirty: bool = False  # totals changed since they were last written
    due: bool = False  # a window closed since: the totals go with its row


@dataclass(slots=True)
class _Class:
    people: dict[int, _Person] = field(default_factory=dict)
    roster: Roster | None = None
    profiles: dict[int, Profile] = field(default_factory=dict)  # as read with the class
    rows: list[SampleRow] = field(default_factory=list)


def window_start(participant_id: int, at_ms: int) -> int:
    """The start of the five seconds ``at_ms`` falls in, for this person: everyone's are
    five seconds long, each at an offset of its own, so that they don't all end at once."""
    offset = participant_id * 997 % WINDOW_MS
    return at_ms - (at_ms - offset) % WINDOW_MS


def max_of(profile: Profile, rules: HeartRules) -> tuple[int, str]:
    """A person's max heart rate, and where it came from."""
    if profile.max_hr is not None:
        base, source = profile.max_hr, "entered"
    elif profile.age is not None:
        base, source = heart.max_from_age(profile.age, rules.formula), "age"
    else:
        base, source = heart.max_from_age(DEFAULT_AGE, rules.formula), "assumed"
    if profile.raised_max_hr is not None and profile.raised_max_hr > base:
        return profile.raised_max_hr, "raised"
    return base, source


class HeartKeeper:
    def __init__(
        self,
        store: HeartStore,
        rules: HeartRules,
        roster: Callable[[int], Awaitable[Roster]],
        now_ms: Callable[[], int],
        hub: Hub | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        self._roster = roster
        self._hub = hub
        self._classes: dict[int, _Class] = {}
        self._loading: dict[int, asyncio.Future[_Class]] = {}
        self._renders: dict[int, Callable[[], list[tuple[dict[str, Any], frozenset[str]]]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._now_ms = now_ms

    # -- samples -------------------------------------------------------------------------

    async def take(
        self, class_id: int, participant_id: int, bpm: int, at_ms: int, *, counting: bool
    ) -> dict[str, Any]:
        """One validated sample of a person's heart; their own figures, for their phone."""
        held = await self._class(class_id)
        person = held.people.get(participant_id) or await self._newcomer(held, participant_id)
        # Two samples handled within one millisecond (after a stall) are still two.
        at_ms = max(at_ms, (person.effort.at_ms or at_ms) + 1)
        effort, raised = heart.take(person.effort, self.rules, bpm, at_ms, counting=counting)
        if effort is person.effort:
            return self.own(person, None)
        self._gather(held, participant_id, person, bpm, at_ms)
        person.effort, person.dirty = effort, True
        person.beats += bpm
        person.samples += 1
        if raised is not None:
            person.source = "raised"
            self._in_background(self.store.raise_max(participant_id, raised))
        self._changed(class_id)
        self._flushing()
        return self.own(person, raised)

    async def now(self, class_id: int, participant_id: int) -> dict[str, Any]:
        """A person's own figures as they stand (none yet: a blank)."""
        held = await self._class(class_id)
        person = held.people.get(participant_id) or await self._newcomer(held, participant_id)
        return self.own(person, None)

    @staticmethod
    def own(person: _Person, raised: int | None) -> dict[str, Any]:
        effort = person.effort
        return {
            "type": "hr",
            "bpm": effort.bpm,
            "percent": effort.percent,
            "zone": effort.zone,
            "points": round(effort.points, 1),
            "max_hr": effort.max_hr,
            "max_from": person.source,
            "raised": raised,
        }

    def _gather(self, held: _Class, pid: int, person: _Person, bpm: int, at_ms: int) -> None:
        window_at = window_start(pid, at_ms)
        if window_at != person.window_at:
            self._close(held, pid, person)
            person.window_at = window_at
        person.window.append(bpm)

    @staticmethod
    def _close(held: _Class, pid: int, person: _Person) -> None:
        """The person's five seconds are over: their row, and their totals, are due."""
        if person.window:
            mean = round(sum(person.window) / len(person.window))
            held.rows.append(SampleRow(pid, person.window_at, mean, max(person.window)))
            person.window = []
            person.due = True

    # -- people ------------------------------------------------------------------------

    async def _class(self, class_id: int) -> _Class:
        held = self._classes.get(class_id)
        if held is not None:
            return held
        loading = self._loading.get(class_id)
        if loading is None:
            loading = self._loading[class_id] = asyncio.ensure_future(self._load(class_id))
            loading.add_done_callback(lambda _: self._loading.pop(class_id, None))
        return await asyncio.shield(loading)

    async def _load(self, class_id: int) -> _Class:
        """A class's hearts as stored: each person's totals carry on (after a failover)."""
        profiles = await self.store.profiles(class_id)
        held = _Class(roster=await self._roster(class_id), profiles=profiles)
        for pid, total in (await self.store.totals(class_id)).items():
            person = self._new_person(profiles.get(pid, Profile()))
            z = [*total.zone_ms[:6], 0, 0, 0, 0, 0, 0]
            person.effort = Effort(
                max_hr=max(total.max_hr, person.effort.max_hr),
                points=total.points,
                zone_ms=(z[0], z[1], z[2], z[3], z[4], z[5]),
                peak_bpm=total.peak_bpm,
            )
            held.people[pid] = person
        self._classes[class_id] = held
        return held

    async def _newcomer(self, held: _Class, participant_id: int) -> _Person:
        """A person whose heart this class hasn't had yet: their profile was read with
        the class's if they were in it then, else it is read now."""
        profile = held.profiles.get(participant_id)
        if profile is None:
            known = held.roster is not None and participant_id in held.roster.people
            profile = Profile() if known else await self.store.profile(participant_id)
        person = held.people[participant_id] = self._new_person(profile)
        return person

    def _new_person(self, profile: Profile) -> _Person:
        max_hr, source = max_of(profile, self.rules)
        return _Person(effort=Effort(max_hr=max_hr), show_bpm=profile.show_bpm, source=source)

    async def profile_changed(self, class_id: int, participant_id: int) -> dict[str, Any]:
        """A person gave their age or max, or changed who sees their bpm."""
        held = await self._class(class_id)
        profile = await self.store.profile(participant_id)
        max_hr, source = max_of(profile, self.rules)
        person = held.people.get(participant_id)
        if person is None:
            person = held.people[participant_id] = self._new_person(profile)
        else:
            person.effort = dataclasses.replace(person.effort, max_hr=max_hr)
            person.show_bpm, person.source, person.dirty = profile.show_bpm, source, True
        self._changed(class_id)
        return self.own(person, None)

    async def roster_changed(self, class_id: int) -> None:
        held = self._classes.get(class_id)
        if held is not None:
            held.roster = await self._roster(class_id)
            self._changed(class_id)

    # -- the wall's tiles --------------------------------------------------------------------

    def _changed(self, class_id: int) -> None:
        if self._hub is None:
            return
        render = self._renders.get(class_id)
        if render is None:
            render = self._renders[class_id] = functools.partial(self.tiles, class_id)
        self._hub.coalesce_audiences(
            class_id, "heart", render, interval_s=TILES_INTERVAL_S, everywhere=True
        )

    def tiles(self, class_id: int) -> list[tuple[dict[str, Any], frozenset[str]]]:
        """The ``heart`` messages: the wall's (names hidden as asked, bpm only where
        allowed) and the instructor's (every bpm, and who needs attention)."""
        held = self._classes.get(class_id)
        if held is None:
            return []
        roster = held.roster or Roster(people={}, teams=())
        now = self._now_ms()
        public: list[dict[str, Any]] = []
        instructor: list[dict[str, Any]] = []
        team_points: dict[int, list[float]] = {}
        for pid, person in held.people.items():
            who, effort = roster.people.get(pid), person.effort
            if who is None or effort.at_ms is None:
                continue  # removed, or no strap heard yet
            stale = now - effort.at_ms > STALE_MS
            tile = {
                "name": who.shown_name(public=True),
                "team": who.team_id,
                "bpm": effort.bpm if person.show_bpm else None,
                "percent": effort.percent,
                "zone": effort.zone,
                "points": round(effort.points, 1),
                "stale": stale,
            }
            public.append(tile)
            instructor.append(
                {
                    **tile,
                    "id": pid,
                    "name": who.name,
                    "bpm": effort.bpm,
                    "attention": not stale and heart.needs_attention(effort, now),
                    "high_s": heart.high_for_ms(effort, now) // 1000,
                }
            )
            if who.team_id is not None:
                team_points.setdefault(who.team_id, []).append(effort.points)
        for team in roster.teams:
            team_points.setdefault(team.id, [])
        names = {team.id: team.name for team in roster.teams}
        teams = [
            {
                "team": row.team_id,
                "name": names.get(row.team_id, ""),
                "members": row.members,
                "points": round(row.points, 1),
                "per_member": round(row.per_member, 1),
            }
            for row in heart.team_effort(team_points)
        ]
        public.sort(key=lambda tile: str(tile["name"]).casefold())
        instructor.sort(key=lambda tile: str(tile["name"]).casefold())
        return [
            ({"type": "heart", "tiles": public, "teams": teams}, WALL),
            ({"type": "heart", "tiles": instructor, "teams": teams}, INSTRUCTOR),
        ]

    # -- storing -------------------------------------------------------------------------

    def _flushing(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_EVERY_S)
        for class_id in list(self._classes):
            await self.flush(class_id)
        if any(
            held.rows or any(p.window for p in held.people.values())
            for held in self._classes.values()
        ):
            self._flushing()  # a window still open: stored once it is over

    async def flush(self, class_id: int, *, closing: bool = False) -> None:
        """Write a class's windows that are over, and changed totals (``closing``: every
        window, over or not)."""
        held = self._classes.get(class_id)
        if held is None:
            return
        now = self._now_ms()
        for pid, person in held.people.items():
            if closing or person.window_at + WINDOW_MS <= now:
                self._close(held, pid, person)
        rows, held.rows = held.rows, []
        totals = []
        for pid, person in held.people.items():
            if person.dirty and (person.due or closing or not person.window):
                person.dirty = person.due = False
                effort = person.effort
                mean = round(person.beats / person.samples) if person.samples else 0
                totals.append(
                    TotalRow(
                        pid, effort.points, effort.zone_ms, effort.max_hr, effort.peak_bpm, mean
                    )
                )
        try:
            await self.store.write(class_id, rows, totals)
        except Exception:
            log.exception("heart rates of class %s not stored", class_id)
            held.rows[:0] = rows  # tried again with the next flush
            for total in totals:
                if total.participant_id in held.people:
                    held.people[total.participant_id].dirty = True

    async def forget(self, class_id: int) -> None:
        """The class has ended here (or moved): store what is left, then let it go."""
        await self.flush(class_id, closing=True)
        self._classes.pop(class_id, None)
        self._renders.pop(class_id, None)

    async def close(self) -> None:
        for class_id in list(self._classes):
            await self.forget(class_id)
        if self._flusher is not None:
            self._flusher.cancel()

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a heart profile was not stored: %s", task.exception())
