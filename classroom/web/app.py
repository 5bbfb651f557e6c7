"""The application: ``create_app(settings)`` wires routes, middleware and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Scope

from classroom.broker import broker_for
from classroom.cluster_checks import secret_check
from classroom.config import Settings
from classroom.db.classes import ClassStore, HeartbeatStore
from classroom.db.engine import make_engine, make_sessionmaker
from classroom.db.heart import HeartStore
from classroom.db.integrations import IntegrationStore
from classroom.db.leases import LeaseStore
from classroom.db.migrate import Waiting, database_problem, head_revision
from classroom.db.models import utcnow
from classroom.db.scores import SCORE_CACHE_MIB, ScoreStore
from classroom.db.writer import SqliteWriter, sqlite_path, writer_for
from classroom.domain.session import ClassPolicy
from classroom.hub.admission import Admission
from classroom.hub.hub import Hub
from classroom.live.clock import Clock, MonotonicClock
from classroom.live.heart import HeartKeeper
from classroom.live.registry import ClassRegistry
from classroom.live.router import Router
from classroom.live.scoring import ScoreKeeper
from classroom.metrics import Metrics
from classroom.resources import STATIC, TEMPLATES
from classroom.web import (
    accounts,
    api,
    bridge_socket,
    console,
    corrections,
    display,
    health,
    integration_pages,
    pairing,
    participants,
    results,
    rooms,
    roster,
    routines,
    sockets,
)
from classroom.web.assets import CachedStatic, asset_version, favicon
from classroom.web.csrf import CSRFMiddleware
from classroom.web.form_limits import FormLimitMiddleware, plain_refusal
from classroom.web.metrics import MetricsListener, figures_of, metrics_page
from classroom.web.request_ids import TracedStarlette
from classroom.web.sign_in_throttle import SignInThrottle
from classroom.web.templating import render
from classroom.web.throttle import AttemptWindow
from classroom.web.tokens import Tokens
from classroom.web.workers_metrics import WorkerFigures
from classroom.webhooks import Webhooks, base_url_of

log = logging.getLogger(__name__)

HEART_RETENTION_EVERY_S = 3600


async def landing(request: Request) -> Response:
    return render(request, "pages/landing.html")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):  # the API answers in JSON, even a wrong path
        return await api.api_error(request, exc)
    if exc.status_code in (301, 302, 303, 307, 308):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return render(request, "pages/error.html", {"message": exc.detail}, exc.status_code)


async def client_gone(request: Request, exc: Exception) -> Response:
    """A request whose client left before its body arrived (htmx drops a request a newer
    one supersedes): nobody waits for the answer, and there is nothing to log."""
    return Response(status_code=400)


def form_refused(scope: Scope, message: str) -> Response:
    """A body over its budget (classroom/web/form_limits.py), on the site's error page."""
    if scope["path"].startswith("/api/"):
        return api.error_response(api.ApiError(413, message))
    if "csrf_token" not in scope.get("state", {}):
        return plain_refusal(scope, message)
    return render(Request(scope), "pages/error.html", {"message": message}, 413)


async def resume_when_ready(registry: ClassRegistry, retry_s: float = 2.0) -> None:
    """Resume the classes that were live; while the database isn't ready, keep trying.

    The server starts either way, so ``/readyz`` can say what is wrong.
    """
    waiting = Waiting(log, "live classes not resumed yet")
    while True:
        try:
            resumed = await registry.resume()
        except Exception as exc:
            waiting.on(exc)
            await asyncio.sleep(retry_s)
            continue
        if resumed:
            log.info("resumed %d live classes", len(resumed))
        return


async def keep_heart_retention(
    store: HeartStore, days: int, ready: asyncio.Future[None] | None = None
) -> None:
    """Remove heart-rate samples older than the retention period, hourly (totals stay).

    ``ready``: the first pass waits for it (the database is ready once the live classes
    have resumed; until then, the tasks that wait for it say why in the log).
    """
    if ready is not None:
        await asyncio.shield(ready)
    while True:
        try:
            removed = await store.remove_samples_before(utcnow() - timedelta(days=days))
            if removed:
                log.info("removed %d heart-rate samples older than %d days", removed, days)
        except Exception as exc:
            log.warning("old heart-rate samples not removed yet: %s", database_problem(exc))
        await asyncio.sleep(HEART_RETENTION_EVERY_S)


async def keep_delivering(webhooks: Webhooks, ready: asyncio.Future[None]) -> None:
    """Deliver webhook events (classroom/webhooks.py) once the database is ready."""
    await asyncio.shield(ready)
    await webhooks.keep_delivering()


async def demo_straps(settings: Settings) -> None:
    """``serve --demo``: the demo room's receiver, with simulated straps (classroom/demo.py)."""
    from classroom.bridge import BridgeError, SimulatedStraps, run_bridge
    from classroom.demo import DEMO_RIDERS, host_for_links

    host = host_for_links(settings.host)
    straps = SimulatedStraps(len(DEMO_RIDERS))
    try:
        await run_bridge(f"http://{host}:{settings.port}", settings.demo_receiver_token, straps)
    except BridgeError as exc:
        log.warning("the demo's simulated straps stopped: %s", exc)


def create_app(settings: Settings, *, clock: Clock | None = None) -> Starlette:
    version = asset_version((STATIC, TEMPLATES), settings.asset_salt)
    # A registry per app, never the library's global one: several apps in one
    # process (tests, one day workers gathered by a supervisor) keep their own.
    metrics = Metrics(settings.node)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        class_clock = clock or MonotonicClock()
        broker = broker_for(settings.broker_url, prefix=settings.redis_prefix)
        await broker.start()  # `classroom serve` checked it, so a failure here is news
        hub = Hub(broker, clock=class_clock.now_ms, metrics=metrics, node=settings.node)
        database_file = sqlite_path(engine)
        score_writer = (
            None
            if database_file is None
            else SqliteWriter(database_file, cache_mib=SCORE_CACHE_MIB)
        )
        score_store = ScoreStore(sessions, score_writer, metrics=metrics)
        heart_store = HeartStore(sessions, engine.dialect.name)
        integrations = IntegrationStore(sessions)
        webhooks = Webhooks(integrations, sessions, base_url_of(settings))
        # One process on its own (no Redis) owns every class; with Redis, each class
        # has one owner among the processes, and inputs reach it through the router.
        standalone = settings.broker_url == "memory://"
        registry = ClassRegistry(
            ClassStore(sessions, writer_for(engine), metrics=metrics),
            hub,
            class_clock,
            leases=LeaseStore(sessions, settings.node, standalone=standalone),
            heartbeats=HeartbeatStore(sessions, secret_check(settings.secret_key)),
            scores=ScoreKeeper(score_store, hub),
            heart=HeartKeeper(
                heart_store, settings.heart, score_store.roster, class_clock.now_ms, hub
            ),
            asset_version=version,
            metrics=metrics,
        )
        registry.on_phase = webhooks.phase_changed
        router = None
        if not standalone:
            router = Router(
                broker, settings.node, serve=registry.serve_input, locate=registry.where
            )
            registry.router = router
            router.on_notice = registry.noticed
            await router.start()
        admission: Admission = app.state.admission
        metrics.watch(
            screens=hub.roles,
            classes=registry.phases,
            sockets=lambda: (admission.open, admission.refused),
        )
        gathering = None
        if settings.workers > 1 and not standalone:  # one port, several workers' figures
            gathering = WorkerFigures(broker, settings.node, metrics.exposition, settings.workers)
            await gathering.start()
            app.state.figures = gathering.gather
        listener = None
        if settings.metrics.listen is not None:
            shared = settings.workers > 1
            listener = MetricsListener(app.state.figures, settings.metrics, shared=shared)
            await listener.start()
        app.state.metrics_listener = listener
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.hub = hub
        app.state.broker = broker
        app.state.registry = registry
        app.state.heart_store = heart_store
        app.state.integrations = integrations
        app.state.webhooks = webhooks
        resuming = asyncio.create_task(resume_when_ready(registry), name="resume-classes")
        background = [
            resuming,
            asyncio.create_task(registry.keep_heartbeat(), name="heartbeat"),
            asyncio.create_task(hub.keep_heartbeats(), name="screen-heartbeats"),
            asyncio.create_task(hub.keep_presence(), name="presence"),
            asyncio.create_task(hub.keep_listening(), name="revoked-screens"),
            asyncio.create_task(registry.keep_watch(), name="watch-owners"),
            asyncio.create_task(
                keep_heart_retention(heart_store, settings.heart_retention_days, resuming),
                name="heart-retention",
            ),
            asyncio.create_task(keep_delivering(webhooks, resuming), name="webhooks"),
        ]
        if settings.demo_receiver_token:
            background.append(asyncio.create_task(demo_straps(settings), name="demo-straps"))
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # several processes: the others take over
                await registry.drain()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if listener is not None:
                await listener.close()
            if gathering is not None:
                await gathering.close()
            await registry.close()
            await webhooks.close()
            if router is not None:
                await router.close()
            await registry.store.close()
            await score_store.close()
            if score_writer is not None:
                await score_writer.close()
            await hub.close()
            await broker.close()
            await engine.dispose()

    routes = [
        Route("/", landing),
        Route("/favicon.ico", favicon),
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/login", accounts.login_page, methods=["GET"]),
        Route("/login", accounts.login, methods=["POST"]),
        Route("/logout", accounts.logout, methods=["POST"]),
        Route("/console", console.home),
        Route("/console/classes", console.open_class, methods=["POST"]),
        Route("/console/history", console.history),
        Route("/console/classes/{class_id:int}", console.class_page),
        Route("/console/classes/{class_id:int}/commands", console.command, methods=["POST"]),
        *console.routes,
        *routines.routes,
        *corrections.routes,
        *roster.routes,
        Route("/join", participants.join_page, methods=["GET"]),
        Route("/join/teams", participants.team_choice, methods=["GET"]),
        Route("/join", participants.join, methods=["POST"]),
        Route("/j/{code}", participants.join_page),
        Route("/play/{class_id:int}", participants.play_page),
        Route("/display/{class_id:int}", display.display_page),
        *pairing.routes,
        *rooms.routes,
        *results.routes,
        *integration_pages.routes,
        *api.routes,
        WebSocketRoute("/ws/classes/{class_id:int}", sockets.class_socket),
        WebSocketRoute("/ws/bridge", bridge_socket.bridge_socket),
        Mount("/static", CachedStatic(STATIC, version), name="static"),
    ]
    app = TracedStarlette(
        routes=routes,
        middleware=[
            Middleware(CSRFMiddleware, settings=settings),
            Middleware(
                FormLimitMiddleware,
                budgets=(*routines.BUDGETS, *api.BUDGETS),
                refusal=form_refused,
            ),
        ],
        exception_handlers={HTTPException: http_error, ClientDisconnect: client_gone},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.figures = figures_of(metrics)
    app.state.asset_version = version
    app.state.tokens = Tokens(settings.secret_key)
    app.state.admission = Admission(settings.socket_limits)
    app.state.login_throttle = SignInThrottle()
    # Wrong pairing codes per instructor and address; new displays per address.
    app.state.pairing_throttle = AttemptWindow(per_account=10, per_address=30)
    app.state.display_throttle = AttemptWindow(per_account=30, per_address=30)
    # Joins per address in a minute (CLASSROOM_JOINS_PER_MINUTE; 0 is no limit).
    joins = settings.joins_per_minute
    app.state.join_rate = (
        AttemptWindow(per_account=joins, per_address=joins, window_s=60) if joins else None
    )
    app.state.class_policy = ClassPolicy(
        lobby_timeout_ms=settings.lobby_timeout_min * 60_000,
        pause_timeout_ms=settings.pause_timeout_min * 60_000,
    )
    app.state.schema_head = head_revision()
    # The API's requests per token a minute, and wrong tokens per address a minute.
    per_minute = settings.api_requests_per_minute
    app.state.api_rate = (
        AttemptWindow(per_account=per_minute, per_address=per_minute, window_s=60)
        if per_minute
        else None
    )
    wrong = api.WRONG_TOKENS_PER_MINUTE
    app.state.api_wrong_tokens = AttemptWindow(per_account=wrong, per_address=wrong, window_s=60)
    return app
