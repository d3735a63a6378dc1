"""Issue 13 through the API against the real database: a real patient's CGM and fingersticks
together (acceptance 1), the issue's cases where the database is part of them (acceptance
2), and the OpenAPI document naming every key of the trends answer (acceptance 4).

Expected values are worked out by hand in the comments, or are `glucobridge metrics` on the
same column of the same file (acceptance 1 asks for exactly that comparison).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from api.auth import Role, issue_access_token
from core.settings import DEV_JWT_SECRET
from stack.data import shipped
from stack.metrics_cmd import metrics
from tests.analytics.rows import Row, add_patient, insert

# Shanghai T1DM patient 1003: 1,339 CGM readings (every 15 min) and 100 fingersticks from
# 2021-08-31 17:43 to 2021-09-14 16:13, Shanghai time (stack/data/README.md).
SHANGHAI_FILE = shipped("shanghai", "T1DM", "1003_0_20210831.csv")
SHANGHAI = "Asia/Shanghai"
CGM_READINGS, FINGERSTICKS = 1339, 100
# Acceptance 1: "key by key within 0.01".
TOLERANCE = 0.01


def cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(metrics, list(args))
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out |= flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out |= flatten(v, f"{prefix}[{i}]")
        return out
    return {prefix: value}


def assert_same_report(api_report: dict[str, Any], cli_report: dict[str, Any]) -> None:
    ours, theirs = flatten(api_report), flatten(cli_report)
    assert set(ours) == set(theirs)
    for key, a in ours.items():
        b = theirs[key]
        if key in ("period.start", "period.end"):
            assert isinstance(a, str) and isinstance(b, str)
            assert datetime.fromisoformat(a) == datetime.fromisoformat(b), key
        elif isinstance(a, float | int) and not isinstance(a, bool):
            assert isinstance(b, float | int) and not isinstance(b, bool), key
            assert a == pytest.approx(b, abs=TOLERANCE), key
        else:
            assert a == b, key


def import_csv(
    api: httpx.Client, patient: uuid.UUID, name: str, content: bytes, **form: str
) -> dict[str, Any]:
    response = api.post(
        f"/api/v1/patients/{patient}/imports", files={"file": (name, content)}, data=form
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def trends(api: httpx.Client, patient: uuid.UUID, **params: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/patients/{patient}/trends", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- acceptance 1 ---------------------------------------------------------------------------


def test_a_files_cgm_and_fingersticks_in_one_patient_match_the_cli_per_source(
    database: str, api: httpx.Client
) -> None:
    patient = add_patient(database, SHANGHAI, api)
    content = SHANGHAI_FILE.read_bytes()
    for column, source, count in (
        ("cgm_mg_dl", "cgm", CGM_READINGS),
        ("cbg_mg_dl", "meter", FINGERSTICKS),
    ):
        result = import_csv(
            api,
            patient,
            SHANGHAI_FILE.name,
            content,
            value_column=column,
            source=source,
            tz=SHANGHAI,
        )
        # Every reading of both columns is stored: none collides with the other column's.
        assert (result["stored"], result["duplicates"], result["rejected"]) == (count, 0, 0)
    with psycopg.connect(database) as conn:
        stored = dict(
            conn.execute(
                "SELECT source, count(*) FROM counted_readings WHERE patient_id = %s"
                " GROUP BY source",
                (patient,),
            ).fetchall()
        )
    assert stored == {"cgm": CGM_READINGS, "meter": FINGERSTICKS}

    # The file's local days: 2021-08-31 00:00 to 2021-09-15 00:00, Shanghai time.
    start, end = "2021-08-31T00:00:00+08:00", "2021-09-15T00:00:00+08:00"
    for column, source, other, other_count in (
        ("cbg_mg_dl", "meter", "cgm", CGM_READINGS),
        ("cgm_mg_dl", "cgm", "meter", FINGERSTICKS),
    ):
        body = trends(api, patient, start=start, end=end, source=source)
        assert body["source"]["source"] == source and body["source"]["chosen_by"] == "request"
        assert body["source"]["other_sources"][other] == other_count
        expected = cli(
            "--value-column", column, "--source", source, "--tz", SHANGHAI,
            "--start", "2021-08-31", "--end", "2021-09-15", str(SHANGHAI_FILE),
        )[SHANGHAI_FILE.stem]["report"]  # fmt: skip
        assert body["report"]["readings"] == expected["readings"]
        assert_same_report(body["report"], expected)
    # Without `source`, a patient with sensor data in the period gets the CGM report.
    assert trends(api, patient, start=start, end=end)["source"]["source"] == "cgm"


# --- acceptance 2, where the database is part of the case -----------------------------------


def test_dst_gap_wall_times_import_and_cli_give_the_same_result(
    database: str, api: httpx.Client, tmp_path: Any
) -> None:
    # New York, 2021-03-14: clocks go from 02:00 EST to 03:00 EDT. 02:00 and 02:30 do not
    # exist; read with the offset before the gap (-5 h) they are 07:00 and 07:30 UTC, the
    # same instants as 03:00 and 03:30 EDT. The 02:00 row has the same value as the 03:00
    # row: neither is a duplicate of the other (different wall times), so all 7 count.
    text = (
        "time,cbg_mg_dl\n"
        "2021-03-14 00:30:00,100\n"
        "2021-03-14 01:30:00,110\n"
        "2021-03-14 02:00:00,120\n"
        "2021-03-14 02:30:00,130\n"
        "2021-03-14 03:00:00,120\n"
        "2021-03-14 03:30:00,140\n"
        "2021-03-14 08:00:00,150\n"
    )
    path = tmp_path / "gap.csv"
    path.write_text(text)
    zone = "America/New_York"
    patient = add_patient(database, zone, api)
    form = {"value_column": "cbg_mg_dl", "source": "meter", "tz": zone}
    result = import_csv(api, patient, "gap.csv", text.encode(), **form)
    assert (result["stored"], result["duplicates"]) == (7, 0)
    assert (result["nonexistent_times"], result["ambiguous_times"]) == (2, 0)

    subject = cli("--value-column", "cbg_mg_dl", "--source", "meter", "--tz", zone, str(path))[
        "gap"
    ]
    assert (subject["nonexistent_times"], subject["ambiguous_times"]) == (2, 0)
    report = subject["report"]
    # 7 readings: mean (100 + 110 + 120 + 130 + 120 + 140 + 150) / 7 = 870 / 7 = 124.29;
    # the local day 14 March lasts 23 h (05:00 UTC to 04:00 UTC), 7 / (23 / 24) = 7.30 a day.
    assert report["readings"] == 7
    assert report["mean"] == pytest.approx(870 / 7)
    assert report["period"]["days"] == pytest.approx(23 / 24)
    assert report["readings_per_day"] == pytest.approx(7 * 24 / 23)
    body = trends(
        api, patient, start="2021-03-14T05:00:00Z", end="2021-03-15T04:00:00Z", source="meter"
    )
    assert_same_report(body["report"], report)

    # 2021-11-07: 01:00-01:59 happens twice (EDT, then EST). A file in time order that says
    # 01:00, 01:30, 01:00, 01:30 is at 05:00, 05:30 UTC, then 06:00, 06:30 UTC: 4 ambiguous
    # times, 4 readings, in the import as in the command line.
    fold = "time,cbg_mg_dl\n" + "".join(
        f"2021-11-07 {t},{v}\n" for t, v in (("01:00", 101), ("01:30", 102), ("01:00", 103),
                                            ("01:30", 104))
    )  # fmt: skip
    (tmp_path / "fold.csv").write_text(fold)
    result = import_csv(api, patient, "fold.csv", fold.encode(), **form)
    assert (result["stored"], result["ambiguous_times"], result["nonexistent_times"]) == (4, 4, 0)
    subject = cli(
        "--value-column", "cbg_mg_dl", "--source", "meter", "--tz", zone,
        str(tmp_path / "fold.csv"),
    )["fold"]  # fmt: skip
    assert (subject["report"]["readings"], subject["ambiguous_times"]) == (4, 4)
    with psycopg.connect(database) as conn:
        instants = [
            r[0].astimezone(UTC).strftime("%H:%M")
            for r in conn.execute(
                "SELECT measured_at FROM counted_readings WHERE patient_id = %s"
                " AND measured_at >= '2021-11-07' ORDER BY measured_at",
                (patient,),
            )
        ]
    assert instants == ["05:00", "05:30", "06:00", "06:30"]


def test_coverage_is_measured_over_the_requested_period(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "UTC", api)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    rows = [
        Row(start + timedelta(minutes=5 * i), 120.0, sample_type="interstitial_fluid")
        for i in range(7 * 288)
    ]
    insert(database, patient, rows, "cgm-week")
    # 7 x 288 readings over 14 x 288 expected: 50 % active, below the consensus 70 %.
    report = trends(
        api, patient, start=start.isoformat(), end=(start + timedelta(days=14)).isoformat()
    )["report"]
    assert report["source"] == "cgm"
    assert report["sufficiency"]["active_pct"] == 50.0
    assert report["sufficiency"]["met"] is False


def test_a_mixed_unit_patient_through_trends_and_days(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "UTC", api)
    day = datetime(2026, 6, 3, tzinfo=UTC)
    # Two meters, one in mmol/L and one in mg/dL, at each consensus edge (see
    # tests/core/test_clinical_cases.py): 3.0 low, 3.9 in range, 10.0 in range, 13.9 high;
    # 54 low, 70 in range, 180 in range, 250 high -> low 25 %, in range 50 %, high 25 %.
    mmol = [Row(day + timedelta(hours=h), v, unit="mmol/L") for h, v in
            ((1, 3.0), (3, 3.9), (5, 10.0), (7, 13.9))]  # fmt: skip
    mg = [
        Row(day + timedelta(hours=h), v) for h, v in ((2, 54.0), (4, 70.0), (6, 180.0), (8, 250.0))
    ]
    insert(database, patient, mmol, "meter-mmol")
    insert(database, patient, mg, "meter-mg")
    window = {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    for unit in ("mg/dL", "mmol/L"):  # the answer's unit does not move a reading's band
        report = trends(api, patient, **window, unit=unit)["report"]
        assert report["source"] == "meter"
        assert report["readings_in_ranges"] == {
            "very_low": 0.0, "low": 25.0, "in_range": 50.0, "high": 25.0, "very_high": 0.0
        }  # fmt: skip
        assert report["hypoglycaemia"] == {"counted": "readings", "level1": 2, "level2": 0}
    page = api.get(
        f"/api/v1/patients/{patient}/days",
        params={"start_date": "2026-06-03", "end_date": "2026-06-03"},
    ).json()
    (summary,) = page["items"]
    assert summary["bands"]["in_range"] == 50.0 and summary["bands"]["very_high"] == 0.0


def test_days_and_period_agree_on_an_event_across_midnight(
    database: str, api: httpx.Client
) -> None:
    # 5-minute CGM from 20:00 to 04:00 Shanghai time, 100 mg/dL except 50 mg/dL at 23:50,
    # 23:55, 00:00, 00:05: one event of 20 min, 20 min below 54: level 2, on the first day.
    patient = add_patient(database, SHANGHAI, api)
    midnight = datetime(2026, 2, 11, tzinfo=ZoneInfo(SHANGHAI))
    start = midnight - timedelta(hours=4)
    rows = []
    for i in range(8 * 12):
        at = start + timedelta(minutes=5 * i)
        low = midnight - timedelta(minutes=10) <= at <= midnight + timedelta(minutes=5)
        rows.append(
            Row(at.astimezone(UTC), 50.0 if low else 100.0, sample_type="interstitial_fluid")
        )
    insert(database, patient, rows, "cgm-night")
    page = api.get(
        f"/api/v1/patients/{patient}/days",
        params={"start_date": "2026-02-10", "end_date": "2026-02-11"},
    ).json()
    assert page["source"]["source"] == "cgm"
    levels = {
        d["date"]: (d["hypo_level1"], d["hypo_level2"], d["hypo_counted"]) for d in page["items"]
    }
    assert levels == {"2026-02-10": (0, 1, "events"), "2026-02-11": (0, 0, "events")}
    period = trends(
        api, patient, start=start.isoformat(), end=(midnight + timedelta(hours=4)).isoformat()
    )["report"]["hypoglycaemia"]
    assert (period["level1"], period["level2"]) == (0, 1)  # = 0 + 0 and 1 + 0 over the days


def test_travel_days_have_their_true_length(database: str, api: httpx.Client) -> None:
    # New York -> Tokyo, the zone changing at 2026-07-11 02:00 UTC: 10 July lasts 22 h
    # (04:00 UTC to 02:00 UTC) and 11 July 13 h (to 15:00 UTC), as in
    # tests/core/test_clinical_cases.py. A reading every 30 minutes: 44 and 26 readings.
    patient = add_patient(database, "America/New_York", api)
    change = datetime(2026, 7, 11, 2, tzinfo=UTC)
    with psycopg.connect(database) as conn:
        conn.execute(
            "INSERT INTO patient_timezones (patient_id, effective_from, timezone)"
            " VALUES (%s, %s, 'Asia/Tokyo')",
            (patient, change),
        )
    first = datetime(2026, 7, 10, 4, tzinfo=UTC)
    rows = [Row(first + timedelta(minutes=30 * i), 110.0) for i in range(35 * 2)]
    insert(database, patient, rows, "m-travel")
    page = api.get(
        f"/api/v1/patients/{patient}/days",
        params={"start_date": "2026-07-10", "end_date": "2026-07-11"},
    ).json()
    days = {d["date"]: d for d in page["items"]}
    assert (days["2026-07-10"]["hours"], days["2026-07-10"]["readings"]) == (22.0, 44)
    assert (days["2026-07-11"]["hours"], days["2026-07-11"]["readings"]) == (13.0, 26)
    assert days["2026-07-11"]["timezone"] == "Asia/Tokyo"


# --- acceptance 4 ---------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _named(value: object, schema: dict[str, Any], document: dict[str, Any], path: str) -> None:
    """Every key of `value` is a property of `schema` (no key the document leaves out)."""
    schema = _resolve(schema, document)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options is not None:
        errors = []
        for option in options:
            try:
                _named(value, option, document, path)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{path}: matches no option: {errors}")
    if "const" in schema:
        assert value == schema["const"], path
    if value is None:
        assert schema.get("type") == "null", f"{path}: null where the document says {schema}"
    elif isinstance(value, dict):
        assert schema.get("type") == "object", path
        assert schema.get("additionalProperties") is False, f"{path}: keys not all named"
        properties = schema["properties"]
        assert set(value) <= set(properties), f"{path}: {set(value) - set(properties)}"
        assert set(schema.get("required", ())) <= set(value), path
        for key, item in value.items():
            _named(item, properties[key], document, f"{path}.{key}")
    elif isinstance(value, list):
        assert schema.get("type") == "array", path
        for i, item in enumerate(value):
            _named(item, schema["items"], document, f"{path}[{i}]")


def _trends_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    operation = document["paths"][path]["get"]
    schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return schema


def _report_shapes(database: str, api: httpx.Client) -> Sequence[uuid.UUID]:
    """A CGM patient and a fingerstick patient whose meter data meet the sufficiency rule
    (14 days of 4 tagged readings), so every optional part of both reports is filled."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cgm_patient = add_patient(database, "UTC", api, name="cgm")
    insert(
        database,
        cgm_patient,
        [
            Row(
                start + timedelta(minutes=15 * i),
                60.0 + (i * 7) % 200,
                sample_type="interstitial_fluid",
            )
            for i in range(14 * 96)
        ],
        "cgm",
    )
    meter_patient = add_patient(database, "UTC", api, name="meter")
    meals = ("fasting", "after_meal", "before_meal", "after_meal")
    insert(
        database,
        meter_patient,
        [
            Row(start + timedelta(days=d, hours=7 + 2 * k), 90.0 + 20 * k + d, meal=meals[k])
            for d in range(14)
            for k in range(4)
        ],
        "meter",
    )
    return cgm_patient, meter_patient


def test_the_openapi_document_names_every_key_of_the_trends_answer(
    database: str, api: httpx.Client
) -> None:
    document = api.get("/openapi.json").json()
    period = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-15T00:00:00Z"}
    cgm_patient, meter_patient = _report_shapes(database, api)
    seen_sources = set()
    for patient in (cgm_patient, meter_patient):  # each reads their own data
        _sign_in_as(database, api, patient)
        for path, url in (
            ("/api/v1/patients/{patient_id}/trends", f"/api/v1/patients/{patient}/trends"),
            (
                "/api/v1/patients/{patient_id}/trends/comparison",
                f"/api/v1/patients/{patient}/trends/comparison",
            ),
        ):
            body = api.get(url, params=period).json()
            _named(body, _trends_schema(document, path), document, path)
        report = api.get(f"/api/v1/patients/{patient}/trends", params=period).json()["report"]
        seen_sources.add(report["source"])
        if report["source"] == "meter":
            assert report["sufficiency"]["met"] is True and report["gmi_pct"] is not None
    assert seen_sources == {"cgm", "meter"}


def _sign_in_as(database: str, api: httpx.Client, patient: uuid.UUID) -> None:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT user_id FROM patients WHERE id = %s", (patient,)).fetchone()
    assert row is not None
    token = issue_access_token(DEV_JWT_SECRET, row[0], Role.PATIENT, datetime.now(UTC))
    api.headers["Authorization"] = f"Bearer {token}"


def test_a_reading_in_the_last_second_of_the_period_is_in_it(
    database: str, api: httpx.Client
) -> None:
    # Instants are kept to the second; a reading at 12:00:00.7 before an end at 12:00:00.9
    # is inside the period and counted, never an error.
    patient = add_patient(database, "UTC", api)
    at = datetime(2026, 6, 1, 12, 0, 0, 700_000, tzinfo=UTC)
    insert(database, patient, [Row(at - timedelta(hours=1), 100.0), Row(at, 140.0)], "m-edge")
    body = trends(api, patient, start="2026-06-01T00:00:00Z", end="2026-06-01T12:00:00.900000Z")
    assert body["report"]["readings"] == 2 and body["report"]["mean"] == 120.0
