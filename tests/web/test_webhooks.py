"""Webhooks: events posted to a real receiver, signed, retried, and logged.

The receiver is a small HTTP server of the test's own on a loopback port. Signatures
are checked with the code docs/api.md gives receivers; the receiver answers what the
test says.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from classroom.domain.errors import ValidationError
from classroom.webhooks import RETRY_AFTER_S, checked_events, checked_url, retry_at, signature
from tests.api import Receiver, bearer, make_token, receiving, register, verified
from tests.conftest import LiveServer
from tests.helpers import csrf, join, sign_in


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


@pytest.fixture
async def console(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        await sign_in(client)
        yield client


async def test_a_class_sends_its_events_signed_and_a_failed_post_is_tried_again(
    live_server: LiveServer, console: httpx.AsyncClient, receiver: Receiver
) -> None:
    token = await make_token(console, "Booking")
    api = f"{live_server.base_url}/api/v1"
    hook_id, secret = await register(
        console,
        receiver.url,
        ["class.opened", "class.started", "class.finished", "participant.joined"],
    )
    receiver.fail_first = {"class.opened"}
    listed = (await console.get(f"{api}/routines", headers=bearer(token))).json()["routines"]
    routine = next(r["id"] for r in listed if r["title"] == "Quick test")
    opened = await console.post(
        f"{api}/classes", json={"routine_id": routine}, headers=bearer(token)
    )
    class_id = opened.json()["id"]

    first, second = await receiver.wait_for("class.opened", 2)
    # The same delivery, tried again after the 500, about RETRY_AFTER_S[0] later.
    assert first.delivery == second.delivery and first.body == second.body
    assert RETRY_AFTER_S[0] * 0.9 <= second.at - first.at <= RETRY_AFTER_S[0] * 1.1 + 3
    for item in (first, second):
        assert verified(secret, item.signature, item.body, datetime.now(UTC).timestamp())
        assert not verified(secret, item.signature, item.body + b" ", time.time())
        assert not verified("whsec_other", item.signature, item.body, time.time())
    event = second.data
    assert event["type"] == "class.opened" and event["id"].startswith("evt_")
    assert event["data"]["class"]["id"] == class_id
    assert event["data"]["class"]["join_url"] == opened.json()["join_url"]
    assert "token" not in second.body.decode()  # no display link in an event

    code = opened.json()["join_code"]
    async with httpx.AsyncClient(base_url=live_server.base_url) as phone:
        assert (await join(phone, code, "Robin")).status_code == 303
    (joined,) = await receiver.wait_for("participant.joined")
    assert joined.data["data"]["participant"]["nickname"] == "Robin"
    assert joined.data["data"]["class"]["id"] == class_id

    started = await console.post(
        f"{api}/classes/{class_id}/commands", json={"command": "start"}, headers=bearer(token)
    )
    assert started.status_code == 200
    (start,) = await receiver.wait_for("class.started")
    assert start.data["data"]["class"]["phase"] in ("countdown", "running")
    await console.post(
        f"{api}/classes/{class_id}/commands", json={"command": "finish"}, headers=bearer(token)
    )
    (finish,) = await receiver.wait_for("class.finished")
    finished = finish.data["data"]["class"]
    assert finished["phase"] == "finished"
    # Links in events are made from the settings (the public address): here, a test's
    # server whose settings don't know its port.
    results_path = urlsplit(finished["results_url"]).path
    assert results_path == f"/api/v1/classes/{class_id}/results"
    results = await console.get(results_path, headers=bearer(token))
    assert results.status_code == 200 and results.json()["class"]["id"] == class_id

    # The delivery log, in the API and on the console's page.
    log = (await console.get(f"{api}/webhooks/{hook_id}/deliveries", headers=bearer(token))).json()
    by_event = {row["event"]: row for row in log["deliveries"]}
    assert set(by_event) == {
        "class.opened",
        "participant.joined",
        "class.started",
        "class.finished",
    }
    assert by_event["class.opened"]["attempts"] == 2
    assert by_event["class.opened"]["state"] == "delivered"
    assert by_event["class.opened"]["last_status"] == 204
    assert all(row["state"] == "delivered" for row in log["deliveries"])
    page = await console.get("/console/integrations")
    opened_row = page.text.split(f'data-delivery-id="{by_event["class.opened"]["id"]}"')[1]
    assert 'data-state="delivered"' in opened_row.split("</tr>")[0]
    assert "<td>2</td>" in opened_row.split("</tr>")[0]
    assert secret not in page.text  # shown once, when it was made


async def test_only_the_chosen_events_are_sent_and_a_removed_webhook_gets_nothing(
    live_server: LiveServer, console: httpx.AsyncClient, receiver: Receiver
) -> None:
    token = await make_token(console, "Website")
    api = f"{live_server.base_url}/api/v1"
    made = await console.post(
        f"{api}/webhooks",
        json={"url": receiver.url, "events": ["class.finished"]},
        headers=bearer(token),
    )
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    listed = (await console.get(f"{api}/routines", headers=bearer(token))).json()["routines"]
    routine = next(r["id"] for r in listed if r["title"] == "Quick test")
    class_id = (
        await console.post(f"{api}/classes", json={"routine_id": routine}, headers=bearer(token))
    ).json()["id"]
    await console.post(
        f"{api}/classes/{class_id}/commands", json={"command": "cancel"}, headers=bearer(token)
    )
    await asyncio.sleep(1.5)
    assert receiver.received == []  # neither opened nor cancelled was chosen
    removed = await console.delete(f"{api}/webhooks/{made.json()['id']}", headers=bearer(token))
    assert removed.status_code == 204
    again = await console.delete(f"{api}/webhooks/{made.json()['id']}", headers=bearer(token))
    assert again.status_code == 404
    second = (
        await console.post(f"{api}/classes", json={"routine_id": routine}, headers=bearer(token))
    ).json()["id"]
    for command in ("start", "finish"):
        await console.post(
            f"{api}/classes/{second}/commands", json={"command": command}, headers=bearer(token)
        )
    await asyncio.sleep(1.5)
    assert receiver.received == []


async def test_bad_webhooks_are_refused_with_a_sentence_and_nothing_is_stored(
    live_server: LiveServer, console: httpx.AsyncClient
) -> None:
    token = await make_token(console, "Bad hooks")
    api = f"{live_server.base_url}/api/v1"
    bad = [
        {"url": "ftp://example.com/hook"},
        {"url": "https:///no-host"},
        {"url": "https://example.com/a b"},
        {"url": "https://example.com/" + "x" * 2000},
        {"url": 42},
        {"url": "https://example.com/h", "events": []},
        {"url": "https://example.com/h", "events": ["class.exploded"]},
        {"url": "https://example.com/h", "events": "class.opened"},
        {"url": "https://example.com/h", "secret": "mine"},
    ]
    for body in bad:
        answer = await console.post(f"{api}/webhooks", json=body, headers=bearer(token))
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["code"] == "bad_request"
    page = await console.post(
        "/console/integrations/webhooks",
        data={
            "csrf_token": await csrf(console, "/console/integrations"),
            "url": "javascript:alert(1)",
        },
    )
    assert page.status_code == 400
    assert "A webhook&#39;s URL starts with https:// or http://" in page.text
    assert (await console.get(f"{api}/webhooks", headers=bearer(token))).json()["webhooks"] == []


def test_the_retry_schedule_grows_and_ends_after_eight_attempts() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    waits = []
    for attempts in range(1, 8):
        at = retry_at(attempts, now)
        assert at is not None
        waits.append((at - now).total_seconds())
    assert waits == sorted(waits)
    for wait, planned in zip(waits, RETRY_AFTER_S, strict=True):
        assert planned <= wait <= planned * 1.1
    assert retry_at(8, now) is None
    assert sum(RETRY_AFTER_S) > timedelta(hours=8).total_seconds()


def test_signature_checks_and_input_checks() -> None:
    header = signature("whsec_k", 1_700_000_000, b'{"a":1}')
    expected = hmac.new(b"whsec_k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert (
        checked_url("  https://booking.example.com/h?x=1 ") == "https://booking.example.com/h?x=1"
    )
    assert checked_events(["class.opened", "class.opened"]) == ["class.opened"]
    for url in ("", "example.com/h", "http://", "mailto:a@b.c"):
        with pytest.raises(ValidationError):
            checked_url(url)
