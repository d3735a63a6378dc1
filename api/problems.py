"""Errors as RFC 9457 problem details, with a stable `type` per kind of problem."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "https://glucobridge.org/problems/"
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ProblemError(Exception):
    """Raised by a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.problem = Problem(type=PROBLEM_BASE + kind, title=title, status=status, detail=detail)
        self.headers = headers or {}


def not_found(what: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not found", f"no such {what}")


def unauthenticated(detail: str = "a valid bearer token is required") -> ProblemError:
    """401: no token, or one that is forged, expired or of a disabled account."""
    return ProblemError(
        401, "unauthenticated", "Not authenticated", detail, {"WWW-Authenticate": "Bearer"}
    )


def forbidden(detail: str) -> ProblemError:
    """403: the caller is known, the action is not one their role may take (never used
    for patient data: there, a denial is the same 404 as a patient that does not exist)."""
    return ProblemError(403, "forbidden", "Forbidden", detail)


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, "conflict", "Conflict", detail)


def invalid(detail: str) -> ProblemError:
    return ProblemError(422, "invalid-request", "Invalid request", detail)


def require_zoned(*bounds: datetime | None) -> None:
    """Period bounds are instants: a time without a zone would be read in the server's."""
    if any(b is not None and b.tzinfo is None for b in bounds):
        raise invalid("start and end must carry a time zone, e.g. 2026-11-01T00:00Z")


# Documented on every route that takes a token, so the OpenAPI document lists them.
AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No token, or a forged or expired one"},
}
PATIENT_RESPONSES: dict[int | str, dict[str, object]] = {
    **AUTH_RESPONSES,
    404: {
        "model": Problem,
        "description": "No such patient, or none the caller may see (the two look the same)",
    },
}


def _respond(
    problem: Problem, request: Request, headers: dict[str, str] | None = None
) -> JSONResponse:
    problem = problem.model_copy(update={"instance": request.url.path})
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return _respond(exc.problem, request, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        problem = Problem(
            type=PROBLEM_BASE + "invalid-request",
            title="Invalid request",
            status=422,
            detail=detail,
        )
        return _respond(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not-found" if exc.status_code == 404 else f"http-{exc.status_code}"
        problem = Problem(type=PROBLEM_BASE + kind, title=str(exc.detail), status=exc.status_code)
        return _respond(problem, request, dict(exc.headers) if exc.headers else None)
