"""What the lifespan opened, reached from a request: the pool, the settings, the broker admin."""

from __future__ import annotations

from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from api.broker_admin import Provisioner, provisioner
from api.problems import ProblemError
from core.settings import ApiSettings


def pool_of(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
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
