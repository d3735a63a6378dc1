"""SMART Backend Services against the spec (HL7 SMART App Launch 2.x, source
github.com/HL7/smart-app-launch: input/pages/backend-services.md,
client-confidential-asymmetric.md, conformance.md): discovery, client registration by the
clinic's admin, the token endpoint with RS384 / ES384 assertions, and what it refuses."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import jwt
import pytest

from api.fhir.keys import KeyProblem, verify_assertion
from tests.fhir.conftest import (
    FHIR,
    HospitalKey,
    World,
    register,
    request_token,
    token_url,
)

# The spec's worked example (client-confidential-asymmetric.md, "Worked example"): the
# assertion a "bilirubin result monitoring service" signs with its RS384 key, and that key's
# public half as published in input/images/RS384.public.json. Expired since 2015, so only its
# signature and claims can be checked, not its freshness.
SPEC_ASSERTION = (
    "eyJhbGciOiJSUzM4NCIsImtpZCI6ImVlZTlmMTdhM2I1OThmZDg2NDE3YTk4MGI1OTFmYmU2IiwidHlwIjoiSldUIn0"
    ".eyJpc3MiOiJodHRwczovL2JpbGktbW9uaXRvci5leGFtcGxlLmNvbSIsInN1YiI6Imh0dHBzOi8vYmlsaS1tb25pdG"
    "9yLmV4YW1wbGUuY29tIiwiYXVkIjoiaHR0cHM6Ly9hdXRob3JpemUuc21hcnRoZWFsdGhpdC5vcmcvdG9rZW4iLCJle"
    "HAiOjE0MjI1Njg4NjAsImp0aSI6InJhbmRvbS1ub24tcmV1c2FibGUtand0LWlkLTEyMyJ9.D5kAqNJwaftCqsRdVVQ"
    "Dq6dMBxuGFOF5svQJuXbcYp-oEyg5qOwK9ZE5cGLTHxqwfpUPNzRKgVdIGuhawAA-8g0s1nKQae8CuKs33hhKh4J34"
    "xSEwW3MYs1gwI4GHTtR_g3kYSX6QCi14Ed3GIAvYFgqRqt-gD7sewMUXL4SB8I8cXcDbCqVizm7uPVhjw6QaeKZygJ"
    "J_AVLhM4Xs9LTy4HAhdCHpN0FrNmCerUIYJvHDpcod7A0jDmxdoeW1KIBYlhdhQNwjtsTvT1ce4qacN_3KIv_fIzCK"
    "LIgDv9eWxkjAtxOmIm8aW5gX9xX7X0nbd0QglIyiic_bZVNNEh0kg"
)
SPEC_RS384_PUBLIC = {
    "kty": "RSA",
    "alg": "RS384",
    "n": "wJq2RHIA-7RT6q4go7wjcbHdW7ck7Kz22A8wf-kN7Wi5CWvhFG2_Y7nQp1lDpb2IKMQr-Q4n_vgJ6d5rWPspJpS"
    "PY7iffUK4ipQCEbzID5DJ6fQMBZOfCTXyxkuMh3jYGKEF3Ziw2oxbM1H9j-eJAPtrj5stUG6kVoXowegdox-bSjWP0iI"
    "5PnkwUNzcekLMug4M3LRluEQgGR9O_BAML6-w3igZ_rZA_gunyrLAMbfmCVaceW5ohLp679kyM7U6W2gDK_NbkDKcINU"
    "akVmPeoG5h8RzgGzvGrySR0k0VDFiZv60Ua07DqHTeDGH9e4NV07AECae-oykIj5NDCs3pw",
    "e": "AQAB",
    "key_ops": ["verify"],
    "ext": True,
    "kid": "eee9f17a3b598fd86417a980b591fbe6",
}


def test_the_spec_worked_example_signature_verifies_with_its_published_key() -> None:
    key = jwt.PyJWK(SPEC_RS384_PUBLIC, "RS384")
    claims = jwt.decode(
        SPEC_ASSERTION,
        key,
        algorithms=["RS384"],
        audience="https://authorize.smarthealthit.org/token",
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "https://bili-monitor.example.com"
    # Our verifier refuses it: its iss is not one of our client ids, and it expired in 2015.
    with pytest.raises(KeyProblem):
        verify_assertion(
            SPEC_ASSERTION,
            {"keys": [SPEC_RS384_PUBLIC]},
            uuid.uuid4(),
            "https://authorize.smarthealthit.org/token",
            datetime.now(UTC),
        )


def test_discovery_advertises_the_token_endpoint_methods_and_scopes(http: httpx.Client) -> None:
    for path in (f"{FHIR}/.well-known/smart-configuration", "/.well-known/smart-configuration"):
        response = http.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        config = response.json()
        # conformance.md: absolute URLs; client-confidential-asymmetric.md: the method and algs
        assert config["token_endpoint"] == token_url(http)
        assert config["grant_types_supported"] == ["client_credentials"]
        assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert {"RS384", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
        assert "system/Observation.rs" in config["scopes_supported"]
        assert "client-confidential-asymmetric" in config["capabilities"]
        assert "S256" in config["code_challenge_methods_supported"]


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_registered_client_gets_a_five_minute_token_for_the_scopes_it_may_have(
    http: httpx.Client, world: World, alg: str
) -> None:
    key = HospitalKey.generate(alg)  # type: ignore[arg-type]
    client = register(http, world.admin, world.clinic, key, scopes=["system/Observation.rs"])
    response = request_token(http, key, client, "system/Observation.rs system/Patient.rs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] <= 300  # backend-services.md: SHOULD NOT exceed 300
    # Patient.rs was not pre-authorised: the token carries only what the clinic allowed.
    assert body["scope"] == "system/Observation.rs"
    assert response.headers["cache-control"] == "no-store"


def test_wildcard_and_v1_scopes_narrow_to_what_is_registered(
    http: httpx.Client, world: World
) -> None:
    key = HospitalKey.generate()
    client = register(http, world.admin, world.clinic, key, scopes=["system/Observation.rs"])
    body = request_token(http, key, client, "system/*.read").json()
    assert body["scope"] == "system/Observation.rs"
    refused = request_token(http, key, client, "system/Device.rs")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    return str(body["error_description"])


def test_the_token_endpoint_refuses_what_the_spec_says_it_must(
    http: httpx.Client, world: World
) -> None:
    key = HospitalKey.generate()
    client = register(http, world.admin, world.clinic, key)
    scope = "system/Observation.rs"
    # Another key with the same kid: the signature does not verify.
    impostor = HospitalKey("ES384", HospitalKey.generate().private, key.kid)
    assert "verify" in _refused(request_token(http, impostor, client, scope))
    # aud must be this token endpoint.
    wrong_aud = http.post(
        f"{FHIR}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": key.assertion(client, "https://elsewhere.example/token"),
            "scope": scope,
        },
    )
    _refused(wrong_aud)
    # exp more than five minutes ahead.
    assert "five minutes" in _refused(
        request_token(http, key, client, scope, lifetime=timedelta(minutes=30))
    )
    # Expired.
    _refused(request_token(http, key, client, scope, lifetime=timedelta(minutes=-5)))
    # Replayed: the same jti buys one token only.
    jti = uuid.uuid4().hex
    assert request_token(http, key, client, scope, jti=jti).status_code == 200
    assert "jti" in _refused(request_token(http, key, client, scope, jti=jti))
    # A jku other than the registered JWK Set URL (none here).
    _refused(request_token(http, key, client, scope, headers={"jku": "https://evil.example/k"}))
    # sub must equal iss.
    _refused(request_token(http, key, client, scope, sub="someone-else"))
    # An unknown client id.
    _refused(request_token(http, key, uuid.uuid4(), scope))
    # Not client_credentials.
    wrong_grant = http.post(f"{FHIR}/auth/token", data={"grant_type": "password"})
    assert wrong_grant.status_code in (400, 422)


def test_a_symmetric_or_unsigned_assertion_is_refused(http: httpx.Client, world: World) -> None:
    key = HospitalKey.generate()
    client = register(http, world.admin, world.clinic, key)
    claims = {"iss": str(client), "sub": str(client), "aud": token_url(http), "jti": "x"}
    for assertion in (
        jwt.encode({**claims, "exp": 4102444800}, "shared-secret-" * 4, algorithm="HS384"),
        jwt.encode({**claims, "exp": 4102444800}, None, algorithm="none"),
    ):
        response = http.post(
            f"{FHIR}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
                "scope": "system/Observation.rs",
            },
        )
        assert "RS384 or ES384" in _refused(response)


class _JwksServer(BaseHTTPRequestHandler):
    jwks: ClassVar[dict[str, Any]] = {}
    requests: ClassVar[list[str]] = []  # the Accept header of each fetch

    def do_GET(self) -> None:
        type(self).requests.append(self.headers.get("Accept", ""))
        body = json.dumps(type(self).jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, type[_JwksServer]]]:
    """The hospital's own JWK Set URL: a tiny real HTTP server on the loopback."""
    handler = type("Handler", (_JwksServer,), {"jwks": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_client_with_a_jwks_url_rotates_keys_without_registering_again(
    http: httpx.Client, world: World, jwks_server: tuple[str, type[_JwksServer]]
) -> None:
    url, handler = jwks_server
    old, new = HospitalKey.generate("RS384"), HospitalKey.generate("ES384")
    handler.jwks = old.jwks()
    client = register(http, world.admin, world.clinic, jwks_url=url)
    assert request_token(http, old, client, "system/Observation.rs").status_code == 200
    handler.jwks = new.jwks()  # the hospital rotates its key at its own URL
    assert request_token(http, new, client, "system/Observation.rs").status_code == 200
    _refused(request_token(http, old, client, "system/Observation.rs"))
    # jku, when sent, must be the registered URL.
    assert (
        request_token(http, new, client, "system/Observation.rs", headers={"jku": url}).status_code
        == 200
    )
    assert handler.requests and all(a == "application/json" for a in handler.requests)


def test_only_the_clinic_admin_registers_lists_and_revokes_its_clients(
    http: httpx.Client, world: World
) -> None:
    key = HospitalKey.generate()
    path = f"/api/v1/organisations/{world.clinic}/fhir-clients"
    body = {"name": "North Hospital EHR", "scopes": ["system/Observation.rs"], "jwks": key.jwks()}
    for outsider in (world.other_admin, world.patient):
        assert http.post(path, json=body, headers=outsider.auth).status_code == 403
    assert http.post(path, json=body).status_code == 401
    client = register(http, world.admin, world.clinic, key, scopes=["system/Observation.rs"])
    listed = http.get(path, headers=world.admin.auth).json()["items"]
    assert [c["client_id"] for c in listed] == [str(client)]
    assert http.get(path, headers=world.other_admin.auth).status_code == 403
    token = request_token(http, key, client, "system/Observation.rs").json()["access_token"]
    query = f"{FHIR}/Observation?patient=Patient/{world.patient_id}"
    assert http.get(query, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert http.delete(f"{path}/{client}", headers=world.other_admin.auth).status_code == 403
    assert http.delete(f"{path}/{client}", headers=world.admin.auth).status_code == 204
    # Revoked: the token already issued stops working, and no new one is issued.
    after = http.get(query, headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401
    assert after.json()["resourceType"] == "OperationOutcome"
    _refused(request_token(http, key, client, "system/Observation.rs"))


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": []},
        {"keys": [{"kty": "oct", "kid": "a", "k": "c2VjcmV0"}]},
        {"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]},  # no kid
    ],
)
def test_registration_refuses_keys_it_cannot_use(
    http: httpx.Client, world: World, jwks: dict[str, Any]
) -> None:
    response = http.post(
        f"/api/v1/organisations/{world.clinic}/fhir-clients",
        json={"name": "x", "scopes": ["system/Observation.rs"], "jwks": jwks},
        headers=world.admin.auth,
    )
    assert response.status_code == 422, response.text


def test_registration_refuses_a_private_key_and_unknown_scopes(
    http: httpx.Client, world: World
) -> None:
    key = HospitalKey.generate()
    algorithm = jwt.get_algorithm_by_name("ES384")
    private = {**algorithm.to_jwk(key.private, as_dict=True), "kid": "k"}
    path = f"/api/v1/organisations/{world.clinic}/fhir-clients"
    leaked = http.post(
        path,
        json={"name": "x", "scopes": ["system/Observation.rs"], "jwks": {"keys": [private]}},
        headers=world.admin.auth,
    )
    assert leaked.status_code == 422 and "private" in leaked.text
    for scope in ("patient/Observation.rs", "system/Medication.rs", "system/Patient.c"):
        response = http.post(
            path,
            json={"name": "x", "scopes": [scope], "jwks": key.jwks()},
            headers=world.admin.auth,
        )
        assert response.status_code == 422, (scope, response.text)
