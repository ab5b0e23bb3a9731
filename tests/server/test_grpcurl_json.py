"""The README's grpcurl bodies, read the way grpcurl reads ``-d``
(proto3 JSON: an enum is its value's full name or its number), reach a real
sidecar as valid requests; a short enum name never parses, and an unknown
number is refused naming the field and listing the values it takes."""

from __future__ import annotations

import re

import grpc
import pytest
from google.protobuf import json_format

from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import REPO, RunningSidecar

Requests = {"Authorize": pb.AuthorizeRequest, "Enforce": pb.EnforceRequest}


def readme_grpcurl_bodies() -> list[tuple[str, str]]:
    """(method, -d body) of each grpcurl command in the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.findall(
        r"grpcurl -plaintext -d '(.*?)' \\\s+\S+ pdp\.v1\.PolicyDecisionService/(\w+)",
        text,
        flags=re.DOTALL,
    )
    return [(method, body) for body, method in found]


def test_the_readme_has_grpcurl_examples() -> None:
    assert {method for method, _ in readme_grpcurl_bodies()} == {"Authorize", "Enforce"}


async def test_readme_grpcurl_bodies_are_accepted(example_sidecar: RunningSidecar) -> None:
    for method, body in readme_grpcurl_bodies():
        request = json_format.Parse(body, Requests[method]())
        answer = await getattr(example_sidecar.stub, method)(request)
        assert answer.IsInitialized(), method


async def test_enum_names_and_numbers_mean_the_same(example_sidecar: RunningSidecar) -> None:
    by_name = json_format.Parse('{"action": "ACTION_EXECUTE"}', pb.AuthorizeRequest())
    by_number = json_format.Parse('{"action": 1}', pb.AuthorizeRequest())
    assert by_name == by_number
    with pytest.raises(json_format.ParseError):
        json_format.Parse('{"action": "execute"}', pb.AuthorizeRequest())


@pytest.mark.parametrize("action", [0, 99])
async def test_a_missing_or_unknown_action_lists_the_values(
    example_sidecar: RunningSidecar, action: int
) -> None:
    request = pb.AuthorizeRequest(source_agent_id="my-chatbot", target_agent_id="support-bot")
    request.action = action  # type: ignore[assignment]  # any number goes on the wire
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await example_sidecar.stub.Authorize(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    assert (
        "action" in details and "ACTION_EXECUTE (1)" in details and "ACTION_DELEGATE (8)" in details
    )
