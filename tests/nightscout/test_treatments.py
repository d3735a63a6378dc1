"""Treatments: kept once per Nightscout identity, bad ones dead-lettered, and meals with carbs
become meal context on the nutritionist's page."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.nightscout.clients import FIVE_MINUTES, sha1, xdrip_sgv, xdrip_treatment
from tests.nightscout.conftest import Site, rows

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_logged_meal_pairs_the_sensor_readings_around_it_on_the_nutrition_page(
    site: Site,
) -> None:
    # Lunch at 12:00 Shanghai time yesterday: readings every 5 minutes from 11:30 to 14:30,
    # 105 mg/dL at 12:00, 168 at 14:00, 120 otherwise.
    meal = (datetime.now(SHANGHAI) - timedelta(days=1)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    start = meal - timedelta(minutes=30)
    sgv = []
    for i in range(37):
        at = start + i * FIVE_MINUTES
        value = 105 if at == meal else 168 if at == meal + timedelta(hours=2) else 120
        sgv.append(xdrip_sgv(at, value))
    secret = {"api-secret": sha1(site.secret)}
    lunch = xdrip_treatment(meal, str(uuid.uuid4()), carbs=60, insulin=6)
    with site.client() as app:
        assert app.post(site.url + "/api/v1/entries", json=sgv, headers=secret).status_code == 200
        assert (
            app.put(site.url + "/api/v1/treatments", json=lunch, headers=secret).status_code == 200
        )
    page = site.patient.get(f"/api/v1/patients/{site.patient_id}/dashboards/nutrition")
    assert page.status_code == 200, page.text
    (pair,) = page.json()["pairs"]
    assert (pair["meal_type"], pair["before"], pair["after"], pair["rise"], pair["carbs"]) == (
        "Lunch",
        "105",
        "168",
        "+63",
        "60",
    )


def test_a_treatment_sent_again_replaces_itself_and_a_bad_one_is_set_aside(
    site: Site, database: str
) -> None:
    at = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(hours=3)
    ident = str(uuid.uuid4())
    secret = {"api-secret": sha1(site.secret)}
    bad = {"eventType": "Meal Bolus", "created_at": at.isoformat(), "carbs": "lots"}
    note = {"eventType": "Note", "notes": "walk", "created_at": at.isoformat()}
    with site.client() as app:
        first = app.put(
            site.url + "/api/v1/treatments",
            json=xdrip_treatment(at, ident, carbs=30, insulin=3),
            headers=secret,
        )
        corrected = app.put(
            site.url + "/api/v1/treatments",
            json=xdrip_treatment(at, ident, carbs=35, insulin=3),
            headers=secret,
        )
        mixed = app.post(site.url + "/api/v1/treatments", json=[bad, note], headers=secret)
        listed = app.get(site.url + "/api/v1/treatments.json", headers=secret).json()
    assert first.status_code == corrected.status_code == mixed.status_code == 200
    assert [t["eventType"] for t in mixed.json()] == ["Note"]
    # xDrip+'s _id (uuid_to_id) names the treatment: the correction replaced it.
    assert sorted((t["eventType"], t["carbs"]) for t in listed) == [
        ("<none>", 35.0),
        ("Note", None),
    ]
    (kept,) = [t for t in listed if t["eventType"] == "<none>"]
    assert kept["_id"] == ident.replace("-", "")[:24]
    assert rows(database, "SELECT carbohydrate_g, insulin_units FROM meal_events") == [(35.0, 3.0)]
    letters = rows(database, "SELECT topic, reason FROM dead_letters")
    assert letters == [("nightscout/treatments", "treatment 0: carbs 'lots' is not a number")]
