"""Errors of the FHIR endpoint: an `OperationOutcome` on the FHIR routes (FHIR R4 http.html:
"servers SHOULD return an OperationOutcome"), the OAuth2 error object on the token endpoint
(RFC 6749 section 5.2, as SMART Backend Services requires)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.problems import ProblemError

FHIR_JSON = "application/fhir+json"

# OperationOutcome.issue.code (FHIR R4 value set issue-type), the ones this endpoint uses.
IssueType = Literal[
    "login",
    "forbidden",
    "not-found",
    "invalid",
    "not-supported",
    "processing",
    "too-costly",
    "informational",
]
_ISSUE_FOR_STATUS: dict[int, IssueType] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    422: "processing",
}


def outcome(
    diagnostics: str, code: IssueType = "invalid", severity: str = "error"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


class FhirError(Exception):
    """Root of the FHIR package's errors; each knows the HTTP status it answers with."""

    def __init__(self, status: int, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics


class OutcomeError(FhirError):
    """Answered with an OperationOutcome."""

    def __init__(self, status: int, diagnostics: str, code: IssueType | None = None) -> None:
        super().__init__(status, diagnostics)
        self.code: IssueType = code or _ISSUE_FOR_STATUS.get(status, "processing")


def unauthenticated(diagnostics: str = "a valid bearer token is required") -> OutcomeError:
    return OutcomeError(401, diagnostics, "login")


def forbidden(diagnostics: str) -> OutcomeError:
    return OutcomeError(403, diagnostics, "forbidden")


def invalid(diagnostics: str) -> OutcomeError:
    return OutcomeError(400, diagnostics, "invalid")


class OAuthError(FhirError):
    """Answered at the token endpoint as `{"error": ..., "error_description": ...}`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(status, description)
        self.error = error


def respond(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(OutcomeError)
    async def _outcome(request: Request, exc: OutcomeError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return respond(exc.status, outcome(exc.diagnostics, exc.code), headers)

    @app.exception_handler(OAuthError)
    async def _oauth(request: Request, exc: OAuthError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.diagnostics},
            status_code=exc.status,
            headers={"Cache-Control": "no-store"},
        )

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        # A helper shared with the JSON API (e.g. the patient's zones) raised its own kind.
        problem = exc.problem
        code = _ISSUE_FOR_STATUS.get(problem.status, "processing")
        return respond(problem.status, outcome(problem.detail or problem.title, code))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        return respond(400, outcome(detail, "invalid"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _ISSUE_FOR_STATUS.get(exc.status_code, "processing")
        return respond(exc.status_code, outcome(str(exc.detail), code))
