"""Every state a page can be in says what it is, in a real headless Chromium: a server error
is not "no access", an unavailable service asks to try again, an expired access token is
refreshed without leaving the page, a refresh token revoked elsewhere ends at sign-in with
a message, and the header says who is signed in and whose data this is."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Route

from api.auth import Role, issue_access_token
from core.settings import ApiSettings
from dashboards.i18n import Labels, Lang
from stack.demo import DEMO_PATIENTS
from tests.dashboards.conftest import NO_DATA, SETTLED, Tab

FIRST = DEMO_PATIENTS[0]
EN = Labels(Lang.EN)
# The signing secret of the API the fixture serves (its settings' default).
SECRET = ApiSettings(database_url="postgresql://unused").jwt_secret


@pytest.mark.parametrize(
    ("status", "state", "label"),
    [(500, "error", "server_error"), (503, "unavailable", "unavailable")],
)
def test_a_failing_server_is_not_shown_as_no_access(
    tab: Tab, status: int, state: str, label: str
) -> None:
    tab.sign_in("clinician")

    def fail(route: Route) -> None:
        route.fulfill(
            status=status,
            content_type="application/problem+json",
            body=json.dumps({"type": "about:blank", "title": "failure", "status": status}),
        )

    # The server's answer to the page's data request, replaced by a failure (the server
    # itself has no switch to fail on demand).
    tab.page.route(re.compile(r"/api/v1/(patients/.*/dashboards/report|dashboards/worklist)"), fail)
    for page in (f"report.html?patient={FIRST.id}", "clinician.html"):
        assert tab.open(f"/dashboards/{page}") == state, page
        message = tab.page.inner_text("#state")
        assert message.startswith(EN[label]), message
        assert EN["no_access"] not in tab.page.inner_text("body")
        assert EN["loading"] not in tab.page.inner_text("header")
        assert "Demo Clinician" in tab.page.inner_text("#who")
    tab.shot(f"state-{status}")


def test_a_lost_connection_says_offline(tab: Tab) -> None:
    tab.sign_in("clinician")
    tab.page.route(
        re.compile(r"/api/v1/patients/.*/dashboards/patient"),
        lambda route: route.abort("internetdisconnected"),
    )
    assert tab.open(f"/dashboards/patient.html?patient={FIRST.id}") == "offline"
    assert tab.page.inner_text("#state") == EN["offline"]
    assert EN["no_access"] not in tab.page.inner_text("body")


def test_a_patient_without_readings_says_so(tab: Tab) -> None:
    tab.sign_in("clinician")
    for page in ("patient", "report", "nutrition"):
        assert tab.open(f"/dashboards/{page}.html?patient={NO_DATA}") == "ready", page
        assert tab.page.inner_text("#state") == EN["no_data"]
        assert "Sun Li" in tab.page.inner_text("#who")
    tab.shot("state-no-data")


def test_no_grant_says_no_access_and_who_is_signed_in(tab: Tab) -> None:
    tab.sign_in("stranger")
    assert tab.open(f"/dashboards/patient.html?patient={FIRST.id}") == "denied"
    assert tab.page.inner_text("#state") == EN["no_access"]
    who = tab.page.inner_text("#who")
    assert "Stranger" in who and EN["loading"] not in who


def _expire_access_token(tab: Tab, key: str) -> None:
    """Replace the tab's access token with the same user's, expired an hour ago."""
    login = tab.site.logins[key]
    me = tab.page.evaluate("JSON.parse(sessionStorage.getItem('gb-me') || 'null')")
    assert me is not None, f"{login.email}: the page keeps who is signed in"
    expired = issue_access_token(
        SECRET, me["id"], Role(me["role"]), datetime.now(UTC) - timedelta(hours=1)
    )
    tab.page.evaluate("(t) => sessionStorage.setItem('gb-token', t)", expired)


def test_an_expired_access_token_is_refreshed_without_leaving_the_page(tab: Tab) -> None:
    tab.sign_in("clinician")
    url = tab.site.base + f"/dashboards/report.html?patient={FIRST.id}"
    tab.open(url.removeprefix(tab.site.base))
    _expire_access_token(tab, "clinician")
    before = tab.page.evaluate("sessionStorage.getItem('gb-refresh')")
    statuses: list[int] = []
    tab.page.on("response", lambda r: statuses.append(r.status) if "/api/" in r.url else None)
    tab.page.reload()
    tab.page.wait_for_selector(SETTLED)
    assert tab.page.get_attribute("body", "data-state") == "ready"
    assert tab.page.url == url
    assert 401 in statuses, "the expired token was refused by the server"
    assert tab.page.evaluate("sessionStorage.getItem('gb-refresh')") != before  # rotated
    assert tab.errors == [] or all("401" in e for e in tab.errors)


def test_a_revoked_refresh_token_ends_at_sign_in_with_a_message(tab: Tab) -> None:
    tab.sign_in("clinician")
    assert tab.open(f"/dashboards/report.html?patient={FIRST.id}") == "ready"
    status = tab.page.evaluate(
        """async () => (await fetch('/api/v1/auth/revoke', {method: 'POST',
             headers: {Authorization: 'Bearer ' + sessionStorage.getItem('gb-token')},
             body: new URLSearchParams({refresh_token: sessionStorage.getItem('gb-refresh')})
           })).status"""
    )
    assert status == 204
    _expire_access_token(tab, "clinician")
    tab.page.reload()
    tab.page.wait_for_url(re.compile(r"/dashboards/\?.*reason=expired"))
    tab.page.wait_for_selector("#login")
    assert tab.page.inner_text("#error") == EN["session_expired"]
    tab.shot("state-session-ended")
