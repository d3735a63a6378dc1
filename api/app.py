"""The FastAPI application; the lifespan owns the connection pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import Depends, FastAPI
from psycopg_pool import AsyncConnectionPool

from api import (
    alerts_routes,
    archives,
    audit,
    auth,
    care_team,
    displays,
    erasure,
    exports,
    fhir,
    headers,
    held_records,
    imports,
    nightscout,
    pages,
    patients,
    problems,
    reading_annotations,
    readings,
    state,
    trends,
    users,
)
from api.access import CARE_PLAN_ROLES, require_patient
from api.record_jobs import RecordJobs
from api.state import RecentWriters
from core.settings import ApiSettings

# Enough for a few dozen concurrent requests on one process; PostgreSQL allows 100.
POOL_MAX = 10


async def _open_pool(url: str) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        url, min_size=1, max_size=POOL_MAX, open=False, check=AsyncConnectionPool.check_connection
    )
    await pool.open(wait=True)
    return pool


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each connection is checked before a request gets it: one the database dropped (a
        # restart, a failover to the standby) is replaced instead of failing the request.
        pool = await _open_pool(settings.database_url)
        app.state.pool = pool
        # Reads that may be a few seconds stale (api.state.read_pool_of): a standby's pool,
        # or the primary's when no read URL is set.
        read_pool = pool
        if settings.database_read_url is not None:
            read_pool = await _open_pool(settings.database_read_url)
        app.state.read_pool = read_pool
        app.state.recent_writers = RecentWriters(settings.read_your_writes_s)
        app.state.settings = settings
        # Archives and erasures run beside the requests; a job a stopped process left is
        # taken up again here.
        jobs = RecordJobs(pool, settings)
        app.state.record_jobs = jobs
        jobs.start()
        try:
            yield
        finally:
            await jobs.stop()
            if read_pool is not pool:
                await read_pool.close()
            await pool.close()

    app = FastAPI(
        title="glucobridge",
        version="1",
        summary="Home blood-glucose readings for patients and the care teams they choose.",
        lifespan=lifespan,
    )
    problems.install(app)
    audit.install(app)
    headers.install(app)
    state.install(app)
    routers = (auth, users, patients, displays, care_team, readings, held_records, exports)
    for module in (*routers, reading_annotations, archives, erasure, imports, audit, nightscout):
        app.include_router(module.router)
    # Every route of these routers is patient-scoped: the access check (grant with this
    # scope, audit row) runs before the route's own dependencies.
    app.include_router(trends.router, dependencies=[Depends(require_patient("trends"))])
    app.include_router(alerts_routes.router, dependencies=[Depends(require_patient("alerts"))])
    app.include_router(
        alerts_routes.care_plan_router,
        dependencies=[Depends(require_patient("care_plan", roles=CARE_PLAN_ROLES))],
    )
    app.include_router(
        alerts_routes.webhooks_router,
        dependencies=[Depends(require_patient("alerts", owner_only=True))],
    )
    # The FHIR endpoint for hospital systems (its own app under /fhir/r4, its own gate).
    fhir.install(app)
    # Dashboards: data routes gated per route by require_patient, and the static pages.
    pages.install(app)

    @app.get("/api/v1/health", summary="Liveness: the process serves requests")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def server_config(settings: ApiSettings, app: FastAPI | None = None) -> uvicorn.Config:
    """How uvicorn serves the API (the `glucobridge api` command and the tests alike).

    Proxy headers (X-Forwarded-For, -Proto) are believed only from the proxies named in
    GLUCOBRIDGE_FORWARDED_ALLOW_IPS; unset, they are ignored, so a client cannot choose the
    address it is logged and throttled by.
    """
    return uvicorn.Config(
        app or create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
    )
