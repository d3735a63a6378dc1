"""What the lifespan opened, reached from a request: the pools, the settings, the broker admin.

Two pools: the primary's (every write, every audit row, anything that must be current) and
the read pool (`GLUCOBRIDGE_DATABASE_READ_URL`, a standby; the primary's own pool when it is
unset). `read_pool_of` gives the read pool to a GET whose signed-in user has not written
within the last `read_your_writes_s` seconds: a standby may be a moment behind, and a user
who just changed something must see it. Writes are remembered per user in this process
(`RecentWriters`), marked when a writing request ends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response
from psycopg_pool import AsyncConnectionPool

from api.broker_admin import Provisioner, provisioner
from api.problems import ProblemError
from core.settings import ApiSettings


def pool_of(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


# Requests that never write: the only ones the read pool may serve.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class RecentWriters:
    """When each user last wrote (monotonic seconds), forgotten after `window_s`."""

    window_s: float
    _at: dict[uuid.UUID, float] = field(default_factory=dict)

    def mark(self, user_id: uuid.UUID) -> None:
        now = time.monotonic()
        if len(self._at) > 10_000:  # a bound on memory: drop who is past the window
            self._at = {u: t for u, t in self._at.items() if now - t < self.window_s}
        self._at[user_id] = now

    def wrote_recently(self, user_id: uuid.UUID) -> bool:
        at = self._at.get(user_id)
        return at is not None and time.monotonic() - at < self.window_s


def note_caller(request: Request, user_id: uuid.UUID) -> None:
    """Who is signed in on this request (auth.current_user): its pool is chosen by it, and a
    writing request marks them when it ends (`mark_writer`)."""
    request.state.caller_id = user_id
    if request.method not in SAFE_METHODS:
        # Already at the start: a read the client sends before this write's answer arrives
        # (it cannot rely on that) and reads during a long write go to the primary too.
        writers_of(request).mark(user_id)


def mark_writer(request: Request) -> None:
    """At the end of a writing request: the window starts again once its commit is done."""
    user_id = getattr(request.state, "caller_id", None)
    if user_id is not None and request.method not in SAFE_METHODS:
        writers_of(request).mark(user_id)


def writers_of(request: Request) -> RecentWriters:
    writers: RecentWriters = request.app.state.recent_writers
    return writers


def read_pool_of(request: Request) -> AsyncConnectionPool:
    """The pool a read that may be a few seconds stale uses: the standby's, unless this is
    not a GET or its user wrote within the window (then the primary's)."""
    if request.method not in SAFE_METHODS:
        return pool_of(request)
    user_id = getattr(request.state, "caller_id", None)
    if user_id is not None and writers_of(request).wrote_recently(user_id):
        return pool_of(request)
    pool: AsyncConnectionPool = request.app.state.read_pool
    return pool


def settings_of(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def broker_admin_of(request: Request) -> Provisioner:
    admin = provisioner(settings_of(request))
    if admin is None:
        raise ProblemError(
            503,
            "broker-provisioning-unavailable",
            "Bridge provisioning unavailable",
            "this API has no broker admin configured"
            " (GLUCOBRIDGE_MQTT_ADMIN_URL, or GLUCOBRIDGE_RABBITMQ_ADMIN_URL on RabbitMQ)",
        )
    return admin


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def remember_writers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        mark_writer(request)
        return response
