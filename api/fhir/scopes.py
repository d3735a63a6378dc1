"""SMART scopes for backend services (SMART App Launch 2.x, scopes-and-launch-context):
`system/<Resource>.<cruds>` and `system/*.<cruds>`, with the v1 spellings `.read`, `.write`
and `.*` read as v2 (`.rs`, `.cud`, `.cruds`). Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# Resource types this endpoint serves, and what a client may be given on each: reading and
# searching, and creating Observations (through $submit-cgm-bundle).
SUPPORTED: Final = {
    "Patient": "rs",
    "Observation": "crs",
    "Device": "rs",
    "DiagnosticReport": "rs",
}
PERMISSION_ORDER: Final = "cruds"
WILDCARD: Final = "*"
_SCOPE = re.compile(r"^system/(?P<resource>[A-Za-z]+|\*)\.(?P<perms>[cruds]+|read|write|\*)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
# What /.well-known/smart-configuration advertises.
SCOPES_SUPPORTED: Final = (
    "system/Patient.rs",
    "system/Observation.rs",
    "system/Observation.crs",
    "system/Device.rs",
    "system/DiagnosticReport.rs",
    "system/*.rs",
)


class ScopeError(ValueError):
    """A scope this server does not understand or does not offer."""


@dataclass(frozen=True)
class Scopes:
    """A set of (resource type or '*', permission letter)."""

    pairs: frozenset[tuple[str, str]]

    @classmethod
    def parse(cls, text: str | Iterable[str], *, strict: bool = True) -> Scopes:
        """Scopes from a space-separated string or a list. With `strict`, an unknown scope is
        an error; otherwise it is left out (a client may ask for more than it needs)."""
        items = text.split() if isinstance(text, str) else list(text)
        pairs: set[tuple[str, str]] = set()
        for item in items:
            match = _SCOPE.match(item)
            if match is None:
                if strict:
                    raise ScopeError(f"{item!r} is not a system/<Resource>.<cruds> scope")
                continue
            resource, perms = match["resource"], _V1.get(match["perms"], match["perms"])
            if resource != WILDCARD and resource not in SUPPORTED:
                if strict:
                    raise ScopeError(f"{item!r}: this server has no {resource} resources")
                continue
            pairs.update((resource, p) for p in perms)
        return cls(frozenset(pairs))

    def allows(self, resource: str, permission: str) -> bool:
        return (resource, permission) in self.pairs or (WILDCARD, permission) in self.pairs

    def within(self, granted: Scopes) -> Scopes:
        """What of these scopes `granted` covers, with wildcards resolved per resource."""
        kept: set[tuple[str, str]] = set()
        for resource, perm in self.pairs:
            targets = SUPPORTED if resource == WILDCARD else [resource]
            for target in targets:
                if perm in SUPPORTED.get(target, "") and granted.allows(target, perm):
                    kept.add((target, perm))
        return Scopes(frozenset(kept))

    def offered(self) -> Scopes:
        """The pairs this server can actually give (drops e.g. Patient.c)."""
        return Scopes(frozenset((r, p) for r, p in self.pairs if p in SUPPORTED.get(r, "")))

    def __str__(self) -> str:
        by_resource: dict[str, set[str]] = {}
        for resource, perm in self.pairs:
            by_resource.setdefault(resource, set()).add(perm)
        return " ".join(
            f"system/{resource}.{''.join(p for p in PERMISSION_ORDER if p in perms)}"
            for resource, perms in sorted(by_resource.items())
        )

    def __bool__(self) -> bool:
        return bool(self.pairs)
