"""Results pages, exports and "my classes", on the real server.

One class is scored end to end by real phones over real sockets; the others
get their participants and scores written straight into the database, as the
join and score paths store them, so each test sets up exactly the roster it
needs (teams, a hidden name, phones' device ids, past classes).
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from markupsafe import escape
from sqlalchemy import func, select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import Participant, Score, Team
from classroom.domain.teams import LOOKS
from classroom.web.auth import create_instructor
from classroom.web.participants import DEVICE_COOKIE, REMOVED
from classroom.web.results import (
    CONFIRM_DELETE,
    HISTORY_DELETED,
    NO_SUCH_CLASS,
    NOT_A_PARTICIPANT,
    NOT_ENDED,
    NOT_STARTED,
)
from tests.conftest import LiveServer
from tests.helpers import command, csrf, join, join_code, open_class, sign_in

HIDDEN = "Cleo Secretname"
PHONE_A = "deviceAAAAAAAAAAAAAAAAAAAA"
PHONE_B = "deviceBBBBBBBBBBBBBBBBBBBB"
ROW = re.compile(
    r'<tr data-person="(\d+)"[^>]*>\s*<td>(\d+)</td>\s*<th scope="row">(.*?)</th>.*?'
    r"<td data-total>([^<]*)</td>",
    re.S,
)


@dataclass
class Seat:
    """A participant to write into a class: their team (by position), their reps."""

    name: str
    team: int | None
    reps: Sequence[int]
    hidden: bool = False
    device: str | None = None


@dataclass
class Seeded:
    class_id: int
    people: dict[str, int] = field(default_factory=dict)
    teams: list[int] = field(default_factory=list)


async def seed_class(
    server: LiveServer, class_id: int, seats: Sequence[Seat], teams: Sequence[str] = ()
) -> Seeded:
    """Write teams, participants and their reps in segment 0 into a class."""
    engine = make_engine(server.settings.database_url)
    seeded = Seeded(class_id)
    try:
        async with make_sessionmaker(engine).begin() as db:
            for position, name in enumerate(teams):
                look = LOOKS[position]
                team = Team(
                    class_id=class_id,
                    name=name,
                    colour=look.colour,
                    letter=look.letter,
                    pattern=look.pattern,
                    position=position,
                )
                db.add(team)
                await db.flush()
                seeded.teams.append(team.id)
            for number, seat in enumerate(seats, start=1):
                person = Participant(
                    class_id=class_id,
                    nickname=seat.name,
                    number=number,
                    team_id=None if seat.team is None else seeded.teams[seat.team],
                    hidden=seat.hidden,
                    device_id=seat.device,
                )
                db.add(person)
                await db.flush()
                seeded.people[seat.name] = person.id
                for i, value in enumerate(seat.reps):
                    db.add(
                        Score(
                            class_id=class_id,
                            participant_id=person.id,
                            client_id=f"tap-{i}",
                            segment_index=0,
                            kind="reps",
                            value=value,
                            elapsed_ms=3000,
                        )
                    )
    finally:
        await engine.dispose()
    return seeded


async def count(server: LiveServer, model: type[Participant] | type[Score]) -> int:
    engine = make_engine(server.settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return int(await db.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()


async def finished_class(console: httpx.AsyncClient) -> int:
    class_id = await open_class(console)
    assert (await command(console, class_id, "start")).status_code == 200
    assert (await command(console, class_id, "finish")).status_code == 200
    return class_id


STANDARD = [
    Seat("Ann", 0, [10, 20], device=PHONE_A),
    Seat("Ben", 0, [20]),
    Seat(HIDDEN, 1, [15], hidden=True, device=PHONE_B),
    Seat('=HYPERLINK("http://evil")', 1, [5]),
    Seat("Ida", None, [3]),
]


@pytest.fixture
async def console(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        await sign_in(client)
        yield client


def app_state(server: LiveServer) -> Any:
    return server.server.config.app.state  # type: ignore[attr-defined]


def display_token(server: LiveServer, class_id: int) -> str:
    return str(app_state(server).tokens.display(class_id))


def participant_cookie(server: LiveServer, class_id: int, participant_id: int) -> dict[str, str]:
    token = app_state(server).tokens.participant(class_id, participant_id)
    return {f"classroom_p{class_id}": token}


async def fetch(
    server: LiveServer,
    path: str,
    cookies: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """A GET from a fresh browser holding only ``cookies``."""
    async with httpx.AsyncClient(base_url=server.base_url, cookies=cookies) as client:
        return await client.get(path, params=params)


def people_rows(page: str) -> dict[str, tuple[int, str]]:
    """Name -> (place, total) from a results page's "Everyone" table."""
    section = page.split('data-board="people"', 1)[1].split("</table>", 1)[0]
    return {
        html.unescape(re.sub(r"<.*?>", "", name)).replace(" (you)", "").strip(): (int(rank), total)
        for _, rank, name, total in ROW.findall(section)
    }


def number(shown: str) -> float:
    return float(shown.split()[0].replace(",", ""))


# -- the whole path: phones score over sockets, the class ends, results agree -----------


async def test_scores_from_real_phones_give_the_same_totals_on_the_page_in_csv_and_in_json(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await open_class(console)
    code = await join_code(console, class_id)
    cookies: dict[str, str] = {}
    for name in ("Robin", "Sam", "Toni"):
        async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
            assert (await join(phone, code, name)).status_code == 303
            cookies[name] = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
    assert (await command(console, class_id, "start")).status_code == 200
    taps = {"Robin": [1, 1, 1], "Sam": [5], "Toni": [2, 2]}

    async def phone_taps(name: str) -> None:
        url = f"{live_server.ws_url}/ws/classes/{class_id}"
        async with websockets.connect(url, additional_headers={"Cookie": cookies[name]}) as ws:
            for i, value in enumerate(taps[name]):
                score = {"type": "score", "id": f"{name}-{i}", "segment": 0, "kind": "reps"}
                await ws.send(json.dumps({**score, "value": value}))
                async with asyncio.timeout(8):
                    while json.loads(await ws.recv())["type"] != "ack":
                        pass

    await asyncio.gather(*(phone_taps(name) for name in taps))
    assert (await command(console, class_id, "finish")).status_code == 200

    page = await console.get(f"/console/classes/{class_id}/results")
    assert page.status_code == 200
    on_page = {name: number(total) for name, (_, total) in people_rows(page.text).items()}
    assert on_page == {"Robin": 3, "Sam": 5, "Toni": 4}
    assert "1. Squats" in page.text

    exported = await console.get(f"/console/classes/{class_id}/results.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert {row["nickname"]: float(row["total"]) for row in rows} == on_page
    assert {(row["nickname"], row["segment_name"], row["kind"], row["value"]) for row in rows} == {
        ("Robin", "Squats", "reps", "3"),
        ("Sam", "Squats", "reps", "5"),
        ("Toni", "Squats", "reps", "4"),
    }
    exported = await console.get(f"/console/classes/{class_id}/results.json")
    # Downloaded, as the CSV is, not opened in a tab.
    disposition = f'attachment; filename="class-{class_id}-results.json"'
    assert exported.headers["content-disposition"] == disposition
    data = exported.json()
    assert {p["nickname"]: p["total"] for p in data["people"]} == on_page
    assert data["class"]["phase"] == "finished" and data["unit"] == "reps"

    async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
        phone.headers["Cookie"] = cookies["Sam"]
        mine = await phone.get(f"/play/{class_id}/results")
        history = await phone.get("/me")  # the device cookie joining set
    assert mine.status_code == 200
    assert people_rows(mine.text)["Sam"] == (1, "5 reps")
    assert 'aria-current="true"' in mine.text and "(you)" in mine.text
    assert DEVICE_COOKIE in cookies["Sam"]
    assert re.findall(r"<td data-total>([^<]*)</td>", history.text) == ["5 reps"]
    assert re.findall(r"<td data-rank>([^<]*)</td>", history.text) == ["1 of 3"]


# -- teams, exports and names ---------------------------------------------------------------


async def test_exports_parse_back_to_the_totals_of_the_results_page(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await finished_class(console)
    await seed_class(live_server, class_id, STANDARD, ["Team Blue", "Team Orange"])
    page = (await console.get(f"/console/classes/{class_id}/results")).text
    on_page = {name: number(total) for name, (_, total) in people_rows(page).items()}
    assert on_page[HIDDEN] == 15 and on_page["Ann"] == 30  # the instructor sees every name

    raw = (await console.get(f"/console/classes/{class_id}/results.csv")).content.decode(
        "utf-8-sig"
    )
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert len(rows) == 5  # one per participant per scored segment (Ann's two inputs: one row)
    by_name = {row["nickname"]: row for row in rows}
    # A nickname a spreadsheet would run as a formula is defused.
    assert '\'=HYPERLINK("http://evil")' in by_name
    csv_totals = {name.removeprefix("'"): float(row["total"]) for name, row in by_name.items()}
    assert csv_totals == on_page
    team_totals = {row["team"]: float(row["team_total"]) for row in rows if row["team"]}
    assert team_totals == {"Team Blue": 50, "Team Orange": 20}

    data = (await console.get(f"/console/classes/{class_id}/results.json")).json()
    assert {p["nickname"]: p["total"] for p in data["people"]} == on_page
    assert {t["name"]: t["total"] for t in data["teams"]} == team_totals
    assert [p["hidden"] for p in data["people"] if p["nickname"] == HIDDEN] == [True]
    segment_sum: dict[str, int] = {}
    for result in data["segments"][0]["results"]:
        segment_sum[result["nickname"]] = segment_sum.get(result["nickname"], 0) + result["value"]
    assert segment_sum == on_page

    teams_table = page.split('data-board="teams"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<td data-total>([^<]*)</td>", teams_table) == ["50 reps", "20 reps"]


async def test_a_hidden_name_never_appears_on_the_phone_or_the_display(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await finished_class(console)
    seeded = await seed_class(live_server, class_id, STANDARD, ["Team Blue", "Team Orange"])
    cleo = seeded.people[HIDDEN]
    token = display_token(live_server, class_id)
    shown = await fetch(live_server, f"/display/{class_id}/results", params={"token": token})
    own = await fetch(
        live_server, f"/play/{class_id}/results", participant_cookie(live_server, class_id, cleo)
    )
    other = await fetch(
        live_server,
        f"/play/{class_id}/results",
        participant_cookie(live_server, class_id, seeded.people["Ben"]),
    )
    for response in (shown, own, other):
        assert response.status_code == 200
        assert HIDDEN not in response.text and "Secretname" not in response.text
        assert "Athlete 3" in response.text
    assert people_rows(own.text)["Athlete 3"] == (3, "15 reps")  # (you) marks her own line
    assert "Athlete 3 <strong>(you)</strong>" in own.text
    assert HIDDEN in (await console.get(f"/console/classes/{class_id}/results")).text


async def test_the_chart_shows_each_team_with_its_letter(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await finished_class(console)
    await seed_class(live_server, class_id, STANDARD, ["Team Blue", "Team Orange"])
    page = (await console.get(f"/console/classes/{class_id}/results")).text
    svg = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert '<title id="teams-chart-title">' in svg
    assert "Team Blue (A): 50 reps." in svg and "Team Orange (B): 20 reps." in svg
    assert re.findall(r'class="chart-key"[^>]*>([^<]*)<', svg) == ["A", "B"]


# -- when results are available, and to whom ---------------------------------------------


async def test_while_live_only_the_console_has_results_and_in_the_lobby_nobody_does(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await open_class(console)
    seeded = await seed_class(live_server, class_id, [Seat("Ann", None, [])])
    assert (await console.get(f"/console/classes/{class_id}/results")).status_code == 409
    assert NOT_STARTED in (await console.get(f"/console/classes/{class_id}/results")).text
    assert (await console.get(f"/console/classes/{class_id}/results.csv")).status_code == 409
    assert (await command(console, class_id, "start")).status_code == 200
    live = await console.get(f"/console/classes/{class_id}/results")
    assert live.status_code == 200 and "Live: these results are as they stand now." in live.text
    phone = await fetch(
        live_server,
        f"/play/{class_id}/results",
        participant_cookie(live_server, class_id, seeded.people["Ann"]),
    )
    token = display_token(live_server, class_id)
    wall = await fetch(live_server, f"/display/{class_id}/results", params={"token": token})
    for response in (phone, wall):
        assert response.status_code == 409 and NOT_ENDED in response.text
    assert (await command(console, class_id, "finish")).status_code == 200


async def test_another_instructors_class_is_not_found_and_exports_need_a_sign_in(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await finished_class(console)
    await seed_class(live_server, class_id, STANDARD, ["Team Blue", "Team Orange"])
    engine = make_engine(live_server.settings.database_url)
    async with make_sessionmaker(engine).begin() as db:
        await create_instructor(db, "other@example.com", "another long password", "Other")
    await engine.dispose()
    async with httpx.AsyncClient(base_url=live_server.base_url) as other:
        await sign_in(other, "other@example.com", "another long password")
        for suffix in ("results", "results.csv", "results.json"):
            response = await other.get(f"/console/classes/{class_id}/{suffix}")
            assert response.status_code == 404, suffix
            assert HIDDEN not in response.text and "Ann" not in response.text
    async with httpx.AsyncClient(base_url=live_server.base_url) as stranger:
        for suffix in ("results", "results.csv", "results.json"):
            response = await stranger.get(f"/console/classes/{class_id}/{suffix}")
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login")
    # A participant or a display can't export either: their credentials aren't a console's.
    response = await fetch(
        live_server,
        f"/console/classes/{class_id}/results.csv",
        participant_cookie(live_server, class_id, 1),
        params={"token": display_token(live_server, class_id)},
    )
    assert response.status_code == 303


async def test_a_participant_cookie_or_a_display_token_of_another_class_opens_nothing(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    first = await finished_class(console)
    second = await finished_class(console)
    seeded = await seed_class(live_server, first, [Seat("Ann", None, [4])])
    ann = seeded.people["Ann"]
    # Ann's cookie of the first class, presented under the second class's name.
    token = participant_cookie(live_server, first, ann)[f"classroom_p{first}"]
    moved = await fetch(live_server, f"/play/{second}/results", {f"classroom_p{second}": token})
    missing = await fetch(live_server, f"/play/{second}/results")
    forged = await fetch(
        live_server, f"/play/{first}/results", {f"classroom_p{first}": token[:-4] + "AAAA"}
    )
    first_display = {"token": display_token(live_server, first)}
    display = await fetch(live_server, f"/display/{second}/results", params=first_display)
    no_token = await fetch(live_server, f"/display/{second}/results")
    as_participant = await fetch(live_server, f"/display/{first}/results", params={"token": token})
    for response in (moved, missing, forged):
        assert response.status_code == 403 and NOT_A_PARTICIPANT in response.text
    for response in (display, no_token, as_participant):
        assert response.status_code == 403 and "Display:" in response.text


async def test_a_removed_participant_no_longer_opens_the_results(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await open_class(console)
    seeded = await seed_class(
        live_server, class_id, [Seat("Ann", None, [4]), Seat("Ben", None, [3])]
    )
    ann = seeded.people["Ann"]
    token = await csrf(console, f"/console/classes/{class_id}/roster")
    removed = await console.post(
        f"/console/classes/{class_id}/participants/{ann}/remove", data={"csrf_token": token}
    )
    assert removed.status_code in (200, 303)
    assert (await command(console, class_id, "start")).status_code == 200
    assert (await command(console, class_id, "finish")).status_code == 200
    ann_page = await fetch(
        live_server, f"/play/{class_id}/results", participant_cookie(live_server, class_id, ann)
    )
    assert ann_page.status_code == 403 and REMOVED in ann_page.text
    assert "Ann" not in ann_page.text
    ben_page = await fetch(
        live_server,
        f"/play/{class_id}/results",
        participant_cookie(live_server, class_id, seeded.people["Ben"]),
    )
    assert ben_page.status_code == 200


async def test_a_class_that_does_not_exist_is_not_found_everywhere(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    paths = [
        "/console/classes/999/results",
        "/console/classes/999/results.csv",
        "/console/classes/999/results.json",
        "/play/999/results",
        "/display/999/results?token=x",
    ]
    for path in paths:
        response = await console.get(path)
        assert response.status_code == 404, path
        assert NO_SUCH_CLASS in response.text


# -- my classes ----------------------------------------------------------------------------


async def test_my_classes_without_a_device_cookie_is_an_empty_friendly_page(
    live_server: LiveServer,
) -> None:
    empty = await fetch(live_server, "/me")
    malformed = await fetch(live_server, "/me", {DEVICE_COOKIE: "x'; DROP TABLE"})
    for response in (empty, malformed):
        assert response.status_code == 200
        assert "No classes yet on this phone." in response.text
        assert "<svg" not in response.text and "Delete my history" not in response.text


async def test_my_classes_lists_past_results_with_progress_and_the_improvement_board(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    past = []
    for reps in ([10], [20], [35]):  # Ann gets better: 10, 20, then 35 reps
        class_id = await finished_class(console)
        seats = [
            Seat("Ann", 0, reps, device=PHONE_A),
            Seat(HIDDEN, 1, [15], hidden=True, device=PHONE_B),
        ]
        past.append(await seed_class(live_server, class_id, seats, ["Team Blue", "Team Orange"]))
    live = await open_class(console)  # still in the lobby: not listed
    await seed_class(live_server, live, [Seat("Ann", None, [], device=PHONE_A)])

    mine = await fetch(live_server, "/me", {DEVICE_COOKIE: PHONE_A})
    assert mine.status_code == 200
    table = mine.text.split("data-my-classes", 1)[1]
    assert re.findall(r"<td data-total>([^<]*)</td>", table) == ["35 reps", "20 reps", "10 reps"]
    assert re.findall(r"<td data-rank>([^<]*)</td>", table) == ["1 of 2", "1 of 2", "2 of 2"]
    assert table.count("Team Blue") == 3
    svg = mine.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "Your total (You): 10, 20, 35 reps." in svg
    assert HIDDEN not in mine.text

    # The third class's results rank Ann against her own past average (15): +133%.
    page = await console.get(f"/console/classes/{past[-1].class_id}/results")
    board = page.text.split('data-board="improvement"', 1)[1].split("</table>", 1)[0]
    assert "Ann" in board and "+133%" in board
    assert "+0%" in board  # Cleo: 15 as always
    first_page = await console.get(f"/console/classes/{past[0].class_id}/results")
    assert 'data-board="improvement"' not in first_page.text  # no history before the first


async def test_deleting_my_history_needs_confirmation_and_leaves_other_phones_alone(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await finished_class(console)
    await seed_class(live_server, class_id, STANDARD, ["Team Blue", "Team Orange"])
    live = await open_class(console)
    await seed_class(live_server, live, [Seat("Ann", None, [], device=PHONE_A)])
    people, scores = await count(live_server, Participant), await count(live_server, Score)
    async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
        phone.cookies.set(DEVICE_COOKIE, PHONE_A)
        token = await csrf(phone, "/me")
        unconfirmed = await phone.post("/me/delete", data={"csrf_token": token})
        assert unconfirmed.status_code == 400 and escape(CONFIRM_DELETE) in unconfirmed.text
        forged = await phone.post("/me/delete", data={"csrf_token": "forged", "confirm": "yes"})
        assert forged.status_code == 403
        assert (await count(live_server, Participant), await count(live_server, Score)) == (
            people,
            scores,
        )

        deleted = await phone.post("/me/delete", data={"csrf_token": token, "confirm": "yes"})
        assert deleted.status_code == 303 and deleted.headers["location"] == "/me?deleted=1"
        after = await phone.get("/me?deleted=1")
        assert HISTORY_DELETED in after.text and "data-my-classes" not in after.text

    # Ann's row of the ended class and her two scores are gone; the live class keeps her.
    assert await count(live_server, Participant) == people - 1
    assert await count(live_server, Score) == scores - 2
    theirs = await fetch(live_server, "/me", {DEVICE_COOKIE: PHONE_B})
    assert re.findall(r"<td data-total>([^<]*)</td>", theirs.text) == ["15 reps"]
    page = await console.get(f"/console/classes/{class_id}/results")
    assert "Ann" not in people_rows(page.text) and HIDDEN in people_rows(page.text)


async def test_every_screen_leads_to_its_results_and_the_links_work_once_the_class_ends(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await open_class(console)
    seeded = await seed_class(live_server, class_id, [Seat("Ann", None, [])])
    cookie = participant_cookie(live_server, class_id, seeded.people["Ann"])
    token = display_token(live_server, class_id)
    console_page = (await console.get(f"/console/classes/{class_id}")).text
    phone_page = (await fetch(live_server, f"/play/{class_id}", cookie)).text
    wall_page = (await fetch(live_server, f"/display/{class_id}", params={"token": token})).text
    assert f'href="/console/classes/{class_id}/results"' in console_page
    assert f'href="/play/{class_id}/results"' in phone_page and 'href="/me"' in phone_page
    wall_link = f"/display/{class_id}/results?token={token}"
    assert f'data-results-url="{wall_link}"' in wall_page
    assert (await command(console, class_id, "start")).status_code == 200
    assert (await command(console, class_id, "finish")).status_code == 200
    history = (await console.get("/console/history")).text
    assert f'href="/console/classes/{class_id}/results"' in history
    for response in (
        await console.get(f"/console/classes/{class_id}/results"),
        await fetch(live_server, f"/play/{class_id}/results", cookie),
        await fetch(live_server, wall_link),
    ):
        assert response.status_code == 200, response.text[:200]
