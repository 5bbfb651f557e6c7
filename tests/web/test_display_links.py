"""Wall display links: one per screen, each revoked on its own.

Revoking a link closes its screens at once (close code 1008, not to be retried)
and opens nothing more, while the class's other links carry on. Revoking a
wall paired to a room does the same to the class page it was showing.
"""

from __future__ import annotations

import asyncio
import html
import re

import httpx
import pytest
import websockets

from classroom.web.tokens import REVOKED
from tests.conftest import LiveServer
from tests.helpers import command, csrf, open_class, until
from tests.web.test_joining import rows
from tests.web.test_pairing import add_room, console, open_in, pair, pairing_code, post, wall
from tests.web.test_pairing import eventually as shows

__all__ = ["console", "wall"]  # the fixtures, for pytest

LINK = re.compile(r'href="([^"]+)" data-display-link="(\d+)"')


async def links(console: httpx.AsyncClient, class_id: int) -> dict[int, str]:
    """The class's working display links on the console: id → URL (its token names the time)."""
    page = (await console.get(f"/console/classes/{class_id}")).text
    return {int(link_id): html.unescape(url) for url, link_id in LINK.findall(page)}


async def class_post(
    console: httpx.AsyncClient, class_id: int, path: str, **fields: str
) -> httpx.Response:
    token = await csrf(console, f"/console/classes/{class_id}")
    return await console.post(
        f"/console/classes/{class_id}{path}", data={"csrf_token": token, **fields}
    )


def socket_url(server: LiveServer, page_url: str) -> str:
    path, _, query = page_url.split("/display/", 1)[1].partition("?")
    return f"{server.ws_url}/ws/classes/{path}?{query}"


async def closed_with(ws: websockets.ClientConnection) -> tuple[int | None, str]:
    async with asyncio.timeout(5):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def refused(url: str) -> int:
    with pytest.raises(websockets.InvalidStatus) as raised:
        async with websockets.connect(url):
            pass
    return raised.value.response.status_code


async def test_a_class_starts_with_one_link_and_the_instructor_can_add_more(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await open_class(console)
    first = await links(console, class_id)
    assert len(first) == 1
    assert set(await links(console, class_id)) == set(first)  # viewing again makes no more
    added = await class_post(console, class_id, "/display-links")
    assert added.status_code == 303
    both = await links(console, class_id)
    assert len(both) == 2 and len(set(both.values())) == 2
    for url in both.values():
        page = await console.get(url.removeprefix(live_server.base_url))
        assert page.status_code == 200


async def test_revoking_one_link_closes_its_screen_and_the_others_carry_on(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await open_class(console)
    await class_post(console, class_id, "/display-links")
    (revoked_id, revoked_url), (kept_id, kept_url) = sorted(
        (await links(console, class_id)).items()
    )
    async with (
        websockets.connect(socket_url(live_server, revoked_url)) as gone,
        websockets.connect(socket_url(live_server, kept_url)) as kept,
    ):
        await until(gone, "snapshot")
        await until(kept, "snapshot")
        answer = await class_post(console, class_id, f"/display-links/{revoked_id}/revoke")
        assert answer.status_code == 303
        assert await closed_with(gone) == (1008, REVOKED)
        assert (await command(console, class_id, "start")).status_code == 200
        assert (await until(kept, "segment"))["segment"]["index"] == 0
    assert set(await links(console, class_id)) == {kept_id}
    assert await refused(socket_url(live_server, revoked_url)) == 403
    page = await console.get(revoked_url.removeprefix(live_server.base_url))
    assert page.status_code == 403 and html.escape(REVOKED, quote=True) in page.text
    results_url = revoked_url.replace("?token=", "/results?token=")
    assert (await console.get(results_url.removeprefix(live_server.base_url))).status_code == 403
    async with websockets.connect(socket_url(live_server, kept_url)) as again:
        assert (await until(again, "snapshot"))["type"] == "snapshot"


@pytest.mark.parametrize("link", ["abc", "99999", "-1", "1e3"])
async def test_revoking_a_link_that_isnt_the_classs_changes_nothing(
    live_server: LiveServer, console: httpx.AsyncClient, link: str
) -> None:
    class_id = await open_class(console)
    before = await links(console, class_id)
    answer = await class_post(console, class_id, f"/display-links/{link}/revoke")
    assert answer.status_code == 404
    assert set(await links(console, class_id)) == set(before)


async def test_a_link_of_another_class_or_revoked_already_is_not_found(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    first, second = await open_class(console), await open_class(console)
    (first_link,) = await links(console, first)
    (second_link,) = await links(console, second)
    assert (
        await class_post(console, second, f"/display-links/{first_link}/revoke")
    ).status_code == 404
    assert first_link in await links(console, first)
    assert (
        await class_post(console, second, f"/display-links/{second_link}/revoke")
    ).status_code == 303
    assert (
        await class_post(console, second, f"/display-links/{second_link}/revoke")
    ).status_code == 404
    assert await links(console, second) == {}
    page = (await console.get(f"/console/classes/{second}")).text
    assert "Every display link of this class has been revoked." in page


async def test_only_the_classs_instructor_revokes_with_a_form_token(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    class_id = await open_class(console)
    (link_id,) = await links(console, class_id)
    path = f"/console/classes/{class_id}/display-links/{link_id}/revoke"
    no_token = await console.post(path, data={})
    assert no_token.status_code == 403
    async with httpx.AsyncClient(base_url=live_server.base_url) as stranger:
        answer = await stranger.post(path, data={"csrf_token": await csrf(stranger, "/login")})
        assert answer.status_code in (303, 401, 403, 404)
    assert link_id in await links(console, class_id)


async def test_revoking_a_paired_wall_closes_the_class_it_was_showing(
    live_server: LiveServer, console: httpx.AsyncClient, wall: httpx.AsyncClient
) -> None:
    room = await add_room(console, "Studio A")
    await pair(console, await pairing_code(wall), room, label="Mirror TV")
    class_id = await open_in(console, room)
    await shows(wall, f"class:{class_id}")
    page = (await wall.get("/display")).text
    path = html.unescape(re.search(r'data-socket="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    url = f"{live_server.ws_url}{path}"
    ((display_id,),) = rows(live_server, "SELECT id FROM displays")
    async with websockets.connect(url) as ws:
        await until(ws, "snapshot")
        answer = await post(console, f"/console/displays/{display_id}/revoke")
        assert answer.status_code == 303
        assert await closed_with(ws) == (1008, REVOKED)
    assert await refused(url) == 403
