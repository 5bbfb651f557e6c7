"""Three nodes serve one class: every screen on every node sees all of it, once, in order."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.models import Class, Score
from tests.cluster.conftest import (
    Cluster,
    Node,
    Phone,
    Watch,
    assert_gap_free,
    phone_on,
    scalar,
)
from tests.helpers import Message, command, join_code, open_class, sign_in
from tests.web.test_display_links import class_post, links

PER_PHONE = 15


async def owner_of(database_url: str, class_id: int) -> str | None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            row = await db.get(Class, class_id)
            assert row is not None
            return row.owner_node
    finally:
        await engine.dispose()


async def stored_scores(database_url: str, class_id: int) -> int:
    statement = select(func.count()).select_from(Score).where(Score.class_id == class_id)
    return int(await scalar(database_url, statement) or 0)


async def tap(phone: Phone, name: str, count: int) -> list[Message]:
    """Send ``count`` reps; return their acks, in order.

    As a phone does, an input answered ``unavailable`` (the class couldn't take it
    just then) is sent again, a few times at most; any other error fails the test.
    """
    watch = phone.watch
    assert watch is not None

    def score(i: int) -> Message:
        return {"type": "score", "id": f"{name}-{i}", "segment": 0, "kind": "reps", "value": 1}

    for i in range(count):
        await watch.send(score(i))
    acks: list[Message] = []
    again = 0
    while len(acks) < count:
        message = await watch.next("ack", "error", within=20)
        if message["type"] == "error" and message["code"] == "unavailable" and again < 5:
            again += 1
            await asyncio.sleep(0.5)
            await watch.send(score(int(message["id"].rsplit("-", 1)[1])))
            continue
        assert message["type"] == "ack", message
        acks.append(message)
    return sorted(acks, key=lambda ack: int(ack["id"].rsplit("-", 1)[1]))


async def board_shows(watch: Watch, total: int) -> None:
    """Wait for a leaderboard on ``watch`` whose people's values add up to ``total``."""
    while True:
        board = await watch.next("leaderboard")
        people = (board.get("class") or {}).get("people") or []
        if sum(p["value"] for p in people) == total:
            return


async def class_runs_through(node: Node, instructor: httpx.AsyncClient, phones: int) -> None:
    """A class opened, joined, started and scored through ``node`` (a node, or a proxy
    in front of several): every rep acknowledged, and on the console's board."""
    assert (await sign_in(instructor)).status_code == 303
    class_id = await open_class(instructor)
    code = await join_code(instructor, class_id)
    console = await Watch.open(
        f"{node.ws_url}/ws/classes/{class_id}", instructor_cookie(instructor)
    )
    await console.next("snapshot")
    joined = [await phone_on(node, class_id, code, f"R{n}") for n in range(phones)]
    for phone in joined:  # each socket may reach any process behind the address
        await phone.connect(node)
    assert (await command(instructor, class_id, "start")).status_code == 200
    acks = await asyncio.gather(*(tap(p, f"r{n}", 5) for n, p in enumerate(joined)))
    assert sum(len(a) for a in acks) == 5 * phones
    await board_shows(console, 5 * phones)
    await console.close()
    for phone in joined:
        assert phone.watch is not None
        await phone.watch.close()
        await phone.client.aclose()


def instructor_cookie(client: httpx.AsyncClient) -> str:
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


async def test_three_nodes_serve_one_class_to_every_screen(
    cluster: Cluster, cluster_db: str
) -> None:
    one, two, three = cluster.nodes
    async with httpx.AsyncClient(base_url=one.base_url) as instructor:
        await sign_in(instructor)
        class_id = await open_class(instructor)
        code = await join_code(instructor, class_id)
        console = await Watch.open(
            f"{one.ws_url}/ws/classes/{class_id}", instructor_cookie(instructor)
        )
        await console.next("snapshot")
        token = cluster.tokens.display(class_id)
        wall = await Watch.open(f"{three.ws_url}/ws/classes/{class_id}?token={token}")
        await wall.next("snapshot")

        # Two phones join through each node, and connect to it.
        phones: list[Phone] = []
        for n, node in enumerate((one, two, three, one, two, three)):
            phone = await phone_on(node, class_id, code, f"P{n}")
            await phone.connect(node)
            phones.append(phone)
        # The roster reaches the wall on node 3, and presence the console on node 1.
        while (await wall.next("roster"))["count"] < 6:
            pass
        while True:
            presence = await console.next("presence")
            if len(presence["participants"]) == 6 and presence["displays"] == 1:
                break
        assert await owner_of(cluster_db, class_id) in ("node1", "node2", "node3")

        # Started from node 2, whichever node owns the class.
        async with httpx.AsyncClient(base_url=two.base_url, cookies=instructor.cookies) as other:
            assert (await command(other, class_id, "start")).status_code == 200
        watches = [console, wall, *(p.watch for p in phones if p.watch is not None)]
        started = await asyncio.gather(*(w.next("segment") for w in watches))
        assert {m["seq"] for m in started} == {started[0]["seq"]}

        # Every phone logs reps; each is acknowledged once, and counted once.
        acked = await asyncio.gather(
            *(tap(phone, f"p{n}", PER_PHONE) for n, phone in enumerate(phones))
        )
        for n, acks in enumerate(acked):
            assert [a["id"] for a in acks] == [f"p{n}-{i}" for i in range(PER_PHONE)]
            assert not any(a["duplicate"] for a in acks)
        assert await stored_scores(cluster_db, class_id) == 6 * PER_PHONE

        # The boards cross nodes: the wall (node 3) sees everyone's reps, and so do phones.
        await board_shows(wall, 6 * PER_PHONE)
        for phone in phones[1:3]:  # on nodes 2 and 3
            assert phone.watch is not None
            await phone.watch.next("leaderboard")

        # The wall's sound, from the console on node 1 to the display on node 3.
        await console.send({"type": "sound", "id": "s1", "on": False})
        assert await console.next("ack") == {"type": "ack", "id": "s1", "displays": 1}
        assert (await wall.next("sound"))["on"] is False
        # And from a console on a node that doesn't own the class: through its owner.
        owner = await owner_of(cluster_db, class_id)
        elsewhere = next(node for node in cluster.nodes if node.name != owner)
        other_console = await Watch.open(
            f"{elsewhere.ws_url}/ws/classes/{class_id}", instructor_cookie(instructor)
        )
        await other_console.next("snapshot")
        await other_console.send({"type": "sound", "id": "s2", "on": True})
        assert await other_console.next("ack") == {"type": "ack", "id": "s2", "displays": 1}
        assert (await wall.next("sound"))["on"] is True
        await other_console.close()

        # Every screen has had every event once and in order, whichever node it is on.
        await asyncio.sleep(2.5)  # a couple more cues
        last = max(max(w.numbers()) for w in watches)
        await asyncio.sleep(0.5)
        for watch in watches:
            assert_gap_free(watch, max(watch.numbers()))
            assert max(watch.numbers()) >= last
        for watch in watches:
            await watch.close()
        for phone in phones:
            await phone.client.aclose()


async def test_a_link_revoked_on_one_node_closes_its_screen_on_another(cluster: Cluster) -> None:
    one, three = cluster.nodes[0], cluster.nodes[2]
    async with httpx.AsyncClient(base_url=one.base_url) as instructor:
        await sign_in(instructor)
        class_id = await open_class(instructor)
        ((link_id, url),) = (await links(instructor, class_id)).items()
        path, _, query = url.split("/display/", 1)[1].partition("?")
        wall = await Watch.open(f"{three.ws_url}/ws/classes/{path}?{query}")
        await wall.next("snapshot")
        answer = await class_post(instructor, class_id, f"/display-links/{link_id}/revoke")
        assert answer.status_code == 303
        with pytest.raises(ConnectionError, match="1008"):
            await wall.next("never", within=10)
