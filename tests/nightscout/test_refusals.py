"""Nothing anonymous, nothing after revocation: refused credentials answer Nightscout's 401,
land in the patient's access log, and are slowed when they repeat (acceptance 4); the
patient's side of sites and tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from api.auth import Role, issue_access_token
from api.nightscout.gate import MAX_FAILURES_PER_ADDRESS
from core.settings import DEV_JWT_SECRET
from tests.analytics.rows import add_patient
from tests.nightscout.clients import sha1, xdrip_sgv
from tests.nightscout.conftest import Site, access_log, open_site, rows

# lib/authorization/index.js isPermitted -> sendJSONStatus(res, 401, 'Unauthorized',
# 'Invalid/Missing')
NIGHTSCOUT_401 = {"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}


def _nightscout_body(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    return {k: body[k] for k in NIGHTSCOUT_401}


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert _nightscout_body(response) == NIGHTSCOUT_401
    assert response.headers["content-type"] == "application/problem+json"


def _upload_one(site: Site) -> None:
    at = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(minutes=5)
    with site.client() as app:
        answer = app.post(
            site.url + "/api/v1/entries",
            json=[xdrip_sgv(at, 117)],
            headers={"api-secret": sha1(site.secret)},
        )
    assert answer.status_code == 200


def test_revoked_rotated_wrong_and_foreign_credentials_are_refused_and_logged(
    site: Site, api: httpx.Client, database: str
) -> None:
    _upload_one(site)
    follower = site.token("Old phone")
    entries = site.url + "/api/v1/entries.json"
    with site.client() as app:
        assert app.get(entries, headers={"api-secret": follower["token"]}).status_code == 200

        # A revoked follower token.
        revoked = site.patient.delete(
            f"/api/v1/patients/{site.patient_id}/nightscout-sites/{site.id}/tokens/{follower['id']}"
        )
        assert revoked.status_code == 204
        _assert_refused(app.get(entries, headers={"api-secret": follower["token"]}))
        _assert_refused(app.get("/api/v1/entries.json", params={"token": follower["token"]}))

        # A rotated uploader secret: the old secret and the old path stop at once.
        old_secret, old_url = site.secret, site.url
        rotated = site.patient.post(
            f"/api/v1/patients/{site.patient_id}/nightscout-sites/{site.id}/rotate"
        )
        assert rotated.status_code == 200, rotated.text
        new_url = site.base_url + rotated.json()["path"].removesuffix("/api/v1/")
        new_secret = rotated.json()["uploader_secret"]
        assert new_url != old_url and new_secret != old_secret
        _assert_refused(
            app.get(new_url + "/api/v1/entries.json", headers={"api-secret": sha1(old_secret)})
        )
        _assert_refused(
            app.get(old_url + "/api/v1/entries.json", headers={"api-secret": sha1(new_secret)})
        )
        assert (
            app.get(new_url + "/api/v1/entries.json", headers={"api-secret": sha1(new_secret)})
        ).status_code == 200

        # A wrong secret, and none at all.
        _assert_refused(
            app.get(new_url + "/api/v1/entries.json", headers={"api-secret": sha1("guess")})
        )
        _assert_refused(app.get(new_url + "/api/v1/entries.json"))

        # Another patient's site, with this patient's own good secret: refused, and the
        # attempt is in the other patient's log, not this one's.
        other_patient = add_patient(database, "UTC", name="other")
        with _signed_in_as(api, database, other_patient) as other_api:
            other = open_site(other_api, other_patient)
        _assert_refused(
            app.get(other.url + "/api/v1/entries.json", headers={"api-secret": sha1(new_secret)})
        )
        # An unknown site answers exactly the same.
        _assert_refused(
            app.get(
                f"/ns/{uuid.uuid4().hex}/api/v1/entries.json",
                headers={"api-secret": sha1(new_secret)},
            )
        )

    log = access_log(database, site.patient_id)
    assert [(kind, label, outcome) for kind, label, outcome, _, _ in log] == [
        ("uploader", "Nightscout uploader", "allowed"),  # the upload
        ("follower_token", "Old phone", "allowed"),
        ("follower_token", "Old phone", "denied"),  # revoked, on the site's path
        ("follower_token", "Old phone", "denied"),  # revoked, from the root
        ("follower_token", "unknown credentials", "denied"),  # old secret, new path
        # (new secret, old path: the old path names no site any more, nobody to log it for)
        ("uploader", "Nightscout uploader", "allowed"),
        ("follower_token", "unknown credentials", "denied"),  # wrong secret
        ("follower_token", "no credentials", "denied"),
    ]
    # The grant that let the follower in is named on its rows.
    assert log[1][4] == uuid.UUID(follower["grant_id"])
    assert [(k, label, o) for k, label, o, _, _ in access_log(database, other.patient_id)] == [
        ("follower_token", "unknown credentials", "denied")
    ]


def _signed_in_as(api: httpx.Client, database: str, patient_id: uuid.UUID) -> httpx.Client:
    """The API as another patient (a client of its own, signed in as them)."""
    (user,) = rows(database, "SELECT user_id FROM patients WHERE id = %s", patient_id)[0]
    token = issue_access_token(DEV_JWT_SECRET, user, Role.PATIENT, datetime.now(UTC))
    return httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {token}"})


def test_a_follower_token_is_a_readings_grant_the_patient_sees_and_can_revoke(
    site: Site,
) -> None:
    follower = site.token("Grandma")
    grants = site.patient.get(f"/api/v1/patients/{site.patient_id}/grants").json()["items"]
    (grant,) = [g for g in grants if g["id"] == follower["grant_id"]]
    assert (grant["grantee_name"], grant["scopes"], grant["in_force"]) == (
        "Grandma",
        ["readings"],
        True,
    )
    with site.client() as app:
        assert (
            app.get("/api/v1/status.json", params={"token": follower["token"]}).status_code == 200
        )
        # Revoked from the grants list, not the token list: the token stops too.
        assert (
            site.patient.delete(
                f"/api/v1/patients/{site.patient_id}/grants/{follower['grant_id']}"
            ).status_code
            == 204
        )
        _assert_refused(app.get("/api/v1/status.json", params={"token": follower["token"]}))
    tokens = site.patient.get(
        f"/api/v1/patients/{site.patient_id}/nightscout-sites/{site.id}/tokens"
    ).json()["items"]
    assert [(t["label"], t["status"], t["in_force"]) for t in tokens] == [
        ("Grandma", "revoked", False)
    ]


def test_the_v2_exchange_gives_a_jwt_that_lasts_only_as_long_as_the_grant(
    site: Site, database: str
) -> None:
    follower = site.token("Juggluco on the watch")
    with site.client() as app:
        exchanged = app.get(f"/api/v2/authorization/request/{follower['token']}")
        assert exchanged.status_code == 200, exchanged.text
        body = exchanged.json()
        assert body["sub"] == "Juggluco on the watch" and body["exp"] > body["iat"]
        bearer = {"Authorization": f"Bearer {body['token']}"}
        assert app.get(site.url + "/api/v1/entries.json", headers=bearer).status_code == 200
        # The JWT is no API access token, and the uploader secret is no subject.
        assert site.patient.get("/api/v1/patients", headers=bearer).status_code == 401
        _assert_refused(app.get(f"/api/v2/authorization/request/{site.secret}"))
        site.patient.delete(
            f"/api/v1/patients/{site.patient_id}/nightscout-sites/{site.id}/tokens/{follower['id']}"
        )
        _assert_refused(app.get(site.url + "/api/v1/entries.json", headers=bearer))
        _assert_refused(app.get(f"/api/v2/authorization/request/{follower['token']}"))
    # The token never reaches the access log through the path.
    paths = rows(database, "SELECT path FROM audit_log WHERE path LIKE '/api/v2/%%'")
    assert paths and all(follower["token"] not in path for (path,) in paths)


def test_only_the_uploader_secret_passes_the_secret_check(site: Site) -> None:
    follower = site.token("Watch")["token"]
    with site.client() as app:
        # xDrip4iOS checks the secret it was given with GET /api/v1/experiments/test.
        ok = app.get(
            site.url + "/api/v1/experiments/test", headers={"api-secret": sha1(site.secret)}
        )
        assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
        _assert_refused(app.get(site.url + "/api/v1/experiments/test", params={"token": follower}))


def test_repeated_failures_from_one_address_are_slowed(site: Site) -> None:
    with site.client() as app:
        for _ in range(MAX_FAILURES_PER_ADDRESS):
            _assert_refused(app.get("/api/v1/entries.json", headers={"api-secret": sha1("guess")}))
        throttled = app.get("/api/v1/entries.json", headers={"api-secret": sha1(site.secret)})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert throttled.json()["status"] == 429


def test_deleting_the_site_stops_it_and_its_tokens(site: Site, database: str) -> None:
    follower = site.token("Neighbour")
    deleted = site.patient.delete(f"/api/v1/patients/{site.patient_id}/nightscout-sites/{site.id}")
    assert deleted.status_code == 204
    with site.client() as app:
        _assert_refused(
            app.get(site.url + "/api/v1/status.json", headers={"api-secret": sha1(site.secret)})
        )
        _assert_refused(app.get("/api/v1/status.json", params={"token": follower["token"]}))
    assert rows(
        database, "SELECT status FROM grants WHERE id = %s", uuid.UUID(follower["grant_id"])
    ) == [("revoked",)]
    # One site per patient: a new one can be made once the old is gone, not before.
    again = site.patient.post(f"/api/v1/patients/{site.patient_id}/nightscout-sites", json={})
    assert again.status_code == 201
    twice = site.patient.post(f"/api/v1/patients/{site.patient_id}/nightscout-sites", json={})
    assert twice.status_code == 409
