"""The Python SDK's copy of the agent id rule agrees with the engine's: the
SDK cannot import the engine (it depends on grpcio and protobuf only), so
this test holds the two copies together. For every id within the length
limit (lengths are the sidecar's to check), both give the same canonical
form, or both refuse it with the same reason."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pdp_client import InvalidRequestError, _calls
from pdp_client import _agent_id as sdk

from pdp.engine import MAX_AGENT_ID_CHARS, AgentIdError, canonical_agent_id

SAMPLES = [
    "support-bot",
    "Support Bot",
    "support-bot ",
    " support-bot",
    "support-bot\u00a0",
    "support\u200d-bot",
    "support-\u200bbot",
    "\u202esupport-bot",
    "support-bot\x00",
    "support-bot\t",
    "support-bot\u2028",
    "\uff53upport-bot",
    "supp\u043ert-bot",
    "\ufb01le-bot",  # ligature fi: NFKC makes it two letters
    "\ud800",
    "\ue000-bot",
    "\u0378-bot",  # unassigned
    "",
    "   ",
    "x" * 256,
    "\ufdfa" * 14,  # one character that NFKC makes 18
]


def _engine(raw: str) -> tuple[str, str]:
    try:
        return canonical_agent_id(raw), ""
    except AgentIdError as exc:
        return "", exc.reason


def _sdk(raw: str) -> tuple[str, str]:
    try:
        return sdk.canonical_agent_id(raw), ""
    except ValueError as exc:
        return "", str(exc)


@pytest.mark.parametrize("raw", SAMPLES, ids=[ascii(s)[:40] for s in SAMPLES])
def test_the_sdk_and_the_engine_agree_on_each_sample(raw: str) -> None:
    assert _sdk(raw) == _engine(raw)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet=st.characters(codec="utf-8"), max_size=8))
def test_the_sdk_and_the_engine_agree_on_any_text(raw: str) -> None:
    assume(len(unicodedata.normalize("NFKC", raw)) <= MAX_AGENT_ID_CHARS)
    assert _sdk(raw) == _engine(raw)


def test_lengths_are_left_to_the_sidecar() -> None:
    long = "x" * (MAX_AGENT_ID_CHARS + 1)
    assert _sdk(long) == (long, "")
    assert _engine(long)[1] == f"longer than {MAX_AGENT_ID_CHARS} characters"


def test_the_sdk_sends_the_canonical_form_and_refuses_the_rest_locally() -> None:
    call = _calls.enforce(
        "\uff53upport-bot",
        "hi",
        output=None,
        estimated_cost_usd=None,
        model=None,
        tool=None,
        metadata=None,
        request_id=None,
    )
    assert call.request.agent_id == "support-bot"
    with pytest.raises(InvalidRequestError) as caught:
        _calls.agent_status("support-bot\u200d")
    assert caught.value.field == "agent_id"
    assert "format character" in str(caught.value)
