"""The pure parts: times as the clients write them, queries as they send them, credentials
as they present them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.nightscout import credentials, dates, entries, query
from api.nightscout.credentials import Kind

# One instant, 2026-11-02 01:15 UTC, as each client writes it.
INSTANT = datetime(2026, 11, 2, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2026-11-02T09:15:00.000+0800", 480),  # xDrip+ SimpleDateFormat ...SSSZ
        ("2026-11-02T09:15:00.000+08:00", 480),  # Juggluco Tdatestring
        ("2026-11-02T01:15:00.000Z", 0),  # LibreLinkUp uploader toISOString()
        ("2026-11-02T01:15:00", 0),  # no offset: UTC, as moment.parseZone
        ("2026-11-01T20:15:00-05:00", -300),
    ],
)
def test_every_clients_date_string_names_the_same_instant(text: str, offset: int) -> None:
    assert dates.parse_iso(text) == dates.Instant(INSTANT, offset)


def test_date_in_milliseconds_wins_and_the_string_gives_the_offset() -> None:
    doc = {"date": 1793582100000, "dateString": "2026-11-02T09:15:00.000+0800"}
    assert dates.instant_of(doc, "date", "dateString") == dates.Instant(INSTANT, 480)
    assert dates.iso_utc(INSTANT) == "2026-11-02T01:15:00.000Z"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"type": "sgv", "sgv": 120}, "no date, dateString or sysTime"),
        ({"type": "sgv", "sgv": "high", "date": 1793582100000}, "sgv 'high' is not a number"),
        ({"type": "sgv", "sgv": 120, "dateString": "yesterday"}, "is not an ISO 8601 date"),
        ({"type": "sensor", "date": 1793582100000}, "type 'sensor' is not stored"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_entries_that_cannot_be_readings_are_refused_with_a_reason(
    document: object, reason: str
) -> None:
    parsed = entries.parse(3, document)
    assert isinstance(parsed, entries.Refused)
    assert parsed.reason.startswith("entry 3: ") and reason in parsed.reason


def test_a_long_device_name_keeps_its_start_and_stays_distinct() -> None:
    first = entries.device_of({"device": "x" * 70 + "a"})
    second = entries.device_of({"device": "x" * 70 + "b"})
    assert len(first) == len(second) == entries.MAX_DEVICE
    assert first != second and first.startswith("x" * 40)


def test_queries_as_the_followers_send_them() -> None:
    asked = query.parse(
        [("count", "2880"), ("find[date][$gt]", "1793582100000"), ("rr", "1793582400000")],
        10,
        10,
    )
    assert asked == query.Query(2880, query.Bound(INSTANT, False), None, None)
    by_string = query.parse([("find[dateString][$gte]", "2026-11-02T01:15:00.000Z")], 10, 10)
    assert by_string.after == query.Bound(INSTANT, True) and by_string.count == 10
    assert query.parse([("find[created_at][$gte]", "2026-11-02")], 100, 1000).count == 1000
    assert query.parse([("count", "0")], 10, 10).count == query.MAX_COUNT


@pytest.mark.parametrize(
    "params",
    [[("count", "ten")], [("count", "-1")], [("find[sgv][$gte]", "120")], [("find[$where]", "1")]],
)
def test_queries_this_server_cannot_answer_are_refused(params: list[tuple[str, str]]) -> None:
    with pytest.raises(query.QueryError):
        query.parse(params, 10, 10)


def test_credentials_are_read_the_ways_nightscout_reads_them() -> None:
    secret = "correct-horse-battery"
    sha1 = credentials.sha1_hex(secret)
    found = credentials.presented(sha1.upper(), None, "abc-0123", None)
    assert found == [
        credentials.Presented(Kind.SECRET_SHA1, sha1),
        credentials.Presented(Kind.TOKEN, "abc-0123"),
    ]
    assert credentials.presented("token=abc-0123", None, None, None) == [
        credentials.Presented(Kind.TOKEN, "abc-0123")  # py-nightscout's way
    ]
    sha512 = credentials.sha512_hex(secret)
    assert credentials.presented(None, sha512, None, "a.b.c") == [
        credentials.Presented(Kind.SECRET_SHA512, sha512),
        credentials.Presented(Kind.JWT, "a.b.c"),
    ]
    assert credentials.presented("null", "", None, None) == []  # lib/authorization: 'null'
    assert credentials.bearer_of("Bearer x.y.z") == "x.y.z"
    assert credentials.bearer_of("Basic abc") is None
    token = credentials.new_follower_token("Mum's iPhone 15")
    name, _, random = token.partition("-")
    assert name == "mumsiphone" and len(random) == 32
