"""``glucobridge decode``: one JSON object on stdout, or one line on stderr and status 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from stack.decode_cmd import decode

from .test_gls_json import CONTOUR_JSON


def _run(*args: str) -> Result:
    try:  # click < 8.2 mixes stderr into stdout unless told not to
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    return runner.invoke(decode, list(args))


def test_prints_the_golden_record_as_one_json_object() -> None:
    result = _run("measurement", "131e00e2070914051b075cfe6fb0f1")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == CONTOUR_JSON


@pytest.mark.parametrize(
    "hex_value",
    [
        "13 1e 00 e2 07 09 14 05 1b 07 5c fe 6f b0 f1",
        "13:1E:00:E2:07:09:14:05:1B:07:5C:FE:6F:B0:F1",
        "13-1E-00-E2-07-09-14-05-1B-07-5C-FE-6F-B0-F1",  # as nRF Connect shows it
        "0x131e00e2070914051b075cfe6fb0f1",
    ],
)
def test_accepts_the_hex_forms_captures_come_in(hex_value: str) -> None:
    result = _run("measurement", hex_value)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mg_dl"] == 111.0


@pytest.mark.parametrize(
    ("kind", "hex_value", "key", "expected"),
    [
        ("context", "02" + "0100" + "03", "meal", "fasting"),
        ("feature", "0004", "features", ["multiple_bond"]),
        ("racp", "0103011e00", "operator", "greater_than_or_equal_to"),
        ("racp", "06000101", "response", "success"),
        ("racp", "05002a00", "number_of_records", 42),
    ],
)
def test_every_kind(kind: str, hex_value: str, key: str, expected: object) -> None:
    result = _run(kind, hex_value)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[key] == expected


def test_reserved_values_are_ignored_and_named() -> None:
    """A record with reserved bits decodes as a receiver must read it, and says what it
    ignored (the flags' bit 7, the sample type nibble 0)."""
    result = _run("measurement", "931e00e2070914051b075cfe6fb0f0")
    assert result.exit_code == 0, result.output
    decoded = json.loads(result.stdout)
    assert decoded["mg_dl"] == 111.0 and decoded["sample_type"] is None
    assert decoded["reserved_ignored"] == ["flags bits 0x80", "sample type 0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("measurement", "1b0400e407070e0b06055a0277b0f8"), "flags need 17 bytes, got 15"),
        (("measurement", "131e00e2070914051b075cfe6fb0f100"), "flags need 15 bytes, got 16"),
        (("measurement", ""), "measurement fields need at least 10 bytes, got 0"),
        (("measurement", "131e00e2070d14051b075cfe6fb0f1"), "month 13 is out of range 0..12"),
        (("racp", "0107"), "RACP op code 1: reserved operator"),
        (("racp", "01"), "RACP op code 1: operator missing"),
        (("measurement", "13 1e 0"), "HEX is not a whole number of hex bytes"),
        (("measurement", "zz"), "HEX is not a whole number of hex bytes"),
        (("glucose", "00"), "KIND must be one of context, feature, measurement, racp"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_status_2(args: tuple[str, str], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
