"""A server whose broker is Redis: class events reach screens through it, and a Redis
restart sends the screens back for a snapshot rather than leaving them silently behind.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from classroom.broker import BrokerError
from classroom.broker.redis import RedisBroker
from classroom.hub.screens import CLOSE_TRY_AGAIN
from tests.conftest import REDIS_URL, LiveServer, need_service, run_server, seed, settings_for
from tests.helpers import command, join, join_code, open_class, receive, sign_in, until
from tests.processes import PrivateRedis


def redis_server(url: str, database: str, tmp_path: Path, prefix: str) -> Iterator[LiveServer]:
    asyncio.run(seed(database))
    settings = settings_for(database, tmp_path, broker_url=url, redis_prefix=prefix)
    yield from run_server(settings)


async def reachable(url: str) -> None:
    broker = RedisBroker(url, prefix="probe")
    try:
        await broker.start()
    except BrokerError as exc:
        need_service("Redis", exc)
    finally:
        await broker.close()


async def a_class(server: LiveServer, console: httpx.AsyncClient) -> tuple[int, str]:
    """A class in the lobby with one participant; its id and the phone's cookie."""
    await sign_in(console)
    class_id = await open_class(console)
    code = await join_code(console, class_id)
    async with httpx.AsyncClient(base_url=server.base_url) as phone:
        assert (await join(phone, code, "Robin")).status_code == 303
        return class_id, "; ".join(f"{k}={v}" for k, v in phone.cookies.items())


def resume(
    server: LiveServer, class_id: int, cookie: str, snapshot: dict[str, object]
) -> websockets.connect:
    """The phone's page coming back with the seq and epoch of ``snapshot``."""
    query = f"since={snapshot['seq']}&epoch={snapshot['epoch']}"
    return websockets.connect(
        f"{server.ws_url}/ws/classes/{class_id}?{query}", additional_headers={"Cookie": cookie}
    )


def phone(server: LiveServer, class_id: int, cookie: str) -> websockets.connect:
    return websockets.connect(
        f"{server.ws_url}/ws/classes/{class_id}", additional_headers={"Cookie": cookie}
    )


async def test_class_events_reach_the_screens_through_redis(
    migrated_url: str, tmp_path: Path
) -> None:
    await reachable(REDIS_URL)
    prefix = f"test-{secrets.token_hex(6)}"
    servers = redis_server(REDIS_URL, migrated_url, tmp_path, prefix)
    server = await asyncio.to_thread(next, servers)
    watcher = Redis.from_url(REDIS_URL)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as console:
            class_id, cookie = await a_class(server, console)
            async with watcher.pubsub() as on_redis, phone(server, class_id, cookie) as ws:
                await on_redis.subscribe(f"{prefix}:class:{class_id}")
                assert (await receive(ws))["type"] == "snapshot"
                await command(console, class_id, "start")
                event = await until(ws, "phase")
                # The same event, as it crossed Redis: its seq, a newline, its JSON. (The
                # channel carries presence and broadcasts too, each with a head of its own.)
                async with asyncio.timeout(5):
                    while True:
                        message = await on_redis.get_message(timeout=1)
                        if (
                            message is not None
                            and message["type"] == "message"
                            and message["data"][:1].isdigit()
                        ):
                            break
                assert message["data"].split(b"\n", 1)[0] == str(event["seq"]).encode()
    finally:
        await watcher.aclose()
        await asyncio.to_thread(servers.close)


async def test_after_a_redis_restart_screens_come_back_and_resume(
    migrated_url: str, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    servers = redis_server(redis.url, migrated_url, tmp_path, "restart")
    server = await asyncio.to_thread(next, servers)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as console:
            class_id, cookie = await a_class(server, console)
            async with phone(server, class_id, cookie) as ws:
                first = await receive(ws)
                assert first["type"] == "snapshot"
                redis.kill()
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await until(ws, "never")  # events may have been lost: come back
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == CLOSE_TRY_AGAIN

            # While Redis is down, a screen is told to try again, not left waiting.
            async with phone(server, class_id, cookie) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await receive(ws)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == CLOSE_TRY_AGAIN

            redis.start()
            deadline = time.monotonic() + 15
            while True:  # the screen comes back where it was: nothing of the class was lost
                async with resume(server, class_id, cookie, first) as ws:
                    try:
                        again = await receive(ws)
                    except websockets.ConnectionClosed:
                        assert time.monotonic() < deadline, "the server never followed again"
                        await asyncio.sleep(0.2)
                        continue
                    assert again["type"] == "resumed" and again["epoch"] == first["epoch"]
                    await command(console, class_id, "start")
                    assert (await until(ws, "phase"))["seq"] == first["seq"] + 1
                    break
    finally:
        await asyncio.to_thread(servers.close)
        redis.kill()


async def test_a_running_class_outlives_a_redis_restart(migrated_url: str, tmp_path: Path) -> None:
    """Events the actor couldn't publish were saved first: the class goes on from there."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    servers = redis_server(redis.url, migrated_url, tmp_path, "running")
    server = await asyncio.to_thread(next, servers)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as console:
            class_id, cookie = await a_class(server, console)
            async with phone(server, class_id, cookie) as ws:
                await receive(ws)
                await command(console, class_id, "start")
                seen = (await until(ws, "cue"))["seq"]
                redis.kill()
                with pytest.raises(websockets.ConnectionClosed):
                    await until(ws, "never")
            # Two cues fall due meanwhile (at 0:02 and 0:03): saved, but not published.
            await asyncio.sleep(2.5)
            redis.start()
            deadline = time.monotonic() + 20
            while True:
                async with phone(server, class_id, cookie) as ws:
                    try:
                        snapshot = await until(ws, "snapshot")
                    except websockets.ConnectionClosed:
                        assert time.monotonic() < deadline, "the server never followed again"
                        await asyncio.sleep(0.2)
                        continue
                    assert snapshot["phase"] == "running"
                    assert snapshot["seq"] > seen + 1  # nothing that fell due was lost
                    later = await until(ws, "cue", "segment", "phase")
                    assert later["seq"] > snapshot["seq"]
                    break
    finally:
        await asyncio.to_thread(servers.close)
        redis.kill()
