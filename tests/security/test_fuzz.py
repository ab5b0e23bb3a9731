"""Fuzzing where input enters, against real servers: Enforce requests with
random field values (text of any code point, invalid UTF-8, huge, NaN and
infinite numbers, unknown enum values) sent to an in-process sidecar, and
random JSON bodies sent to a control plane. Whatever arrives, the answer is
a decision or an error that names the field at fault; never a crash, an
UNKNOWN or a 500, and the servers keep serving. Bounded to a few seconds."""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.control._objects import POLICY_WRITABLE_FIELDS
from pdp.engine import POLICY_TYPES
from pdp.engine._registry import REGISTRY
from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import EXAMPLE_SNAPSHOT, RunningSidecar, StartSidecar
from tests.control._harness import ControlPlaneHarness

# In the suite, the same 120 examples each run (a CI failure reproduces);
# `make fuzz` sets PDP_FUZZ_EXAMPLES and explores new ones.
_EXAMPLES = os.environ.get("PDP_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_EXAMPLES) if _EXAMPLES else 120,
    deadline=None,
    derandomize=not _EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ENFORCE = "/pdp.v1.PolicyDecisionService/Enforce"

# Any code point but surrogates (protobuf strings are UTF-8), weighted
# towards the tricky ones.
any_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\u200b", "\u202e", "\x00", "\ufeff", "İ", "ﬁ", " "]),
    ),
    max_size=64,
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e-308, 5e-324, 2.0**63, math.nan]),
)
agent_ids = st.one_of(
    st.sampled_from(["my-chatbot", "support-bot", "6d1f4a52-3c1e-4b8e-9a57-0c2b7e1d9a01", ""]),
    any_text,
    st.text(min_size=250, max_size=400),
)


@st.composite
def enforce_requests(draw: st.DrawFn) -> bytes:
    request = pb.EnforceRequest(
        agent_id=draw(agent_ids),
        model=draw(any_text),
        tool=draw(any_text),
        request_id=draw(any_text),
        approval_id=draw(st.one_of(st.just(""), any_text)),
    )
    if draw(st.booleans()):
        request.input = draw(st.one_of(any_text, st.text(min_size=1000, max_size=5000)))
    if draw(st.booleans()):
        request.output = draw(any_text)
    if draw(st.booleans()):
        request.estimated_cost_usd = draw(numbers)
    for key, value in draw(st.dictionaries(any_text, any_text, max_size=5)).items():
        request.metadata[key] = value
    for _ in range(draw(st.integers(0, 3))):
        item = request.context.add(source=draw(any_text), content=draw(any_text))
        item.kind = draw(st.integers(-5, 100))  # type: ignore[assignment]
    data = request.SerializeToString()
    if draw(st.booleans()):
        # A string field (top level or nested) holding bytes that are not UTF-8.
        number = draw(st.sampled_from([1, 2, 3, 5, 6, 8, 9]))
        raw = draw(st.binary(min_size=1, max_size=16)) + b"\xff\xfe"
        data += bytes([number << 3 | 2, len(raw)]) + raw
    return data


def _field_of(error: grpc.aio.AioRpcError) -> str:
    pairs: list[tuple[str, bytes]] = list(error.trailing_metadata() or ())  # type: ignore[arg-type]
    details = dict(pairs).get("grpc-status-details-bin")
    assert details is not None, f"{error.code()} without details: {error.details()}"
    status = status_pb2.Status.FromString(details)
    bad = error_details_pb2.BadRequest()
    assert status.details and status.details[0].Unpack(bad), error.details()
    return str(bad.field_violations[0].field)


@pytest.fixture
async def sidecar(start_sidecar: StartSidecar) -> RunningSidecar:
    return await start_sidecar(EXAMPLE_SNAPSHOT.read_text())


@pytest.mark.timeout(0 if _EXAMPLES else 120)  # 0: no limit
@FUZZ
@given(data=enforce_requests())
async def test_enforce_answers_every_request_or_names_the_field(
    sidecar: RunningSidecar, data: bytes
) -> None:
    call = sidecar.channel.unary_unary(ENFORCE, request_serializer=None, response_deserializer=None)
    failure: grpc.aio.AioRpcError | None = None
    try:
        answer = pb.EnforceResponse.FromString(await call(data, timeout=10))
    except grpc.aio.AioRpcError as error:
        failure = error
    if failure is None:
        assert answer.decision != pb.DECISION_UNSPECIFIED and answer.decision_id
    else:
        assert failure.code() in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ), (failure.code(), failure.details())
        assert _field_of(failure), failure.details()
    health = health_pb2_grpc.HealthStub(sidecar.channel)
    served = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert served.status == health_pb2.HealthCheckResponse.SERVING


# Control plane ---------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    # Lone surrogates, which JSON can escape and no UTF-8 document can hold.
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
# The keys a policy body and its rule definitions take, from the project's
# own lists, so that the fuzzer reaches the engine's checks of each type.
POLICY_KEYS = list(POLICY_WRITABLE_FIELDS)
RULE_KEYS = sorted({key for entry in REGISTRY.values() for key in entry.rule_fields})


def _shaped(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


policy_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "name": st.one_of(any_text, json_values),
            "policyType": st.sampled_from([*POLICY_TYPES, "x"]),
            "enforcementMode": st.sampled_from(["block", "warn", "monitor", "nope"]),
            "ruleDefinition": _shaped(RULE_KEYS, json_values),
        },
        optional={
            "appliesToAgents": st.lists(st.sampled_from(["bot", "bot", "ghost"]), max_size=4),
            "prerequisites": json_values,
            "severity": json_values,
            "isActive": json_values,
        },
    ),
    _shaped(POLICY_KEYS, json_values),
)
ROUTES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("POST", "/policies", policy_bodies),
    ("PATCH", "/policies/seed", policy_bodies),
    ("POST", "/agents", st.one_of(json_values, _shaped(["name", "description"], json_values))),
    ("PATCH", "/agents/bot/pause", st.one_of(json_values, _shaped(["reason"], json_values))),
    (
        "POST",
        "/agents/bot/grants",
        st.one_of(
            json_values, _shaped(["targetAgentId", "allowedActions", "expiresAt"], json_values)
        ),
    ),
    (
        "POST",
        "/agents/authorize",
        _shaped(["sourceAgentId", "targetAgentId", "action"], json_values),
    ),
]


@st.composite
def control_requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    method, path, bodies = draw(st.sampled_from(ROUTES))
    body = json.dumps(draw(bodies)).encode()
    return method, path, body


@pytest.fixture
async def seeded(control_plane: ControlPlaneHarness) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a control plane that knows the agent "bot" and the
    policy "seed"."""
    async with control_plane.client() as client:
        (await client.post("/agents", json={"name": "bot"})).raise_for_status()
        seed = {
            "name": "seed",
            "policyType": "cost_limit",
            "enforcementMode": "block",
            "ruleDefinition": {"max_cost_per_execution": 5},
        }
        (await client.post("/policies", json=seed)).raise_for_status()
        yield client


@pytest.mark.timeout(0 if _EXAMPLES else 120)  # 0: no limit
@FUZZ
@given(request=control_requests())
async def test_control_plane_answers_every_body_or_names_the_field(
    seeded: httpx.AsyncClient, request: tuple[str, str, bytes]
) -> None:
    method, path, body = request
    client = seeded
    response = await client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"]
        # A body that is not an object is about the whole body, a 404 about
        # the path (an earlier example may have renamed "seed"); any other
        # error names the field.
        whole = not body.startswith(b"{") or error["code"] == "malformed_json"
        about_path = response.status_code == 404 and any(
            f"'{ref}'" in error["message"] for ref in ("seed", "bot")
        )
        assert whole or about_path or error["field"], (response.status_code, error, body[:300])
    published = await client.get("/snapshot")
    assert published.status_code == 200
    json.loads(published.content.decode("utf-8"))
