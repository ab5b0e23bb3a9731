"""Custom validators called by a real sidecar over real HTTPS on loopback
(certificates made by the test): what the validator receives, how its
answer decides, and every way a call can fail under each fail mode."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._clock import ManualClock
from tests._https import Action, Delay, Drop, Hang, HttpsServer, Reply, reply_json
from tests.conftest import RunningSidecar, StartSidecar
from tests.server._validators import SECRET, signature_holds, validator_snapshot

ALLOW = reply_json({"allow": True})
DENY = reply_json({"allow": False, "message": "refunds above 100 USD need a manager"})


@pytest.fixture
async def validator() -> Any:
    async with HttpsServer(ALLOW) as server:
        yield server


async def start_with(
    start_sidecar: StartSidecar, server: HttpsServer, name: str = "sidecar", **rule: Any
) -> RunningSidecar:
    """A sidecar whose Entitlements policy calls ``server`` (trusting its CA)."""
    rule.setdefault("ca_file", server.ca_file)
    snapshot = validator_snapshot(f"{server.url}/check?tenant=acme", **rule)
    return await start_sidecar(snapshot, name=name)


def refund(**fields: Any) -> pb.EnforceRequest:
    request: dict[str, Any] = {
        "agent_id": "billing-bot",
        "input": "refund order 42",
        "tool": "refunds",
        "model": "gpt-4o",
        "metadata": {"amount_usd": "250"},
        "estimated_cost_usd": 0.02,
        "request_id": "req-1",
        **fields,
    }
    return pb.EnforceRequest(**request)


async def test_the_validator_gets_the_signed_request_context_and_its_allow_lets_through(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    sidecar = await start_with(start_sidecar, validator)
    item = pb.ContextItem(
        kind=pb.CONTEXT_KIND_EMAIL, source="inbox/42", content="Please refund my order."
    )
    resp = await sidecar.stub.Enforce(refund(output="earlier answer", context=[item]))
    assert resp.decision == pb.DECISION_ALLOW
    (request,) = validator.requests
    assert (request.method, request.target) == ("POST", "/check?tenant=acme")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert signature_holds(request, SECRET)
    assert not signature_holds(request, "whsec_" + "A" * 32)
    assert request.json() == {
        "policyId": "entitlements",
        "policyName": "Entitlements",
        "agent": {"id": "billing-bot", "name": "billing-bot"},
        "input": "refund order 42",
        "output": "earlier answer",
        "model": "gpt-4o",
        "tool": "refunds",
        "metadata": {"amount_usd": "250"},
        "estimatedCostUsd": 0.02,
        "context": [{"kind": "email", "source": "inbox/42", "content": "Please refund my order."}],
        "requestId": "req-1",
    }


async def test_a_denial_fires_the_policy_with_the_validators_message(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    validator.respond_with(DENY)
    sidecar = await start_with(start_sidecar, validator)
    resp = await sidecar.stub.Enforce(refund())
    assert resp.decision == pb.DECISION_BLOCK
    (violation,) = resp.violations
    assert (violation.policy_id, violation.policy_type) == ("entitlements", "custom_validator")
    assert violation.message == "refunds above 100 USD need a manager"


async def test_only_the_agents_the_policy_applies_to_are_checked(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    validator.respond_with(DENY)
    sidecar = await start_with(start_sidecar, validator)
    resp = await sidecar.stub.Enforce(refund(agent_id="support-bot"))
    assert resp.decision == pb.DECISION_ALLOW
    assert validator.requests == []


@pytest.mark.parametrize(
    ("fail_mode", "decision"),
    [("closed", pb.DECISION_BLOCK), ("open", pb.DECISION_ALLOW)],
)
async def test_a_validator_that_hangs_is_given_up_at_its_timeout(
    start_sidecar: StartSidecar, validator: HttpsServer, fail_mode: str, decision: int
) -> None:
    validator.respond_with(Hang())
    sidecar = await start_with(start_sidecar, validator, timeout_ms=150, fail_mode=fail_mode)
    started = time.monotonic()
    resp = await sidecar.stub.Enforce(refund())
    elapsed = time.monotonic() - started
    assert resp.decision == decision
    assert 0.15 <= elapsed < 5.0
    if fail_mode == "closed":
        (violation,) = resp.violations
        assert "no answer within 150 ms" in violation.message
        assert "failing closed" in violation.message
    else:
        assert list(resp.violations) == []
    stats = sidecar.sidecar.validators.stats(
        f"{validator.url}/check?tenant=acme", validator.ca_file
    )
    assert (stats.failures, stats.failed_open) == (1, 1 if fail_mode == "open" else 0)
    validator.release()


FAILURES: dict[str, tuple[Action, str]] = {
    "5xx": (Reply(503, b'{"allow": true}'), "answered HTTP 503"),
    "redirect": (Reply(302, b"", headers={"Location": "https://elsewhere.example/"}), "HTTP 302"),
    "malformed JSON": (Reply(200, b'{"allow": tru'), "malformed answer: not JSON"),
    "not an object": (reply_json([True]), "not a JSON object"),
    "allow not a boolean": (reply_json({"allow": "yes"}), '"allow" must be true or false'),
    "allow missing": (reply_json({"message": "hi"}), '"allow" must be true or false'),
    "message not a string": (reply_json({"allow": False, "message": 3}), '"message" must be'),
    "wrong content type": (
        Reply(200, b'{"allow": true}', "text/html"),
        "content type text/html, not application/json",
    ),
    "no content type": (Reply(200, b'{"allow": true}', ""), "content type none"),
    "huge answer": (
        Reply(200, b'{"allow": true, "message": "' + b"x" * 70_000 + b'"}'),
        "more than 65536 bytes",
    ),
    "connection dropped": (Drop(), "closed the connection without an answer"),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
async def test_an_unusable_answer_fails_closed_naming_it_and_open_lets_through(
    start_sidecar: StartSidecar, validator: HttpsServer, case: str
) -> None:
    reply, reason = FAILURES[case]
    validator.respond_with(reply)
    closed = await start_with(start_sidecar, validator, name="closed")
    resp = await closed.stub.Enforce(refund())
    assert resp.decision == pb.DECISION_BLOCK
    (violation,) = resp.violations
    assert reason in violation.message
    assert validator.url.removeprefix("https://") in violation.message
    assert "tenant=acme" not in violation.message  # the path may hold a token
    opened = await start_with(start_sidecar, validator, name="open", fail_mode="open")
    resp = await opened.stub.Enforce(refund())
    assert resp.decision == pb.DECISION_ALLOW


async def test_connection_refused_untrusted_certificate_and_unreadable_ca_file(
    start_sidecar: StartSidecar, validator: HttpsServer, tmp_path: Any
) -> None:
    down = HttpsServer()
    with down:
        closed_url = down.url
    snapshot = validator_snapshot(closed_url, ca_file=validator.ca_file)
    sidecar = await start_sidecar(snapshot, name="refused")
    (violation,) = (await sidecar.stub.Enforce(refund())).violations
    assert "cannot connect" in violation.message
    await sidecar.write_snapshot(validator_snapshot(validator.url) | {"revision": 2})
    await sidecar.wait_for(lambda: sidecar.revision == 2)
    (violation,) = (await sidecar.stub.Enforce(refund())).violations
    assert "TLS certificate not trusted" in violation.message
    missing = str(tmp_path / "no-such-ca.pem")
    await sidecar.write_snapshot(
        validator_snapshot(validator.url, ca_file=missing) | {"revision": 3}
    )
    await sidecar.wait_for(lambda: sidecar.revision == 3)
    (violation,) = (await sidecar.stub.Enforce(refund())).violations
    assert f"cannot read ca_file {missing!r}" in violation.message
    assert validator.requests == []


async def test_answers_are_cached_by_the_request_context_until_the_ttl_ends(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    clock = ManualClock()
    validator.respond_with(DENY)
    url = f"{validator.url}/check?tenant=acme"
    sidecar = await start_sidecar(
        validator_snapshot(url, ca_file=validator.ca_file, cache_ttl_s=60), clock=clock
    )
    for request_id in ("a", "b", "c"):  # the request id is not part of the question
        resp = await sidecar.stub.Enforce(refund(request_id=request_id))
        assert resp.violations[0].message == "refunds above 100 USD need a manager"
    assert len(validator.requests) == 1
    await sidecar.stub.Enforce(refund(input="refund order 43"))
    assert len(validator.requests) == 2
    clock.advance(seconds=59)
    await sidecar.stub.Enforce(refund())
    assert len(validator.requests) == 2
    clock.advance(seconds=2)
    validator.respond_with(ALLOW)
    resp = await sidecar.stub.Enforce(refund())
    assert resp.decision == pb.DECISION_ALLOW
    assert len(validator.requests) == 3
    stats = sidecar.sidecar.validators.stats(url, validator.ca_file)
    assert (stats.calls, stats.cache_hits) == (3, 3)


async def test_failures_are_not_cached(start_sidecar: StartSidecar, validator: HttpsServer) -> None:
    validator.respond_with(Reply(500))
    sidecar = await start_with(start_sidecar, validator, cache_ttl_s=60)
    assert (await sidecar.stub.Enforce(refund())).decision == pb.DECISION_BLOCK
    validator.respond_with(ALLOW)
    assert (await sidecar.stub.Enforce(refund())).decision == pb.DECISION_ALLOW
    assert len(validator.requests) == 2


async def test_a_validator_whose_prerequisite_decided_is_not_called(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    cheap = {
        "name": "Known Refund Tool",
        "policyType": "expression",
        "enforcementMode": "monitor",
        "ruleDefinition": {"expression": 'request.tool == "refunds"'},
    }
    validator.respond_with(DENY)
    sidecar = await start_with(
        start_sidecar,
        validator,
        extra_policies=[cheap],
        prerequisites=[{"policy": "Known Refund Tool", "when": "fired"}],
    )
    resp = await sidecar.stub.Enforce(refund(tool="search"))
    assert resp.decision == pb.DECISION_ALLOW
    assert validator.requests == []
    resp = await sidecar.stub.Enforce(refund())
    assert resp.decision == pb.DECISION_BLOCK
    assert len(validator.requests) == 1


async def test_no_validator_is_called_once_another_policy_blocks(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    too_expensive = {
        "name": "Too Expensive",
        "policyType": "cost_limit",
        "enforcementMode": "block",
        "ruleDefinition": {"max_cost_per_execution": 1},
    }
    sidecar = await start_with(start_sidecar, validator, extra_policies=[too_expensive])
    resp = await sidecar.stub.Enforce(refund(estimated_cost_usd=5))
    assert [v.policy_name for v in resp.violations] == ["Too Expensive"]
    assert validator.requests == []


async def test_plain_http_is_refused_without_the_flag_and_served_with_it(
    start_sidecar: StartSidecar,
) -> None:
    async with HttpsServer(DENY, tls=False) as plain:
        snapshot = validator_snapshot(f"{plain.url}/check")
        refused = await start_sidecar(snapshot, name="strict")
        assert refused.sidecar.holder.active is None
        rejection = refused.sidecar.holder.last_rejection
        assert rejection is not None
        (error,) = rejection.errors
        assert error.path == "policies[0].ruleDefinition.url"
        assert "--allow-insecure-validators" in error.message
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await refused.stub.Enforce(refund())
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

        allowed = await start_sidecar(snapshot, name="dev", allow_insecure_validators=True)
        resp = await allowed.stub.Enforce(refund())
        assert resp.decision == pb.DECISION_BLOCK
        assert resp.violations[0].message == "refunds above 100 USD need a manager"
        assert signature_holds(plain.requests[0])


async def test_a_new_snapshot_moves_calls_to_the_new_url(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    sidecar = await start_with(start_sidecar, validator)
    await sidecar.stub.Enforce(refund())
    async with HttpsServer(DENY) as other:
        await sidecar.write_snapshot(
            validator_snapshot(other.url, ca_file=other.ca_file) | {"revision": 2}
        )
        await sidecar.wait_for(lambda: sidecar.revision == 2)
        resp = await sidecar.stub.Enforce(refund())
        assert resp.decision == pb.DECISION_BLOCK
        assert (len(validator.requests), len(other.requests)) == (1, 1)


async def test_calls_reuse_connections(start_sidecar: StartSidecar, validator: HttpsServer) -> None:
    sidecar = await start_with(start_sidecar, validator)
    for _ in range(5):
        await sidecar.stub.Enforce(refund())
    assert len(validator.requests) == 5
    assert validator.connections == 1


async def test_a_slow_answer_within_the_timeout_is_used(
    start_sidecar: StartSidecar, validator: HttpsServer
) -> None:
    validator.respond_with(Delay(0.1, DENY))
    sidecar = await start_with(start_sidecar, validator, timeout_ms=2000)
    resp = await sidecar.stub.Enforce(refund())
    assert resp.violations[0].message == "refunds above 100 USD need a manager"
