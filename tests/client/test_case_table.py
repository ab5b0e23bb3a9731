"""The cross-language case table (clients/testdata/cases.json) through the
Python SDK, against the real sidecar on clients/testdata/snapshot.yaml.

Every client runs the same table against the same snapshot, so the languages
cannot drift; clients/testdata/README.md describes its format. The cases run
in table order, once per client kind (``Client``, ``AsyncClient``), each kind
against its own fresh sidecar (later usage cases depend on earlier ones);
each case is then one test that checks its recorded outcome.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pdp_client
import pytest
from pdp_client import AsyncClient, Client, EnforceRequest, PdpError

from pdp.embedded import EmbeddedClient
from tests.client.conftest import REPO, resolve, run_pdp_serve

pytestmark = pytest.mark.sidecar

TABLE_DIR = REPO / "clients" / "testdata"
TABLE: dict[str, Any] = json.loads((TABLE_DIR / "cases.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = TABLE["cases"]

# The SDK's name for each call of the table. A call the SDK does not offer
# (yet) has its cases skipped, naming it; once the SDK offers it, this runner
# must run it (_run), or its cases fail.
_SDK_FUNCTIONS = {"verifyWebhook": "verify_webhook"}
_CLIENT_METHODS = {
    "enforce": "enforce_policy",
    "authorize": "authorize",
    "agentStatus": "agent_status",
    "reportUsage": "report_usage",
    "awaitApproval": "await_approval",
    "enforceBatch": "enforce_batch",
    "submitTrace": "submit_trace",
}
_RUN_HERE = {
    "enforce",
    "authorize",
    "agentStatus",
    "reportUsage",
    "verifyWebhook",
    "awaitApproval",
    "enforceBatch",
}


def snake(name: str) -> str:
    """``estimatedCostUsd`` -> ``estimated_cost_usd``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def camel(path: str) -> str:
    """``requests[1].agent_id`` -> ``requests[1].agentId`` (a field path of the
    table's naming); bracketed keys are left as they are."""
    return re.sub(r"(?<=[a-z0-9])_([a-z0-9])", lambda m: m.group(1).upper(), path)


def number(value: float | str | None) -> float | None:
    """A number of the table: JSON numbers, or the proto3 JSON spellings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[value]
    return value


TableClient = Client | AsyncClient | EmbeddedClient


@dataclass(frozen=True)
class Outcome:
    """What one case's call returned or raised; ``skipped`` says why it did
    not run."""

    result: Any = None
    error: BaseException | None = None
    skipped: str = ""


def _enforce_request(request: Mapping[str, Any]) -> EnforceRequest:
    return EnforceRequest(
        request["agentId"],
        request.get("input"),
        output=request.get("output"),
        estimated_cost_usd=number(request.get("estimatedCostUsd")),
        model=request.get("model"),
        tool=request.get("tool"),
        metadata=request.get("metadata"),
        request_id=request.get("requestId"),
    )


async def _run(
    client: Client | AsyncClient | EmbeddedClient, call: str, request: Mapping[str, Any]
) -> Any:
    if call == "enforce":
        r = _enforce_request(request)
        return await resolve(
            client.enforce_policy(
                r.agent_id,
                r.input,
                output=r.output,
                estimated_cost_usd=r.estimated_cost_usd,
                model=r.model,
                tool=r.tool,
                metadata=r.metadata,
                request_id=r.request_id,
            )
        )
    if call == "enforceBatch":
        batch = [_enforce_request(r) for r in request["requests"]]
        outcomes = await resolve(client.enforce_batch(batch))
        return {"responses": [o.result if o.error is None else o.error for o in outcomes]}
    if call == "authorize":
        return await resolve(
            client.authorize(request["sourceAgentId"], request["targetAgentId"], request["action"])
        )
    if call == "agentStatus":
        return await resolve(client.agent_status(request["agentId"]))
    if call == "reportUsage":
        cost = number(request["costUsd"])
        assert cost is not None, "reportUsage needs costUsd"
        return await resolve(client.report_usage(request["agentId"], cost, request["requestId"]))
    if call == "awaitApproval":
        wait = number(request["timeoutSeconds"])
        assert wait is not None, "awaitApproval needs timeoutSeconds"
        return await resolve(client.await_approval(request["approvalId"], wait=wait))
    if call == "verifyWebhook":
        verify = pdp_client.verify_webhook  # type: ignore[attr-defined]
        event = verify(
            request["body"].encode(),
            request["headers"],
            request["secret"],
            tolerance_s=request["toleranceSeconds"],
        )
        return {"event": event}
    raise AssertionError(f"the table has a call this runner does not know: {call!r}")


def _not_offered(call: str) -> str:
    """Why a call's cases cannot run through the SDK; "" when they can."""
    if call in _SDK_FUNCTIONS:
        offered, name = (
            hasattr(pdp_client, _SDK_FUNCTIONS[call]),
            f"pdp_client.{_SDK_FUNCTIONS[call]}",
        )
    else:
        method = _CLIENT_METHODS[call]
        offered, name = hasattr(Client, method), f"pdp_client.Client.{method}"
    if not offered:
        return f"{name}() does not exist yet"
    if call not in _RUN_HERE:
        raise AssertionError(f"{name}() exists: run the table's {call!r} cases in _run")
    return ""


async def _run_table(client: TableClient) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for case in CASES:
        if reason := _not_offered(case["call"]):
            outcomes[case["name"]] = Outcome(skipped=reason)
            continue
        try:
            result = await _run(client, case["call"], case["request"])
        except Exception as error:  # the outcome the case checks
            outcomes[case["name"]] = Outcome(error=error)
        else:
            outcomes[case["name"]] = Outcome(result=result)
    return outcomes


async def _run_async(target: str) -> dict[str, Outcome]:
    async with AsyncClient(target, timeout=5.0) as client:
        return await _run_table(client)


async def _run_embedded(state: Path) -> dict[str, Outcome]:
    snapshot = str(TABLE_DIR / TABLE["snapshot"])
    async with await EmbeddedClient.open(snapshot, state=str(state), timeout=5.0) as client:
        return await _run_table(client)


@pytest.fixture(scope="module", params=["Client", "AsyncClient", "EmbeddedClient"])
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    state = tmp_path_factory.mktemp("case-table") / "state.db"
    if request.param == "EmbeddedClient":
        # The same engine in this process: the same answers, no gRPC.
        yield asyncio.run(_run_embedded(state))
        return
    sidecar = run_pdp_serve("127.0.0.1:0", state, TABLE_DIR / TABLE["snapshot"])
    try:
        if request.param == "Client":
            with Client(sidecar.target, timeout=5.0) as client:
                yield asyncio.run(_run_table(client))
        else:
            yield asyncio.run(_run_async(sidecar.target))
    finally:
        sidecar.stop()


def _value(obj: Any, key: str) -> Any:
    """The value the table's ``key`` names on a result, error or list item."""
    if isinstance(obj, Mapping):
        return obj[key]
    if key == "error":  # a batch item the client raised for
        return type(obj).__name__ if isinstance(obj, PdpError) else None
    if key == "violationTypes":
        return [v.policy_type for v in obj.violations]
    if key == "hasApprovalId":
        return bool(obj.approval_id)
    if key == "field":
        return None if obj.field is None else camel(obj.field)
    if key == "local":
        return obj.code is None
    value = getattr(obj, snake(key))
    return str(value) if key == "decision" else value


def _check(obj: Any, expected: Mapping[str, Any], where: str) -> list[str]:
    """Mismatches between ``obj`` and every key of ``expected``; a key this
    runner cannot read fails the case rather than being ignored."""
    problems: list[str] = []
    for key, want in expected.items():
        try:
            got = _value(obj, key)
        except (AttributeError, KeyError):
            problems.append(f"{where}{key}: this runner cannot read it from {type(obj).__name__}")
            continue
        if isinstance(want, list) and want and isinstance(want[0], dict):
            if len(got) != len(want):
                problems.append(f"{where}{key}: {len(got)} items, expected {len(want)}: {got}")
                continue
            for i, (item, wanted) in enumerate(zip(got, want, strict=True)):
                problems += _check(item, wanted, f"{where}{key}[{i}].")
        elif got != want:
            problems.append(f"{where}{key}: got {got!r}, expected {want!r}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any], outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case["name"]]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    expect = dict(case["expect"])
    wanted_error = expect.pop("error", None)
    if wanted_error is None:
        assert outcome.error is None, f"raised {outcome.error!r}, expected a result"
        subject = outcome.result
    else:
        assert outcome.error is not None, f"returned {outcome.result!r}, expected {wanted_error}"
        assert isinstance(outcome.error, PdpError), f"raised {outcome.error!r}"
        assert type(outcome.error).__name__ == wanted_error, f"raised {outcome.error!r}"
        subject = outcome.error
    problems = _check(subject, expect, "")
    assert not problems, "\n".join(problems)


def test_every_case_names_a_known_call() -> None:
    unknown = {c["call"] for c in CASES} - set(_CLIENT_METHODS) - set(_SDK_FUNCTIONS)
    assert not unknown, f"calls this runner does not know: {unknown}"
    assert len({c["name"] for c in CASES}) == len(CASES), "case names must be unique"
