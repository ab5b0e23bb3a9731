"""``/api/v1/keys``: API keys, for admins. A key's secret is in the answer
that creates it and nowhere else (only its SHA-256 is stored)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from pdp.engine import format_time, parse_rfc3339, utc_now

from ._auth import create_api_key, revoke_api_keys
from ._control import ControlPlane
from ._errors import FieldProblem, NotFoundError, ValidationFailedError
from ._roles import Role, roles

__all__ = ["key_routes"]

_ADMIN = [roles()]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200, description="who or what the key is for")
    role: Literal["admin", "reviewer", "sidecar"] = "admin"
    expiresAt: str | None = Field(default=None, description="RFC 3339; default never")


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    createdAt: str
    expiresAt: str | None
    revokedAt: str | None


class KeyCreated(KeyOut):
    secret: str = Field(description="the key, shown only in this answer")


class KeyList(BaseModel):
    keys: list[KeyOut]


_SELECT = "SELECT id, name, role, created_at, expires_at, revoked_at FROM api_keys"


def _out(row: tuple[object, ...]) -> KeyOut:
    key_id, name, role, created, expires, revoked = row
    return KeyOut(
        id=str(key_id),
        name=str(name),
        role=str(role),
        createdAt=str(created),
        expiresAt=None if expires is None else str(expires),
        revokedAt=None if revoked is None else str(revoked),
    )


def key_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["keys"])

    @router.get("/keys", response_model=KeyList, dependencies=_ADMIN)
    async def list_keys() -> KeyList:
        """Every key, oldest first, revoked ones included (never a secret)."""
        rows = await control.store.fetchall(f"{_SELECT} ORDER BY created_at, id")
        return KeyList(keys=[_out(row) for row in rows])

    @router.post("/keys", status_code=201, response_model=KeyCreated, dependencies=_ADMIN)
    async def create_key(body: KeyIn, response: Response) -> KeyCreated:
        expires = None
        if body.expiresAt is not None:
            expires = parse_rfc3339(body.expiresAt)
            if expires is None:
                raise ValidationFailedError(
                    [FieldProblem("expiresAt", "must be an RFC 3339 time with a zone")]
                )
            if expires <= utc_now():
                raise ValidationFailedError(
                    [FieldProblem("expiresAt", f"{format_time(expires)} has already passed")]
                )
        if not body.name.strip():
            raise ValidationFailedError([FieldProblem("name", "must not be empty")])
        key = await create_api_key(control.store, body.name, expires, role=Role(body.role))
        response.headers["Location"] = f"/api/v1/keys/{key.id}"
        return KeyCreated(
            id=key.id,
            name=key.name,
            role=key.role.value,
            createdAt=key.created_at,
            expiresAt=key.expires_at,
            revokedAt=None,
            secret=key.secret,
        )

    @router.delete("/keys/{key_id}", response_model=KeyOut, dependencies=_ADMIN)
    async def revoke_key(key_id: str) -> KeyOut:
        """Revokes the key; it is refused from the next request on."""
        rows = await control.store.fetchall(f"{_SELECT} WHERE id = ?", (key_id,))
        if not rows:
            raise NotFoundError(f"no API key with id {key_id!r}")
        await revoke_api_keys(control.store, key_id=key_id)
        rows = await control.store.fetchall(f"{_SELECT} WHERE id = ?", (key_id,))
        return _out(rows[0])

    return router
