"""Peer: python-socketio's ASGI server, emitting each cue to a room.

Every client joins one room on connect; a cue is ``await sio.emit("cue", data,
room=...)``. Runs under uvicorn with uvloop, the ``websockets-sansio`` protocol
and no permessage-deflate. Socket.IO is at ``/socket.io/``; ``GET /start?cues=K``
starts the cues and answers how many clients are in the room; ``GET /health``
answers once it is up.

Run ``python -m bench.peers.socketio_server --port P``.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from bench.peers.common import Ticker, prepare_process, start_params

ROOM = "class"
sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[], logger=False)
members: set[str] = set()


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    await sio.enter_room(sid, ROOM)
    members.add(sid)


@sio.event
async def disconnect(sid: str, reason: Any = None) -> None:
    members.discard(sid)


async def broadcast(message: dict[str, Any]) -> None:
    await sio.emit("cue", message, room=ROOM)


ticker = Ticker(broadcast)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


async def start(request: Request) -> JSONResponse:
    if ticker.running:
        return JSONResponse({"error": "already running"}, status_code=409)
    start_ms = ticker.start(start_params(request.url.query))
    return JSONResponse({"clients": len(members), "start_ms": start_ms})


control = Starlette(routes=[Route("/health", health), Route("/start", start)])
app = socketio.ASGIApp(sio, other_asgi_app=control)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    prepare_process()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
