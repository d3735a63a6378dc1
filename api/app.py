"""The FastAPI application; the lifespan owns the connection pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api import problems, readings
from core.settings import ApiSettings

# Enough for a few dozen concurrent requests on one process; PostgreSQL allows 100.
POOL_MAX = 10


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=POOL_MAX, open=False)
        await pool.open(wait=True)
        app.state.pool = pool
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
    app.include_router(readings.router)

    @app.get("/api/v1/health", summary="Liveness: the process serves requests")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
