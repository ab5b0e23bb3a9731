"""The README's Python example runs as written against the real sidecar on
examples/policies.yaml, and says what the TypeScript one says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.client.conftest import REPO, Sidecar

pytestmark = pytest.mark.sidecar


def test_quickstart_runs_against_the_example_snapshot(sidecar: Sidecar) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "clients" / "python" / "examples" / "quickstart.py")],
        env={**os.environ, "PDP_TARGET": sidecar.target},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"my-chatbot: allowed \(decision [0-9a-f]{32}\)", lines[0]), lines
    assert lines[1:] == [
        "my-chatbot: blocked by injection_scan",
        "support-bot: paused (Detected harmful outputs in production)",
        "agent-a may execute agent-b: true",
    ]
