"""The console's routine pages, against the real server: library, timeline, builder, uploads.

Every refusal is checked twice: by what the instructor sees, and by the
routines table being exactly as it was.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import ClassTimeline, Routine
from classroom.domain.limits import MAX_FILE_BYTES
from classroom.web.auth import create_instructor
from classroom.web.csrf import CSRF_FAILED
from classroom.web.routines import BUILT_IN_READ_ONLY, NO_SUCH_ROUTINE
from tests.conftest import LiveServer
from tests.helpers import CSRF, csrf, sign_in

OTHER_EMAIL = "other@example.com"
OTHER_PASSWORD = "another long password"

SHORT_YAML = """\
title: Leg day
description: Squats and lunges, short and sharp
blocks:
  - type: warmup
    duration: 1:00
  - type: intervals
    rounds: 3
    work: 0:30
    rest: 0:15
    exercises:
      - {name: Squats, beginner: Chair squats, advanced: Jump squats}
  - type: cooldown
    duration: 2:00
"""


# -- helpers -------------------------------------------------------------------------


class FormFields(HTMLParser):
    """The fields of one form (by id) as a browser would send them, minus buttons."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, str] = {}
        self.textarea: str | None = None
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "name" not in a:
            if self.inside and tag == "option" and self.select and self.select not in self.fields:
                self.fields[self.select] = a.get("value", "")
            return
        if tag == "input" and a.get("type") != "file":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self.textarea = a["name"]
            self.fields[a["name"]] = ""
        elif tag == "select":
            self.select = a["name"]

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None
        elif tag == "form":
            self.inside = False


def form_fields(html: str, form_id: str) -> dict[str, str]:
    parser = FormFields(form_id)
    parser.feed(html)
    assert parser.fields, f"no form #{form_id}"
    # A <textarea>'s first newline belongs to the markup, not to its value.
    return {k: v[1:] if v.startswith("\n") else v for k, v in parser.fields.items()}


async def db_rows(live_server: LiveServer) -> list[tuple[int, int | None, str, str, bool]]:
    """Every stored routine, to show that a refusal changed nothing."""
    engine = make_engine(live_server.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        rows = await db.scalars(select(Routine).order_by(Routine.id))
        found = [(r.id, r.instructor_id, r.title, r.source, r.archived) for r in rows]
    await engine.dispose()
    return found


async def class_timeline(live_server: LiveServer, class_id: int) -> dict[str, Any]:
    engine = make_engine(live_server.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        row = await db.get(ClassTimeline, class_id)
        assert row is not None
        timeline = dict(row.timeline)
    await engine.dispose()
    return timeline


async def builtin_id(client: httpx.AsyncClient) -> int:
    page = await client.get("/console/routines")
    match = re.search(r'data-routine-id="(\d+)"', page.text)
    assert match
    return int(match.group(1))


async def save_yaml(client: httpx.AsyncClient, source: str = SHORT_YAML) -> int:
    """Store a routine through the YAML view; returns its id."""
    token = await csrf(client, "/console/routines/new/yaml")
    response = await client.post(
        "/console/routines/new/yaml", data={"csrf_token": token, "source": source}
    )
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


async def upload(
    client: httpx.AsyncClient, name: str, content: bytes, token: str | None = None
) -> httpx.Response:
    token = token if token is not None else await csrf(client, "/console/routines")
    return await client.post(
        "/console/routines/upload",
        data={"csrf_token": token},
        files={"file": (name, content, "application/octet-stream")},
    )


def html(text: str) -> str:
    return str(escape(text))


@pytest.fixture
async def signed_in(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await sign_in(client)
    return client


@pytest.fixture
async def other(live_server: LiveServer) -> Any:
    """A second instructor, signed in on a client of their own."""
    engine = make_engine(live_server.settings.database_url)
    async with make_sessionmaker(engine).begin() as db:
        await create_instructor(db, OTHER_EMAIL, OTHER_PASSWORD, "Other")
    await engine.dispose()
    async with httpx.AsyncClient(base_url=live_server.base_url) as c:
        await sign_in(c, OTHER_EMAIL, OTHER_PASSWORD)
        yield c


# -- the library ---------------------------------------------------------------------


async def test_the_pages_need_a_signed_in_instructor(client: httpx.AsyncClient) -> None:
    for path in ("/console/routines", "/console/routines/new", "/console/routines/1"):
        response = await client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_the_console_links_to_the_library_which_lists_built_ins_and_own(
    signed_in: httpx.AsyncClient,
) -> None:
    console = await signed_in.get("/console")
    assert 'href="/console/routines"' in console.text
    assert 'name="routine_id"' in console.text  # the console's own forms are still there
    await save_yaml(signed_in)
    page = await signed_in.get("/console/routines")
    assert page.status_code == 200
    assert "Quick test" in page.text and "Built-in" in page.text
    assert "Leg day" in page.text and "Yours" in page.text
    # total time and segment count: 1:00 + 3 x 0:45 + 2:00 = 5:15 in 8 segments
    assert "5:15 · 8 segments" in page.text


async def test_search_filters_by_title_and_description_on_the_server(
    signed_in: httpx.AsyncClient,
) -> None:
    await save_yaml(signed_in)
    page = await signed_in.get("/console/routines")
    assert 'hx-get="/console/routines"' in page.text
    headers = {"HX-Request": "true", "HX-Target": "routine-list"}
    found = await signed_in.get("/console/routines", params={"q": "LUNGES"}, headers=headers)
    assert found.text.lstrip().startswith('<div id="routine-list">')
    assert "Leg day" in found.text and "Quick test" not in found.text
    found = await signed_in.get("/console/routines", params={"q": "quick"}, headers=headers)
    assert "Quick test" in found.text and "Leg day" not in found.text
    found = await signed_in.get("/console/routines", params={"q": "zzz"}, headers=headers)
    assert "No routine matches" in found.text


async def test_duplicate_makes_a_copy_of_ones_own(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    routine_id = await builtin_id(signed_in)
    token = await csrf(signed_in, "/console/routines")
    response = await signed_in.post(
        f"/console/routines/{routine_id}/duplicate", data={"csrf_token": token}
    )
    assert response.status_code == 303
    copy_id = int(response.headers["location"].rsplit("/", 1)[1])
    rows = {row[0]: row for row in await db_rows(live_server)}
    assert rows[copy_id][1] is not None and rows[copy_id][2] == "Quick test (copy)"
    assert "title: Quick test (copy)" in rows[copy_id][3]
    page = await signed_in.get(f"/console/routines/{copy_id}")
    assert f'href="/console/routines/{copy_id}/edit"' in page.text


async def test_archive_hides_a_routine_from_the_library_and_the_console_until_restored(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    routine_id = await save_yaml(signed_in)
    token = await csrf(signed_in, "/console/routines")
    response = await signed_in.post(
        f"/console/routines/{routine_id}/archive", data={"csrf_token": token}
    )
    assert response.status_code == 303
    assert "Leg day" not in (await signed_in.get("/console/routines")).text
    assert "Leg day" not in (await signed_in.get("/console")).text
    archived = await signed_in.get("/console/routines", params={"view": "archived"})
    assert "Leg day" in archived.text and "Restore" in archived.text
    # An archived routine can't open a class.
    response = await signed_in.post(
        "/console/classes", data={"csrf_token": token, "routine_id": str(routine_id)}
    )
    assert response.status_code == 400
    response = await signed_in.post(
        f"/console/routines/{routine_id}/restore", data={"csrf_token": token}
    )
    assert response.status_code == 303
    assert "Leg day" in (await signed_in.get("/console")).text


async def test_a_built_in_routine_cant_be_archived_or_edited(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    before = await db_rows(live_server)
    routine_id = await builtin_id(signed_in)
    token = await csrf(signed_in, "/console/routines")
    response = await signed_in.post(
        f"/console/routines/{routine_id}/archive", data={"csrf_token": token}
    )
    assert response.status_code == 403 and html(BUILT_IN_READ_ONLY) in response.text
    for path in (f"/console/routines/{routine_id}/edit", f"/console/routines/{routine_id}/yaml"):
        assert (await signed_in.get(path)).status_code == 403
        response = await signed_in.post(path, data={"csrf_token": token, "source": SHORT_YAML})
        assert response.status_code == 403 and html(BUILT_IN_READ_ONLY) in response.text
    page = await signed_in.get(f"/console/routines/{routine_id}")
    assert f"/console/routines/{routine_id}/edit" not in page.text
    assert await db_rows(live_server) == before


# -- a routine's page ----------------------------------------------------------------


async def test_a_routines_page_draws_its_timeline(signed_in: httpx.AsyncClient) -> None:
    routine_id = await save_yaml(signed_in)
    page = await signed_in.get(f"/console/routines/{routine_id}")
    assert page.status_code == 200
    bar = re.search(r'<div class="routine-bar".*?</div>', page.text, re.S)
    assert bar
    widths = re.findall(r'data-kind="(\w+)" data-width="([\d.]+)"', bar.group(0))
    assert [kind for kind, _ in widths] == ["warmup", *["work", "rest"] * 3, "cooldown"]
    # Widths are proportional to duration: 60 s of 315 s, 30 s, 15 s …
    assert float(widths[0][1]) == pytest.approx(100 * 60 / 315, abs=0.01)
    assert float(widths[1][1]) == pytest.approx(2 * float(widths[2][1]), abs=0.01)
    assert sum(float(w) for _, w in widths) == pytest.approx(100, abs=0.01)
    # Every kind carries a mark and a legend entry, not only a colour.
    assert 'class="routine-seg-mark"' in bar.group(0)
    assert "Warm-up" in page.text and "Cool-down" in page.text
    assert "Round 2 of 3" in page.text and "Squats" in page.text and "0:45" not in bar.group(0)
    assert "Total <strong data-routine-total>5:15</strong>" in page.text
    assert 'action="/console/classes"' in page.text
    assert f'name="routine_id" value="{routine_id}"' in page.text


async def test_the_routine_schema_is_public(client: httpx.AsyncClient) -> None:
    response = await client.get("/schemas/routine.schema.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    assert "blocks" in response.json()["properties"]


# -- the builder ---------------------------------------------------------------------


async def test_the_builder_creates_a_routine(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    page = await signed_in.get("/console/routines/new")
    fields = form_fields(page.text, "builder")
    assert fields["b-0-type"] == "warmup" and fields["b-1-type"] == "intervals"
    fields |= {"title": "Morning burn", "b-1-rounds": "5", "b-1-work": "0:40", "b-1-rest": "20s"}
    response = await signed_in.post("/console/routines/new", data=fields)
    assert response.status_code == 303, response.text
    routine_id = int(response.headers["location"].rsplit("/", 1)[1])
    row = {r[0]: r for r in await db_rows(live_server)}[routine_id]
    assert row[2] == "Morning burn" and "rounds: 5" in row[3]
    page = await signed_in.get(f"/console/routines/{routine_id}")
    assert "Round 5 of 5" in page.text


async def test_the_builder_adds_moves_and_removes_blocks_and_exercises(
    signed_in: httpx.AsyncClient,
) -> None:
    page = await signed_in.get("/console/routines/new")
    fields = form_fields(page.text, "builder")
    headers = {"HX-Request": "true", "HX-Target": "builder"}

    async def act(fields: dict[str, str], action: str, **extra: str) -> dict[str, str]:
        response = await signed_in.post(
            "/console/routines/builder", data={**fields, "action": action, **extra}, headers=headers
        )
        assert response.status_code == 200
        assert response.text.lstrip().startswith("{#") or 'id="builder"' in response.text
        return form_fields(response.text, "builder")

    fields = await act(fields, "add", new_kind="tabata")
    assert fields["b-2-type"] == "tabata" and fields["b-2-x-0-name"] == "Squats"
    fields = await act(fields, "add-ex:2")
    fields |= {"b-2-x-1-name": "Lunges", "b-2-x-1-beginner": "Static lunges"}
    fields = await act(fields, "up:2")
    assert fields["b-1-type"] == "tabata" and fields["b-1-x-1-name"] == "Lunges"
    assert fields["b-1-x-1-beginner"] == "Static lunges"
    fields = await act(fields, "down:0")
    assert [fields[f"b-{i}-type"] for i in range(3)] == ["tabata", "warmup", "intervals"]
    fields = await act(fields, "remove-ex:0:0")
    assert fields["b-0-x-0-name"] == "Lunges" and "b-0-x-1-name" not in fields
    fields = await act(fields, "remove:2")
    assert "b-2-type" not in fields
    for kind in ("emom", "amrap", "for_time", "work", "rest", "cooldown"):
        fields = await act(fields, "add", new_kind=kind)
    fields |= {"title": "Everything"}
    response = await signed_in.post("/console/routines/new", data=fields)
    assert response.status_code == 303, response.text
    page = await signed_in.get(response.headers["location"])
    assert "Lunges" in page.text and "Burpees" in page.text


@pytest.mark.parametrize(
    ("change", "slot", "message"),
    [
        ({"b-1-rounds": "100000"}, "b-1-rounds", "must be between 1 and 1,000, not 100,000"),
        ({"b-1-work": "0"}, "b-1-work", "a duration must be longer than zero"),
        ({"b-0-duration": "-30"}, "b-0-duration", "a duration must be longer than zero"),
        ({"b-1-rounds": "lots"}, "b-1-rounds", "expected a whole number"),
        ({"b-0-duration": "soon"}, "b-0-duration", "is not a duration"),
        ({"b-0-duration": ""}, "b-0-duration", "needs 'duration'"),
        ({"title": ""}, "title", "a routine needs a title"),
    ],
)
async def test_the_builder_shows_each_problem_next_to_its_field(
    live_server: LiveServer,
    signed_in: httpx.AsyncClient,
    change: dict[str, str],
    slot: str,
    message: str,
) -> None:
    page = await signed_in.get("/console/routines/new")
    assert 'hx-post="/console/routines/check"' in page.text
    fields = form_fields(page.text, "builder") | change
    checked = await signed_in.post(
        "/console/routines/check", data=fields, headers={"HX-Request": "true"}
    )
    assert checked.status_code == 200
    placed = re.search(
        rf'<div id="p-{slot}" class="routine-problems" hx-swap-oob="true"[^>]*>(.*?)</div>',
        checked.text,
        re.S,
    )
    assert placed, checked.text
    assert html(message) in placed.group(1)
    assert 'data-routine-status="invalid"' in checked.text
    # Saving the same form is refused, shows the problem in place, and stores nothing.
    before = await db_rows(live_server)
    response = await signed_in.post("/console/routines/new", data=fields)
    assert response.status_code == 400
    assert re.search(rf'<div id="p-{slot}"[^>]*>\s*<p class="routine-problem">', response.text)
    assert await db_rows(live_server) == before


async def test_the_builder_previews_the_timeline_as_you_type(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/console/routines/new")
    fields = form_fields(page.text, "builder") | {"b-0-duration": "1:00", "b-1-rounds": "2"}
    checked = await signed_in.post("/console/routines/check", data=fields)
    assert 'data-routine-status="ok"' in checked.text
    # 1:00 warm-up + 2 x (0:40 + 0:20)
    assert "<strong data-routine-total>3:00</strong>" in checked.text
    # Every problem slot is refreshed, so fixed problems disappear.
    assert checked.text.count('hx-swap-oob="true"') >= 8


async def test_the_builder_keeps_what_it_doesnt_edit(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    source = """\
title: Keeps things
lead_in: 0:05
blocks:
  - type: work
    duration: 1:00
    exercise: {name: Row, equipment: [rower]}
    cues: ["at 0:30: halfway there"]
  - type: circuit
    stations: [Bike, Rope]
    rounds: 2
    work: 0:30
    rotate: 0:10
"""
    routine_id = await save_yaml(signed_in, source)
    page = await signed_in.get(f"/console/routines/{routine_id}/edit")
    fields = form_fields(page.text, "builder") | {
        "b-0-duration": "1:30",
        "b-0-x-0-advanced": "Sprint",
    }
    assert "edit it in the YAML view" in page.text
    response = await signed_in.post(f"/console/routines/{routine_id}/edit", data=fields)
    assert response.status_code == 303, response.text
    stored = {r[0]: r for r in await db_rows(live_server)}[routine_id][3]
    for kept in ("lead_in: 0:05", "rower", "halfway there", "type: circuit", "Rope", "Sprint"):
        assert kept in stored, stored
    assert "duration: '1:30'" in stored


async def test_switching_between_builder_and_yaml_keeps_unsaved_changes(
    signed_in: httpx.AsyncClient,
) -> None:
    page = await signed_in.get("/console/routines/new")
    fields = form_fields(page.text, "builder") | {"title": "Unsaved title"}
    as_yaml = await signed_in.post("/console/routines/as-yaml", data=fields)
    assert as_yaml.status_code == 200
    yaml_fields = form_fields(as_yaml.text, "yaml-form")
    assert "title: Unsaved title" in yaml_fields["source"]
    yaml_fields["source"] = yaml_fields["source"].replace("Unsaved title", "Back again")
    back = await signed_in.post("/console/routines/as-builder", data=yaml_fields)
    assert form_fields(back.text, "builder")["title"] == "Back again"


# -- the YAML view -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("title: x\nblocks: [\n", "line"),
        (
            "title: X\nblocks:\n  - type: work\n    duration: 30\n    colour: red\n",
            "unknown key 'colour'",
        ),
        ("title: X\nblocks:\n  - type: work\n    duration: 0\n", "longer than zero"),
        ("title: X\nblocks:\n  - type: rest\n    duration: -5\n", "longer than zero"),
        (
            "title: X\nblocks:\n  - type: intervals\n    rounds: 100000\n    work: 30\n",
            "must be between 1 and 1,000, not 100,000",
        ),
    ],
)
async def test_the_yaml_view_refuses_bad_routines_with_line_numbers(
    live_server: LiveServer, signed_in: httpx.AsyncClient, source: str, expected: str
) -> None:
    routine_id = await save_yaml(signed_in)
    before = await db_rows(live_server)
    token = await csrf(signed_in, f"/console/routines/{routine_id}/yaml")
    checked = await signed_in.post(
        "/console/routines/check-yaml", data={"csrf_token": token, "source": source}
    )
    assert html(expected) in checked.text and 'class="routine-line">line ' in checked.text
    for path in (f"/console/routines/{routine_id}/yaml", "/console/routines/new/yaml"):
        response = await signed_in.post(path, data={"csrf_token": token, "source": source})
        assert response.status_code == 400 and html(expected) in response.text
    assert await db_rows(live_server) == before


async def test_the_yaml_view_saves_the_text_as_written(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    routine_id = await save_yaml(signed_in)
    page = await signed_in.get(f"/console/routines/{routine_id}/yaml")
    fields = form_fields(page.text, "yaml-form")
    assert fields["source"] == SHORT_YAML
    fields["source"] = "# tuesday\n" + SHORT_YAML.replace("Leg day", "Leg day 2")
    response = await signed_in.post(f"/console/routines/{routine_id}/yaml", data=fields)
    assert response.status_code == 303
    row = {r[0]: r for r in await db_rows(live_server)}[routine_id]
    assert row[2] == "Leg day 2" and row[3].startswith("# tuesday\n")


async def test_editing_a_routine_never_changes_a_class_already_opened(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    routine_id = await save_yaml(signed_in)
    token = await csrf(signed_in, "/console")
    response = await signed_in.post(
        "/console/classes", data={"csrf_token": token, "routine_id": str(routine_id)}
    )
    assert response.status_code == 303
    class_id = int(response.headers["location"].rsplit("/", 1)[1])
    frozen = await class_timeline(live_server, class_id)
    page = await signed_in.get(f"/console/routines/{routine_id}/edit")
    fields = form_fields(page.text, "builder") | {"b-1-rounds": "9", "b-0-duration": "3:00"}
    response = await signed_in.post(f"/console/routines/{routine_id}/edit", data=fields)
    assert response.status_code == 303
    assert "Round 9 of 9" in (await signed_in.get(f"/console/routines/{routine_id}")).text
    assert await class_timeline(live_server, class_id) == frozen
    assert len(frozen["segments"]) == 8


# -- uploads -------------------------------------------------------------------------


async def test_upload_stores_yaml_json_and_zwo(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    response = await upload(signed_in, "legs.yaml", SHORT_YAML.encode())
    assert response.status_code == 303
    json_text = b'{"title": "Json ride", "blocks": [{"type": "work", "duration": 60}]}'
    response = await upload(signed_in, "ride.json", json_text)
    assert response.status_code == 303
    zwo = (
        b"<workout_file><name>Zwift ride</name><workout>"
        b'<Warmup Duration="300" PowerLow="0.4" PowerHigh="0.7"/>'
        b'<Mystery Duration="60"/>'
        b'<SteadyState Duration="600" Power="0.75"/></workout></workout_file>'
    )
    response = await upload(signed_in, "ride.zwo", zwo)
    assert response.status_code == 200  # shown at once, with the import's warnings
    assert "Zwift ride" in response.text and "skipped" in response.text
    rows = {r[2]: r for r in await db_rows(live_server)}
    assert rows["Json ride"][3] == json_text.decode()
    assert rows["Zwift ride"][3].startswith("title: Zwift ride")
    assert rows["Leg day"][1] is not None


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.yaml", b"title: x\nblocks: [\n", "line"),
        (
            "two.yaml",
            b"title: X\nblocks:\n  - type: work\n    duration: 0\n"
            b"  - type: rest\n    durration: 5\n",
            "durration",
        ),
        (
            "bomb.yaml",
            b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
            b"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
            "",
        ),
        ("notes.txt", b"\xff\xfe\x00garbage", "UTF-8"),
        ("empty.yaml", b"", "empty"),
    ],
)
async def test_upload_refuses_bad_files_and_lists_every_problem(
    live_server: LiveServer, signed_in: httpx.AsyncClient, name: str, content: bytes, expected: str
) -> None:
    before = await db_rows(live_server)
    response = await upload(signed_in, name, content)
    assert response.status_code == 400
    assert "nothing was saved" in response.text and html(expected) in response.text
    if name == "two.yaml":
        problems = re.search(r'<ul class="routine-problem-list".*?</ul>', response.text, re.S)
        assert problems and problems.group(0).count("<li>") >= 2
    assert await db_rows(live_server) == before


async def test_upload_refuses_a_file_over_the_limit(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    before = await db_rows(live_server)
    token = await csrf(signed_in, "/console/routines")
    just_over = b"# " + b"x" * MAX_FILE_BYTES + b"\ntitle: x\nblocks: []\n"
    response = await upload(signed_in, "big.yaml", just_over, token)
    assert response.status_code == 413
    assert "a routine file can be at most" in response.text
    try:
        response = await upload(signed_in, "huge.yaml", b"x" * (10 * 1024 * 1024), token)
    except httpx.TransportError:
        pass  # the server may answer and close before the client has sent it all
    else:
        assert response.status_code == 413 and "a routine file can be at most" in response.text
    assert await db_rows(live_server) == before


# -- CSRF and other instructors ------------------------------------------------------


async def test_every_post_needs_the_csrf_field(
    live_server: LiveServer, signed_in: httpx.AsyncClient
) -> None:
    routine_id = await save_yaml(signed_in)
    before = await db_rows(live_server)
    for path in (
        "/console/routines/new",
        "/console/routines/new/yaml",
        f"/console/routines/{routine_id}/edit",
        f"/console/routines/{routine_id}/yaml",
        f"/console/routines/{routine_id}/duplicate",
        f"/console/routines/{routine_id}/archive",
        f"/console/routines/{routine_id}/restore",
        "/console/routines/check",
        "/console/routines/check-yaml",
        "/console/routines/builder",
        "/console/routines/as-yaml",
        "/console/routines/as-builder",
    ):
        response = await signed_in.post(path, data={"title": "Hijacked", "source": SHORT_YAML})
        assert response.status_code == 403, path
        assert html(CSRF_FAILED) in response.text
    response = await upload(signed_in, "legs.yaml", SHORT_YAML.encode(), token="forged")
    assert response.status_code == 403
    assert await db_rows(live_server) == before


async def test_another_instructors_routine_is_not_found(
    live_server: LiveServer, signed_in: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    routine_id = await save_yaml(signed_in)
    before = await db_rows(live_server)
    library = await other.get("/console/routines")
    assert "Leg day" not in library.text and "Quick test" in library.text
    for path in ("", "/edit", "/yaml"):
        response = await other.get(f"/console/routines/{routine_id}{path}")
        assert response.status_code == 404 and html(NO_SUCH_ROUTINE) in response.text
    token = CSRF.search(library.text).group(1)  # type: ignore[union-attr]
    for path in ("/edit", "/yaml", "/duplicate", "/archive", "/restore"):
        response = await other.post(
            f"/console/routines/{routine_id}{path}",
            data={"csrf_token": token, "source": SHORT_YAML, "title": "Mine now"},
        )
        assert response.status_code == 404, path
    # Naming their routine in a builder form doesn't reach it either.
    response = await other.post(
        "/console/routines/builder",
        data={"csrf_token": token, "routine_id": str(routine_id), "action": "add"},
    )
    assert response.status_code == 404
    assert await db_rows(live_server) == before
