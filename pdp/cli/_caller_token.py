"""``pdp caller-token``: mint a caller token for a standalone sidecar's
agent. The token goes to the agent's deployment (the SDKs' ``caller_token``
or ``PDP_CALLER_TOKEN``); the SHA-256 goes in the snapshot file, under the
agent's ``callerTokens``. A control plane issues tokens itself
(``POST /api/v1/agents/ID/caller-tokens``)."""

from __future__ import annotations

import argparse
import json
import sys

from ._args import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    mint = subparsers.add_parser(
        "caller-token",
        help="mint a caller token and the SHA-256 a snapshot lists for it",
    )
    mint.add_argument("agent", help="the agent id the token acts as (written into the snippet)")
    mint.add_argument("--json", action="store_true", help="print {agentId, token, sha256} as JSON")
    mint.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pdp.engine import new_caller_token

    token, digest = new_caller_token()
    if args.json:
        print(json.dumps({"agentId": args.agent, "token": token, "sha256": digest}))
        return 0
    sys.stderr.write(
        "The token is shown once: give it to the agent's deployment (PDP_CALLER_TOKEN or the "
        "SDK's caller_token). Put the sha256 in the snapshot, under the agent.\n"
    )
    print(f"token: {token}")
    print(f"sha256: {digest}")
    print("snapshot:")
    print("  agents:")
    print(f"    - id: {json.dumps(args.agent)}")
    print("      callerTokens:")
    print(f"        - sha256: {digest}")
    return 0
