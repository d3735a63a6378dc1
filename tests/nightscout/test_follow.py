"""Followers read a site as the real clients do: py-nightscout (Home Assistant), xDrip+'s
follower and xDrip4iOS's follower, each with the patient's follower token; every read is in
the patient's access log (acceptance 2, 3)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import httpx
from py_nightscout import Api

from tests.analytics.rows import add_patient
from tests.nightscout.clients import (
    FIVE_MINUTES,
    sha1,
    xdrip_devicestatus,
    xdrip_mbg,
    xdrip_sgv,
    xdrip_treatment,
)
from tests.nightscout.conftest import Site, access_log, open_site

SHANGHAI = ZoneInfo("Asia/Shanghai")
VALUES = [104, 110, 118, 125, 131, 128]  # oldest first; 128 is the current one


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _upload_hour(site: Site) -> datetime:
    """Six sensor readings five minutes apart (the last 3 minutes ago), a fingerstick, a
    meal with insulin, and the phone's battery, as xDrip+ uploads them."""
    last = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(minutes=3)
    first = last - 5 * FIVE_MINUTES
    sgv = [
        xdrip_sgv(first + i * FIVE_MINUTES, v, previous=VALUES[i - 1] if i else None)
        for i, v in enumerate(VALUES)
    ]
    secret = {"api-secret": sha1(site.secret)}
    meal = xdrip_treatment(first, str(uuid.uuid4()), carbs=45, insulin=4.5)
    with site.client() as app:
        assert app.post(site.url + "/api/v1/entries", json=sgv, headers=secret).status_code == 200
        fingerstick = [xdrip_mbg(first + timedelta(minutes=1), 101.0)]
        assert app.post(site.url + "/api/v1/entries", json=fingerstick, headers=secret)
        # xDrip+ sends every treatment with PUT (postTreatments: "always use singular upserts").
        assert (
            app.put(site.url + "/api/v1/treatments", json=meal, headers=secret).status_code == 200
        )
        status = app.post(
            site.url + "/api/v1/devicestatus", json=xdrip_devicestatus(87), headers=secret
        )
        assert status.status_code == 200
    return last


def test_home_assistant_reads_the_site_through_py_nightscout(site: Site, database: str) -> None:
    last = _upload_hour(site)
    token = site.token("Home Assistant")

    async def read() -> tuple[list, object, list]:  # type: ignore[type-arg]
        # The integration builds Api(url, api_secret=...); a token goes in as "token=<token>".
        api = Api(site.url, api_secret="token=" + token["token"])
        sgvs = await api.get_sgvs()
        # Entered plainly, the token goes as its SHA-1 (request_headers), which works too.
        status = await Api(site.url, api_secret=token["token"]).get_server_status()
        return sgvs, status, await api.get_treatments()

    sgvs, status, treatments = asyncio.run(read())

    current = sgvs[0]  # what the integration's sensor shows (newest first)
    assert (current.sgv, current.direction, current.delta) == (128, "Flat", -3.0)
    assert current.date.timestamp() == last.timestamp()
    assert current.sgv_mmol == round(128 / 18, 1)  # py-nightscout's own conversion
    assert [s.sgv for s in sgvs] == list(reversed(VALUES))  # the fingerstick is not an sgv
    assert status.status == "ok" and status.apiEnabled is True
    assert status.settings["units"] == "mg/dl"
    (meal,) = treatments
    assert (meal.carbs, meal.insulin, meal.eventType, meal.enteredBy) == (
        45,
        4.5,
        "<none>",
        "xdrip",
    )

    log = access_log(database, site.patient_id)
    follower = [r for r in log if r[0] == "follower_token"]
    assert [(r[1], r[2], r[3]) for r in follower] == [
        ("Home Assistant", "allowed", "ns_entries_of_type"),
        ("Home Assistant", "allowed", "ns_status"),
        ("Home Assistant", "allowed", "ns_treatments"),
    ]
    assert {r[4] for r in follower} == {uuid.UUID(token["grant_id"])}
    assert all(r[0] == "uploader" for r in log if r[0] != "follower_token")


def test_the_xdrip_follower_requests_answer_as_nightscout_does(site: Site, database: str) -> None:
    last = _upload_hour(site)
    token = site.token("Mum's xDrip+")["token"]
    # The follower's URL is https://TOKEN@host/: NightscoutUrl.getHashedSecret() sends the
    # SHA-1 of the user-info part in api-secret, and the interface's paths are absolute
    # (@GET("/api/v1/entries.json")), so they go to the host's root whatever the URL's path.
    secret = {"api-secret": sha1(token), "User-Agent": "xDrip+ 2025.01.01"}
    since = _millis(last - 2 * FIVE_MINUTES)
    with site.client() as app:
        first = app.get(f"/api/v1/entries.json?count=10&rr={_millis(last)}", headers=secret)
        newer = app.get(
            f"/api/v1/entries.json?count=2880&find[date][$gt]={since}&rr={_millis(last)}",
            headers=secret,
        )
        treatments = app.get("/api/v1/treatments", headers=secret)
        status = app.get("/api/v1/devicestatus.json?count=1", headers=secret)

    assert first.status_code == 200, first.text
    assert [e["sgv"] for e in first.json()] == list(reversed(VALUES))
    # find[date][$gt] is strict: the reading at `since` itself is not sent again.
    assert [(e["sgv"], e["date"]) for e in newer.json()] == [
        (128, _millis(last)),
        (131, _millis(last - FIVE_MINUTES)),
    ]
    entry = newer.json()[0]
    # What messages/Entry.java reads: date, dateString, sgv, direction, noise, filtered,
    # unfiltered, rssi, delta, type, device, sysTime, _id (24 hex, uuid_to_id's length).
    assert entry["type"] == "sgv" and entry["device"] == "xDrip-DexcomG5"
    assert (entry["noise"], entry["rssi"], entry["filtered"]) == (1, 100, 128000.0)
    assert entry["dateString"].endswith("Z") and entry["utcOffset"] == 480
    assert len(entry["_id"]) == 24 and int(entry["_id"], 16) >= 0
    assert [t["carbs"] for t in treatments.json()] == [45]
    (phone,) = status.json()
    assert phone["uploader"] == {"battery": 87, "type": "PHONE"}
    assert phone["device"] == "Google Pixel 7"

    follower = [r for r in access_log(database, site.patient_id) if r[0] == "follower_token"]
    assert [(r[1], r[2]) for r in follower] == [("Mum's xDrip+", "allowed")] * 4


def test_the_xdrip4ios_follower_request_answers_as_nightscout_does(site: Site) -> None:
    last = _upload_hour(site)
    token = site.token("iPhone")["token"]
    with site.client() as app:
        # Endpoint.getEndpointForLatestNSEntries: scheme + host only, path
        # "/api/v1/entries/sgv.json", query count and token.
        answer = app.get(f"/api/v1/entries/sgv.json?count=3&token={token}")
    assert answer.status_code == 200, answer.text
    # NightscoutBgReading(json:) needs "sgv" and "date" as numbers.
    assert [(e["sgv"], e["date"]) for e in answer.json()] == [
        (128, _millis(last)),
        (131, _millis(last - FIVE_MINUTES)),
        (125, _millis(last - 2 * FIVE_MINUTES)),
    ]


def test_meter_entries_current_csv_and_if_modified_since(site: Site) -> None:
    last = _upload_hour(site)
    token = {"api-secret": site.token("Dad")["token"]}  # the token itself, not its hash
    with site.client() as app:
        mbg = app.get(site.url + "/api/v1/entries/mbg.json", headers=token).json()
        current = app.get(site.url + "/api/v1/entries/current.json", headers=token)
        csv = app.get(site.url + "/api/v1/entries.csv?count=2", headers=token)
        since = format_datetime(last.astimezone(UTC), usegmt=True)
        unchanged = app.get(
            site.url + "/api/v1/entries.json", headers={**token, "If-Modified-Since": since}
        )
        older = format_datetime((last - timedelta(seconds=1)).astimezone(UTC), usegmt=True)
        changed = app.get(
            site.url + "/api/v1/entries.json", headers={**token, "If-Modified-Since": older}
        )
    assert [(e["type"], e["mbg"]) for e in mbg] == [("mbg", 101)]
    assert [e["sgv"] for e in current.json()] == [128]
    assert current.headers["last-modified"] == since
    rows = csv.text.split("\r\n")
    assert len(rows) == 2
    # dateString, date, sgv, direction, device: each JSON-encoded (formatWithSeparator).
    assert rows[0].split(",")[1:] == [str(_millis(last)), "128", '"Flat"', '"xDrip-DexcomG5"']
    assert unchanged.status_code == 304
    assert changed.status_code == 200 and len(changed.json()) == 6


def test_status_speaks_the_patients_unit_and_thresholds(api: httpx.Client, database: str) -> None:
    patient = add_patient(database, "Europe/Paris", api)
    mmol_site = open_site(api, patient, unit="mmol/L")
    with mmol_site.client() as app:
        status = app.get(
            mmol_site.url + "/api/v1/status.json",
            headers={"api-secret": sha1(mmol_site.secret)},
        ).json()
    assert status["settings"]["units"] == "mmol"
    # No clinician thresholds: the consensus levels, in mg/dL as Nightscout writes them.
    assert status["settings"]["thresholds"] == {
        "bgHigh": 250.0,
        "bgTargetTop": 180.0,
        "bgTargetBottom": 70.0,
        "bgLow": 54.0,
    }
    assert abs(status["serverTimeEpoch"] / 1000 - datetime.now().timestamp()) < 60
