"""Wall-clock fields of UTC instants in a patient's zone (DST-correct, reading by reading)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import numpy as np
import numpy.typing as npt

from core.metrics.series import TimeArray

MINUTES_PER_DAY = 24 * 60


def local_dates_and_minutes(
    times: TimeArray, tz: tzinfo
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.int64]]:
    """Local calendar date and minute of the day (0-1439) of each instant in `tz`.

    Each instant gets the offset in force at that instant, so a day across a DST change
    has 23 or 25 hours and a trip across zones is handled by the caller passing the zone.
    """
    seconds = times.astype("datetime64[s]").astype(np.int64)
    dates = np.empty(seconds.shape, dtype="datetime64[D]")
    minutes = np.empty(seconds.shape, dtype=np.int64)
    for i, second in enumerate(seconds.tolist()):
        local = datetime.fromtimestamp(second, UTC).astimezone(tz)
        dates[i] = np.datetime64(local.date(), "D")
        minutes[i] = local.hour * 60 + local.minute
    return dates, minutes
