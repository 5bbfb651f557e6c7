"""Bad input gets a clear message and changes nothing."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from markupsafe import escape
from sqlalchemy import select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import Participant
from classroom.domain.joining import EMPTY_NICKNAME, LONG_NICKNAME, MALFORMED_CODE, UNKNOWN_CODE
from tests.conftest import LiveServer
from tests.helpers import command, csrf, join, join_code, open_class, sign_in


async def participants(url: str) -> list[str]:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        names = list(await db.scalars(select(Participant.nickname)))
    await engine.dispose()
    return names


@pytest.fixture
async def class_id(client: httpx.AsyncClient) -> int:
    await sign_in(client)
    return await open_class(client)


def html(text: str) -> str:
    return text.replace("'", "&#39;").replace('"', "&#34;")


async def test_an_unknown_join_code_is_refused(live_server: LiveServer, class_id: int) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
        response = await join(phone, "ZZZZZZ", "Alex")
        assert response.status_code == 404 and html(UNKNOWN_CODE) in response.text
        response = await join(phone, "12", "Alex")
        assert response.status_code == 400 and html(MALFORMED_CODE) in response.text
    assert await participants(live_server.settings.database_url) == []


@pytest.mark.parametrize(
    ("nickname", "message"),
    [
        ("", EMPTY_NICKNAME),
        ("   ", EMPTY_NICKNAME),
        ("\u200b\u200d\u2060", EMPTY_NICKNAME),
        ("x" * 200, LONG_NICKNAME),
    ],
)
async def test_a_bad_nickname_is_refused(
    live_server: LiveServer, client: httpx.AsyncClient, class_id: int, nickname: str, message: str
) -> None:
    code = await join_code(client, class_id)
    async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
        response = await join(phone, code, nickname)
    assert response.status_code == 400 and html(message) in response.text
    assert await participants(live_server.settings.database_url) == []


async def test_a_nickname_with_markup_is_stored_as_typed_and_shown_escaped(
    live_server: LiveServer, client: httpx.AsyncClient, class_id: int
) -> None:
    code = await join_code(client, class_id)
    nickname = "<script>alert(1)</script>"[:24]
    async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
        response = await join(phone, code, nickname)
        assert response.status_code == 303
        page = await phone.get(f"/play/{class_id}")
    assert "<script>alert" not in page.text
    assert str(escape(nickname)) in page.text
    assert await participants(live_server.settings.database_url) == [nickname]


async def test_a_taken_nickname_gets_a_suggestion(
    live_server: LiveServer, client: httpx.AsyncClient, class_id: int
) -> None:
    code = await join_code(client, class_id)
    async with (
        httpx.AsyncClient(base_url=live_server.base_url) as a,
        httpx.AsyncClient(base_url=live_server.base_url) as b,
    ):
        assert (await join(a, code, "Sam")).status_code == 303
        response = await join(b, code, "Sam")
    assert response.status_code == 409 and "How about Sam2?" in response.text
    assert await participants(live_server.settings.database_url) == ["Sam"]


async def test_a_control_without_csrf_is_refused_and_the_class_stays_in_the_lobby(
    live_server: LiveServer, client: httpx.AsyncClient, class_id: int
) -> None:
    response = await client.post(f"/console/classes/{class_id}/commands", data={"command": "start"})
    assert response.status_code == 403
    token = await csrf(client, "/login")
    response = await client.post(
        f"/console/classes/{class_id}/commands",
        data={"command": "start", "csrf_token": token + "x"},
    )
    assert response.status_code == 403
    async with websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}",
        additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())},
    ) as ws:
        snapshot = json.loads(await ws.recv())
    assert snapshot["phase"] == "lobby" and snapshot["seq"] == 0


async def test_an_illegal_control_is_refused_with_a_reason(
    client: httpx.AsyncClient, class_id: int
) -> None:
    response = await command(client, class_id, "pause")
    assert response.status_code == 409 and "can&#39;t pause a class in the lobby" in response.text
    response = await command(client, class_id, "launch")
    assert response.status_code == 400


async def participant_socket(live_server: LiveServer, client: httpx.AsyncClient, class_id: int):
    code = await join_code(client, class_id)
    phone = httpx.AsyncClient(base_url=live_server.base_url)
    await join(phone, code, "Robin")
    cookie = "; ".join(f"{k}={v}" for k, v in phone.cookies.items())
    await phone.aclose()
    return websockets.connect(
        f"{live_server.ws_url}/ws/classes/{class_id}", additional_headers={"Cookie": cookie}
    )


async def test_bad_socket_messages_get_error_codes_and_the_socket_stays_open(
    live_server: LiveServer, client: httpx.AsyncClient, class_id: int
) -> None:
    async with await participant_socket(live_server, client, class_id) as ws:
        assert json.loads(await ws.recv())["type"] == "snapshot"
        cases = [
            ("this is not json", "bad_json"),
            ("[1, 2, 3]", "bad_message"),
            (json.dumps({"type": "teleport"}), "unknown_type"),
            (json.dumps({"type": "command", "name": "start"}), "forbidden"),
            (json.dumps({"type": "ping", "pad": "x" * 5000}), "too_large"),
            (b"\x00\x01binary", "binary_frame"),
        ]
        for sent, code in cases:
            await ws.send(sent)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["type"] == "error" and reply["code"] == code, sent
            assert reply["message"]
        await ws.send(json.dumps({"type": "ping", "id": "p1", "t": 1}))
        pong = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert pong["type"] == "pong" and pong["id"] == "p1"
    # The participant's "start" changed nothing.
    response = await command(client, class_id, "pause")
    assert "in the lobby" in response.text


async def test_a_display_token_of_another_class_opens_nothing(
    live_server: LiveServer, client: httpx.AsyncClient, class_id: int
) -> None:
    other = await open_class(client)
    tokens = live_server.server.config.app.state.tokens  # type: ignore[attr-defined]
    token_for_other = tokens.display(other)
    page = await client.get(f"/display/{class_id}", params={"token": token_for_other})
    assert page.status_code == 403 and "this link is for another class" in page.text
    forged = token_for_other[:-3] + ("AAA" if not token_for_other.endswith("AAA") else "BBB")
    page = await client.get(f"/display/{other}", params={"token": forged})
    assert page.status_code == 403 and "not valid" in page.text
    for token in (token_for_other, forged, ""):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                f"{live_server.ws_url}/ws/classes/{class_id}?token={token}"
            ):
                pass
        assert refused.value.response.status_code == 403
    assert (
        await client.get(f"/display/{other}", params={"token": token_for_other})
    ).status_code == 200


async def test_a_socket_from_a_foreign_origin_is_refused(
    live_server: LiveServer, client: httpx.AsyncClient, class_id: int
) -> None:
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    url = f"{live_server.ws_url}/ws/classes/{class_id}"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            url,
            additional_headers={"Cookie": cookie},
            origin="http://evil.example",  # type: ignore[arg-type]
        ):
            pass
    async with websockets.connect(
        url,
        additional_headers={"Cookie": cookie},
        origin=live_server.base_url,  # type: ignore[arg-type]
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "snapshot"
