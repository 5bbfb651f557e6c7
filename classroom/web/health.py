"""Health checks: is the process up (``/healthz``), can it serve (``/readyz``)."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from classroom import __version__
from classroom.db.migrate import database_problem, missing_schema


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers, its schema is at the migrations' head, and the
    broker (Redis, with several processes) is connected.

    It also names this process (``node``) and the live classes it owns (``owns``).
    """
    head = request.app.state.schema_head
    try:
        async with request.app.state.engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:
        if missing_schema(exc):
            reason = database_problem(exc)
        else:
            reason = f"database unreachable: {type(exc).__name__}"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    if current != head:
        reason = f"database schema is at {current}, expected {head}: run `classroom migrate`"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    problem = request.app.state.broker.problem()
    if problem is not None:
        return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
    registry = request.app.state.registry
    return JSONResponse(
        {"status": "ready", "schema": current, "node": registry.node, "owns": registry.owned()}
    )
