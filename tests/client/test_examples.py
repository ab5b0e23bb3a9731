"""The README's Python example runs as written against the real sidecar on
examples/policies.yaml, and says what the TypeScript one says."""

from __future__ import annotations

import re

import pytest

from tests._process import run_python
from tests.client.conftest import REPO, Sidecar

pytestmark = pytest.mark.sidecar


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
