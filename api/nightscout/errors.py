"""Errors as Nightscout clients read them, as RFC 9457 problems.

Nightscout answers failures with `{"status", "message", "description"}`
(lib/middleware/send-json-status.js); a refused credential is
`{"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}`
(lib/authorization/index.js `isPermitted`). These bodies carry those members beside the
problem-document members every glucobridge error has, served as application/problem+json:
Nightscout clients read the status code and those three fields, everyone else the problem.
"""

from __future__ import annotations

from typing import Any

from api.problems import PROBLEM_BASE, Problem, ProblemError

UNAUTHORIZED_MESSAGE = "Unauthorized"
UNAUTHORIZED_DESCRIPTION = "Invalid/Missing"


class NightscoutProblem(Problem):
    """A problem document with Nightscout's members."""

    message: str
    description: str


class NightscoutError(ProblemError):
    """The root of this package's errors; the app's problem handler answers it (the
    document keeps its Nightscout members through `Problem.model_copy`)."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        description: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, kind, message, description, headers)
        self.problem = NightscoutProblem(
            type=PROBLEM_BASE + kind,
            title=message,
            status=status,
            detail=description,
            message=message,
            description=description,
        )


def unauthorized() -> NightscoutError:
    """The same answer for a missing, wrong, revoked or foreign credential and for a site
    that does not exist: a refusal tells nothing about what exists."""
    return NightscoutError(
        401, "nightscout-unauthorized", UNAUTHORIZED_MESSAGE, UNAUTHORIZED_DESCRIPTION
    )


def bad_request(description: str) -> NightscoutError:
    return NightscoutError(400, "nightscout-bad-request", "Bad request", description)


def too_many(retry_after_s: int) -> NightscoutError:
    return NightscoutError(
        429,
        "too-many-attempts",
        "Too many failed attempts",
        "too many refused credentials from this address; try again later",
        {"Retry-After": str(retry_after_s)},
    )


def too_large(description: str) -> NightscoutError:
    return NightscoutError(413, "too-large", "Payload too large", description)


# Documented on every Nightscout route, so the OpenAPI document lists the shapes.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": NightscoutProblem, "description": "A query or document this server refuses"},
    401: {"model": NightscoutProblem, "description": "Missing, wrong or revoked credential"},
    429: {"model": NightscoutProblem, "description": "Too many refused credentials; Retry-After"},
}
