"""The FastAPI application; the lifespan owns the connection pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from psycopg_pool import AsyncConnectionPool

from api import (
    alerts_routes,
    audit,
    auth,
    care_team,
    exports,
    held_records,
    imports,
    pages,
    patients,
    problems,
    readings,
    trends,
    users,
)
from api.access import require_patient
from core.settings import ApiSettings

# Enough for a few dozen concurrent requests on one process; PostgreSQL allows 100.
POOL_MAX = 10


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=POOL_MAX, open=False)
        await pool.open(wait=True)
        app.state.pool = pool
        app.state.settings = settings
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="glucobridge",
        version="1",
        summary="Home blood-glucose readings for patients and the care teams they choose.",
        lifespan=lifespan,
    )
    problems.install(app)
    audit.install(app)
    for module in (auth, users, patients, care_team, readings, exports, imports, audit):
        app.include_router(module.router)
    app.include_router(held_records.router)
    # Every route of these routers is patient-scoped: the access check (grant with this
    # scope, audit row) runs before the route's own dependencies.
    app.include_router(trends.router, dependencies=[Depends(require_patient("trends"))])
    app.include_router(alerts_routes.router, dependencies=[Depends(require_patient("alerts"))])
    app.include_router(
        alerts_routes.webhooks_router,
        dependencies=[Depends(require_patient("alerts", owner_only=True))],
    )
    # Dashboards: data routes gated per route by require_patient, and the static pages.
    pages.install(app)

    @app.get("/api/v1/health", summary="Liveness: the process serves requests")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
