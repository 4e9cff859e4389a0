"""The FastAPI application: `create_app(settings)` wires services at start-up and the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from badges.api.deps import Services
from badges.api.hub import OutboxHub
from badges.api.intake import EventIntake
from badges.api.members import MemberDirectory
from badges.api.problems import BodyLimit, install_problem_handlers
from badges.api.routes import admin, badges, dev, events, health, me, stream
from badges.config import Settings
from badges.db.engine import make_engine
from badges.db.keys import KeyStore, MasterKeys
from badges.db.pool import open_pool
from badges.workers.converter import make_data_converter


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        keys = KeyStore(engine, MasterKeys(settings.parsed_master_keys))
        # Lazy: the API starts (and /readyz says why it is not ready) while Temporal is down.
        temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=make_data_converter(keys),
            lazy=True,
        )
        pool = await open_pool(settings.libpq_url)
        hub = OutboxHub(pool, settings.libpq_url)
        await hub.start()
        app.state.services = Services(
            engine=engine,
            pool=pool,
            temporal=temporal,
            members=MemberDirectory(engine, keys, settings.identity_pepper),
            intake=EventIntake(pool, temporal, settings.task_queue),
            hub=hub,
        )
        try:
            yield
        finally:
            await hub.stop()
            await pool.close()
            await engine.dispose()

    app = FastAPI(
        title="Badges v2",
        version="1.0.0",
        description="Rewards for real financial behaviour, with private peer comparison.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    for router in (health.router, dev.router, me.router, events.router, stream.router, badges.router, admin.router):
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """Entry point for `uvicorn --factory badges.api.app:app_from_environment`."""
    return create_app(Settings())  # type: ignore[call-arg]
