"""Reconnection delays, one pure function used by every retry loop."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int, *, base_s: float = 0.1, cap_s: float = 10.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter: a delay in [0, min(cap, base * 2**attempt)].

    Jitter keeps many workers or bridges that lost the same peer from returning in lockstep.
    """
    ceiling = min(cap_s, base_s * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0, ceiling)
