"""The instructor's score sheet, and heart rates, on nodes that don't run the class.

Only the class's owner keeps its score book current; a console on any other node
reads what is stored, and its changes run at the owner. Whichever node the phone
and the console are on, flags appear, a dismissal and a correction take, the phone
hears its corrected result, and the database agrees.
"""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from classroom.db.models import Participant, Score
from classroom.domain.heart import encode_measurement, max_from_age
from tests.cluster.conftest import Cluster, Node, Phone, Watch, phone_on, scalar
from tests.cluster.test_cluster import owner_of
from tests.helpers import command, csrf, join_code, open_class, sign_in

BURST = 6


async def flagged_stored(database_url: str, class_id: int) -> int:
    flagged = Score.flagged.is_(True)
    statement = select(func.count()).select_from(Score).where(Score.class_id == class_id, flagged)
    return int(await scalar(database_url, statement) or 0)


async def participant_id(database_url: str, class_id: int) -> int:
    statement = select(Participant.id).where(Participant.class_id == class_id)
    return int(await scalar(database_url, statement))


async def burst(phone: Phone, name: str) -> None:
    """Inputs no one could do: 200 reps each, in the first seconds of a segment."""
    watch = phone.watch
    assert watch is not None
    for i in range(BURST):
        await watch.send(
            {"type": "score", "id": f"{name}{i}", "segment": 0, "kind": "reps", "value": 200}
        )
    for _ in range(BURST):
        ack = await watch.next("ack", "error")
        assert ack["type"] == "ack" and ack["duplicate"] is False, ack


def shown_result(sheet: str, pid: int) -> str | None:
    table = re.search(r'data-segment="0">(.*?)</table>', sheet, re.S)
    if table is None:
        return None
    cell = re.search(
        rf'data-participant="{pid}">.*?<td data-result>([^<]*)</td>', table.group(1), re.S
    )
    return None if cell is None else cell.group(1)


async def started(
    cluster: Cluster, cluster_db: str, instructor: httpx.AsyncClient
) -> tuple[int, str, list[Node]]:
    """A class opened and started by ``instructor``: its id, its join code, and the
    nodes that don't run it."""
    await sign_in(instructor)
    class_id = await open_class(instructor)
    code = await join_code(instructor, class_id)
    assert (await command(instructor, class_id, "start")).status_code == 200
    owner = await owner_of(cluster_db, class_id)
    return class_id, code, [node for node in cluster.nodes if node.name != owner]


async def test_a_console_on_another_node_sees_flags_dismisses_and_corrects(
    cluster: Cluster, cluster_db: str
) -> None:
    first = cluster.nodes[0]
    async with httpx.AsyncClient(base_url=first.base_url) as instructor:
        class_id, code, (elsewhere, *_) = await started(cluster, cluster_db, instructor)
        owner = await owner_of(cluster_db, class_id)

        # The phone and the console are both on a node that doesn't run the class.
        phone = await phone_on(elsewhere, class_id, code, "Robin")
        watch = await phone.connect(elsewhere)
        pid = await participant_id(cluster_db, class_id)
        sheet_url = f"/console/classes/{class_id}/scores"
        async with httpx.AsyncClient(
            base_url=elsewhere.base_url, cookies=instructor.cookies
        ) as console:

            async def flagged() -> str:
                answer = await console.get(f"{sheet_url}/flagged")
                assert answer.status_code == 200
                return answer.text

            async def post(**fields: object) -> httpx.Response:
                token = await csrf(console, sheet_url)
                data = {"csrf_token": token, "participant_id": pid, "segment_index": 0, **fields}
                return await console.post(
                    f"{sheet_url}/corrections", data={k: str(v) for k, v in data.items()}
                )

            assert "Nothing flagged." in await flagged()  # seen once before the burst
            await burst(phone, "a")
            fragment = await flagged()
            assert 'data-flagged-count="1"' in fragment
            assert f"{BURST} inputs flagged, the last 200 reps at 0:0" in fragment
            assert await flagged_stored(cluster_db, class_id) == BURST
            assert shown_result((await console.get(sheet_url)).text, pid) == "1,200 reps"

            # A bad dismissal is refused and changes nothing.
            assert (await post(action="dismiss", segment_index=99)).status_code == 400
            assert await flagged_stored(cluster_db, class_id) == BURST

            # Dismissed from this node: the owner's book and the database agree.
            assert (await post(action="dismiss")).status_code == 303
            assert "Nothing flagged." in await flagged()
            assert await flagged_stored(cluster_db, class_id) == 0
            async with httpx.AsyncClient(
                base_url=next(n for n in cluster.nodes if n.name == owner).base_url,
                cookies=instructor.cookies,
            ) as at_owner:
                answer = await at_owner.get(f"{sheet_url}/flagged")
                assert "Nothing flagged." in answer.text

            # Corrected from this node: the phone hears it, and the sheet shows it.
            assert (await post(value=20)).status_code == 303
            corrected = await watch.next("corrected")
            assert corrected == {
                "type": "corrected",
                "participant": pid,
                "segment": 0,
                "value": 20,
                "rounds": 0,
                "deleted": False,
            }
            assert shown_result((await console.get(sheet_url)).text, pid) == "20 reps"
            # A new burst after the correction: the result is decided, nothing is listed.
            await burst(phone, "b")
            assert "Nothing flagged." in await flagged()
        await watch.close()
        await phone.client.aclose()


async def test_heart_rates_from_a_phone_on_another_node_reach_a_wall_on_a_third(
    cluster: Cluster, cluster_db: str
) -> None:
    """A strap's samples go to the class's owner, whichever node the phone is on; the
    owner answers the phone, and the tiles reach walls on every node."""
    first = cluster.nodes[0]
    async with httpx.AsyncClient(base_url=first.base_url) as instructor:
        class_id, code, (phone_node, wall_node) = await started(cluster, cluster_db, instructor)
        phone = await phone_on(phone_node, class_id, code, "Robin")
        watch = await phone.connect(phone_node)
        token = cluster.tokens.display(class_id)
        wall = await Watch.open(f"{wall_node.ws_url}/ws/classes/{class_id}?token={token}")
        await wall.next("snapshot")
        await watch.send({"type": "heart_profile", "id": "p", "age": 40})
        assert (await watch.next("heart_profile"))["max_hr"] == max_from_age(40)
        await watch.send({"type": "hr", "id": "h1", "data": encode_measurement(150).hex()})
        answer = await watch.next("hr", "error")
        assert answer == {**answer, "type": "hr", "id": "h1", "bpm": 150, "zone": 4}
        await watch.send({"type": "hr", "id": "h2", "data": "zz"})  # refused where it came
        assert (await watch.next("error"))["code"] == "bad_hr"
        while True:
            tiles = await wall.next("heart")
            if tiles["tiles"]:
                break
        assert [(t["name"], t["zone"], t["bpm"]) for t in tiles["tiles"]] == [("Robin", 4, None)]
        await wall.close()
        await watch.close()
        await phone.client.aclose()


async def test_the_process_that_opens_a_class_runs_it(cluster: Cluster, cluster_db: str) -> None:
    """Opened through a node, a class is that node's at once (its console comes there
    next), not whichever node's watch happens to claim it first."""
    for node in cluster.nodes:
        async with httpx.AsyncClient(base_url=node.base_url) as instructor:
            await sign_in(instructor)
            class_id = await open_class(instructor)
            assert await owner_of(cluster_db, class_id) == node.name
