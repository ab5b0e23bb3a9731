"""Every route answers what ``/openapi.json`` declares: a real control plane
serves its OpenAPI document, then every operation in it is called for a
success and (under ``/api/v1``) for errors, and each real answer is checked
against the JSON schema the document declares for that status."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from pdp.control import Role, create_api_key, revoke_api_keys
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import REFERENCE_POLICIES

API = "/api/v1"
_DOCUMENT = "urn:pdp:control:openapi"
JSON = {"Content-Type": "application/json"}


class Contract:
    """The OpenAPI document of a running control plane, and the answers
    checked against it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        # Schemas refer to "#/components/schemas/..." of the document itself,
        # so each is checked as a reference into the whole document.
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(_DOCUMENT, resource)
        self.checked: set[tuple[str, str, int]] = set()
        for name, schema in document["components"]["schemas"].items():
            assert isinstance(schema, dict), name
            Draft202012Validator.check_schema(schema)

    def _validate(self, pointer: list[str], body: Any, what: str) -> None:
        escaped = "/".join(part.replace("~", "~0").replace("/", "~1") for part in pointer)
        schema = {"$ref": f"{_DOCUMENT}#/{escaped}"}
        validator = Draft202012Validator(schema, registry=self.registry)
        problems = [
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in validator.iter_errors(body)
        ]
        assert not problems, f"{what} does not match its declared schema: {problems}\n{body}"

    def check(self, response: httpx.Response, template: str, status: int) -> httpx.Response:
        """Checks that ``response`` has ``status``, that the route
        ``template`` declares that status, and that the body matches."""
        method = response.request.method.lower()
        what = f"{method.upper()} {template} -> {response.status_code}"
        assert response.status_code == status, f"{what}: {response.text}"
        operation = self.document["paths"][template][method]
        declared = operation["responses"].get(str(status))
        assert declared is not None, f"{what} is not declared in /openapi.json"
        content = declared.get("content")
        if content is None:
            assert response.content == b"", what
        else:
            assert response.headers["content-type"] == "application/json", what
            assert "schema" in content["application/json"], what
            pointer = ["paths", template, method, "responses", str(status)]
            pointer += ["content", "application/json", "schema"]
            self._validate(pointer, response.json(), what)
        self.checked.add((method, template, status))
        return response

    def check_error(self, response: httpx.Response, status: int) -> None:
        """An answer from no declared operation (unknown route or method)."""
        assert response.status_code == status, response.text
        pointer = ["components", "schemas", "ErrorOut"]
        self._validate(pointer, response.json(), f"{response.request.method} -> {status}")

    def unchecked(self) -> list[str]:
        """Operations without a checked success, or (API routes) without a
        checked error."""
        missing = []
        for template, operations in self.document["paths"].items():
            for method in operations:
                statuses = {s for m, t, s in self.checked if (m, t) == (method, template)}
                if not any(200 <= s < 300 for s in statuses):
                    missing.append(f"{method.upper()} {template}: no success checked")
                if template.startswith(API) and not any(s >= 400 for s in statuses):
                    missing.append(f"{method.upper()} {template}: no error checked")
        return missing


async def test_every_answer_matches_the_published_openapi_document(
    control_plane: ControlPlaneHarness,
) -> None:
    assert control_plane.server is not None and control_plane.server.control is not None
    store = control_plane.server.control.store
    async with httpx.AsyncClient(base_url=control_plane.base_url) as anonymous:
        openapi = await anonymous.get("/openapi.json")
        assert openapi.status_code == 200
        contract = Contract(openapi.json())
        await _exercise(contract, control_plane, anonymous, store)

    # A database edited by hand so that it no longer compiles: Authorize is 503.
    await control_plane.stop()
    with sqlite3.connect(control_plane.db_path) as db:
        row = db.execute("SELECT object_json FROM policies ORDER BY seq LIMIT 1").fetchone()
        broken = json.loads(row[0]) | {"enforcementMode": "sometimes"}
        db.execute("UPDATE policies SET object_json = ?", (json.dumps(broken),))
    await control_plane.restart()
    async with _keyed(control_plane) as client:
        body = {"sourceAgentId": "agent-a", "targetAgentId": "agent-b", "action": "read"}
        response = await client.post(f"{API}/agents/authorize", json=body)
        contract.check(response, f"{API}/agents/authorize", 503)

    assert contract.unchecked() == []


def _keyed(control_plane: ControlPlaneHarness) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=control_plane.base_url, headers=control_plane.headers)


async def _exercise(
    contract: Contract,
    control_plane: ControlPlaneHarness,
    anonymous: httpx.AsyncClient,
    store: Any,
) -> None:
    check = contract.check
    async with _keyed(control_plane) as c:
        # Policies.
        policies = f"{API}/policies"
        base = check(await c.post(policies, json=REFERENCE_POLICIES[2]), policies, 201).json()
        check(await c.post(policies, json=REFERENCE_POLICIES[2]), policies, 409)
        bad_mode = REFERENCE_POLICIES[0] | {"enforcementMode": "sometimes"}
        check(await c.post(policies, json=bad_mode), policies, 422)
        check(await c.post(policies, content=b"{bad", headers=JSON), policies, 400)
        check(
            await c.post(policies, content=b"x", headers={"Content-Type": "text/plain"}),
            policies,
            415,
        )
        huge = b'"' + b"x" * (1024 * 1024) + b'"'
        check(await c.post(policies, content=huge, headers=JSON), policies, 413)
        full = {
            "name": "Escalate",
            "description": "after the cost check",
            "policyType": "cost_limit",
            "enforcementMode": "warn",
            "severity": "critical",
            "ruleDefinition": {"max_cost_per_execution": 1e-07},
            "prerequisites": [{"policy": "Daily Cost Limit", "when": "not_fired"}],
        }
        dependent = check(await c.post(policies, json=full), policies, 201).json()
        check(await c.get(policies), policies, 200)
        check(await anonymous.get(policies), policies, 401)

        one = f"{API}/policies/{{policy_id}}"
        check(await c.get(f"{policies}/{base['id']}"), one, 200)
        check(await c.get(f"{policies}/nope"), one, 404)
        check(await c.patch(f"{policies}/Escalate", json={"description": None}), one, 200)
        check(await c.patch(f"{policies}/Escalate", json={"name": None}), one, 422)
        check(await c.patch(f"{policies}/nope", json={}), one, 404)
        check(await c.delete(f"{policies}/{base['id']}"), one, 409)
        check(await c.delete(f"{policies}/{dependent['id']}"), one, 200)
        check(await c.delete(f"{policies}/nope"), one, 404)

        # Agents and the kill switch.
        agents = f"{API}/agents"
        check(await c.post(agents, json={"name": "agent-a", "description": "first"}), agents, 201)
        check(await c.post(agents, json={"name": "agent-b"}), agents, 201)
        check(await c.post(agents, json={"name": "agent-a"}), agents, 409)
        check(await c.post(agents, json={"name": "Agent-A"}), agents, 409)  # one agent, one name
        check(await c.post(agents, json={"name": 5}), agents, 422)
        check(await c.post(agents, json={"name": "agent-c "}), agents, 422)
        check(await c.get(agents), agents, 200)
        revoked = await create_api_key(store, "revoked")
        await revoke_api_keys(store, name="revoked")
        check(await anonymous.get(agents, headers={"X-API-Key": revoked.secret}), agents, 403)

        agent = f"{API}/agents/{{agent_id}}"
        check(await c.get(f"{agents}/agent-a"), agent, 200)
        check(await c.get(f"{agents}/nobody"), agent, 404)
        pause = f"{agent}/pause"
        check(await c.patch(f"{agents}/agent-b/pause", json={"reason": "incident"}), pause, 200)
        check(await c.patch(f"{agents}/agent-b/pause", json={"reason": 5}), pause, 422)
        check(await c.patch(f"{agents}/nobody/pause"), pause, 404)
        resume = f"{agent}/resume"
        check(await c.patch(f"{agents}/agent-b/resume"), resume, 200)
        check(await c.patch(f"{agents}/nobody/resume"), resume, 404)
        tokens = f"{agent}/caller-tokens"
        issued = check(await c.post(f"{agents}/agent-a/caller-tokens"), tokens, 201).json()
        issue = f"{agents}/agent-a/caller-tokens"
        check(await c.post(issue, json={"revokeOthers": True}), tokens, 201)
        check(await c.post(issue, json={"revokeOthers": 5}), tokens, 422)
        check(await c.post(f"{agents}/nobody/caller-tokens"), tokens, 404)
        token = f"{tokens}/{{token_id}}"
        check(await c.delete(f"{agents}/agent-a/caller-tokens/{issued['id']}"), token, 404)
        latest = (await c.get(f"{agents}/agent-a")).json()["callerTokens"][0]["id"]
        check(await c.delete(f"{agents}/agent-a/caller-tokens/{latest}"), token, 200)

        # Grants and Authorize.
        grants = f"{agent}/grants"
        grant_body = {
            "targetAgentId": "agent-b",
            "allowedActions": ["READ", "execute"],
            "expiresAt": "2099-12-31T23:59:59+02:00",
        }
        url = f"{agents}/agent-a/grants"
        grant = check(await c.post(url, json=grant_body), grants, 201).json()
        check(await c.post(url, json=grant_body | {"expiresAt": "tomorrow"}), grants, 422)
        check(await c.post(url, json=grant_body | {"targetAgentId": "nobody"}), grants, 404)
        check(await c.get(url), grants, 200)
        check(await c.get(f"{agents}/nobody/grants"), grants, 404)
        await c.post(url, json={"targetAgentId": "agent-b", "allowedActions": ["write"]})

        authorize = f"{API}/agents/authorize"
        asked = {"sourceAgentId": "agent-a", "targetAgentId": "agent-b", "action": "read"}
        check(await c.post(authorize, json=asked), authorize, 200)
        check(await c.post(authorize, json=asked | {"action": "delete"}), authorize, 200)
        check(await c.post(authorize, json=asked | {"targetAgentId": "x"}), authorize, 404)
        check(await c.post(authorize, json=asked | {"action": "fly"}), authorize, 422)

        # Settings (unknownAgents).
        settings = f"{API}/settings"
        check(await c.get(settings), settings, 200)
        check(await c.patch(settings, json={"unknownAgents": "allow"}), settings, 200)
        check(await c.patch(settings, json={"unknownAgents": "maybe"}), settings, 422)
        check(await c.patch(settings, json={"unknownAgents": "deny"}), settings, 200)
        check(await anonymous.get(settings), settings, 401)

        revoke = f"{grants}/{{grant_id}}"
        check(await c.delete(f"{url}/{grant['id']}"), revoke, 200)
        check(await c.delete(f"{url}/{grant['id']}"), revoke, 200)  # again: same answer
        check(await c.delete(f"{url}/nope"), revoke, 404)

        # The snapshot feed and health.
        snapshot = f"{API}/snapshot"
        etag = check(await c.get(snapshot), snapshot, 200).headers["ETag"]
        check(await c.get(snapshot, headers={"If-None-Match": etag}), snapshot, 304)
        check(await c.get(snapshot, params={"wait": -1}), snapshot, 422)
        check(await anonymous.get(snapshot), snapshot, 401)
        check(await anonymous.get("/healthz"), "/healthz", 200)

        # The candidate snapshot.
        candidate, diff = f"{snapshot}/candidate", f"{snapshot}/candidate/diff"
        promote = f"{candidate}/promote"
        check(await c.get(candidate), candidate, 404)
        check(await c.get(diff), diff, 404)
        check(await c.post(promote), promote, 404)
        check(await c.delete(candidate), candidate, 404)
        softer = REFERENCE_POLICIES[2] | {"enforcementMode": "warn"}
        changes = {"changes": [{"op": "put", "policy": softer}]}
        check(await c.post(candidate, json=changes), candidate, 201)
        unknown = {"changes": [{"op": "delete", "name": "nope"}]}
        check(await c.post(candidate, json=unknown), candidate, 422)
        tag = check(await c.get(candidate), candidate, 200).headers["ETag"]
        check(await c.get(candidate, headers={"If-None-Match": tag}), candidate, 304)
        check(await c.get(diff), diff, 200)
        check(await c.delete(candidate), candidate, 200)
        check(await c.post(candidate, json={"policies": [softer]}), candidate, 201)
        check(await c.post(promote), promote, 200)

        # Sidecar events, and a key whose role the route does not admit.
        events = f"{API}/sidecar/events"
        check(await c.post(events, json={"sidecarId": "s1", "events": []}), events, 200)
        bad_event = {"id": "x", "type": "decision", "time": "now", "data": {}}
        check(await c.post(events, json={"sidecarId": "s1", "events": [bad_event]}), events, 422)
        reviewer = await create_api_key(store, "alice", role=Role.REVIEWER)
        as_reviewer = {"X-API-Key": reviewer.secret}
        body = {"sidecarId": "s1", "events": []}
        check(await anonymous.post(events, json=body, headers=as_reviewer), events, 403)

        # Approvals: reported by a sidecar, decided by a reviewer, consumed once.
        ids = [uuid.uuid4().hex for _ in range(2)]
        reported = [
            {
                "id": str(uuid.uuid4()),
                "type": "approval.requested",
                "time": "2026-01-01T00:00:00Z",
                "data": {
                    "approvalId": approval_id,
                    "agentId": "agent-a",
                    "digest": "ab" * 32,
                    "policies": [
                        {"id": "p", "name": "P", "type": "expression", "mode": "require_approval"}
                    ],
                    "maskedExcerpt": "run ***",
                    "expiresAt": "2099-01-01T00:00:00Z",
                },
            }
            for approval_id in ids
        ]
        check(await c.post(events, json={"sidecarId": "s1", "events": reported}), events, 200)
        approvals = f"{API}/approvals"
        check(await c.get(approvals, params={"status": "pending"}), approvals, 200)
        check(await c.get(approvals, params={"status": "later"}), approvals, 422)
        check(await anonymous.get(approvals, headers=as_reviewer), approvals, 200)
        one = f"{approvals}/{{approval_id}}"
        check(await c.get(f"{approvals}/{ids[0]}", params={"wait": 0.01}), one, 200)
        check(await c.get(f"{approvals}/nope"), one, 404)
        approve, deny = f"{one}/approve", f"{one}/deny"
        check(await c.post(f"{approvals}/{ids[0]}/approve", json={"comment": 1}), approve, 422)
        check(await c.post(f"{approvals}/{ids[0]}/approve", json={"comment": "ok"}), approve, 200)
        check(await c.post(f"{approvals}/{ids[0]}/approve"), approve, 409)
        check(await c.post(f"{approvals}/{ids[1]}/deny"), deny, 200)
        check(await c.post(f"{approvals}/nope/deny"), deny, 404)
        consume = f"{one}/consume"
        used = {"digest": "ab" * 32, "sidecarId": "s1"}
        check(await c.post(f"{approvals}/{ids[0]}/consume", json=used), consume, 200)
        check(await c.post(f"{approvals}/{ids[0]}/consume", json=used), consume, 409)

        # Webhooks: registered, tested, their deliveries listed, deleted.
        webhooks = f"{API}/webhooks"
        hook_body = {"url": "https://127.0.0.1:9/hook", "events": ["agent.paused"]}
        hook = check(await c.post(webhooks, json=hook_body), webhooks, 201).json()
        check(await c.post(webhooks, json=hook_body | {"url": "ftp://x"}), webhooks, 422)
        check(await anonymous.post(webhooks, json=hook_body, headers=as_reviewer), webhooks, 403)
        check(await c.get(webhooks), webhooks, 200)
        check(await anonymous.get(webhooks), webhooks, 401)
        test = f"{webhooks}/{{webhook_id}}/test"
        check(await c.post(f"{webhooks}/{hook['id']}/test"), test, 202)
        check(await c.post(f"{webhooks}/nope/test"), test, 404)
        deliveries = f"{webhooks}/{{webhook_id}}/deliveries"
        check(await c.get(f"{webhooks}/{hook['id']}/deliveries"), deliveries, 200)
        check(await c.get(f"{webhooks}/nope/deliveries"), deliveries, 404)
        bad_status = {"status": "lost"}
        check(
            await c.get(f"{webhooks}/{hook['id']}/deliveries", params=bad_status), deliveries, 422
        )
        one_hook = f"{webhooks}/{{webhook_id}}"
        check(await c.delete(f"{webhooks}/{hook['id']}"), one_hook, 200)
        check(await c.delete(f"{webhooks}/{hook['id']}"), one_hook, 404)
        # Traces and incidents.
        traces = f"{API}/traces"
        trace = {"agentId": "agent-a", "input": "hi", "costUsd": 2e-07, "requestId": "r1"}
        check(await c.post(traces, json=trace | {"costUsd": 9.5}), traces, 200)
        check(await c.post(traces, json=trace), traces, 200)
        check(await c.post(traces, json=trace | {"costUsd": -1}), traces, 422)
        check(await c.post(traces, json=trace | {"agentId": "nobody"}), traces, 422)
        check(await anonymous.post(traces, json=trace, headers=as_reviewer), traces, 403)
        await c.patch(f"{agents}/agent-b/pause", json={"reason": "again"})
        check(await c.post(traces, json=trace | {"agentId": "agent-b"}), traces, 409)
        incidents = f"{API}/incidents"
        check(await c.get(incidents, params={"agentId": "agent-a", "limit": 1}), incidents, 200)
        check(await c.get(incidents, params={"since": "now"}), incidents, 422)
        # Decisions sidecars shipped.
        decisions = f"{API}/decisions"
        check(await c.get(decisions, params={"agent": "agent-a", "limit": 5}), decisions, 200)
        check(await c.get(decisions, params={"since": "yesterday"}), decisions, 422)

        # Renaming and deleting agents.
        check(await c.post(agents, json={"name": "agent-c"}), agents, 201)
        check(await c.patch(f"{agents}/agent-c", json={"name": "agent-d"}), agent, 200)
        check(await c.patch(f"{agents}/agent-d", json={"name": "agent-a"}), agent, 409)
        check(await c.patch(f"{agents}/agent-d", json={"name": 5}), agent, 422)
        check(await c.delete(f"{agents}/agent-d"), agent, 200)
        check(await c.delete(f"{agents}/agent-d"), agent, 404)

        # API keys.
        keys = f"{API}/keys"
        created = check(await c.post(keys, json={"name": "ci", "role": "sidecar"}), keys, 201)
        check(await c.post(keys, json={"name": "ci", "role": "root"}), keys, 422)
        check(await c.get(keys), keys, 200)
        check(await anonymous.get(keys, headers=as_reviewer), keys, 403)
        key = f"{keys}/{{key_id}}"
        check(await c.delete(f"{keys}/{created.json()['id']}"), key, 200)
        check(await c.delete(f"{keys}/nope"), key, 404)

        # Answers from no declared operation are error bodies too.
        contract.check_error(await c.put(policies, json={}), 405)
        contract.check_error(await c.get(f"{API}/nothing"), 404)


async def test_answers_are_rendered_like_the_snapshot_document(
    client: httpx.AsyncClient,
) -> None:
    """Compact json.dumps, non-ASCII as UTF-8 and numbers as Python writes
    them: the bytes that the reference page's clients have always had."""
    body = {
        "name": "Coût",
        "policyType": "cost_limit",
        "enforcementMode": "block",
        "ruleDefinition": {"max_cost_per_execution": 1e-07, "daily_budget": 1e16},
    }
    response = await client.post("/policies", json=body)
    assert response.status_code == 201
    rendered = json.dumps(response.json(), ensure_ascii=False, separators=(",", ":"))
    assert response.content == rendered.encode("utf-8")
    assert b'"max_cost_per_execution":1e-07' in response.content
    assert "Coût".encode() in response.content
    snapshot = await client.get("/snapshot")
    assert response.content in snapshot.content  # the policy, byte for byte
