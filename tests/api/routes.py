"""The application's routes as registered, for tests that must cover every one of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from api.access import Policy, policy_of

PATIENT_PARAM = "{patient_id}"


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    name: str
    policies: tuple[Policy, ...]  # every require_patient gate on the route

    @property
    def patient_scoped(self) -> bool:
        return PATIENT_PARAM in self.path


def _policies(dependant: Dependant) -> Iterator[Policy]:
    for sub in dependant.dependencies:
        found = policy_of(sub.call)
        if found is not None:
            yield found
        yield from _policies(sub)


def _flatten(routes: list[object]) -> Iterator[object]:
    for route in routes:
        nested = getattr(route, "effective_route_contexts", None)
        if nested is not None:  # FastAPI's included router
            yield from nested()
        else:
            yield route


def api_routes(app: FastAPI) -> list[RouteInfo]:
    found = []
    for route in _flatten(list(app.routes)):
        dependant = getattr(route, "dependant", None)
        methods = getattr(route, "methods", None)
        if dependant is None or not methods:
            continue  # the OpenAPI document and docs pages
        for method in sorted(methods - {"HEAD"}):
            found.append(
                RouteInfo(
                    method,
                    str(getattr(route, "path", "")),
                    str(getattr(route, "name", "")),
                    tuple(_policies(dependant)),
                )
            )
    return found
