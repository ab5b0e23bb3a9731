"""``/api/v1/policies``: the reference page's policy payloads, stored as sent."""

from __future__ import annotations

from fastapi import APIRouter, Body, Response

from ._control import ControlPlane
from ._objects import Policy
from ._schemas import PolicyCreate, PolicyList, PolicyPatch

__all__ = ["policy_routes"]


def policy_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["policies"])

    @router.post("/policies", status_code=201, response_model=Policy)
    async def create_policy(body: PolicyCreate, response: Response) -> Policy:
        """Creates a policy. The candidate snapshot is compiled first: a bad
        rule, an unknown agent or a prerequisite cycle is a 422 naming the
        field, and nothing is stored."""
        policy = await control.create_policy(body)
        response.headers["Location"] = f"/api/v1/policies/{policy.id}"
        return policy

    @router.get("/policies", response_model=PolicyList)
    async def list_policies() -> PolicyList:
        """Every policy, in creation order (the order the snapshot evaluates them)."""
        return PolicyList(policies=list(control.state.policies))

    @router.get("/policies/{policy_id}", response_model=Policy)
    async def get_policy(policy_id: str) -> Policy:
        """One policy, by id or name."""
        return control.get_policy(policy_id)

    @router.patch("/policies/{policy_id}", response_model=Policy)
    async def update_policy(policy_id: str, body: PolicyPatch = Body()) -> Policy:  # noqa: B008
        """Replaces the fields given and validates the result like a create."""
        return await control.update_policy(policy_id, body)

    @router.delete("/policies/{policy_id}", response_model=Policy)
    async def delete_policy(policy_id: str) -> Policy:
        """Deletes a policy and answers with it; 409 while another policy
        lists it as a prerequisite."""
        return await control.delete_policy(policy_id)

    return router
