"""A class run from other software through the API alone, with two real phones.

Only the token is made in the console (where an instructor makes it). The class is
opened, scheduled, started and finished over /api/v1; two phones join from the join
URL the API gave and score over their WebSockets; the results are read back as JSON
and CSV.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import websockets

from tests.api import bearer, make_token
from tests.conftest import LiveServer
from tests.helpers import csrf, sign_in, until


async def test_a_class_opened_scheduled_run_and_read_back_through_the_api(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as console:
        await sign_in(console)
        token = await make_token(console, "Booking system")
    async with httpx.AsyncClient(
        base_url=f"{live_server.base_url}/api/v1", headers=bearer(token)
    ) as api:
        routines = (await api.get("/routines")).json()["routines"]
        routine = next(r for r in routines if r["title"] == "Quick test")
        start_at = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
        opened = await api.post(
            "/classes",
            json={"routine_id": routine["id"], "scheduled_at": start_at.isoformat()},
        )
        assert opened.status_code == 201, opened.text
        status = opened.json()
        class_id = status["id"]
        assert status["phase"] == "lobby" and status["participants"] == 0
        assert status["scheduled_at"] == start_at.isoformat().replace("+00:00", "Z")
        assert status["join_url"].endswith(f"/j/{status['join_code']}")
        assert f"/display/{class_id}?token=" in status["display_url"]
        assert opened.headers["location"] == f"/api/v1/classes/{class_id}"

        # Two phones follow the join URL the API gave, as a QR code would take them.
        join_path = urlsplit(status["join_url"]).path
        cookies: dict[str, str] = {}
        for name in ("Robin", "Sam"):
            async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
                page = await phone.get(join_path)
                assert page.status_code == 200 and status["join_code"] in page.text
                joined = await phone.post(
                    "/join",
                    data={
                        "csrf_token": await csrf(phone, join_path),
                        "code": status["join_code"],
                        "nickname": name,
                        "level": "standard",
                    },
                )
                assert joined.status_code == 303, joined.text
                cookies[name] = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
        assert (await api.get(f"/classes/{class_id}")).json()["participants"] == 2
        listed = (await api.get("/classes", params={"phase": "lobby"})).json()["classes"]
        assert [c["id"] for c in listed] == [class_id]

        taps = {"Robin": [3, 4], "Sam": [10]}
        sockets = {
            name: await websockets.connect(
                f"{live_server.ws_url}/ws/classes/{class_id}",
                additional_headers={"Cookie": cookies[name]},
            )
            for name in taps
        }
        try:
            started = await api.post(f"/classes/{class_id}/commands", json={"command": "start"})
            assert started.status_code == 200, started.text
            assert started.json()["phase"] in ("countdown", "running")

            async def score(name: str) -> None:
                ws = sockets[name]
                for i, value in enumerate(taps[name]):
                    message = {"type": "score", "id": f"{name}-{i}", "segment": 0, "kind": "reps"}
                    await ws.send(json.dumps({**message, "value": value}))
                    ack = await until(ws, "ack", "error")
                    assert ack["type"] == "ack", ack

            await asyncio.gather(*(score(name) for name in taps))
            finished = await api.post(f"/classes/{class_id}/commands", json={"command": "finish"})
            assert finished.status_code == 200
            assert finished.json()["phase"] == "finished"
            assert finished.json()["ended_at"] is not None
            assert finished.json()["display_url"] is None  # nothing left to show live
        finally:
            for ws in sockets.values():
                await ws.close()

        results = await api.get(f"/classes/{class_id}/results")
        assert results.status_code == 200
        data = results.json()
        assert data["class"]["phase"] == "finished"
        assert {p["nickname"]: p["total"] for p in data["people"]} == {"Robin": 7, "Sam": 10}
        table = await api.get(f"/classes/{class_id}/results.csv")
        assert table.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
        assert {(row["nickname"], row["value"]) for row in rows} == {("Robin", "7"), ("Sam", "10")}
        # Finishing again is refused, and changes nothing.
        again = await api.post(f"/classes/{class_id}/commands", json={"command": "finish"})
        assert again.status_code == 409
        assert (await api.get(f"/classes/{class_id}/results")).json() == data
