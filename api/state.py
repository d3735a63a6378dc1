"""What the lifespan opened, reached from a request: the pool, the settings, the broker admin."""

from __future__ import annotations

from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from api.broker_admin import BrokerAdmin
from api.problems import ProblemError
from core.settings import ApiSettings


def pool_of(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


def settings_of(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def broker_admin_of(request: Request) -> BrokerAdmin:
    url = settings_of(request).mqtt_admin_url
    if url is None:
        raise ProblemError(
            503,
            "broker-provisioning-unavailable",
            "Bridge provisioning unavailable",
            "this API has no broker admin configured (GLUCOBRIDGE_MQTT_ADMIN_URL)",
        )
    return BrokerAdmin(url)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
