"""The bridge suite runs against every simulator profile: each field quirk and each RACP
operator set (firmware_sim.profiles: full, Nordic-like as nRF5 `ble_gls.c`, minimal)."""

from __future__ import annotations

import pytest

from firmware_sim.profiles import PROFILES, MeterProfile


@pytest.fixture(params=list(PROFILES.values()), ids=list(PROFILES))
def profile(request: pytest.FixtureRequest) -> MeterProfile:
    found: MeterProfile = request.param
    return found
