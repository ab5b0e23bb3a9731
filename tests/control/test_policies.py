"""Policies: list, get, patch, delete; validation by the engine at write
time, with the field named and nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.control._helpers import REFERENCE_POLICIES, error_of, make_agent, published

# The same API on both control-plane backends.
pytestmark = pytest.mark.control_databases

COST = REFERENCE_POLICIES[2]


def policy(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "policyType": "cost_limit",
        "enforcementMode": "block",
        "ruleDefinition": {"max_cost_per_execution": 1.0},
        **fields,
    }


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/policies", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_list_get_patch_delete(client: httpx.AsyncClient) -> None:
    created = [await create(client, body) for body in REFERENCE_POLICIES]

    listed = (await client.get("/policies")).json()["policies"]
    assert [p["id"] for p in listed] == [p["id"] for p in created]

    by_id = (await client.get(f"/policies/{created[2]['id']}")).json()
    by_name = (await client.get("/policies/Daily Cost Limit")).json()
    assert by_id == by_name == created[2]

    response = await client.patch(
        f"/policies/{created[2]['id']}",
        json={"enforcementMode": "warn", "ruleDefinition": {"daily_budget": 20.0}},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["enforcementMode"] == "warn"
    assert patched["ruleDefinition"] == {"daily_budget": 20.0}  # replaced as a whole
    assert patched["name"] == "Daily Cost Limit" and patched["createdAt"] == created[2]["createdAt"]
    assert patched["updatedAt"] >= created[2]["updatedAt"]
    document, compiled = await published(client)
    assert document["policies"][2] == patched  # position kept
    assert compiled.policies[2].spec.mode.wire_name == "warn"

    response = await client.delete(f"/policies/{created[0]['id']}")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created[0]["id"]
    assert error_of(await client.get(f"/policies/{created[0]['id']}"), 404)["code"] == "not_found"
    document, _ = await published(client)
    assert [p["name"] for p in document["policies"]] == [
        "PII Protection",
        "Daily Cost Limit",
        "Monthly Budget Cap",
    ]
    assert document["revision"] == 6


async def test_optional_fields_are_stored_and_published(client: httpx.AsyncClient) -> None:
    await create(client, COST)
    body = policy(
        "Escalate",
        description="only when the cost check passed",
        severity="critical",
        prerequisites=[{"policy": "Daily Cost Limit", "when": "not_fired"}],
    )
    created = await create(client, body)
    assert created["description"] == "only when the cost check passed"
    assert created["severity"] == "critical"
    assert created["prerequisites"] == [{"policy": "Daily Cost Limit", "when": "not_fired"}]
    _, compiled = await published(client)
    escalate = next(p for p in compiled.policies if p.name == "Escalate")
    assert escalate.spec.severity.wire_name == "critical"

    response = await client.patch(f"/policies/{created['id']}", json={"description": None})
    assert response.json()["description"] is None


async def test_policy_scoped_to_agents_by_id_and_by_name(client: httpx.AsyncClient) -> None:
    bot = await make_agent(client, "my-chatbot")
    created = await create(client, policy("Scoped", appliesToAgents=[bot["id"], "my-chatbot"]))
    assert created["appliesToAgents"] == [bot["id"], "my-chatbot"]
    _, compiled = await published(client)
    scoped = next(p for p in compiled.policies if p.name == "Scoped")
    assert scoped.applies_to == frozenset({bot["id"]})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (policy("p", policyType="telepathy"), "policyType"),
        (policy("p", enforcementMode="sometimes"), "enforcementMode"),
        (policy("p", severity="dire"), "severity"),
        (policy("p", ruleDefinition={"daily_budget": -5}), "ruleDefinition.daily_budget"),
        (policy("p", ruleDefinition={"daily_budgett": 5}), "ruleDefinition.daily_budgett"),
        (
            policy(
                "p",
                policyType="expression",
                ruleDefinition={"expression": "request.tool == "},
            ),
            "ruleDefinition.expression",
        ),
        (
            policy(
                "p",
                policyType="pii_access",
                ruleDefinition={"denied_pii_types": ["ssn", "dna"]},
            ),
            "ruleDefinition.denied_pii_types[1]",
        ),
        (policy("p", appliesToAgents=["nobody"]), "appliesToAgents[0]"),
        (policy("p", prerequisites=[{"policy": "missing"}]), "prerequisites[0].policy"),
        (policy("p", prerequisites=[{"policy": "p"}]), "prerequisites[0].policy"),
        (
            policy("p", prerequisites=[{"policy": "Daily Cost Limit", "when": "x"}]),
            "prerequisites[0].when",
        ),
        (policy(""), "name"),
        (policy("p", isActive="yes"), "isActive"),
        (policy("p", ruleDefinition=[1]), "ruleDefinition"),
        (policy("p", appliesToAgents=["ok", 7]), "appliesToAgents[1]"),
        (policy("p", id="chosen"), "id"),
        ({"policyType": "cost_limit"}, "name"),
    ],
)
async def test_invalid_policy_is_422_naming_the_field_and_not_stored(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await create(client, COST)
    before, _ = await published(client)

    error = error_of(await client.post("/policies", json=body), 422)

    assert error["code"] == "validation_failed"
    assert error["field"] == field, error
    assert field in [e["field"] for e in error["errors"]]
    assert error["message"].startswith(field)
    after, _ = await published(client)
    assert after == before


async def test_every_problem_is_listed(client: httpx.AsyncClient) -> None:
    body = policy("p", enforcementMode="sometimes", ruleDefinition={"daily_budget": -1})
    error = error_of(await client.post("/policies", json=body), 422)
    assert {e["field"] for e in error["errors"]} == {
        "enforcementMode",
        "ruleDefinition.daily_budget",
    }


async def test_prerequisite_cycle_is_rejected_at_the_written_field(
    client: httpx.AsyncClient,
) -> None:
    a = await create(client, policy("A"))
    b = await create(client, policy("B", prerequisites=[{"policy": "A"}]))
    await create(client, policy("C", prerequisites=[{"policy": "B"}]))
    before, _ = await published(client)

    response = await client.patch(f"/policies/{a['id']}", json={"prerequisites": [{"policy": "C"}]})

    error = error_of(response, 422)
    assert error["field"] == "prerequisites[0].policy"
    assert "cycle" in error["message"]
    assert "'A'" in error["message"] and "'C'" in error["message"]
    assert (await published(client))[0] == before
    assert (await client.get(f"/policies/{b['id']}")).json() == b


async def test_patch_is_validated_like_a_create(client: httpx.AsyncClient) -> None:
    created = await create(client, COST)
    before, _ = await published(client)
    for body, field in [
        ({"ruleDefinition": {"daily_budget": -1}}, "ruleDefinition.daily_budget"),
        ({"policyType": "budget_cap"}, "ruleDefinition.max_cost_per_execution"),
        ({"name": None}, "name"),
        ({"isActive": None}, "isActive"),
        ({"unknown": 1}, "unknown"),
    ]:
        error = error_of(await client.patch(f"/policies/{created['id']}", json=body), 422)
        assert error["field"] == field, (body, error)
    assert (await published(client))[0] == before


async def test_empty_patch_changes_nothing(client: httpx.AsyncClient) -> None:
    created = await create(client, COST)
    response = await client.patch(f"/policies/{created['id']}", json={})
    assert response.status_code == 200
    assert response.json() == created
    assert (await published(client))[0]["revision"] == 1


async def test_duplicate_name_is_409(client: httpx.AsyncClient) -> None:
    first = await create(client, COST)
    other = await create(client, policy("Other"))
    error = error_of(await client.post("/policies", json=COST), 409)
    assert error["field"] == "name" and "Daily Cost Limit" in error["message"]
    response = await client.patch(f"/policies/{other['id']}", json={"name": "Daily Cost Limit"})
    assert error_of(response, 409)["field"] == "name"
    # A policy's id is taken as a name too: references by id or name stay unambiguous.
    assert error_of(await client.post("/policies", json=policy(first["id"])), 409)
    # Renaming a policy to its own name is no conflict.
    response = await client.patch(f"/policies/{first['id']}", json={"name": "Daily Cost Limit"})
    assert response.status_code == 200


async def test_delete_refused_while_a_prerequisite_naming_the_dependents(
    client: httpx.AsyncClient,
) -> None:
    base = await create(client, policy("Base"))
    await create(client, policy("Needs base", prerequisites=[{"policy": base["id"]}]))
    await create(client, policy("Also", prerequisites=[{"policy": "Base", "when": "not_fired"}]))
    before, _ = await published(client)

    error = error_of(await client.delete(f"/policies/{base['id']}"), 409)

    assert "'Needs base'" in error["message"] and "'Also'" in error["message"]
    assert (await published(client))[0] == before


async def test_renaming_a_policy_others_name_as_prerequisite_is_409(
    client: httpx.AsyncClient,
) -> None:
    base = await create(client, policy("Base"))
    await create(client, policy("Dependent", prerequisites=[{"policy": "Base"}]))
    error = error_of(await client.patch(f"/policies/{base['id']}", json={"name": "Renamed"}), 409)
    assert "'Dependent'" in error["message"] and "unknown policy 'Base'" in error["message"]


async def test_unknown_policy_is_404(client: httpx.AsyncClient) -> None:
    for response in [
        await client.get("/policies/nope"),
        await client.patch("/policies/nope", json={"isActive": False}),
        await client.delete("/policies/nope"),
    ]:
        error = error_of(response, 404)
        assert "'nope'" in error["message"]
