"""API-key roles and the roles each route needs.

A key has one role: ``admin`` may do everything, ``reviewer`` may read and
decide approvals, ``sidecar`` may read the snapshot, post events and wait
for and consume approvals. Every ``/api/v1`` route declares the roles it
admits with :func:`roles`; :func:`check_declared` refuses to build an app
with a route that declares none, so a new route cannot be open by mistake."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from ._errors import ForbiddenError

__all__ = ["ROLE_NAMES", "Caller", "Role", "caller_of", "check_declared", "roles"]


class Role(enum.StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    SIDECAR = "sidecar"


ROLE_NAMES: tuple[str, ...] = tuple(r.value for r in Role)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the name of its API key (a reviewer's identity)
    and the key's role."""

    name: str
    role: Role


def caller_of(request: Request) -> Caller:
    """The authenticated caller of an ``/api/v1`` request (set by the guard)."""
    caller = request.scope.get("state", {}).get("caller")
    if not isinstance(caller, Caller):  # only a route outside /api/v1 gets here
        raise ForbiddenError("this route needs an API key", code="missing_role")
    return caller


class _RoleCheck:
    """A route dependency admitting callers whose key has one of ``admitted``
    (admin is always admitted)."""

    def __init__(self, admitted: Iterable[Role]) -> None:
        self.admitted = frozenset({Role.ADMIN, *admitted})

    def __call__(self, request: Request) -> Caller:
        caller = caller_of(request)
        if caller.role not in self.admitted:
            wanted = " or ".join(sorted(r.value for r in self.admitted))
            raise ForbiddenError(
                f"{request.method} {request.url.path} needs an API key with role {wanted}; "
                f"key {caller.name!r} has role {caller.role.value}",
                code="role_not_allowed",
            )
        return caller


def roles(*admitted: Role) -> Any:
    """The dependency a route lists to admit keys with these roles (and admin):
    ``@router.get(..., dependencies=[roles(Role.REVIEWER)])``."""
    return Depends(_RoleCheck(admitted))


def _declared(route: APIRoute) -> bool:
    return any(isinstance(d.call, _RoleCheck) for d in route.dependant.dependencies)


def check_declared(routes: Iterable[Any], prefix: str) -> None:
    """Raises TypeError naming every route under ``prefix`` that declares no roles."""
    missing = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in routes
        if isinstance(route, APIRoute) and route.path.startswith(prefix) and not _declared(route)
    ]
    if missing:
        raise TypeError(f"routes without roles(...): {', '.join(missing)}")
