"""The API and webhooks across three processes (PostgreSQL and Redis): each call works on
any node, and each event reaches the receiver once, whichever node saw it.

Every process runs a delivery loop over the same database; a delivery one of them
takes is not taken by another.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.api import Receiver, bearer, make_token, receiving, register, verified
from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import owner_of
from tests.helpers import join, sign_in

EVENTS = ["class.opened", "class.started", "class.finished", "participant.joined"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


async def test_calls_on_any_node_and_each_event_delivered_once(
    cluster: Cluster, cluster_db: str, receiver: Receiver
) -> None:
    one, two, three = cluster.nodes
    async with httpx.AsyncClient(base_url=one.base_url) as console:
        await sign_in(console)
        token = await make_token(console, "Booking system")
        hook_id, secret = await register(console, receiver.url, EVENTS)
    apis = [
        httpx.AsyncClient(base_url=f"{node.base_url}/api/v1", headers=bearer(token))
        for node in cluster.nodes
    ]
    try:
        routines = (await apis[1].get("/routines")).json()["routines"]
        routine = next(r["id"] for r in routines if r["title"] == "Long test")
        opened = await apis[2].post("/classes", json={"routine_id": routine})
        assert opened.status_code == 201, opened.text
        class_id, code = opened.json()["id"], opened.json()["join_code"]
        assert await owner_of(cluster_db, class_id) == three.env["CLASSROOM_NODE"]
        for node, name in ((one, "Robin"), (two, "Sam")):
            async with httpx.AsyncClient(base_url=node.base_url) as phone:
                assert (await join(phone, code, name)).status_code == 303
        # Controls from nodes that don't run the class reach the one that does.
        started = await apis[0].post(f"/classes/{class_id}/commands", json={"command": "start"})
        assert started.status_code == 200, started.text
        status = (await apis[1].get(f"/classes/{class_id}")).json()
        assert status["phase"] in ("countdown", "running") and status["participants"] == 2
        finished = await apis[1].post(f"/classes/{class_id}/commands", json={"command": "finish"})
        assert finished.status_code == 200 and finished.json()["phase"] == "finished"
        results = await apis[0].get(f"/classes/{class_id}/results")
        assert {p["nickname"] for p in results.json()["people"]} <= {"Robin", "Sam"}

        await receiver.wait_for("class.finished")
        await receiver.wait_for("participant.joined", 2)
        await asyncio.sleep(3)  # time for a second delivery of anything, were there one
        counts = Counter(item.event for item in receiver.received)
        assert counts == {
            "class.opened": 1,
            "participant.joined": 2,
            "class.started": 1,
            "class.finished": 1,
        }
        for item in receiver.received:
            assert verified(secret, item.signature, item.body, time.time())
            assert item.data["data"]["class"]["id"] == class_id
        log = (await apis[2].get(f"/webhooks/{hook_id}/deliveries")).json()["deliveries"]
        assert len(log) == 5
        assert all(row["state"] == "delivered" and row["attempts"] == 1 for row in log)
    finally:
        for api in apis:
            await api.aclose()
