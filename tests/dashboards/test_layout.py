"""Every page as a phone and a desktop show it, in English and Chinese: no layout wider than
a 390 px screen, no English month name on a Chinese page, a screenshot of each page kept
under test-artifacts/dashboards/. First visits follow the link's or the browser's language
(a Chinese browser gets mmol/L), the choice is saved per user; the sign-in page is light and
plotly.js arrives once, compressed, then from the browser's cache."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from dashboards.i18n import Labels, Lang
from stack.demo import DEMO_PATIENTS
from tests.dashboards.conftest import CGM_POOR, SETTLED, Site, Tab

FIRST = DEMO_PATIENTS[0]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
ENGLISH_MONTHS = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b")
# The acceptance ceiling for the sign-in page, every file it loads included.
SIGN_IN_BUDGET_BYTES = 100_000
PAGES = [
    ("clinician", "clinician.html"),
    ("patient", f"patient.html?patient={FIRST.id}"),
    ("nutrition", f"nutrition.html?patient={FIRST.id}"),
    ("report-meter", f"report.html?patient={FIRST.id}"),
    ("report-cgm", f"report.html?patient={CGM_POOR}"),
]


@pytest.fixture
def phone_tab(browser: Browser, site: Site) -> Iterator[Tab]:
    context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    tab = Tab(context.new_page(), site)
    tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    yield tab
    context.close()


def _overflow(tab: Tab) -> int:
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert isinstance(width, int)
    return width


# Both ends of common phone widths: English on a 390 px phone, Chinese on a 360 px one.
@pytest.mark.parametrize(("lang", "phone_width"), [("en", 390), ("zh-CN", 360)])
def test_every_page_on_a_phone_and_a_desktop(phone_tab: Tab, lang: str, phone_width: int) -> None:
    tab = phone_tab
    phone = {**PHONE, "width": phone_width}
    tab.page.set_viewport_size(phone)  # type: ignore[arg-type]
    tab.page.goto(tab.site.base + f"/dashboards/?lang={lang}")
    tab.page.wait_for_selector(SETTLED)
    assert _overflow(tab) <= phone_width, "sign-in"
    tab.shot(f"page-sign-in-{lang}-phone")
    tab.sign_in("clinician", lang)
    for name, path in PAGES:
        for viewport, size in [("phone", phone), ("desktop", DESKTOP)]:
            tab.page.set_viewport_size(size)  # type: ignore[arg-type]
            assert tab.open(f"/dashboards/{path}&lang={lang}".replace(".html&", ".html?")) == (
                "ready"
            ), name
            width = _overflow(tab)
            assert width <= size["width"], f"{name} lays out at {width} px on {size['width']}"
            if lang == "zh-CN":
                text = tab.page.evaluate("document.body.textContent")
                assert isinstance(text, str)
                found = ENGLISH_MONTHS.findall(text)
                assert not found, f"{name}: English month names {found}"
            tab.shot(f"page-{name}-{lang}-{viewport}")
    assert tab.errors == []


def test_first_visit_follows_the_browser_and_the_choice_is_saved(
    browser: Browser, site: Site
) -> None:
    context = browser.new_context(locale="zh-CN", viewport=PHONE)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(site.base + "/dashboards/")
        page.wait_for_selector(SETTLED)
        assert page.inner_text("#submit") == Labels(Lang.ZH_CN)["sign_in"]
        assert page.input_value("#unit") == "mmol/L"
        login = site.logins["nutritionist"]
        page.fill("#username", login.email)
        page.fill("#password", login.password)
        page.select_option("#unit", "mmol/L")
        with page.expect_navigation():
            page.click("#submit")
        page.wait_for_selector(SETTLED)
        assert "lang=zh-CN" in page.url and "unit=mmol" in page.url
        token = page.evaluate("sessionStorage.getItem('gb-token')")
    finally:
        context.close()
    with httpx.Client(base_url=site.base, timeout=60) as client:
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["language"], me["unit"]) == ("zh-CN", "mmol/L")
    # A link's lang decides over an English browser's.
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(site.base + "/dashboards/?lang=zh-CN")
        page.wait_for_selector(SETTLED)
        assert page.inner_text("#submit") == Labels(Lang.ZH_CN)["sign_in"]
    finally:
        context.close()


def _transferred(responses: list[Any]) -> int:
    total = 0
    for response in responses:
        sizes = response.request.sizes()
        total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    return total


def test_sign_in_is_light_and_plotly_comes_once_compressed_then_cached(
    browser: Browser, site: Site
) -> None:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        finished: list[Any] = []
        page.on("requestfinished", lambda request: finished.append(request.response()))
        page.goto(site.base + "/dashboards/")
        page.wait_for_selector(SETTLED)
        page.wait_for_load_state("networkidle")
        assert not any("plotly" in r.url for r in finished)
        spent = _transferred(finished)
        print(f"sign-in page: {spent} bytes over {len(finished)} responses")
        assert spent < SIGN_IN_BUDGET_BYTES
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        fetched: list[dict[str, Any]] = []
        cached: set[str] = set()
        cdp.on(
            "Network.responseReceived",
            lambda e: fetched.append(e) if "plotly" in e["response"]["url"] else None,
        )
        cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
        login = site.logins["clinician"]
        page.fill("#username", login.email)
        page.fill("#password", login.password)
        with page.expect_navigation():
            page.click("#submit")
        page.wait_for_selector(SETTLED)
        assert not fetched, "the worklist draws nothing and loads no plotly"
        page.goto(site.base + f"/dashboards/report.html?patient={CGM_POOR}")
        page.wait_for_selector(SETTLED)
        (first,) = fetched
        headers = {k.lower(): v for k, v in first["response"]["headers"].items()}
        assert headers["content-encoding"] == "gzip"
        assert "immutable" in headers["cache-control"]
        assert re.search(r"/plotly-[0-9a-f]{12}\.min\.js$", first["response"]["url"])
        fetched.clear()
        page.goto(site.base + f"/dashboards/patient.html?patient={FIRST.id}")
        page.wait_for_selector(SETTLED)
        from_network = [
            e
            for e in fetched
            if e["requestId"] not in cached
            and not e["response"].get("fromDiskCache")
            and not e["response"].get("fromPrefetchCache")
        ]
        assert from_network == [], "the next page takes plotly from the cache"
        cdp.detach()
    finally:
        context.close()
