"""Low and High Blood Glucose Indices (Kovatchev).

Kovatchev B.P. et al., "Symmetrization of the blood glucose measurement scale and its
applications", Diabetes Care 20(11), 1997, and Diabetes Technol Ther 2002: the glucose
scale (mg/dL) is mapped to a symmetric one,

    f(g) = 1.509 x (ln(g)^1.084 - 5.381),

whose zero sits at about 112.5 mg/dL. The risk of a reading is r = 10 f^2, assigned to the
low side when g < 112.5 mg/dL and to the high side otherwise; LBGI and HBGI are the means
of the low and high risks over all readings.

iglu (R, 4.x) computes `22.77 * sum(fbg[gl < 112.5]^2) / n` with
`fbg = log(gl)^1.084 - 5.381`; 22.77 is 10 x 1.509^2 = 22.7708 rounded, so iglu's values
are 3.6e-5 (relative) below ours. We keep the published constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metrics.series import EmptySeriesError, FloatArray

# Constants of the symmetrising transform, Kovatchev 1997.
SCALE = 1.509
EXPONENT = 1.084
OFFSET = 5.381
# Risk is 10 f^2 so that it runs 0-100 over the meter range 20-600 mg/dL.
RISK_FACTOR = 10.0
# Where f(g) changes sign (f(112.5) = -2.9e-4, a risk of 8e-7: zero to the precision of
# the constants); the split is made on the glucose value itself, as iglu does, so a reading
# at or above it never adds to LBGI and one below never adds to HBGI.
RISK_NEUTRAL_MG_DL = 112.5


@dataclass(frozen=True)
class RiskIndices:
    lbgi: float
    hbgi: float


def risk_indices(values_mg_dl: FloatArray) -> RiskIndices:
    if values_mg_dl.size == 0:
        raise EmptySeriesError("LBGI and HBGI need at least one reading")
    f = SCALE * (np.log(values_mg_dl) ** EXPONENT - OFFSET)
    risk = RISK_FACTOR * f**2
    low = values_mg_dl < RISK_NEUTRAL_MG_DL
    n = values_mg_dl.size
    return RiskIndices(
        lbgi=float(np.sum(risk[low]) / n),
        hbgi=float(np.sum(risk[~low]) / n),
    )
