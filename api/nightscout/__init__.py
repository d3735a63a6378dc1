"""A Nightscout-compatible API for every patient, under consent.

CGM apps (xDrip+, Juggluco, xDrip4iOS, the LibreLinkUp uploader) upload to a patient's site
with the site's uploader secret; followers (xDrip+'s and xDrip4iOS's follower modes, Home
Assistant through py-nightscout) read it with tokens the patient issues and revokes.
Uploaded entries go through the one intake like bridge readings; every access is audited.

    app.include_router(nightscout.router)

Modules: `credentials` (what a client presents, pure), `dates`, `entries`, `query`,
`treatments` (documents in and out, pure), `sites` (sites and tokens in the database),
`gate` (who is calling, the audit row), `store` (reads, and writes through the intake),
`routes` (the Nightscout API), `manage` (the patient's routes), `errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api.nightscout import manage, routes, store
from api.nightscout.errors import NightscoutError

# Uploads run the intake's writer (psycopg, blocking) in worker threads, each on a pooled
# connection: a few at once is what one process's threads and PostgreSQL serve well.
UPLOAD_POOL_MAX = 4


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The upload pool lives with the app (opened after the app's own lifespan has set its
    settings, closed before the app's pool)."""
    pool = store.new_pool(app.state.settings.database_url, UPLOAD_POOL_MAX)
    await asyncio.to_thread(pool.open, True)
    app.state.nightscout_upload_pool = pool
    try:
        yield
    finally:
        await asyncio.to_thread(pool.close)


router = APIRouter(lifespan=_lifespan)
router.include_router(manage.router)
router.include_router(routes.site_router)
router.include_router(routes.root_router)

__all__ = ["NightscoutError", "router"]
