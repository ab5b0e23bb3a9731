"""``pdp ctl`` as a user runs it: child processes against a real ``pdp
control`` process, the URL and the key file from the environment or the
options, errors that say what the control plane refused and why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests._process import run_python
from tests.control._harness import ControlPlaneProcess

# Each step is a ``pdp ctl`` process (about a second to start on a busy machine).
pytestmark = pytest.mark.timeout(300)


class Ctl:
    def __init__(self, proc: ControlPlaneProcess, key_file: Path) -> None:
        self.env = {"PDP_URL": proc.base_url, "PDP_API_KEY_FILE": str(key_file)}

    def __call__(self, *args: str, code: int = 0) -> str:
        result = run_python("-m", "pdp", "ctl", *args, env=self.env)
        assert result.returncode == code, (result.stdout, result.stderr)
        return result.stdout if code == 0 else result.stderr

    def json(self, *args: str) -> object:
        return json.loads(self("--json", *args))


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    proc = ControlPlaneProcess(tmp_path_factory.mktemp("ctl") / "control.db")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def ctl(control: ControlPlaneProcess, tmp_path: Path) -> Ctl:
    key_file = tmp_path / "key"
    key_file.write_text(control.api_key + "\n")
    return Ctl(control, key_file)


def test_agents_lifecycle(ctl: Ctl, tmp_path: Path) -> None:
    created = ctl("agents", "create", "billing-bot", "--description", "bills")
    assert created.startswith("created ") and "billing-bot  active" in created
    agent_id = created.split()[1]
    policy = {
        "name": "billing-pii",
        "policyType": "injection_scan",
        "enforcementMode": "block",
        "ruleDefinition": {},
        "appliesToAgents": ["billing-bot"],
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(policy))
    assert ctl("policies", "apply", "-f", str(tmp_path / "p.yaml")).startswith(
        "created billing-pii"
    )
    ctl("agents", "create", "helper-bot")
    ctl("grants", "create", "billing-bot", "--target", "helper-bot", "--actions", "invoke,read")

    assert "paused billing-bot" in ctl("agents", "pause", "billing-bot", "--reason", "incident")
    renamed = ctl("agents", "rename", "billing-bot", "invoice-bot")
    assert f"to invoice-bot ({agent_id})" in renamed
    agents = ctl.json("agents", "list")
    assert isinstance(agents, dict)
    invoice = next(a for a in agents["agents"] if a["id"] == agent_id)
    assert invoice["name"] == "invoice-bot" and invoice["paused"] is True  # pause carried
    # The policy and the grant still point at the agent.
    assert ctl.json("policies", "get", "billing-pii")["appliesToAgents"] == ["invoice-bot"]  # type: ignore[index]
    grants = ctl("grants", "list", "invoice-bot")
    assert f"{agent_id} -> " in grants and "invoke,read" in grants
    snapshot = ctl.json("snapshot", "get")
    assert isinstance(snapshot, dict)
    assert {"id": agent_id, "name": "invoice-bot"}.items() <= next(
        a for a in snapshot["agents"] if a["id"] == agent_id
    ).items()
    assert "resumed invoice-bot" in ctl("agents", "resume", agent_id)

    # A name taken is a conflict naming the field.
    clash = ctl("agents", "rename", "invoice-bot", "helper-bot", code=1)
    assert "HTTP 409 conflict" in clash and "'helper-bot'" in clash and "(field name)" in clash
    # A policy naming the agent holds its deletion up; then it goes, grants and all.
    held = ctl("agents", "delete", "invoice-bot", code=1)
    assert "HTTP 409" in held and "billing-pii" in held
    ctl("policies", "delete", "billing-pii")
    assert ctl("agents", "delete", "invoice-bot").startswith("deleted invoice-bot")
    assert "HTTP 404 not_found" in ctl("agents", "get", agent_id, code=1)
    snapshot = ctl.json("snapshot", "get")
    assert isinstance(snapshot, dict)
    assert all(g["sourceAgentId"] != agent_id for g in snapshot["grants"])


def test_policies_apply_creates_updates_and_reports_bad_fields(ctl: Ctl, tmp_path: Path) -> None:
    rule = {"policyType": "injection_scan", "enforcementMode": "block", "ruleDefinition": {}}
    first = {"policies": [{"name": "inj-a", **rule}, {"name": "inj-b", **rule}]}
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(first))
    assert ctl("policies", "apply", "-f", str(path)).splitlines()[1].startswith("created inj-b")
    changed = [{"name": "inj-a", **rule}, {"name": "inj-b", **rule, "enforcementMode": "warn"}]
    path.write_text(json.dumps(changed))
    lines = ctl("policies", "apply", "-f", str(path)).splitlines()
    assert lines[0].startswith("unchanged inj-a") and lines[1].startswith("updated inj-b")
    listed = ctl("policies", "list")
    assert "inj-b  injection_scan/warn  every agent" in listed

    path.write_text(json.dumps({"name": "bad", **rule, "enforcementMode": "shout"}))
    refused = ctl("policies", "apply", "-f", str(path), code=1)
    assert "HTTP 422" in refused and "enforcementMode" in refused
    path.write_text("[1, 2")
    assert "neither JSON nor YAML" in ctl("policies", "apply", "-f", str(path), code=2)


def test_keys_create_list_revoke(ctl: Ctl, control: ControlPlaneProcess, tmp_path: Path) -> None:
    out = ctl("keys", "create", "--name", "reviewer-ann", "--role", "reviewer")
    secret = out.strip().splitlines()[-1]
    key_id = out.split()[1]
    assert secret.startswith("pdp_")
    listed = ctl("keys", "list")
    assert f"{key_id}  reviewer-ann  reviewer  live" in listed and secret not in listed
    reviewer_file = tmp_path / "reviewer"
    reviewer_file.write_text(secret)
    as_reviewer = Ctl(control, reviewer_file)
    assert "reviewer-ann" not in as_reviewer("agents", "list")  # a reviewer may read
    refused = as_reviewer("keys", "list", code=1)
    assert "HTTP 403 role_not_allowed" in refused
    assert "revoked" in ctl("keys", "revoke", key_id)
    assert "HTTP 403 api_key_revoked" in as_reviewer("agents", "list", code=1)


def test_url_key_and_exit_codes(ctl: Ctl, control: ControlPlaneProcess, tmp_path: Path) -> None:
    key_file = tmp_path / "key2"
    key_file.write_text(control.api_key)
    options = ["--url", control.base_url, "--api-key-file", str(key_file)]
    result = run_python("-m", "pdp", "ctl", *options, "agents", "list")
    assert result.returncode == 0, result.stderr
    missing = run_python("-m", "pdp", "ctl", "--url", control.base_url, "agents", "list")
    assert missing.returncode == 1 and "HTTP 401 missing_api_key" in missing.stderr
    gone = run_python("-m", "pdp", "ctl", "--url", "http://127.0.0.1:9", "agents", "list")
    assert gone.returncode == 3 and "cannot reach the control plane" in gone.stderr
    no_file = run_python(
        "-m", "pdp", "ctl", "--api-key-file", str(tmp_path / "nope"), "agents", "list"
    )
    assert no_file.returncode == 2 and "cannot read" in no_file.stderr
    version = run_python("-m", "pdp", "--version")
    assert version.returncode == 0 and version.stdout.startswith("pdp ")
