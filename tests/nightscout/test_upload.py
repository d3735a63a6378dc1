"""Uploads as xDrip+, Juggluco and the LibreLinkUp uploader send them, through the one intake:
stored once, a changed value kept and flagged, a bad entry dead-lettered beside stored batch
mates, alerts raised by the real alerts worker (acceptance 1, 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ingest.alerts.worker import AlertsWorker
from tests.nightscout.clients import (
    FIVE_MINUTES,
    juggluco_sgv,
    librelinkup_sgv,
    sha1,
    xdrip_cal,
    xdrip_mbg,
    xdrip_sgv,
)
from tests.nightscout.conftest import Site, rows
from tests.support import wait_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _day_of_sgv(end: datetime) -> list[dict[str, object]]:
    """288 five-minute readings ending at `end`, alternating 100 and 140 mg/dL: 144 of each,
    so the mean is 120 mg/dL and every one is in range."""
    start = end - 287 * FIVE_MINUTES
    values = [100 if i % 2 == 0 else 140 for i in range(288)]
    return [
        xdrip_sgv(start + i * FIVE_MINUTES, v, previous=values[i - 1] if i else None)
        for i, v in enumerate(values)
    ]


def test_an_xdrip_day_uploaded_twice_is_stored_once_and_shows_in_trends_and_the_page(
    site: Site, database: str
) -> None:
    end = datetime.now(SHANGHAI).replace(second=0, microsecond=0) - timedelta(minutes=2)
    sgv = _day_of_sgv(end)
    meter = [xdrip_mbg(end - timedelta(hours=h), v) for h, v in ((2, 95.0), (8, 162.0))]
    meter.append(xdrip_mbg(end - timedelta(hours=14), 58.0))
    upload = sgv + meter
    # xDrip+'s uploader: base URL https://SECRET@host/ns/<id>/api/v1/, POST "entries" with
    # the SHA-1 of the secret in api-secret (NightscoutService.upload).
    with site.client() as app:
        first = app.post(
            site.url + "/api/v1/entries", json=upload, headers={"api-secret": sha1(site.secret)}
        )
        again = app.post(
            site.url + "/api/v1/entries", json=upload, headers={"api-secret": sha1(site.secret)}
        )
    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    # Nightscout answers with the stored documents: all 291, the second time too.
    assert len(first.json()) == len(again.json()) == 291
    assert first.json() == again.json()
    by_type = {(d["type"], d["date"]) for d in first.json()}
    assert len(by_type) == 291

    stored = rows(
        database,
        "SELECT source, count(*), count(DISTINCT identity), min(device), max(device)"
        " FROM counted_readings WHERE patient_id = %s GROUP BY source ORDER BY source",
        site.patient_id,
    )
    assert stored == [
        ("cgm", 288, 288, "xDrip-DexcomG5", "xDrip-DexcomG5"),
        ("meter", 3, 3, "xDrip-DexcomG5", "xDrip-DexcomG5"),
    ]
    assert rows(database, "SELECT count(*) FROM readings WHERE conflict") == [(0,)]
    # The trend and raw-signal fields are kept with the reading.
    (context,) = rows(
        database,
        "SELECT context FROM readings WHERE source = 'cgm' ORDER BY measured_at DESC LIMIT 1",
    )[0]
    kept = context["nightscout"]
    assert (kept["direction"], kept["noise"], kept["rssi"], kept["utcOffset"]) == (
        "Flat",
        1,
        100,
        480,
    )
    assert kept["filtered"] == kept["unfiltered"] == 140000.0

    period = {
        "start": (end - timedelta(days=1, minutes=5)).isoformat(),
        "end": (end + timedelta(minutes=1)).isoformat(),
    }
    trends = site.patient.get(
        f"/api/v1/patients/{site.patient_id}/trends", params={**period, "source": "cgm"}
    )
    assert trends.status_code == 200, trends.text
    body = trends.json()["summary"]
    assert trends.json()["source"] == "cgm"
    assert body["readings"] == 288
    assert body["mean_mg_dl"] == 120.0
    assert body["pct_in_range"] == 100.0
    fingersticks = site.patient.get(
        f"/api/v1/patients/{site.patient_id}/trends", params={**period, "source": "meter"}
    ).json()["summary"]
    assert fingersticks["readings"] == 3

    page = site.patient.get(f"/api/v1/patients/{site.patient_id}/dashboards/patient")
    assert page.status_code == 200, page.text
    logbook = page.json()["logbook"]
    shown = [row["glucose"] for row in logbook]
    assert "162" in shown and "95" in shown  # the fingersticks
    assert shown.count("140") + shown.count("100") >= 90  # the sensor, newest first


def test_a_changed_value_at_the_same_instant_is_kept_and_flagged_and_followers_see_it(
    site: Site, database: str
) -> None:
    at = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(minutes=30)
    secret = {"api-secret": sha1(site.secret)}
    with site.client() as app:
        assert app.post(site.url + "/api/v1/entries", json=[xdrip_sgv(at, 150)], headers=secret)
        corrected = app.post(
            site.url + "/api/v1/entries", json=[xdrip_sgv(at, 132)], headers=secret
        )
        assert corrected.status_code == 200
        latest = app.get(site.url + "/api/v1/entries.json?count=5", headers=secret).json()
    assert rows(database, "SELECT value, conflict FROM readings ORDER BY received_at, value") == [
        (150.0, True),
        (132.0, True),
    ]
    # A follower gets the correction, once, as Nightscout's upsert would show it.
    assert [(d["sgv"], d["date"]) for d in latest] == [(132, int(at.timestamp() * 1000))]


def test_juggluco_and_librelinkup_shapes_are_stored_with_their_devices(
    site: Site, database: str
) -> None:
    at = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(minutes=10)
    with site.client() as app:
        # Juggluco: nightuploadurl + "/api/v1/entries", api-secret = sha1encode(secret).
        jug = app.post(
            site.url + "/api/v1/entries",
            content=json.dumps([juggluco_sgv(at, 111), juggluco_sgv(at - FIVE_MINUTES, 109)]),
            headers={"api-secret": sha1(site.secret), "Content-Type": "application/json"},
        )
        # The LibreLinkUp uploader: new URL("/api/v1/entries", base) drops the site's path,
        # so it posts to the root; NIGHTSCOUT_API_TOKEN is the SHA-1 of the secret.
        llu = app.post(
            "/api/v1/entries",
            json=[librelinkup_sgv(at.astimezone(UTC) - timedelta(minutes=1), 113)],
            headers={"api-secret": sha1(site.secret)},
        )
        # ...and asks for the last entry the same way (apiv1.ts lastEntry).
        last = app.get("/api/v1/entries?count=1", headers={"api-secret": sha1(site.secret)})
    assert jug.status_code == 200 and llu.status_code == 200, (jug.text, llu.text)
    assert llu.status_code == 200  # the uploader checks for exactly 200
    assert [d["sgv"] for d in last.json()] == [111]
    assert rows(
        database, "SELECT device, source, value FROM counted_readings ORDER BY measured_at"
    ) == [
        ("3MH0041XY7P", "cgm", 109.0),
        ("nightscout-librelink-up", "cgm", 113.0),
        ("3MH0041XY7P", "cgm", 111.0),
    ]


def test_a_bad_entry_is_dead_lettered_with_its_reason_and_its_batch_mates_are_stored(
    site: Site, database: str
) -> None:
    at = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(hours=1)
    impossible = xdrip_sgv(at + FIVE_MINUTES, 5000)
    undated = xdrip_sgv(at + 2 * FIVE_MINUTES, 120)
    for field in ("date", "dateString", "sysTime"):
        del undated[field]
    upload = [
        xdrip_sgv(at, 118),
        impossible,
        undated,
        xdrip_sgv(at + 3 * FIVE_MINUTES, 124),
        xdrip_cal(at, 850.0, 30000.0),
    ]
    with site.client() as app:
        answer = app.post(
            site.url + "/api/v1/entries", json=upload, headers={"api-secret": sha1(site.secret)}
        )
    assert answer.status_code == 200, answer.text
    assert sorted((d["type"], d.get("sgv")) for d in answer.json()) == [
        ("cal", None),
        ("sgv", 118),
        ("sgv", 124),
    ]
    assert rows(database, "SELECT value FROM counted_readings ORDER BY measured_at") == [
        (118.0,),
        (124.0,),
    ]
    letters = rows(
        database, "SELECT topic, reason, payload, patient_id FROM dead_letters ORDER BY id"
    )
    assert len(letters) == 2
    reasons = " | ".join(r[1] for r in letters)
    assert "entry 2: no date, dateString or sysTime" in reasons
    assert "5000 mg/dL is not a plausible glucose value" in reasons
    assert all(r[0] == "nightscout/entries" and r[3] == site.patient_id for r in letters)
    assert any(b'"sgv": 5000' in bytes(r[2]) for r in letters)  # the entry itself is kept
    # The calibration is kept beside the readings, not as one.
    assert rows(database, "SELECT device, slope, intercept FROM nightscout_calibrations") == [
        ("xDrip-DexcomG5", 850.0, 30000.0)
    ]


def test_uploaded_lows_raise_an_alert_in_the_real_alerts_worker(
    site: Site, database: str, alerts_worker: AlertsWorker
) -> None:
    start = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(minutes=40)
    values = [110, 66, 64, 61, 58, 63]
    upload = [xdrip_sgv(start + i * FIVE_MINUTES, v) for i, v in enumerate(values)]
    with site.client() as app:
        answer = app.post(
            site.url + "/api/v1/entries", json=upload, headers={"api-secret": sha1(site.secret)}
        )
    assert answer.status_code == 200

    def low_alert() -> list[tuple[object, ...]]:
        return rows(
            database,
            "SELECT kind, level, delivery, readings, extreme_mg_dl FROM alerts"
            " WHERE patient_id = %s",
            site.patient_id,
        )

    wait_for(lambda: low_alert() == [("low", 1, "page", 5, 58.0)])


def test_a_follower_token_cannot_upload(site: Site, database: str) -> None:
    token = site.token("Grandma's watch")["token"]
    at = datetime.now(SHANGHAI) - timedelta(minutes=5)
    with site.client() as app:
        answer = app.post(
            site.url + "/api/v1/entries", json=[xdrip_sgv(at, 100)], headers={"api-secret": token}
        )
    assert answer.status_code == 401
    assert rows(database, "SELECT count(*) FROM readings") == [(0,)]
