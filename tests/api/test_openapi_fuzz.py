"""Fuzz every operation of the OpenAPI document (schemathesis) against the served API, signed
in as a patient and aimed at that patient, so the generated input reaches the routes' own
code rather than stopping at the access gate: no 5xx, no response outside its schema."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from api.app import create_app
from core.settings import ApiSettings
from tests.api.conftest import Cast

# A handful of inputs per operation keeps the whole run well under a minute while still
# reaching every route with bodies and parameters it did not expect.
EXAMPLES_PER_OPERATION = 6

# The alerts event stream never ends and is not JSON: fuzzing it would only wait out the
# request timeout. Its access control is in the authorization matrix like every route.
schema = schemathesis.openapi.from_dict(create_app(ApiSettings()).openapi()).exclude(
    path_regex=r"/stream$"
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,  # each example is a real request to a real database
    # Fixtures are per test (a fresh database), not per example; that is intended here.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same inputs on every run: a failure reproduces
)
def test_no_operation_fails_or_breaks_its_schema(
    case: schemathesis.Case, client: httpx.Client, cast: Cast
) -> None:
    if "patient_id" in (case.path_parameters or {}):
        case.path_parameters["patient_id"] = str(cast.patient.patient_id)
    response = case.call(base_url=str(client.base_url), headers=cast.patient.auth, timeout=30)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
