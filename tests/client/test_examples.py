"""The README's Python examples run as written against real sidecars: the
quickstart on examples/policies.yaml, and the require_approval example on
examples/approvals.yaml (whose policies are the README's) with a reviewer
deciding through `pdp approvals`; and the trace example, read from the
README, with `pdp incidents`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests._process import PdpProcess, PythonProcess, run_pdp, run_python
from tests.client.conftest import REPO, Sidecar

# The examples run as processes: up to 32 s each on a loaded machine.
pytestmark = [pytest.mark.sidecar, pytest.mark.timeout(180)]


def test_quickstart_runs_against_the_example_snapshot(sidecar: Sidecar) -> None:
    done = run_python(
        str(REPO / "clients" / "python" / "examples" / "quickstart.py"),
        env={"PDP_TARGET": sidecar.target},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"my-chatbot: allowed \(decision [0-9a-f]{32}\)", lines[0]), lines
    assert lines[1:] == [
        "my-chatbot: blocked by injection_scan",
        "support-bot: paused (Detected harmful outputs in production)",
        "agent-a may execute agent-b: true",
    ]


def test_the_readmes_quickstart_is_examples_quickstart_and_runs(sidecar: Sidecar) -> None:
    """The README shows examples/quickstart.py verbatim; it runs as written."""
    program = REPO / "examples" / "quickstart.py"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"```python\n{program.read_text(encoding='utf-8')}```" in readme
    done = run_python(str(program), env={"PDP_TARGET": sidecar.target})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "You asked: 'What is the capital of France?'. My SSN is ***-**-6789.",
        "blocked by injection_scan",
        "paused: Detected harmful outputs in production",
        "email blocked by injection_scan",
    ]


def readme_policies() -> list[dict[str, Any]]:
    """The policies of the README's YAML example (its one list of policies)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(policies:\n.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "the README has one YAML list of policies"
    policies: list[dict[str, Any]] = yaml.safe_load(blocks[0])["policies"]
    return policies


def test_the_approval_example_holds_the_readmes_policies() -> None:
    readme = {p["name"]: p for p in readme_policies()}
    example = yaml.safe_load((REPO / "examples" / "approvals.yaml").read_text(encoding="utf-8"))
    for policy in example["policies"]:
        assert readme.get(policy["name"]) == policy, f"{policy['name']} differs from the README's"
    held = {p["name"] for p in readme.values() if p["enforcementMode"] == "require_approval"}
    assert held == {"No Shell In Production"}
    assert held <= {p["name"] for p in example["policies"]}


@pytest.mark.parametrize(
    ("verb", "code", "said"),
    [
        ("approve", 0, "approved: running 'kubectl rollout restart deployment/api'"),
        ("deny", 2, "denied by alice: not during the freeze"),
    ],
)
def test_the_approval_example_runs_end_to_end(
    tmp_path: Path, verb: str, code: int, said: str
) -> None:
    """The README's require_approval example as a user runs it: the sidecar,
    the agent (clients/python/examples/approval.py) and the reviewer's
    `pdp approvals`, each its own process."""
    state = tmp_path / "approvals.db"
    sidecar = PdpProcess(
        ["serve", "--snapshot", str(REPO / "examples" / "approvals.yaml"),
         "--state", str(state), "--listen", "127.0.0.1:0"],
    )  # fmt: skip
    try:
        agent = PythonProcess(
            [str(REPO / "clients" / "python" / "examples" / "approval.py"), sidecar.address],
            ready=r"waiting for approval ([0-9a-f]{32})",
            stream="stdout",
        )
        approval_id = agent.match.group(1)
        listed = run_pdp("approvals", "list", "--state", str(state))
        assert listed.returncode == 0, listed.stderr
        assert approval_id in listed.stdout and "No Shell In Production" in listed.stdout
        decided = run_pdp(
            "approvals", verb, approval_id, "--state", str(state),
            "--reviewer", "alice", "--comment", "not during the freeze",
        )  # fmt: skip
        assert decided.returncode == 0, decided.stderr
        assert agent.proc.wait(timeout=30) == code, "".join(agent.output + agent.log)
        assert said in "".join(agent.output), agent.output
    finally:
        sidecar.stop()


def test_the_trace_example_runs_as_written(tmp_path: Path) -> None:
    """The README's trace example: its Python block against a sidecar on
    examples/policies.yaml prints what its comment says, and `pdp
    incidents` shows the incident."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Traces and incidents") :]
    code, said = re.findall(r"<<'PY'\n(.*?)\nPY\n# (.*?)\n", section, flags=re.DOTALL)[0]
    state = tmp_path / "traces.db"
    sidecar = PdpProcess(
        ["serve", "--snapshot", str(REPO / "examples" / "policies.yaml"),
         "--state", str(state), "--listen", "127.0.0.1:0"],
    )  # fmt: skip
    try:
        script = tmp_path / "trace.py"
        script.write_text(code.replace("127.0.0.1:50053", sidecar.address), encoding="utf-8")
        done = run_python(str(script))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == said
        shown = run_pdp("incidents", "--state", str(state))
        assert shown.returncode == 0, shown.stderr
        assert "Block Prompt Injection (block)  ANOMALY" in shown.stdout
        assert "request call-42  cost 0.0120 USD" in shown.stdout
    finally:
        sidecar.stop()
