"""Central tendency and variability: mean, SD, CV, GMI.

All computed on the readings as they are, without interpolation onto a time grid; that is
what iglu's `mean_glu`, `sd_glu`, `cv_glu` and `gmi` do ("time-independent metrics do not
use any linear interpolation", iglu vignette), and what our tests compare against.
"""

from __future__ import annotations

import numpy as np

from core.metrics.series import EmptySeriesError, FloatArray

# Glucose Management Indicator, Bergenstal R.M. et al., Diabetes Care 41(11), 2018
# (doi:10.2337/dc18-1581): GMI (%) = 3.31 + 0.02392 x mean glucose in mg/dL.
GMI_INTERCEPT_PCT = 3.31
GMI_SLOPE_PCT_PER_MG_DL = 0.02392


def mean(values_mg_dl: FloatArray) -> float:
    if values_mg_dl.size == 0:
        raise EmptySeriesError("mean needs at least one reading")
    return float(np.mean(values_mg_dl))


def sd(values_mg_dl: FloatArray) -> float | None:
    """Sample standard deviation (n - 1 in the denominator, as R's `sd`); None below 2."""
    if values_mg_dl.size < 2:
        return None
    return float(np.std(values_mg_dl, ddof=1))


def cv_pct(values_mg_dl: FloatArray) -> float | None:
    """Coefficient of variation, 100 x SD / mean; None when SD is undefined."""
    spread = sd(values_mg_dl)
    return None if spread is None else 100.0 * spread / mean(values_mg_dl)


def gmi_pct(mean_mg_dl: float) -> float:
    return GMI_INTERCEPT_PCT + GMI_SLOPE_PCT_PER_MG_DL * mean_mg_dl
