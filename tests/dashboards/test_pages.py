"""Each role signs in through the sign-in page and opens each page made for them, in real
headless Chromium: no console errors, the figures hold the traces they should, screenshots
kept under test-artifacts/dashboards/. A user without a grant gets no page and no data."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from dashboards.figures import CONSENSUS_GOALS, MIN_BOX_PAIRS
from dashboards.i18n import Labels, Lang
from dashboards.meals import MEAL_TYPES
from stack.demo import ALL_DEMO_PATIENTS, DEMO_PATIENTS
from tests.dashboards.conftest import (
    CGM_POOR,
    CGM_STEADY,
    CLINIC_PATIENTS,
    RECORDED_CARBS_G,
    SETTLED,
    Tab,
)

FIRST = DEMO_PATIENTS[0]  # 王芳 Wang Fang, type 1, her own login
EN = Labels(Lang.EN)
ZH = Labels(Lang.ZH_CN)
BANDS = [band.value for band in CONSENSUS_GOALS]
# Largest glucose a human has survived is near 2,600 mg/dL (144 mmol/L); a median in
# mmol/L is far below 40, one in mg/dL far above.
MMOL_CEILING = 40.0


def _rows(tab: Tab, table: str) -> list[list[str]]:
    found = tab.page.evaluate(
        "(id) => Array.from(document.querySelectorAll(`#${id} tbody tr`))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))",
        table,
    )
    assert isinstance(found, list)
    return found


def _assert_agp(tab: Tab, labels: Labels) -> list[float]:
    traces = tab.traces("fig-agp")
    names = [t["name"] for t in traces]
    assert labels["median"] in names and labels["iqr"] in names and labels["p5_95"] in names
    median = next(t for t in traces if t["name"] == labels["median"])
    ys = median["y"]
    assert isinstance(ys, list)
    values = [float(v) for v in ys]
    assert len(values) >= 24, "a fortnight of CGM covers every hour of the day"
    return values


def _assert_bands(tab: Tab) -> None:
    """The five bands, very high on top as the AGP Report stacks them, adding up to 100."""
    bands = tab.page.evaluate(
        "Array.from(document.querySelectorAll('#tir .seg'))"
        ".map(s => [s.dataset.band, parseFloat(s.style.flexGrow)])"
    )
    assert [b for b, _ in bands] == BANDS[::-1]
    assert abs(sum(share for _, share in bands) - 100.0) < 0.5


def _assert_no_agp_for_few_fingersticks(tab: Tab) -> None:
    """The first demo patient's fingersticks meet 4 a day on 7 of 14 days: below the meter
    sufficiency rule (core.metrics.sufficiency), so no AGP, and the page says why."""
    assert tab.page.locator("#fig-agp").count() == 0
    reason = tab.page.inner_text("#agp-left-out")
    assert "AGP" in reason and "GMI" in reason


def test_patient_signs_in_and_sees_their_page(tab: Tab) -> None:
    tab.sign_in(FIRST.key)
    assert "/dashboards/patient.html" in tab.page.url
    assert f"patient={FIRST.id}" in tab.page.url
    assert tab.page.get_attribute("body", "data-state") == "ready"
    _assert_no_agp_for_few_fingersticks(tab)
    _assert_bands(tab)
    assert tab.page.inner_text("h1") == EN["patient_page"]
    assert "(" + EN["of_readings"] + ")" in tab.page.inner_text("#bands-title")
    (today,) = tab.traces("fig-today")
    assert len(today["y"]) >= 1  # type: ignore[arg-type]
    assert len(_rows(tab, "days")) == 14
    logbook = _rows(tab, "logbook")
    assert len(logbook) > 20
    assert any(EN["before_meal"] == row[2] for row in logbook)
    assert tab.errors == []
    tab.shot("patient-en-mgdl")


def test_cgm_patient_page_in_chinese_and_mmol(tab: Tab) -> None:
    tab.sign_in("clinician", "zh-CN")
    state = tab.open(f"/dashboards/patient.html?patient={CGM_POOR}&lang=zh-CN&unit=mmol/L")
    assert state == "ready"
    assert tab.page.inner_text("h1") == ZH["patient_glucose"]  # not "my glucose"
    medians = _assert_agp(tab, ZH)
    assert min(medians) > 2.0 and max(medians) < MMOL_CEILING
    _assert_bands(tab)
    assert "mmol/L" in tab.page.inner_text("#who")
    assert tab.errors == []
    tab.shot("patient-zh-mmol")


def test_worklist_ranks_poor_control_above_good_and_says_why(tab: Tab) -> None:
    tab.sign_in("clinician")
    assert "/dashboards/clinician.html" in tab.page.url
    rows = tab.page.locator("#worklist tbody tr")
    assert rows.count() == CLINIC_PATIENTS
    order = tab.page.evaluate(
        "Array.from(document.querySelectorAll('#worklist tbody tr')).map(tr => tr.dataset.patient)"
    )
    assert order.index(str(CGM_POOR)) < order.index(str(CGM_STEADY))
    poor = tab.page.locator(f"tr[data-patient='{CGM_POOR}']")
    reasons = poor.locator("td.reasons").inner_text()
    assert f"{EN['very_high']} 57.0 %" in reasons and f"{EN['in_range']} 11.0 %" in reasons
    assert "(goal <5 %)" in reasons and "(goal >70 %)" in reasons
    missed = poor.locator("td.missed").all_inner_texts()
    assert "11.0 %" in missed and "57.0 %" in missed
    steady = tab.page.locator(f"tr[data-patient='{CGM_STEADY}'] td.reasons").inner_text()
    assert steady.strip() == EN["nothing"]
    headers = tab.page.locator("#worklist thead th").all_inner_texts()
    assert all(h.strip() for h in headers[:-1]), "every column is labelled"
    assert EN["tir"] in headers and EN["cv"] in headers and EN["days_since_sync"] in headers
    tab.shot("clinician-worklist")
    # Flagged only: the well-controlled patient leaves the list, the poor one stays.
    tab.page.check("#flagged")
    tab.page.wait_for_url(re.compile(r"flagged=true"))
    tab.page.wait_for_selector(SETTLED)
    assert tab.page.locator(f"tr[data-patient='{CGM_STEADY}']").count() == 0
    assert tab.page.locator(f"tr[data-patient='{CGM_POOR}']").count() == 1
    assert tab.errors == []
    with tab.page.expect_navigation():
        tab.page.click(f"tr[data-patient='{FIRST.id}'] a.report-link")
    tab.page.wait_for_selector("body[data-state=ready]")
    assert tab.page.locator("#stats").is_visible()
    assert tab.errors == []


def _stat(tab: Tab, key: str) -> tuple[str, str]:
    row = tab.page.locator(f"#stats tr[data-key='{key}']")
    return row.locator("td.value").inner_text(), row.locator("td.target").inner_text()


def _above_the_fold(tab: Tab, selector: str) -> bool:
    box = tab.page.locator(selector).bounding_box()
    viewport = tab.page.viewport_size
    assert box is not None and viewport is not None
    return box["y"] + box["height"] <= viewport["height"]


def test_cgm_report_reads_as_the_agp_report(tab: Tab) -> None:
    tab.page.set_viewport_size({"width": 1366, "height": 768})
    tab.sign_in("clinician")
    assert tab.open(f"/dashboards/report.html?patient={CGM_POOR}") == "ready"
    assert tab.page.title().startswith("赵强 Zhao Qiang · " + EN["report_page"])
    identity = tab.page.inner_text("#identity")
    assert str(CGM_POOR) in identity and EN["printed"] in identity
    mean, _ = _stat(tab, "mean")
    gmi, _ = _stat(tab, "gmi")
    cv, cv_target = _stat(tab, "cv")
    active, active_target = _stat(tab, "active")
    assert mean.endswith("mg/dL") and re.fullmatch(r"\d+\.\d %", gmi), (mean, gmi)
    assert float(gmi.removesuffix(" %")) > 9.0  # mean about 260 mg/dL
    assert re.fullmatch(r"\d+\.\d %", cv) and cv_target == f"{EN['target']} <=36 %"
    assert float(active.removesuffix(" %")) > 90.0 and "70 %" in active_target
    legend = tab.page.locator("#tir li").all_inner_texts()
    assert len(legend) == 5 and legend[0].startswith(f"{EN['very_high']} 57 %")
    assert "goal <5 %" in legend[0] and "goal >70 %" in legend[2]
    for part in ("#stats", "#tir"):
        assert _above_the_fold(tab, part), part
    # The AGP's axis is fixed, with lines at the four cut points.
    layout = tab.page.evaluate(
        "(() => { const l = document.getElementById('fig-agp').layout;"
        " return {range: l.yaxis.range, lines: (l.shapes || []).map(s => s.y0)}; })()"
    )
    assert layout["range"] == [0, 350]
    assert sorted(layout["lines"]) == [54, 70, 180, 250]
    days = tab.traces("fig-days")
    assert len(days) == 14
    assert tab.errors == []
    tab.shot("report-cgm-en")


def test_meter_patient_gets_a_meter_report_without_agp(tab: Tab) -> None:
    tab.sign_in("clinician")
    assert tab.open(f"/dashboards/report.html?patient={FIRST.id}&lang=zh-CN&unit=mmol/L") == "ready"
    assert tab.page.locator("#fig-agp").count() == 0
    reason = tab.page.inner_text("#agp-left-out")
    assert "AGP" in reason and "GMI" in reason
    gmi, _ = _stat(tab, "gmi")
    assert gmi == "–"
    per_day, _ = _stat(tab, "readings_per_day")
    assert float(per_day.split()[0]) < 7  # over the whole 14-day period
    assert tab.page.locator("#meter-table tbody tr").count() == 4
    assert tab.page.locator("#stats tr[data-key='active']").count() == 0
    assert tab.errors == []
    tab.shot("report-meter-zh")


@pytest.mark.parametrize(
    ("width", "lang", "patient"),
    [(390, "en", CGM_POOR), (1366, "en", CGM_POOR), (390, "zh-CN", FIRST.id)],
)
def test_pre_visit_report_prints_on_one_a4_page(
    tab: Tab, width: int, lang: str, patient: object
) -> None:
    tab.page.set_viewport_size({"width": width, "height": 844})
    tab.sign_in("clinician", lang)
    labels = EN if lang == "en" else ZH
    assert tab.open(f"/dashboards/report.html?patient={patient}&lang={lang}") == "ready"
    tab.page.emulate_media(media="print")
    tab.page.wait_for_selector("body[data-print=ready]")
    pdf = tab.page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    tab.shot(f"report-print-{width}-{lang}")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    # A4 is 210 x 297 mm: 595 x 842 PostScript points.
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    text = reader.pages[0].extract_text()
    assert labels["report_page"] in text and "GMI" in text and labels["very_high"] in text
    assert tab.errors == []


def test_clinician_opens_the_patient_page_with_alerts(tab: Tab) -> None:
    tab.sign_in("clinician")
    assert tab.open(f"/dashboards/patient.html?patient={FIRST.id}&lang=zh-CN") == "ready"
    _assert_no_agp_for_few_fingersticks(tab)
    assert tab.page.locator("#alerts li").count() >= 1
    assert tab.errors == []


def test_nutritionist_sees_meals_by_type_with_carbs(tab: Tab) -> None:
    tab.sign_in("nutritionist")
    assert "/dashboards/clinician.html" in tab.page.url
    # The demo's patients only: the test clinic's two CGM wearers granted the nutritionist nothing.
    assert tab.page.locator("#worklist tbody tr").count() == len(ALL_DEMO_PATIENTS)
    assert tab.open(f"/dashboards/nutrition.html?patient={FIRST.id}") == "ready"
    rise = tab.traces("fig-rise")
    assert rise, "a fortnight of tagged fingersticks holds before/after pairs"
    assert {t["meta"] for t in rise} <= {name for _, name in MEAL_TYPES}
    for trace in rise:  # a box only where there are enough pairs for quartiles
        assert (trace["type"] == "box") == (len(trace["y"]) >= MIN_BOX_PAIRS), trace  # type: ignore[arg-type]
    target = tab.page.evaluate(
        "(document.getElementById('fig-days').layout.annotations || []).map(a => a.text)"
    )
    assert any(EN["after_meal_target"] in t and "180" in t for t in target), target
    unpaired = _rows(tab, "unpaired")
    assert unpaired and all(row[2] == "–" and row[3] for row in unpaired)
    days = tab.traces("fig-days")
    assert [t["name"] for t in days] == [EN["before_meal"], EN["after_meal"]]
    pairs = _rows(tab, "pairs")
    assert pairs
    # Every pair's rise is its after minus its before, as displayed.
    for _time, _type, before, after, rise_text, carbs in pairs:
        assert float(rise_text) == float(after) - float(before)
        assert carbs == f"{RECORDED_CARBS_G:.0f}"
    assert tab.errors == []
    tab.shot("nutritionist-meals")
    assert tab.open(f"/dashboards/report.html?patient={FIRST.id}&unit=mmol/L") == "ready"
    assert tab.errors == []


def test_a_user_without_a_grant_gets_no_page_and_no_data(tab: Tab) -> None:
    data_answers: list[int] = []
    tab.page.on(
        "response",
        lambda r: (
            data_answers.append(r.status) if "/dashboards/" in r.url and "/api/" in r.url else None
        ),
    )
    tab.sign_in("stranger")
    assert tab.page.locator("#worklist tbody tr").count() == 0
    for page in ("patient", "nutrition", "report"):
        state = tab.open(f"/dashboards/{page}.html?patient={FIRST.id}")
        assert state == "denied", page
        assert tab.page.locator(".js-plotly-plot").count() == 0
        body = tab.page.inner_text("body")
        assert EN["no_access"] in body
        assert "Wang" not in body and "王芳" not in body
    assert data_answers[0] == 200  # the (empty) worklist
    assert data_answers[1:] == [404, 404, 404]
    tab.shot("stranger-denied")


def test_another_patient_gets_no_page_of_the_first(tab: Tab) -> None:
    tab.sign_in(DEMO_PATIENTS[1].key)
    assert tab.open(f"/dashboards/report.html?patient={FIRST.id}") == "denied"
    assert tab.page.locator(".js-plotly-plot").count() == 0


def test_a_page_without_a_token_sends_to_sign_in(tab: Tab) -> None:
    tab.page.goto(tab.site.base + f"/dashboards/patient.html?patient={FIRST.id}")
    tab.page.wait_for_url(re.compile(r"/dashboards/\?next="))
    assert tab.page.locator("#login").count() == 1
    assert tab.errors == []
