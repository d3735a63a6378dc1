"""Settings, one class per process, read from GLUCOBRIDGE_* environment variables.

Each process validates its settings at start-up and refuses to run with the development
placeholders when GLUCOBRIDGE_ENVIRONMENT is not "development".
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Placeholder credentials that make the examples in the README runnable on a laptop;
# a production process refuses to start with them.
DEV_PASSWORD = "dev-only-change-me"  # noqa: S105 - a marker that is refused, not a secret
DEFAULT_DATABASE_URL = f"postgresql://glucobridge:{DEV_PASSWORD}@127.0.0.1:5432/glucobridge"
DEFAULT_MQTT_URL = f"mqtt://ingest:{DEV_PASSWORD}@127.0.0.1:1883"


class MqttEndpoint(BaseModel):
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL must start with mqtt://, got {url.split(':', 1)[0]!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLUCOBRIDGE_", extra="ignore")

    environment: Literal["development", "production"] = "development"

    def _refuse_placeholders(self, *values: str) -> None:
        if self.environment != "development" and any(DEV_PASSWORD in v for v in values):
            raise ValueError("placeholder credentials are refused outside development")


class IngestSettings(_Base):
    database_url: str = DEFAULT_DATABASE_URL
    mqtt_url: str = DEFAULT_MQTT_URL
    # Workers sharing this group split the readings between them (MQTT v5 shared subscription).
    share_group: str = "ingest"
    # Stable per worker so the broker keeps its session (and queued messages) across restarts.
    client_id: str = "glucobridge-ingest-0"
    # A write takes at most this many messages (a sync carries 1-200 readings)...
    batch_max_messages: int = Field(default=500, ge=1)
    # ...or when its oldest message has waited this long, so one reading is stored promptly.
    batch_max_wait_s: float = Field(default=0.02, gt=0)

    @model_validator(mode="after")
    def _check(self) -> IngestSettings:
        self._refuse_placeholders(self.database_url, self.mqtt_url)
        MqttEndpoint.parse(self.mqtt_url)
        return self


class ApiSettings(_Base):
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        self._refuse_placeholders(self.database_url)
        return self


class DatabaseSettings(_Base):
    """For `glucobridge db upgrade`."""

    database_url: str = DEFAULT_DATABASE_URL
