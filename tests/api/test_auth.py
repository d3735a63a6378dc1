"""Signing in: passwords, token lifetimes, refresh rotation and reuse, throttling."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from api.auth import MAX_FAILURES_PER_ACCOUNT
from core.settings import ApiSettings
from tests.api.conftest import PASSWORD, Cast


def _login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/v1/auth/token", data={"username": email, "password": password})


def test_a_patient_signs_up_signs_in_and_sees_only_themself(client: httpx.Client) -> None:
    signed_up = client.post(
        "/api/v1/auth/register",
        json={
            "email": "Wang.Fang@example.org",
            "display_name": "王芳",
            "password": "a long passphrase",
            "timezone": "Asia/Shanghai",
        },
    )
    assert signed_up.status_code == 202, signed_up.text
    token = _login(client, "wang.fang@EXAMPLE.org", "a long passphrase")
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    me = client.get("/api/v1/users/me", headers=auth).json()
    assert me["role"] == "patient" and me["patient_id"] is not None
    listed = client.get("/api/v1/patients", headers=auth).json()["items"]
    assert [(p["id"], p["access"]) for p in listed] == [(me["patient_id"], "owner")]


def test_sign_up_does_not_tell_whether_an_address_has_an_account(client: httpx.Client) -> None:
    """Registration answers a taken address exactly as a free one, and the taken account
    keeps its own password: the second sign-up gets nothing, and learns nothing."""
    first = {
        "email": "li.wei@example.org",
        "display_name": "Li Wei",
        "password": "first passphrase",
    }
    assert client.post("/api/v1/auth/register", json=first).status_code == 202
    taken = client.post(
        "/api/v1/auth/register",
        json={"email": "LI.WEI@example.org", "display_name": "x", "password": "0123456789"},
    )
    free = client.post(
        "/api/v1/auth/register",
        json={"email": "new.person@example.org", "display_name": "y", "password": "0123456789"},
    )
    assert (taken.status_code, taken.json()) == (free.status_code, free.json())
    assert _login(client, "li.wei@example.org", "0123456789").status_code == 400
    assert _login(client, "li.wei@example.org", "first passphrase").status_code == 200


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    client: httpx.Client, cast: Cast
) -> None:
    first = _login(client, cast.patient.email).json()
    second = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert second.status_code == 200
    rotated = second.json()["refresh_token"]
    assert rotated != first["refresh_token"]
    # The old token again: a copy is in someone else's hands, so the whole family ends.
    reuse = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert reuse.status_code == 400
    after = client.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": rotated}
    )
    assert after.status_code == 400
    with psycopg.connect(cast.database_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM refresh_tokens")]
    assert first["refresh_token"] not in stored and rotated not in stored  # hashes only


def test_sign_out_revokes_the_refresh_token(client: httpx.Client, cast: Cast) -> None:
    tokens = _login(client, cast.patient.email).json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = client.post(
        "/api/v1/auth/revoke", data={"refresh_token": tokens["refresh_token"]}, headers=auth
    )
    assert out.status_code == 204
    refreshed = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400


def test_wrong_passwords_are_throttled_per_account(client: httpx.Client, cast: Cast) -> None:
    email = cast["nutritionist_granted"].email
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert _login(client, email, "wrong password!").status_code == 400
    throttled = _login(client, email)  # even the right password, for now
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert throttled.headers["content-type"] == "application/problem+json"
    # Another account from the same address is not locked out by this one.
    assert _login(client, cast["nutritionist_ungranted"].email).status_code == 200


def test_an_unknown_account_and_a_wrong_password_answer_alike(
    client: httpx.Client, cast: Cast
) -> None:
    unknown = _login(client, "nobody@example.org", "whatever123")
    wrong = _login(client, cast.patient.email, "whatever123")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())


def test_the_placeholder_signing_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        ApiSettings(environment="production", database_url="postgresql://u:real@db/x")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        ApiSettings(jwt_secret="short")
