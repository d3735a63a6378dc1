"""The API answers what it must and nothing more (issue 11): no 500 on odd cursors or dates,
webhooks only to https on public addresses, no proxy headers believed unless configured,
security headers on the pages and no inline script in them."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
import psycopg
import pytest

from api.auth import MAX_FAILURES_PER_ADDRESS
from core.settings import ApiSettings
from tests.api.conftest import Cast
from tests.support import serve_api

STATIC = Path(__file__).resolve().parents[2] / "dashboards" / "static"


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    assert response.headers["content-type"] == "application/problem+json"


ODD_QUERIES = [
    ("alerts", {"cursor": "\u00b9"}),  # a superscript one: str.isdigit() says yes
    ("alerts", {"cursor": "99999999999999999999"}),  # beyond a bigint
    ("alerts", {"cursor": "-1"}),
    ("access-log", {"cursor": "not base64 at all"}),
    ("access-log", {"cursor": "WyJ4IiwibG9nIl0="}),  # ["x","log"]: well-formed, not ours
    ("grants", {"cursor": "WyJ4IiwieSJd"}),  # ["x","y"]
    ("trends", {"end": "0001-01-01T00:00:00Z"}),
    ("trends", {"start": "9999-12-31T00:00:00Z"}),
    ("trends/comparison", {"end": "0001-01-01T00:00:00Z"}),
    ("agp", {"end": "0001-01-01T00:00:00Z"}),
    ("readings", {"end": "0001-01-01T00:00:00Z"}),
    ("days", {"end_date": "0001-01-01"}),
    ("days", {"end_date": "9999-12-31"}),
]


def test_odd_cursors_and_dates_answer_422_not_500(client: httpx.Client, cast: Cast) -> None:
    for path, params in ODD_QUERIES:
        url = f"/api/v1/patients/{cast.patient.patient_id}/{path}"
        _problem(client.get(url, params=params, headers=cast.patient.auth), 422)


def test_an_alert_id_beyond_a_bigint_is_refused_not_a_server_error(
    client: httpx.Client, cast: Cast
) -> None:
    url = f"/api/v1/patients/{cast.patient.patient_id}/alerts/{2**63}/acknowledge"
    _problem(client.post(url, headers=cast.patient.auth), 422)


REFUSED_WEBHOOKS = [
    ("http://93.184.216.34/hook", "https"),
    ("https://127.0.0.1/hook", "not a public address"),
    ("https://localhost:8443/hook", "not a public address"),  # a name, resolved
    ("https://10.1.2.3/hook", "not a public address"),
    ("https://172.16.0.9/hook", "not a public address"),
    ("https://192.168.1.20/hook", "not a public address"),
    ("https://169.254.169.254/latest/meta-data", "not a public address"),  # cloud metadata
    ("https://100.64.0.1/hook", "not a public address"),  # carrier-grade NAT
    ("https://0.0.0.0/hook", "not a public address"),
    ("https://[::1]/hook", "not a public address"),
    ("https://[fe80::1]/hook", "not a public address"),
    ("https://[fd12:3456::1]/hook", "not a public address"),
    ("https://[::ffff:127.0.0.1]/hook", "not a public address"),
    ("https://user:pass@93.184.216.34/hook", "credentials"),
]


def test_a_webhook_must_be_https_to_a_public_address(client: httpx.Client, cast: Cast) -> None:
    for url, why in REFUSED_WEBHOOKS:
        answer = client.post(
            f"/api/v1/patients/{cast.patient.patient_id}/webhooks",
            json={"url": url},
            headers=cast.patient.auth,
        )
        _problem(answer, 422)
        assert why in answer.json()["detail"], url
    with psycopg.connect(cast.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM webhook_endpoints").fetchone() == (0,)


def test_a_webhook_to_a_public_https_address_is_registered(
    client: httpx.Client, cast: Cast
) -> None:
    # An address literal: registration resolves names, and a test must not need the internet.
    answer = client.post(
        f"/api/v1/patients/{cast.patient.patient_id}/webhooks",
        json={"url": "https://93.184.216.34/hook"},
        headers=cast.patient.auth,
    )
    assert answer.status_code == 201, answer.text


def test_on_premises_private_targets_are_allowed_only_when_the_operator_says_so(
    database: str, cast: Cast, api_settings: ApiSettings
) -> None:
    settings = api_settings.model_copy(update={"webhook_allow_private": True})
    url = f"/api/v1/patients/{cast.patient.patient_id}/webhooks"
    with serve_api(settings) as base, httpx.Client(base_url=base) as on_premises:
        for allowed in ("https://10.1.2.3/hook", "http://192.168.1.20:8080/hook"):
            answer = on_premises.post(url, json={"url": allowed}, headers=cast.patient.auth)
            assert answer.status_code == 201, answer.text
        # A public address still needs TLS.
        public = on_premises.post(
            url, json={"url": "http://93.184.216.34/hook"}, headers=cast.patient.auth
        )
        _problem(public, 422)


def _audited_address(database: str, request_id: str) -> str | None:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT client_address FROM audit_log WHERE request_id = %s", (request_id,)
        ).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def test_forwarded_addresses_are_ignored_unless_a_proxy_is_configured(
    client: httpx.Client, cast: Cast, api_settings: ApiSettings
) -> None:
    url = f"/api/v1/patients/{cast.patient.patient_id}/readings"
    spoofed = {**cast.patient.auth, "X-Forwarded-For": "203.0.113.7", "X-Request-ID": "xff-1"}
    assert client.get(url, headers=spoofed).status_code == 200
    assert _audited_address(cast.database_url, "xff-1") == "127.0.0.1"

    behind_proxy = api_settings.model_copy(update={"forwarded_allow_ips": "127.0.0.1"})
    with serve_api(behind_proxy) as base, httpx.Client(base_url=base) as proxied:
        forwarded = {**spoofed, "X-Request-ID": "xff-2"}
        assert proxied.get(url, headers=forwarded).status_code == 200
    assert _audited_address(cast.database_url, "xff-2") == "203.0.113.7"


def test_a_forged_forwarded_address_does_not_dodge_the_per_address_limit(
    client: httpx.Client, cast: Cast
) -> None:
    # This machine's address has used up its failed sign-ins for the window.
    with psycopg.connect(cast.database_url) as conn:
        for n in range(MAX_FAILURES_PER_ADDRESS):
            conn.execute(
                "INSERT INTO login_attempts (email, address, succeeded)"
                " VALUES (%s, '127.0.0.1', false)",
                (f"guess{n}@example.org",),
            )
    attempt = {"username": "another@example.org", "password": "wrong password"}
    throttled = client.post(
        "/api/v1/auth/token", data=attempt, headers={"X-Forwarded-For": "198.51.100.7"}
    )
    _problem(throttled, 429)  # counted against the connection's address, not the header's


def test_pages_carry_security_headers(api: httpx.Client) -> None:
    for page in ("/dashboards/", "/dashboards/patient.html", "/dashboards/report.html"):
        response = api.get(page)
        assert response.status_code == 200
        policy = dict(
            part.strip().split(" ", 1)
            for part in response.headers["content-security-policy"].split(";")
        )
        assert policy["script-src"] == "'self'"  # no inline script, no eval, no CDN
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    # API answers: no sniffing, no framing either.
    health = api.get("/api/v1/health")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert health.headers["x-frame-options"] == "DENY"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self._in_script = True
            if not dict(attrs).get("src"):
                self.inline.append("<script> without src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data.strip()[:40])


@pytest.mark.parametrize("page", sorted(p.name for p in STATIC.glob("*.html")))
def test_pages_hold_no_inline_script_for_the_policy_to_block(page: str) -> None:
    found = _Scripts()
    found.feed((STATIC / page).read_text())
    assert found.inline == [] and found.handlers == []
