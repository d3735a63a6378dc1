"""Fuzz every operation of the OpenAPI document (schemathesis) against the served API, once
signed in as a patient (every operation, aimed at that patient, so the generated input
reaches the routes' own code rather than stopping at the access gate) and once as an admin
(the operations that are not a patient's: accounts, clinics, the research export): no 5xx,
no response outside its schema.

One API server and one cast of users serve the whole module (the fuzzing only needs them to
exist; what it changes along the way does not matter to its checks), so the run stays well
under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from api.app import create_app
from core.settings import ApiSettings
from stack.local import Services
from tests.api.conftest import Cast, make_cast
from tests.conftest import empty_database
from tests.support import serve_api

# A handful of inputs per operation and caller keeps the whole run under a minute while
# still reaching every route with bodies and parameters it did not expect.
EXAMPLES_PER_OPERATION = 3

# The alerts event stream never ends and is not JSON: fuzzing it would only wait out the
# request timeout. Its access control is in the authorization matrix like every route.
schema = schemathesis.openapi.from_dict(create_app(ApiSettings()).openapi()).exclude(
    path_regex=r"/stream$"
)
# The admin's own routes (accounts, clinics, the research export, the directory): on a
# patient's routes an admin only ever meets the access gate, which the patient's pass and the
# authorization matrix cover; sign-in and sign-up take no token.
admin_schema = schema.exclude(path_regex=r"\{patient_id\}|/auth/")


@pytest.fixture(scope="module")
def site(services: Services, jwt_secret: str) -> Iterator[tuple[str, Cast]]:
    empty_database(services.database_url)
    cast = make_cast(services.database_url, jwt_secret)
    settings = ApiSettings(
        database_url=services.database_url,
        jwt_secret=jwt_secret,
        mqtt_admin_url=services.mqtt_admin_url,
    )
    with serve_api(settings) as base_url:
        yield base_url, cast


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,  # each example is a real request to a real database
    # The site is per module, not per example; that is intended here.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same inputs on every run: a failure reproduces
)


def _check(case: schemathesis.Case, site: tuple[str, Cast], caller: str) -> None:
    base_url, cast = site
    if "patient_id" in (case.path_parameters or {}):
        case.path_parameters["patient_id"] = str(cast.patient.patient_id)
    response = case.call(base_url=base_url, headers=cast[caller].auth, timeout=30)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])


@schema.parametrize()
@FUZZ_SETTINGS
def test_as_the_patient_no_operation_fails_or_breaks_its_schema(
    case: schemathesis.Case, site: tuple[str, Cast]
) -> None:
    _check(case, site, "patient")


@admin_schema.parametrize()
@FUZZ_SETTINGS
def test_as_an_admin_no_operation_fails_or_breaks_its_schema(
    case: schemathesis.Case, site: tuple[str, Cast]
) -> None:
    _check(case, site, "admin")
