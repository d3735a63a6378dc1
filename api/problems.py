"""Errors as RFC 9457 problem details, with a stable `type` per kind of problem."""

from __future__ import annotations

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

    def __init__(self, status: int, kind: str, title: str, detail: str | None = None) -> None:
        super().__init__(detail or title)
        self.problem = Problem(type=PROBLEM_BASE + kind, title=title, status=status, detail=detail)


def not_found(what: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not found", f"no such {what}")


def _respond(problem: Problem, request: Request) -> JSONResponse:
    problem = problem.model_copy(update={"instance": request.url.path})
    return JSONResponse(
        problem.model_dump(exclude_none=True), status_code=problem.status, media_type=MEDIA_TYPE
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return _respond(exc.problem, request)

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
        return _respond(problem, request)
