"""An agent that needs a reviewer before it runs a shell command in
production: the README's require_approval example. With a sidecar on
examples/approvals.yaml:

    .venv/bin/pdp serve --snapshot examples/approvals.yaml --state .pdp/approvals.db \\
        --listen 127.0.0.1:50052 &
    .venv/bin/python clients/python/examples/approval.py 127.0.0.1:50052

It prints the approval's id and waits; a reviewer decides in another shell:

    .venv/bin/pdp approvals list --state .pdp/approvals.db
    .venv/bin/pdp approvals approve ID --state .pdp/approvals.db --comment "go ahead"

Exit code 0 when approved (and run), 2 when denied or expired, 3 when
nobody decided within PDP_APPROVAL_WAIT seconds (default 300).
"""

from __future__ import annotations

import os
import sys

from pdp_client import Client, EnforceResult, PolicyBlockedError

COMMAND = "kubectl rollout restart deployment/api"


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50052"
    wait = float(os.environ.get("PDP_APPROVAL_WAIT", "300"))
    with Client(target) as pdp:

        def run_shell(approval_id: str | None = None, wait: float | None = None) -> EnforceResult:
            return pdp.enforce_policy(
                "my-chatbot",
                COMMAND,
                tool="shell",
                metadata={"env": "prod"},
                approval_id=approval_id,
                wait_for_approval=wait,
            )

        held = run_shell()
        if held.decision != "PENDING_APPROVAL" or held.approval_expires_at is None:
            print(f"not held for approval: {held.decision}")
            return 1
        expires = held.approval_expires_at.strftime("%H:%M:%S")
        print(f"waiting for approval {held.approval_id} (expires {expires} UTC)", flush=True)
        try:
            # The same request with the approval's id: it goes through once
            # the reviewer approves, and only once.
            result = run_shell(held.approval_id, wait)
        except PolicyBlockedError as err:
            print(f"not run: {err}")  # e.g. "approval ... denied by alice: not during the freeze"
            return 2
    if result.decision == "PENDING_APPROVAL":
        print(f"nobody decided within {wait:g}s; ask again later with the approval id")
        return 3
    print(f"approved: running {COMMAND!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
