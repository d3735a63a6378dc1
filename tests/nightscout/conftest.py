"""A patient with a Nightscout site on the API served over a real socket, and helpers to
read what the database holds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.analytics.rows import add_patient


@dataclass
class Site:
    """The patient's site as the patient's app and followers see it."""

    base_url: str  # the API's root
    patient: httpx.Client  # signed in as the patient
    patient_id: uuid.UUID
    id: uuid.UUID
    path: str  # /ns/<public id>/api/v1/
    secret: str

    @property
    def url(self) -> str:
        """What the patient types into an app that keeps the path: https://host/ns/<id>"""
        return self.base_url + self.path.removesuffix("/api/v1/")

    def client(self) -> httpx.Client:
        """A client with no credentials of its own."""
        return httpx.Client(base_url=self.base_url, timeout=30)

    def token(self, label: str) -> dict[str, Any]:
        response = self.patient.post(
            f"/api/v1/patients/{self.patient_id}/nightscout-sites/{self.id}/tokens",
            json={"label": label},
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def open_site(api: httpx.Client, patient_id: uuid.UUID, unit: str = "mg/dL") -> Site:
    response = api.post(f"/api/v1/patients/{patient_id}/nightscout-sites", json={"unit": unit})
    assert response.status_code == 201, response.text
    body = response.json()
    return Site(
        str(api.base_url).rstrip("/"),
        api,
        patient_id,
        uuid.UUID(body["id"]),
        body["path"],
        body["uploader_secret"],
    )


@pytest.fixture
def site(api: httpx.Client, database: str) -> Iterator[Site]:
    patient_id = add_patient(database, "Asia/Shanghai", api)
    yield open_site(api, patient_id)


def rows(database: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        return conn.execute(sql, params).fetchall()


def access_log(database: str, patient_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """(actor_kind, actor_label, outcome, action, grant_id) of the patient's access log,
    the Nightscout rows only, oldest first."""
    return rows(
        database,
        "SELECT actor_kind, actor_label, outcome, action, grant_id FROM audit_log"
        " WHERE patient_id = %s AND actor_kind IN ('uploader', 'follower_token') ORDER BY id",
        patient_id,
    )
