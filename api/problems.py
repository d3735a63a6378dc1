"""Errors as RFC 9457 problem details, with a stable `type` per kind of problem."""

from __future__ import annotations

from datetime import UTC, datetime

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


def broker_failed(exc: Exception) -> ProblemError:
    """502: the broker refused a provisioning command or did not answer."""
    return ProblemError(502, "broker-unavailable", "Broker unavailable", str(exc))


def invalid(detail: str) -> ProblemError:
    return ProblemError(422, "invalid-request", "Invalid request", detail)


# Period bounds a query may name: wide of any reading (none predates 2005) and of any
# arithmetic on them (a previous period of equal length, a day of margin), which near
# year 1 or 9999 would overflow.
EARLIEST_BOUND = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_BOUND = datetime(2200, 1, 1, tzinfo=UTC)


def require_zoned(*bounds: datetime | None) -> None:
    """Period bounds are instants: a time without a zone would be read in the server's; and
    they lie in the range this API answers for."""
    if any(b is not None and b.tzinfo is None for b in bounds):
        raise invalid("start and end must carry a time zone, e.g. 2026-11-01T00:00Z")
    if any(b is not None and not EARLIEST_BOUND <= b < LATEST_BOUND for b in bounds):
        raise out_of_range()


def out_of_range() -> ProblemError:
    return ProblemError(
        422,
        "out-of-range",
        "Out of range",
        f"dates must lie between {EARLIEST_BOUND.date()} and {LATEST_BOUND.date()}",
    )


# Documented on every route that takes a token, so the OpenAPI document lists them.
AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No token, or a forged or expired one"},
}
BROKER_RESPONSES: dict[int | str, dict[str, object]] = {
    502: {"model": Problem, "description": "The broker refused or did not answer"},
    503: {"model": Problem, "description": "No broker admin configured"},
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

    # Date arithmetic on a date the client chose (a day before 0001-01-01, after 9999-12-31)
    # is the client's input out of range, never a server fault.
    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return _respond(out_of_range().problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not-found" if exc.status_code == 404 else f"http-{exc.status_code}"
        problem = Problem(type=PROBLEM_BASE + kind, title=str(exc.detail), status=exc.status_code)
        return _respond(problem, request, dict(exc.headers) if exc.headers else None)
