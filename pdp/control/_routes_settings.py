"""``/api/v1/settings``: what the snapshot tells every sidecar beyond its
objects (``unknownAgents``)."""

from __future__ import annotations

from fastapi import APIRouter

from ._control import ControlPlane
from ._objects import Settings
from ._roles import Role, roles
from ._schemas import SettingsPatch

__all__ = ["settings_routes"]


def settings_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["settings"])

    @router.get("/settings", response_model=Settings, dependencies=[roles(Role.REVIEWER)])
    async def get_settings() -> Settings:
        """The published settings, defaults included."""
        return control.state.settings

    @router.patch("/settings", response_model=Settings, dependencies=[roles()])
    async def update_settings(body: SettingsPatch) -> Settings:
        """Changes the settings given; a change is published like any other
        write (a new snapshot revision)."""
        return await control.update_settings(body)

    return router
