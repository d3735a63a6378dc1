"""`glucobridge metrics` against the iglu R package's published values, and its errors.

Reference values: the output of iglu 4.3.0 (R 4.4.3) on iglu's own
`example_data_5_subject`, recorded by the iglu_python project, which runs the R package
through rpy2 to build the expectations its port is tested against:
https://github.com/staskh/iglu_python/blob/010fab40e301e14178aaacaeed25bc8d735d66e2/tests/expected_results.json
(config block: "iglu": 4.3.0, "R": 4.4.3; input tests/data/example_data_5_subject.csv, the
same 13866 readings as the shipped stack/data/iglu/example_data_5_subject.csv). Method and
column of each number, per subject 1-5:

    mean_glu          -> "mean"
    sd_glu            -> "SD"
    cv_glu            -> "CV"
    gmi               -> "GMI"
    below_percent     -> "below_54", "below_70"          (gl < target)
    in_range_percent  -> "in_range_70_180"                (70 <= gl <= 180)
    above_percent     -> "above_180", "above_250"        (gl > target)
    lbgi              -> "LBGI"
    hbgi              -> "HBGI"

Our five bands are the consensus bands; from iglu's cumulative columns:
very low = below_54, low = below_70 - below_54, in range = in_range_70_180,
high = above_180 - above_250, very high = above_250.
iglu computes all of these on the raw readings, without interpolation.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stack.data import shipped
from stack.metrics_cmd import metrics

IGLU_FILE = shipped("iglu", "example_data_5_subject.csv")
SHANGHAI_FILE = shipped("shanghai", "T1DM", "1001_0_20210730.csv")
TOLERANCE = 0.01

# Pasted from the file cited above, never from our own output.
IGLU_4_3_0 = {
    "Subject 1": {
        "mean": 123.6655231560892,
        "SD": 33.26807611654069,
        "CV": 26.90165801065674,
        "GMI": 6.268079313893659,
        "below_54": 0.0,
        "below_70": 0.13722126929674097,
        "in_range_70_180": 91.66380789022298,
        "above_180": 8.198970840480275,
        "above_250": 0.37735849056603776,
        "LBGI": 0.4320362852625282,
        "HBGI": 1.8072977074817265,
    },
    "Subject 2": {
        "mean": 218.45281018027572,
        "SD": 52.37110853562317,
        "CV": 23.973648355635437,
        "GMI": 8.535391219512205,
        "below_54": 0.0,
        "below_70": 0.0,
        "in_range_70_180": 26.44043831742665,
        "above_180": 73.55956168257335,
        "above_250": 26.08695652173913,
        "LBGI": 0.004641769100578593,
        "HBGI": 16.19390188604343,
    },
    "Subject 3": {
        "mean": 154.04174820613176,
        "SD": 44.78312496978401,
        "CV": 29.072070066263617,
        "GMI": 6.994678617090672,
        "below_54": 0.0,
        "below_70": 0.32615786040443573,
        "in_range_70_180": 81.34377038486627,
        "above_180": 18.33007175472929,
        "above_250": 5.6751467710371815,
        "LBGI": 0.14228361873893977,
        "HBGI": 5.108134737656808,
    },
    "Subject 4": {
        "mean": 129.6743995633188,
        "SD": 29.067820376793996,
        "CV": 22.416005375525522,
        "GMI": 6.411811637554587,
        "below_54": 0.05458515283842794,
        "below_70": 0.2729257641921397,
        "in_range_70_180": 95.1146288209607,
        "above_180": 4.612445414847162,
        "above_250": 0.0,
        "LBGI": 0.35620668044967835,
        "HBGI": 1.865734234263129,
    },
    "Subject 5": {
        "mean": 174.60752136752137,
        "SD": 58.576552722988005,
        "CV": 33.547554116923486,
        "GMI": 7.486611911111114,
        "below_54": 0.0,
        "below_70": 0.10256410256410256,
        "in_range_70_180": 62.11965811965812,
        "above_180": 37.77777777777778,
        "above_250": 11.282051282051283,
        "LBGI": 0.19459022091769873,
        "HBGI": 8.895612373309442,
    },
}
# Reading counts per subject: iglu's documentation of the data set ("13866 observations"
# in total, 2915 for Subject 1 = example_data_1_subject, iglu vignette "Working in iglu").
IGLU_TOTAL_READINGS = 13866
IGLU_SUBJECT_1_READINGS = 2915


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(metrics, list(args))
    return result.exit_code, result.output


Report = dict[str, Any]


@pytest.fixture(scope="module")
def iglu_output() -> dict[str, Report]:
    code, output = run(str(IGLU_FILE))
    assert code == 0, output
    parsed: dict[str, Report] = {k: v["report"] for k, v in json.loads(output).items()}
    return parsed


def test_every_subject_is_reported(iglu_output: dict[str, Report]) -> None:
    assert sorted(iglu_output) == sorted(IGLU_4_3_0)
    assert sum(s["readings"] for s in iglu_output.values()) == IGLU_TOTAL_READINGS
    assert iglu_output["Subject 1"]["readings"] == IGLU_SUBJECT_1_READINGS


@pytest.mark.parametrize("subject", sorted(IGLU_4_3_0))
def test_matches_iglu(iglu_output: dict[str, Report], subject: str) -> None:
    ref = IGLU_4_3_0[subject]
    ours = iglu_output[subject]
    assert ours["unit"] == "mg/dL" and ours["source"] == "cgm"
    bands = ours["time_in_ranges"]
    expected = {
        "mean": (ours["mean"], ref["mean"]),
        "sd": (ours["sd"], ref["SD"]),
        "cv_pct": (ours["cv_pct"], ref["CV"]),
        "gmi_pct": (ours["gmi_pct"], ref["GMI"]),
        "very_low": (bands["very_low"], ref["below_54"]),
        "low": (bands["low"], ref["below_70"] - ref["below_54"]),
        "in_range": (bands["in_range"], ref["in_range_70_180"]),
        "high": (bands["high"], ref["above_180"] - ref["above_250"]),
        "very_high": (bands["very_high"], ref["above_250"]),
        "lbgi": (ours["lbgi"], ref["LBGI"]),
        "hbgi": (ours["hbgi"], ref["HBGI"]),
    }
    for key, (value, published) in expected.items():
        assert value == pytest.approx(published, abs=TOLERANCE), key


def test_output_carries_the_promised_keys(iglu_output: dict[str, Report]) -> None:
    keys = {
        "source", "unit", "period", "readings", "mean", "sd", "cv_pct", "gmi_pct",
        "time_in_ranges", "limits", "lbgi", "hbgi", "hypoglycaemia", "sufficiency", "goals",
        "agp_bin_minutes", "agp",
    }  # fmt: skip
    for subject in iglu_output.values():
        assert set(subject) == keys


def count_nonempty(path: Path, column: str) -> int:
    with path.open(encoding="utf-8", newline="") as f:
        return sum(1 for row in csv.DictReader(f) if row[column].strip() != "")


def test_shanghai_fingersticks_count_every_nonempty_cbg_row() -> None:
    expected = count_nonempty(SHANGHAI_FILE, "cbg_mg_dl")
    assert expected > 0
    code, output = run("--value-column", "cbg_mg_dl", str(SHANGHAI_FILE))
    assert code == 0, output
    result = json.loads(output)
    assert list(result) == [SHANGHAI_FILE.stem]  # no id column: keyed by the file's stem
    assert result[SHANGHAI_FILE.stem]["report"]["readings"] == expected


def test_shanghai_meter_mode_speaks_of_readings() -> None:
    code, output = run(
        "--value-column", "cbg_mg_dl", "--source", "meter", "--tz", "Asia/Shanghai",
        str(SHANGHAI_FILE),
    )  # fmt: skip
    assert code == 0, output
    report = json.loads(output)[SHANGHAI_FILE.stem]["report"]
    assert report["source"] == "meter" and report["hypoglycaemia"]["counted"] == "readings"
    assert "readings_in_ranges" in report and "time_in_ranges" not in report
    # 2021-07-30 .. 2021-08-06: 8 local days, 53 fingersticks, on 7 days at least 4 of them
    # (2, 7, 8, 8, 8, 8, 8, 4 a day). 8 days < 14: no GMI, no AGP.
    assert report["period"]["days"] == 8.0
    assert report["readings"] == 53
    assert report["readings_per_day"] == pytest.approx(53 / 8)
    assert report["sufficiency"]["days_meeting_minimum"] == 7
    assert report["sufficiency"]["met"] is False
    assert report["gmi_pct"] is None and report["agp"] is None


def test_shanghai_cgm_column() -> None:
    expected = count_nonempty(SHANGHAI_FILE, "cgm_mg_dl")
    code, output = run("--value-column", "cgm_mg_dl", str(SHANGHAI_FILE))
    assert code == 0, output
    report = json.loads(output)[SHANGHAI_FILE.stem]["report"]
    assert report["readings"] == expected
    # the Shanghai CGMs report every 15 minutes
    assert report["sufficiency"]["interval_minutes"] == 15


def test_mmol_file_is_classified_in_mmol(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("time,glucose\n2024-01-01 08:00,3.9\n2024-01-01 12:00,3.8\n")
    code, output = run("--value-column", "glucose", "--unit", "mmol/L", "--source", "meter", str(f))
    assert code == 0, output
    bands = json.loads(output)["p"]["report"]["readings_in_ranges"]
    assert bands["in_range"] == 50.0  # 3.9 mmol/L is in range although 70.3 mg/dL
    assert bands["low"] == 50.0


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        (None, (), "no such file"),
        ("time,gl\n2024-01-01 08:00,100\n", ("--value-column", "cbg_mg_dl"), "cbg_mg_dl"),
        ("time,gl\n2024-01-01 08:00,abc\n", (), "'abc' is not a number"),
        ("time,gl\n2024-01-01 08:00,0\n", (), "not a plausible glucose value"),
        ("time,gl\nyesterday,100\n", (), "'yesterday' is not a time"),
        ("", (), "empty"),
        ("time,gl\n2024-01-01 08:00,100\n", ("--tz", "Mars/Olympus"), "unknown time zone"),
    ],
)
def test_bad_input_exits_with_a_one_line_reason(
    tmp_path: Path, content: str | None, args: tuple[str, ...], needle: str
) -> None:
    f = tmp_path / "bad.csv"
    if content is not None:
        f.write_text(content)
    code, output = run(*args, str(f))
    assert code != 0
    assert needle in output
    assert len(output.strip().splitlines()) == 1, output


def test_an_implausible_row_is_set_aside_and_the_rest_of_the_file_counts(tmp_path: Path) -> None:
    f = tmp_path / "typo.csv"
    f.write_text(
        "time,cbg_mg_dl\n2024-01-01 08:00,100\n2024-01-01 12:00,2044.8\n2024-01-01 18:00,140\n"
    )
    result = CliRunner().invoke(
        metrics, ["--value-column", "cbg_mg_dl", "--source", "meter", str(f)]
    )
    assert result.exit_code == 0, result.output
    subject = json.loads(result.stdout)["typo"]
    assert (subject["report"]["readings"], subject["set_aside"]) == (2, 1)
    assert subject["report"]["mean"] == 120.0
    assert "line 3" in result.stderr and "2044.8 mg/dL is not a plausible" in result.stderr
