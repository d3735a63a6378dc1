"""The FHIR R4 endpoint for hospital systems, conforming to the HL7 CGM Implementation Guide
(`hl7.fhir.uv.cgm` 1.0.0) as a CGM Data Receiver, behind SMART Backend Services.

It is its own application mounted at `/fhir/r4` (FHIR has its own error resource, media
type and authentication), sharing the API's lifespan state (the pool, the settings):

- `token`: `/.well-known/smart-configuration` and the token endpoint;
- `resources`: `/metadata`, Patient, Observation, Device, DiagnosticReport;
- `submit`: `$submit-cgm-bundle`;
- `clients` (on the main API): clinic admins register and revoke hospital clients.

`consent` holds the one rule for what a client may see, and writes the audit rows.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.fhir import clients, errors, resources, submit, token

BASE_PATH = token.BASE_PATH


def install(app: FastAPI) -> None:
    """Mount the FHIR app on `app`, add SMART discovery at the root, and the client routes."""
    fhir = FastAPI(
        title="glucobridge FHIR R4",
        version="1",
        summary="HL7 CGM IG data receiver; SMART Backend Services (see /metadata)",
    )
    fhir.state = app.state  # the pool and settings the API's lifespan opens
    errors.install(fhir)
    for module in (token, resources, submit):
        fhir.include_router(module.router)
    app.mount(BASE_PATH, fhir)
    app.include_router(clients.router)

    async def smart_configuration(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/") + BASE_PATH
        return JSONResponse(token.smart_configuration(base))

    # Also at the server's root, where some clients look first. A plain route: public, and
    # outside the API's OpenAPI document like the FHIR app itself.
    app.add_route(
        "/.well-known/smart-configuration",
        smart_configuration,
        methods=["GET"],
        include_in_schema=False,
    )
