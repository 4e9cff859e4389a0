"""The FastAPI application: `create_app(settings)` wires services at start-up and the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from badges.api.catalogue import CatalogueService
from badges.api.credentials import CredentialService
from badges.api.deps import Services
from badges.api.drain import CloseWhileDraining, Drain
from badges.api.hub import OutboxHub
from badges.api.intake import EventIntake
from badges.api.integrations import IntegrationService
from badges.api.logs import redact_server_logs
from badges.api.members import MemberDirectory
from badges.api.metrics import ApiMetrics, RequestMetrics, ScrapeReadings, api_registry, forget_process, tails_of
from badges.api.problems import BodyLimit, install_problem_handlers, problem_openapi
from badges.api.routes import (
    admin,
    admin_badges,
    admin_members,
    audit,
    badges,
    bank,
    codec,
    comparisons,
    consent,
    contacts,
    credentials,
    dead_letters,
    dev,
    erasure,
    events,
    export,
    goals,
    health,
    insights,
    integrations,
    me,
    pages,
    peers,
    reviews,
    rewards,
    stream,
    ws,
)
from badges.api.text_guard import StorableText
from badges.api.throttle import Throttle
from badges.banking import make_providers
from badges.config import Settings
from badges.db.audit_reads import MemberReadAudit
from badges.db.engine import process_engine
from badges.db.keys import KeyStore
from badges.db.master_keys import configured_master_keys
from badges.db.pool import open_process_pool
from badges.heap import freeze_after_full_collections, freeze_startup_heap
from badges.temporal import Client, connect, connect_now

# How long a starting API process waits for Temporal before it serves anyway (its first request
# needing Temporal then connects; /readyz says it is not ready meanwhile).
TEMPORAL_AT_START_SECONDS = 5.0
log = logging.getLogger("badges.api")


async def reach_temporal(temporal: Client) -> None:
    """The lazy client's connection made at start-up, so no request waits for it; Temporal down
    is no reason not to start (the API answers what needs no workflow)."""
    try:
        await connect_now(temporal, TEMPORAL_AT_START_SECONDS)
    except Exception:
        log.warning("Temporal did not answer at start-up: the first request that needs it connects", exc_info=True)


class CodecCors:
    """Starlette's CORSMiddleware, applied only to `/codec/...`: the rest of the API sends no CORS headers."""

    def __init__(self, app: ASGIApp, **options: object) -> None:
        self._app = app
        self._cors = CORSMiddleware(app, **options)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/codec/"):
            await self._cors(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def create_app(settings: Settings, *, keep_heap_frozen: bool = False) -> FastAPI:
    """`keep_heap_frozen`: the process's garbage-collection policy for many open streams (the
    survivors of each full collection frozen, `badges.heap.FreezeAfterFullCollections`), for a
    process that runs only this app."""
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Within the process's share of PostgreSQL's connections (docs/deployment.md).
        engine = process_engine(settings)
        keys = KeyStore(
            engine,
            configured_master_keys(settings),
            max_entries=settings.key_cache_size,
            max_age_seconds=settings.key_cache_seconds,
        )
        # Lazy: the API starts (and /readyz says why it is not ready) while Temporal is down.
        temporal = await connect(settings, keys, lazy=True)
        pool = await open_process_pool(settings)
        catalogue = CatalogueService(engine)
        await catalogue.seed(settings.catalogue_path)
        hub = OutboxHub(pool, settings.libpq_url, on_tail=metrics.outbox_tail.set)
        await hub.start()
        app.state.readings = ScrapeReadings(engine, pool, tails_of(metrics, lambda: hub.last_id))
        app.state.metrics = api_registry(metrics, keys, app.state.readings)
        members = MemberDirectory(engine, keys, settings.identity_pepper)
        hub.on_erasure += [members.forget, keys.forget]
        hub.on_listening += [members.forget_all, keys.forget_all]
        throttle = Throttle(pool)
        throttle.start_sweeping()
        intake = EventIntake(pool, temporal, settings, catalogue, members, throttle, metrics)
        app.state.services = Services(
            engine=engine,
            pool=pool,
            keys=keys,
            temporal=temporal,
            members=members,
            catalogue=catalogue,
            intake=intake,
            throttle=throttle,
            hub=hub,
            integrations=IntegrationService(engine, pool, keys, members, intake),
            banking=make_providers(settings),
            read_audit=MemberReadAudit(pool),
            credentials=CredentialService(engine, pool, keys, settings),
            metrics=metrics,
        )
        # The lifespan's start ends before uvicorn accepts on this process, and in a rolling
        # restart the old process stops accepting once this one does: what every first request
        # would wait for is done before (the pools opened their first connections above).
        await reach_temporal(temporal)
        # From here a SIGTERM drains this process first (uvicorn's handlers are in place by now).
        drain.install(hub.end_streams)
        stop_freezing = freeze_after_full_collections() if keep_heap_frozen else None
        try:
            yield
        finally:
            if stop_freezing is not None:
                stop_freezing()
            drain.uninstall()
            await intake.signalled.close()
            await throttle.stop()
            await hub.stop()
            await pool.close()
            await engine.dispose()
            forget_process(metrics)

    app = FastAPI(
        title="Badges v2",
        version="1.0.0",
        description="Rewards for real financial behaviour, with private peer comparison.",
        lifespan=lifespan,
        # `/docs` is served by pages.router from packaged files; ReDoc would load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    drain = app.state.drain = Drain(settings.api_drain_seconds)
    install_problem_handlers(app)
    problem_openapi(app)
    # Inside the body limit: what it reads is at most `max_body_bytes`.
    app.add_middleware(StorableText)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    # Only the Temporal Web UI's origins, and only for the codec endpoint (CodecCors narrows the path).
    app.add_middleware(
        CodecCors,
        allow_origins=[origin.strip() for origin in settings.codec_cors_origins.split(",") if origin.strip()],
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace", "X-Badges-Workflow-Id", "X-Audit-Purpose"],
        allow_credentials=True,
    )
    # Outermost: every request is counted and timed, those the limits above refuse too.
    app.add_middleware(RequestMetrics, metrics=metrics)
    # Outermost: every response while the process drains, problem answers included.
    app.add_middleware(CloseWhileDraining, drain=drain)
    for router in (
        health.router,
        dev.router,
        me.router,
        erasure.router,
        export.router,
        bank.router,
        consent.router,
        events.router,
        stream.router,
        ws.router,
        badges.router,
        credentials.router,
        insights.router,
        goals.router,
        contacts.router,
        rewards.router,
        admin.router,
        admin_badges.router,
        admin_members.router,
        peers.router,
        comparisons.router,
        audit.router,
        codec.router,
        reviews.router,
        dead_letters.router,
        integrations.router,
        pages.router,
    ):
        app.include_router(router)
    app.mount(pages.STATIC_PREFIX, pages.static_files(), name="pages")
    app.mount(pages.DOCS_ASSETS_PREFIX, pages.docs_assets(), name="docs-assets")
    return app


def app_from_environment() -> FastAPI:
    """Entry point for `uvicorn --factory badges.api.app:app_from_environment` (and for
    `python -m badges.cli.api`, which the image runs): the app, with server logs that name no token."""
    redact_server_logs()
    app = create_app(Settings(), keep_heap_frozen=True)  # type: ignore[call-arg]
    freeze_startup_heap()
    return app
