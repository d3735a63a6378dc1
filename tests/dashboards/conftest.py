"""The dashboards as a browser sees them: the demo patients' real readings in a private
PostgreSQL, the API over uvicorn, and one headless Chromium (Debian's package, driven by
Playwright) for the whole session."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from api.auth import hash_password
from core.contract import MeterInfo, WireReading
from core.intake import DecodedBatch, write
from core.settings import ApiSettings
from core.units import Unit
from core.vocabulary import SourceKind
from stack.demo import (
    ALL_DEMO_PATIENTS,
    DEMO_CGM_PATIENTS,
    DEMO_CLINIC,
    DEMO_PATIENTS,
    SHANGHAI,
    DemoLogin,
    demo_cgm_files,
    demo_readings,
    import_cgm,
    register_logins,
    register_patients,
)
from stack.local import Services
from tests.conftest import _ALL_TABLES
from tests.support import serve_api

# Debian's chromium (scripts/bootstrap installs it), found on PATH; a missing browser fails.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboards"
# Wide enough for two figures side by side, as on a clinic's desktop screen.
VIEWPORT = {"width": 1280, "height": 900}
# Carbohydrates recorded with every reading that opens a pre/post-meal pair (before a meal,
# or fasting before breakfast) of the first demo patient, so the nutritionist's pairs show a
# value the record holds.
RECORDED_CARBS_G = 45.0
# A user with a login and no grant to anyone: sees no page and no data of any patient.
STRANGER_EMAIL = "stranger@demo.glucobridge.org"
STRANGER_PASSWORD = "no grant for me, thanks"


# Two sensor-wearing patients of the demo clinic beside the demo's fingerstick patients: one
# in poor control (per 100 readings 11 in range, 32 high, 57 very high: TIR 11 %, very high
# 57 %) and one well controlled (all in range).
CGM_POOR = uuid.uuid5(uuid.NAMESPACE_URL, "glucobridge/tests/cgm-poor")
CGM_STEADY = uuid.uuid5(uuid.NAMESPACE_URL, "glucobridge/tests/cgm-steady")
POOR_PATTERN = [150.0] * 11 + [220.0] * 32 + [300.0] * 57
STEADY_PATTERN = [110.0, 125.0, 140.0, 155.0, 130.0]
CGM_INTERVAL = timedelta(minutes=15)
# A patient of the demo clinic who has not synced anything yet: every page says so.
NO_DATA = uuid.uuid5(uuid.NAMESPACE_URL, "glucobridge/tests/no-data")
# Every patient the demo clinic's clinician sees: the demo's (meter and CGM), the two CGM
# wearers above and the one without readings.
CLINIC_PATIENTS = len(ALL_DEMO_PATIENTS) + 3


@dataclass
class Site:
    base: str
    logins: dict[str, DemoLogin]  # by demo key: wang-fang, li-wei, ..., nutritionist
    patients: dict[str, uuid.UUID] = field(default_factory=dict)


def _seed(database_url: str) -> Site:
    register_patients(database_url)
    logins = register_logins(database_url)
    today = datetime.now(SHANGHAI).date()
    with psycopg.connect(database_url) as conn:
        for i, patient in enumerate(DEMO_PATIENTS):
            # The demo patient's own meter, through the one intake as ingest would store it.
            readings = [
                r.model_copy(update={"carbohydrate_g": RECORDED_CARBS_G})
                if i == 0 and r.meal in ("before_meal", "fasting")
                else r
                for r in demo_readings(patient, today)
            ]
            decoded = DecodedBatch(
                "tests/dashboards",
                b"",
                patient.bridge_id,
                uuid.uuid4(),
                MeterInfo(serial=patient.meter_serial),
                readings,
                patient_id=patient.id,
                claims_device=True,
            )
            write(conn, [decoded], [])
        for patient_id, name, pattern in [
            (CGM_POOR, "赵强 Zhao Qiang", POOR_PATTERN),
            (CGM_STEADY, "陈静 Chen Jing", STEADY_PATTERN),
        ]:
            _seed_cgm(conn, patient_id, name, pattern)
        _seed_cgm(conn, NO_DATA, "孙丽 Sun Li", [])
        conn.execute(
            "INSERT INTO users (email, display_name, role, password_hash)"
            " VALUES (%s, 'Stranger', 'nutritionist', %s)",
            (STRANGER_EMAIL, hash_password(STRANGER_PASSWORD)),
        )
    by_key = {login.email.split("@")[0]: login for login in logins}
    by_key["stranger"] = DemoLogin("nutritionist", STRANGER_EMAIL, STRANGER_PASSWORD, "nobody")
    return Site("", by_key, {p.key: p.id for p in DEMO_PATIENTS})


def _seed_cgm(
    conn: psycopg.Connection[tuple[object, ...]],
    patient_id: uuid.UUID,
    name: str,
    pattern: list[float],
) -> None:
    """A patient of the demo clinic with 14 days of 15-minute CGM readings cycling through
    `pattern`, written through the one intake as a CGM uploader's would be."""
    conn.execute(
        "INSERT INTO patients (id, display_name, timezone) VALUES (%s, %s, 'Asia/Shanghai')",
        (patient_id, name),
    )
    conn.execute(
        "INSERT INTO grants (patient_id, grantee_organisation_id, scopes, status, decided_at)"
        " VALUES (%s, %s, %s, 'active', now())",
        (patient_id, DEMO_CLINIC, ["readings", "trends", "alerts", "exports"]),
    )
    if not pattern:
        return
    end = datetime.now(UTC).replace(second=0, microsecond=0) - CGM_INTERVAL
    # Whole cycles of the pattern, so the shares are the pattern's own.
    fits = int(timedelta(days=14) / CGM_INTERVAL) - 2
    count = fits - fits % len(pattern)
    readings = [
        WireReading(
            meter_time=(end - i * CGM_INTERVAL).astimezone(SHANGHAI).replace(tzinfo=None),
            measured_at=end - i * CGM_INTERVAL,
            value=pattern[i % len(pattern)],
            unit=Unit.MG_DL,
            source=SourceKind.CGM,
        )
        for i in range(count)
    ]
    decoded = DecodedBatch(
        "tests/dashboards",
        b"",
        "tests/dashboards",
        uuid.uuid4(),
        MeterInfo(serial=f"CGM-{patient_id.hex[:8]}"),
        readings,
        patient_id=patient_id,
        claims_device=True,
    )
    write(conn, [decoded], [])


@pytest.fixture(scope="module")
def site(services: Services) -> Iterator[Site]:
    """The demo's patients and logins, seeded once for the module, served over uvicorn."""
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        row = conn.execute(_ALL_TABLES).fetchone()
        assert row is not None and row[0]
        conn.execute(f"TRUNCATE {row[0]} CASCADE".encode())
    seeded = _seed(services.database_url)
    with serve_api(ApiSettings(database_url=services.database_url)) as base_url:
        seeded.base = base_url
        # The demo's sensor wearers upload their CGM exports through the API, as in the demo.
        today = datetime.now(SHANGHAI).date()
        for cgm in DEMO_CGM_PATIENTS:
            rows = sum(len(text.splitlines()) - 1 for _, text in demo_cgm_files(cgm, today))
            assert import_cgm(base_url, cgm, seeded.logins[cgm.key], today) == rows
        yield seeded


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module. Not for the session: Playwright's sync API keeps its
    event loop running in this thread while it is open, and later tests call asyncio.run."""
    assert CHROMIUM, "chromium not found on PATH: run scripts/bootstrap (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# A page has settled once it is ready or says why it is not (denied, error, offline, ...).
SETTLED = "body[data-state]:not([data-state=loading])"


@dataclass
class Tab:
    """A page in a fresh context (its own sessionStorage), with the console errors seen."""

    page: Page
    site: Site
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> str:
        """Open a dashboard page and wait until it has drawn (or refused); its final state."""
        self.page.goto(self.site.base + path)
        self.page.wait_for_selector(SETTLED)
        return str(self.page.get_attribute("body", "data-state"))

    def sign_in(self, key: str, lang: str = "en") -> None:
        """Sign in through the page, `lang` chosen by the link (and so saved as the user's)."""
        login = self.site.logins[key]
        self.page.goto(self.site.base + f"/dashboards/?lang={lang}")
        self.page.fill("#username", login.email)
        self.page.fill("#password", login.password)
        with self.page.expect_navigation():
            self.page.click("#submit")
        self.page.wait_for_selector(SETTLED)

    def traces(self, div: str) -> list[dict[str, object]]:
        """The plotly traces a figure div holds, as plotly.js drew them."""
        found = self.page.evaluate(
            "(id) => (document.getElementById(id).data || []).map(t => ({name: t.name,"
            " type: t.type || 'scatter', meta: t.meta ?? null, x: Array.from(t.x || []),"
            " y: Array.from(t.y || [])}))",
            div,
        )
        assert isinstance(found, list)
        return found

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def tab(browser: Browser, site: Site) -> Iterator[Tab]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    opened = Tab(page, site)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    yield opened
    context.close()
