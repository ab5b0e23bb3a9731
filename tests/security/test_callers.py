"""Callers are identified: with ``--require-caller-token`` a call carries its
agent's caller token and may act only as that agent (Enforce, ReportUsage,
Authorize, AgentStatus, AwaitApproval); the snapshot holds only the tokens'
SHA-256. Without the flag the sidecar stays open (the quick start). TCP
listeners serve mutual TLS; a Unix socket's permission bits decide which
users may connect."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc
import pytest
from pdp_client import (
    AsyncClient,
    CallerRefusedError,
    Decision,
    SidecarUnavailableError,
)

from pdp.engine import new_caller_token
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._process import run_pdp
from tests._tls import Certificates
from tests.conftest import RunningSidecar, StartSidecar
from tests.control._harness import ControlPlaneHarness
from tests.security.test_kill_switch import seconds_until_decision

ALICE_TOKEN, ALICE_SHA = new_caller_token()
BOB_TOKEN, BOB_SHA = new_caller_token()


def _document(**extra: Any) -> dict[str, Any]:
    return {
        "revision": 1,
        "agents": [
            {"id": "alice", "name": "Alice", "callerTokens": [{"sha256": ALICE_SHA}]},
            {"id": "bob", "callerTokens": [{"sha256": BOB_SHA}]},
            {"id": "carol"},  # no token: no caller can act as carol
        ],
        "policies": [
            {
                "name": "daily",
                "policyType": "cost_limit",
                "enforcementMode": "block",
                "ruleDefinition": {"daily_budget": 10},
            },
            {
                "name": "review deletes",
                "policyType": "expression",
                "enforcementMode": "require_approval",
                "ruleDefinition": {"expression": "request.tool == 'delete'"},
            },
        ],
        "grants": [
            {"sourceAgentId": "alice", "targetAgentId": "bob", "allowedActions": ["invoke"]},
            {"sourceAgentId": "bob", "targetAgentId": "alice", "allowedActions": ["invoke"]},
        ],
        **extra,
    }


@pytest.fixture
async def strict(start_sidecar: StartSidecar) -> RunningSidecar:
    return await start_sidecar(_document(), require_caller_token=True)


async def test_a_caller_acts_only_as_the_agent_of_its_token(strict: RunningSidecar) -> None:
    async with AsyncClient(strict.address, caller_token=ALICE_TOKEN) as alice:
        assert (await alice.enforce_policy("alice", input="hi")).decision is Decision.ALLOW
        # By name too: the token binds the agent, not the spelling.
        assert (await alice.enforce_policy("Alice", input="hi")).decision is Decision.ALLOW
        assert (await alice.report_usage("alice", 1.0, "r1")).daily_spend_usd == 1.0
        assert (await alice.authorize("alice", "bob", "invoke")).allowed
        assert (await alice.agent_status("alice")).agent_id == "alice"

        # Everything as bob is refused, naming whose token it is.
        calls = [
            alice.enforce_policy("bob", input="hi"),
            alice.report_usage("bob", 9.99, "r2"),
            alice.authorize("bob", "alice", "invoke"),
            alice.agent_status("bob"),
            alice.enforce_policy("carol", input="hi"),
            alice.enforce_policy("made-up", input="hi"),
        ]
        for call in calls:
            with pytest.raises(CallerRefusedError) as refused:
                await call
            assert refused.value.code is grpc.StatusCode.PERMISSION_DENIED
            assert "agent 'alice''s" in str(refused.value)

    # Bob's budget was not touched by alice's attempt to inflate it.
    async with AsyncClient(strict.address, caller_token=BOB_TOKEN) as bob:
        status = await bob.agent_status("bob")
        assert [b.spent_usd for b in status.budgets] == [0.0]
        allowed = await bob.enforce_policy("bob", input="hi", estimated_cost_usd=9)
        assert allowed.decision is Decision.ALLOW


async def test_batches_and_streams_act_only_as_the_agent_of_the_token(
    strict: RunningSidecar,
) -> None:
    async with AsyncClient(strict.address, caller_token=ALICE_TOKEN) as alice:
        mine = [{"agent_id": "alice", "estimated_cost_usd": 1.0}]
        outcomes = await alice.enforce_batch(mine * 2)
        assert [o.unwrap().decision for o in outcomes] == [Decision.ALLOW, Decision.ALLOW]
        # One item for bob refuses the whole batch before anything is charged.
        with pytest.raises(CallerRefusedError):
            await alice.enforce_batch([*mine, {"agent_id": "bob", "estimated_cost_usd": 1.0}])
        async with alice.enforce_stream() as stream:
            with pytest.raises(CallerRefusedError):
                await stream.enforce_policy("bob", input="hi")
            assert (await stream.enforce_policy("alice", input="hi")).decision is Decision.ALLOW
        status = await alice.agent_status("alice")
        assert [b.spent_usd for b in status.budgets] == [2.0]


async def test_each_item_of_a_packed_stream_message_is_checked_against_the_token(
    strict: RunningSidecar,
) -> None:
    def item(item_id: str, agent_id: str) -> pb.EnforceStreamItem:
        request = pb.EnforceRequest(agent_id=agent_id, input="hi", estimated_cost_usd=1.0)
        return pb.EnforceStreamItem(id=item_id, request=request)

    packed = pb.EnforceStreamRequest(
        items=[item("mine", "alice"), item("bobs", "bob"), item("carols", "carol")]
    )

    async def feed() -> Any:
        yield packed

    stream = strict.stub.EnforceStream(feed(), metadata=(("x-pdp-caller-token", ALICE_TOKEN),))
    (answer,) = [a async for a in stream]
    mine, bobs, carols = answer.answers
    assert mine.response.decision == pb.DECISION_ALLOW
    assert (bobs.id, bobs.error.code) == ("bobs", "PERMISSION_DENIED")
    assert (carols.id, carols.error.code) == ("carols", "PERMISSION_DENIED")
    # Only alice's item was charged.
    async with AsyncClient(strict.address, caller_token=ALICE_TOKEN) as alice:
        assert [b.spent_usd for b in (await alice.agent_status("alice")).budgets] == [1.0]
    async with AsyncClient(strict.address, caller_token=BOB_TOKEN) as bob:
        assert [b.spent_usd for b in (await bob.agent_status("bob")).budgets] == [0.0]

    # Without a token, every item is refused and the stream still answers.
    unsigned = strict.stub.EnforceStream(feed())
    (answer,) = [a async for a in unsigned]
    assert {a.error.code for a in answer.answers} == {"UNAUTHENTICATED"}


async def test_calls_without_a_valid_token_are_refused(strict: RunningSidecar) -> None:
    async with AsyncClient(strict.address, fail_open=True) as anonymous:
        with pytest.raises(CallerRefusedError) as refused:
            await anonymous.enforce_policy("alice", input="hi")  # fail_open does not apply
        assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED
        assert "x-pdp-caller-token" in str(refused.value)
    unknown, _ = new_caller_token()
    async with AsyncClient(strict.address, caller_token=unknown) as stranger:
        with pytest.raises(CallerRefusedError, match="not one of agent 'alice'") as refused:
            await stranger.enforce_policy("alice", input="hi")
        assert refused.value.code is grpc.StatusCode.PERMISSION_DENIED
    # The raw header, as any gRPC client sends it; the health check needs none.
    call = strict.stub.Enforce(
        pb.EnforceRequest(agent_id="alice", input="hi"),
        metadata=(("x-pdp-caller-token", ALICE_TOKEN + " "),),
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_the_token_comes_from_the_environment(
    strict: RunningSidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDP_CALLER_TOKEN", BOB_TOKEN)
    async with AsyncClient(strict.address) as bob:
        assert (await bob.enforce_policy("bob", input="hi")).decision is Decision.ALLOW
        with pytest.raises(CallerRefusedError):
            await bob.enforce_policy("alice", input="hi")


async def test_an_approval_is_awaited_only_by_its_agent(strict: RunningSidecar) -> None:
    async with (
        AsyncClient(strict.address, caller_token=ALICE_TOKEN) as alice,
        AsyncClient(strict.address, caller_token=BOB_TOKEN) as bob,
    ):
        held = await alice.enforce_policy("alice", input="drop it", tool="delete")
        assert held.decision is Decision.PENDING_APPROVAL and held.approval_id
        assert (await alice.await_approval(held.approval_id, wait=0.01)).approval_id
        with pytest.raises(CallerRefusedError, match="cannot act as agent 'alice'"):
            await bob.await_approval(held.approval_id, wait=0.01)


async def test_without_the_flag_the_sidecar_stays_open(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(_document())
    async with AsyncClient(sidecar.address) as anyone:
        assert (await anyone.enforce_policy("bob", input="hi")).decision is Decision.ALLOW
        assert (await anyone.report_usage("bob", 1.0, "r1")).daily_spend_usd == 1.0


async def test_a_snapshot_holds_hashes_never_tokens(start_sidecar: StartSidecar) -> None:
    bad = _document()
    bad["agents"][1]["callerTokens"] = [{"sha256": BOB_TOKEN}]
    sidecar = await start_sidecar(_document(), require_caller_token=True)
    await sidecar.write_snapshot({**bad, "revision": 2})
    await sidecar.wait_for(lambda: sidecar.sidecar.holder.last_rejection is not None)
    rejection = sidecar.sidecar.holder.last_rejection
    assert rejection is not None
    assert "agents[1].callerTokens[0].sha256" in str(rejection.errors)
    assert BOB_TOKEN not in str(rejection.errors)
    assert sidecar.revision == 1  # the last good snapshot keeps serving


async def test_the_cli_mints_a_token_and_the_hash_a_snapshot_lists(
    start_sidecar: StartSidecar,
) -> None:
    minted = json.loads(run_pdp("caller-token", "carol", "--json").stdout)
    assert minted["agentId"] == "carol" and minted["token"].startswith("pdpct_")
    document = _document()
    document["agents"][2]["callerTokens"] = [{"sha256": minted["sha256"]}]
    sidecar = await start_sidecar(document, require_caller_token=True)
    async with AsyncClient(sidecar.address, caller_token=minted["token"]) as carol:
        assert (await carol.enforce_policy("carol", input="hi")).decision is Decision.ALLOW
    snippet = run_pdp("caller-token", "carol").stdout
    assert "callerTokens:" in snippet and "sha256:" in snippet


async def test_the_control_plane_issues_and_revokes_tokens(
    control_plane: ControlPlaneHarness, start_sidecar: StartSidecar
) -> None:
    async with control_plane.client() as api:
        (await api.post("/agents", json={"name": "dave"})).raise_for_status()
        (await api.post("/agents", json={"name": "erin"})).raise_for_status()
        issued = await api.post("/agents/dave/caller-tokens")
        assert issued.status_code == 201, issued.text
        token = issued.json()["token"]
        agent = (await api.get("/agents/dave")).json()
        # Shown once: the agent and the published snapshot carry its hash only.
        assert token not in json.dumps(agent)
        document = (await api.get("/snapshot")).text
        assert token not in document
        assert issued.json()["sha256"] in document

        sidecar = await start_sidecar(
            source=control_plane.snapshot_url,
            api_key=control_plane.api_key,
            require_caller_token=True,
        )
        async with AsyncClient(sidecar.address, caller_token=token) as dave:
            assert (await dave.enforce_policy("dave", input="hi")).decision is Decision.ALLOW
            with pytest.raises(CallerRefusedError):
                await dave.enforce_policy("erin", input="hi")
            # Revoked: the next revision refuses it.
            token_id = issued.json()["id"]
            revoked = await api.delete(f"/agents/dave/caller-tokens/{token_id}")
            assert revoked.status_code == 200, revoked.text
            assert revoked.json()["callerTokens"] == []
            revision = revoked.json()["revision"]
            await sidecar.wait_for(lambda: sidecar.revision >= revision)
            with pytest.raises(CallerRefusedError):
                await dave.enforce_policy("dave", input="hi")
        missing = await api.delete(f"/agents/dave/caller-tokens/{token_id}")
        assert missing.status_code == 404


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates.create(tmp_path / "tls")


async def test_mutual_tls_admits_only_clients_with_a_certificate(
    start_sidecar: StartSidecar, certificates: Certificates
) -> None:
    sidecar = await start_sidecar(
        _document(),
        tls_cert=str(certificates.cert_file),
        tls_key=str(certificates.key_file),
        client_ca=str(certificates.ca_file),
    )
    async with AsyncClient(
        sidecar.address,
        ca_file=str(certificates.ca_file),
        cert_file=str(certificates.client_cert_file),
        key_file=str(certificates.client_key_file),
    ) as trusted:
        assert (await trusted.enforce_policy("alice", input="hi")).decision is Decision.ALLOW
    async with AsyncClient(sidecar.address, ca_file=str(certificates.ca_file)) as no_cert:
        with pytest.raises(SidecarUnavailableError):
            await no_cert.enforce_policy("alice", input="hi")
    async with AsyncClient(sidecar.address) as plain:
        with pytest.raises(SidecarUnavailableError):
            await plain.enforce_policy("alice", input="hi")


async def test_tls_without_a_client_ca_serves_any_client_over_tls(
    start_sidecar: StartSidecar, certificates: Certificates
) -> None:
    sidecar = await start_sidecar(
        _document(), tls_cert=str(certificates.cert_file), tls_key=str(certificates.key_file)
    )
    async with AsyncClient(sidecar.address, ca_file=str(certificates.ca_file)) as client:
        assert (await client.enforce_policy("alice", input="hi")).decision is Decision.ALLOW
    async with AsyncClient(sidecar.address, tls=True) as unverified:  # system CAs only
        with pytest.raises(SidecarUnavailableError):
            await unverified.enforce_policy("alice", input="hi")


_CONNECT_AS_NOBODY = """
import os, sys, grpc
from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
os.setgroups([]); os.setgid(65534); os.setuid(65534)
stub = pb_grpc.PolicyDecisionServiceStub(grpc.insecure_channel(sys.argv[1]))
try:
    stub.Enforce(pb.EnforceRequest(agent_id="alice", input="hi"), timeout=20)
    print("ANSWERED")
except grpc.RpcError as error:
    print(error.code().name, error.details())
"""


@pytest.mark.parametrize(
    ("mode", "group", "nobody_admitted"),
    [(0o600, None, False), (0o660, None, False), (0o660, "nogroup", True), (0o666, None, True)],
)
async def test_the_socket_mode_decides_which_users_may_connect(
    start_sidecar: StartSidecar,
    request: pytest.FixtureRequest,
    mode: int,
    group: str | None,
    nobody_admitted: bool,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("connecting as another user needs root")
    # A directory every user may reach (pytest's is its user's alone): the
    # socket's own bits decide.
    directory = Path(tempfile.mkdtemp(prefix="pdp-sock-"))
    request.addfinalizer(lambda: shutil.rmtree(directory, ignore_errors=True))
    os.chmod(directory, 0o755)
    socket_path = directory / "pdp.sock"
    sidecar = await start_sidecar(
        _document(), listen=f"unix:{socket_path}", socket_mode=mode, socket_group=group
    )
    st = socket_path.stat()
    assert stat.S_IMODE(st.st_mode) == mode
    if group is not None:
        assert st.st_gid == grp.getgrnam(group).gr_gid
    await seconds_until_decision(sidecar, "alice", pb.DECISION_ALLOW, within=15)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _CONNECT_AS_NOBODY, sidecar.address],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if nobody_admitted:
        assert result.stdout.strip() == "ANSWERED", result.stderr
    else:
        assert result.stdout.startswith("UNAVAILABLE"), (result.stdout, result.stderr)
        assert "Permission denied" in result.stdout


@pytest.mark.timeout(180)  # several pdp processes: slow to start on a loaded machine
def test_the_cli_checks_the_caller_options() -> None:
    wrong = run_pdp("serve", "--snapshot", "x.yaml", "--socket-mode", "0600")
    assert wrong.returncode == 2 and "unix:/path" in wrong.stderr
    wrong = run_pdp("serve", "--snapshot", "x.yaml", "--socket-group", "nogroup")
    assert wrong.returncode == 2 and "--socket-group applies only" in wrong.stderr
    wrong = run_pdp("serve", "--snapshot", "x.yaml", "--client-ca", "ca.pem")
    assert wrong.returncode == 2 and "--client-ca needs --tls-cert" in wrong.stderr
    wrong = run_pdp(
        "serve", "--snapshot", "x.yaml", "--listen", "unix:/tmp/x", "--socket-mode", "9"
    )
    assert wrong.returncode == 2 and "octal" in wrong.stderr
