"""``/api/v1/policies``: the reference page's policy payloads, stored as sent."""

from __future__ import annotations

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from ._control import ControlPlane
from ._schemas import PolicyCreate, PolicyList, PolicyOut, PolicyPatch

__all__ = ["policy_routes"]


def policy_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["policies"])

    @router.post("/policies", status_code=201, response_model=PolicyOut)
    async def create_policy(body: PolicyCreate) -> JSONResponse:
        """Creates a policy. The candidate snapshot is compiled first: a bad
        rule, an unknown agent or a prerequisite cycle is a 422 naming the
        field, and nothing is stored."""
        policy = await control.create_policy(body.model_dump(exclude_unset=True))
        headers = {"Location": f"/api/v1/policies/{policy['id']}"}
        return JSONResponse(policy, status_code=201, headers=headers)

    @router.get("/policies", response_model=PolicyList)
    async def list_policies() -> JSONResponse:
        """Every policy, in creation order (the order the snapshot evaluates them)."""
        return JSONResponse({"policies": [dict(p) for p in control.state.policies]})

    @router.get("/policies/{policy_id}", response_model=PolicyOut)
    async def get_policy(policy_id: str) -> JSONResponse:
        """One policy, by id or name."""
        return JSONResponse(control.get_policy(policy_id))

    @router.patch("/policies/{policy_id}", response_model=PolicyOut)
    async def update_policy(policy_id: str, body: PolicyPatch = Body()) -> JSONResponse:  # noqa: B008
        """Replaces the fields given and validates the result like a create."""
        return JSONResponse(
            await control.update_policy(policy_id, body.model_dump(exclude_unset=True))
        )

    @router.delete("/policies/{policy_id}", response_model=PolicyOut)
    async def delete_policy(policy_id: str) -> JSONResponse:
        """Deletes a policy and answers with it; 409 while another policy
        lists it as a prerequisite."""
        return JSONResponse(await control.delete_policy(policy_id))

    return router
