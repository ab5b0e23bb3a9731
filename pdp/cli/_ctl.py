"""``pdp ctl``: the control plane's REST API from the command line.

``--url`` (or ``PDP_URL``) names the control plane, ``--api-key-file`` (or
``PDP_API_KEY_FILE``) the file holding its API key. Answers print as short
lines, or as the API's JSON with ``--json``. Exit codes: 0 done, 1 the
control plane refused (its status, code and message are printed, with the
field at fault), 2 bad arguments or files, 3 the control plane could not be
reached."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._args import Subparsers

__all__ = ["EXIT_REFUSED", "EXIT_UNREACHABLE", "EXIT_USAGE", "add_parser", "run"]

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
DEFAULT_URL = "http://127.0.0.1:8080"


class _Refused(Exception):
    """The control plane answered with an error."""


class _Usage(Exception):
    """Arguments or files that cannot be used."""


def add_parser(subparsers: Subparsers) -> None:
    ctl = subparsers.add_parser(
        "ctl",
        help="manage a control plane over its REST API (agents, policies, grants, keys)",
        description="Manage a running control plane. Exit codes: 0 done, 1 refused by the "
        "control plane, 2 bad arguments, 3 control plane unreachable.",
    )
    ctl.add_argument(
        "--url",
        default=None,
        help=f"the control plane (default $PDP_URL, else {DEFAULT_URL})",
    )
    ctl.add_argument(
        "--api-key-file",
        default=None,
        help="a file holding the API key (default $PDP_API_KEY_FILE)",
    )
    ctl.add_argument("--ca-file", default=None, help="PEM CA bundle to verify https with")
    ctl.add_argument("--json", action="store_true", help="print the API's JSON answers")
    ctl.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    ctl.set_defaults(run=run)
    kinds = ctl.add_subparsers(dest="ctl_kind", required=True)

    agents = kinds.add_parser("agents", help="agents and the kill switch").add_subparsers(
        dest="verb", required=True
    )
    agents.add_parser("list", help="every agent")
    agents.add_parser("get", help="one agent and the sidecars' view of it").add_argument("agent")
    create = agents.add_parser("create", help="register an agent")
    create.add_argument("name")
    create.add_argument("--description", default=None)
    pause = agents.add_parser("pause", help="refuse the agent's calls everywhere")
    pause.add_argument("agent", help="id or name")
    pause.add_argument("--reason", default="", help="shown to the agent's callers")
    agents.add_parser("resume", help="let a paused agent's calls through").add_argument("agent")
    agents.add_parser("delete", help="delete an agent and its grants").add_argument("agent")
    rename = agents.add_parser("rename", help="rename an agent (policies follow)")
    rename.add_argument("agent", help="id or current name")
    rename.add_argument("new_name")

    policies = kinds.add_parser("policies", help="policies").add_subparsers(
        dest="verb", required=True
    )
    policies.add_parser("list", help="every policy")
    policies.add_parser("get", help="one policy as JSON").add_argument("policy")
    apply = policies.add_parser(
        "apply", help="create or update policies from a file, matched by name"
    )
    apply.add_argument(
        "-f",
        "--file",
        required=True,
        help="YAML or JSON: one policy, a list of them, or {policies: [...]}; - reads stdin",
    )
    policies.add_parser("delete", help="delete a policy").add_argument("policy")

    grants = kinds.add_parser("grants", help="what agents may do to each other").add_subparsers(
        dest="verb", required=True
    )
    grants.add_parser("list", help="an agent's grants").add_argument("agent")
    grant = grants.add_parser("create", help="let AGENT do ACTIONS on --target")
    grant.add_argument("agent", help="the source agent, id or name")
    grant.add_argument("--target", required=True, help="the target agent, id or name")
    grant.add_argument("--actions", required=True, help="comma-separated, e.g. invoke,read")
    grant.add_argument("--expires-at", default=None, help="RFC 3339")
    revoke = grants.add_parser("delete", help="revoke a grant")
    revoke.add_argument("agent", help="the source agent, id or name")
    revoke.add_argument("grant_id")

    keys = kinds.add_parser("keys", help="API keys (admin)").add_subparsers(
        dest="verb", required=True
    )
    keys.add_parser("list", help="every key (never a secret)")
    key = keys.add_parser("create", help="create a key; prints it once, on the last line")
    key.add_argument("--name", required=True, help="who or what it is for")
    key.add_argument("--role", choices=("admin", "reviewer", "sidecar"), default="admin")
    key.add_argument("--expires-at", default=None, help="RFC 3339 (default never)")
    keys.add_parser("revoke", help="revoke a key by id").add_argument("key_id")

    snapshot = kinds.add_parser("snapshot", help="the published snapshot").add_subparsers(
        dest="verb", required=True
    )
    snapshot.add_parser("get", help="print the snapshot document sidecars read (JSON)")


def run(args: argparse.Namespace) -> int:
    import httpx

    try:
        client = _client(args)
    except _Usage as exc:
        print(f"pdp ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with client:
            action = _ACTIONS[(args.ctl_kind, args.verb)]
            return action(_Api(client, args.json), args)
    except _Usage as exc:
        print(f"pdp ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Refused as exc:
        print(f"pdp ctl: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except httpx.HTTPError as exc:
        print(
            f"pdp ctl: cannot reach the control plane at {client.base_url}: {exc}", file=sys.stderr
        )
        return EXIT_UNREACHABLE


def _client(args: argparse.Namespace) -> Any:
    import httpx

    url = (args.url or os.environ.get("PDP_URL") or DEFAULT_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise _Usage(f"--url: {url!r} is not an http:// or https:// URL")
    key_file = args.api_key_file or os.environ.get("PDP_API_KEY_FILE")
    headers = {"User-Agent": "pdp-ctl"}
    if key_file:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise _Usage(f"--api-key-file: cannot read {key_file!r}: {exc}") from None
        if not key:
            raise _Usage(f"--api-key-file: {key_file!r} is empty")
        headers["X-API-Key"] = key
    verify: Any = args.ca_file if args.ca_file else True
    return httpx.Client(
        base_url=f"{url}/api/v1/", headers=headers, timeout=args.timeout, verify=verify
    )


class _Api:
    def __init__(self, client: Any, as_json: bool) -> None:
        self._client = client
        self.as_json = as_json

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self._client.request(method, path.lstrip("/"), json=body)
        if answer.status_code >= 400:
            raise _Refused(_refusal(answer))
        try:
            return answer.json()
        except ValueError:
            raise _Refused(
                f"HTTP {answer.status_code} from {answer.request.url} is not JSON: is --url "
                "a pdp control plane?"
            ) from None

    def show(self, answer: Any, line: Callable[[Any], str]) -> int:
        if self.as_json:
            print(json.dumps(answer, indent=2, ensure_ascii=False))
        else:
            print(line(answer))
        return 0


def _refusal(answer: Any) -> str:
    """``HTTP 409 conflict: ... (field name)`` from the API's error body."""
    head = f"HTTP {answer.status_code}"
    try:
        error = answer.json()["error"]
    except (ValueError, KeyError, TypeError):
        text = answer.text.strip()[:200]
        return f"{head}: {text}" if text else head
    message = f"{head} {error.get('code', 'error')}: {error.get('message', '')}"
    problems = error.get("errors") or []
    if len(problems) > 1:
        message += "".join(
            f"\n  {p.get('field') or '(body)'}: {p.get('message')}" for p in problems
        )
    elif error.get("field"):
        message += f" (field {error['field']})"
    return message


def _quote(ref: str) -> str:
    from urllib.parse import quote

    return quote(ref, safe="")


def _agent_line(agent: Mapping[str, Any]) -> str:
    state = f"paused ({agent.get('pauseReason') or 'no reason'})" if agent["paused"] else "active"
    return f"{agent['id']}  {agent['name']}  {state}"


def _policy_line(policy: Mapping[str, Any]) -> str:
    active = "" if policy.get("isActive", True) else "  inactive"
    agents = ",".join(policy.get("appliesToAgents") or []) or "every agent"
    return (
        f"{policy['id']}  {policy['name']}  {policy['policyType']}/{policy['enforcementMode']}"
        f"  {agents}{active}"
    )


def _grant_line(grant: Mapping[str, Any]) -> str:
    expires = f"  expires {grant['expiresAt']}" if grant.get("expiresAt") else ""
    revoked = f"  revoked {grant['revokedAt']}" if grant.get("revokedAt") else ""
    actions = ",".join(grant["allowedActions"])
    pair = f"{grant['sourceAgentId']} -> {grant['targetAgentId']}"
    return f"{grant['id']}  {pair}  {actions}{expires}{revoked}"


def _key_line(key: Mapping[str, Any]) -> str:
    state = f"revoked {key['revokedAt']}" if key.get("revokedAt") else "live"
    expires = f"  expires {key['expiresAt']}" if key.get("expiresAt") else ""
    return f"{key['id']}  {key['name']}  {key['role']}  {state}{expires}"


def _lines(items: Sequence[Mapping[str, Any]], line: Callable[[Mapping[str, Any]], str]) -> str:
    return "\n".join(line(item) for item in items) if items else "(none)"


# Agents ------------------------------------------------------------------------


def _agents_list(api: _Api, args: argparse.Namespace) -> int:
    return api.show(api.call("GET", "agents"), lambda a: _lines(a["agents"], _agent_line))


def _agents_get(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("GET", f"agents/{_quote(args.agent)}")

    def line(agent: Mapping[str, Any]) -> str:
        sidecars = [
            f"  sidecar {s['sidecar']}: revision {s['revision']}"
            f" {'applied' if s['applied'] else 'NOT applied'} (seen {s['seenAt']})"
            for s in agent.get("sidecars", [])
        ]
        return "\n".join([_agent_line(agent), *sidecars])

    return api.show(answer, line)


def _agents_create(api: _Api, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name}
    if args.description is not None:
        body["description"] = args.description
    return api.show(api.call("POST", "agents", body), lambda a: f"created {_agent_line(a)}")


def _agents_pause(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("PATCH", f"agents/{_quote(args.agent)}/pause", {"reason": args.reason})
    return api.show(answer, lambda a: f"paused {a['name']} at revision {a['revision']}")


def _agents_resume(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("PATCH", f"agents/{_quote(args.agent)}/resume", {})
    return api.show(answer, lambda a: f"resumed {a['name']} at revision {a['revision']}")


def _agents_delete(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("DELETE", f"agents/{_quote(args.agent)}")
    return api.show(answer, lambda a: f"deleted {a['name']} ({a['id']})")


def _agents_rename(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("PATCH", f"agents/{_quote(args.agent)}", {"name": args.new_name})
    return api.show(answer, lambda a: f"renamed {args.agent} to {a['name']} ({a['id']})")


# Policies ----------------------------------------------------------------------


def _policies_list(api: _Api, args: argparse.Namespace) -> int:
    return api.show(api.call("GET", "policies"), lambda a: _lines(a["policies"], _policy_line))


def _policies_get(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("GET", f"policies/{_quote(args.policy)}")
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


_SET_BY_SERVER = ("id", "createdAt", "updatedAt")


def _read_policies(source: str) -> list[dict[str, Any]]:
    import yaml

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Usage(f"-f: cannot read {source!r}: {exc}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _Usage(f"-f: {source!r} is neither JSON nor YAML: {exc}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("policies"), list):
        loaded = loaded["policies"]
    items = loaded if isinstance(loaded, list) else [loaded]
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _Usage(f"-f: item {index} of {source!r} is not a policy with a name")
    return [{k: v for k, v in item.items() if k not in _SET_BY_SERVER} for item in items]


def _policies_apply(api: _Api, args: argparse.Namespace) -> int:
    wanted = _read_policies(args.file)
    existing = {p["name"]: p for p in api.call("GET", "policies")["policies"]}
    results = []
    for body in wanted:
        current = existing.get(body["name"])
        if current is None:
            results.append(("created", api.call("POST", "policies", body)))
        elif all(current.get(k) == v for k, v in body.items()):
            results.append(("unchanged", current))
        else:
            results.append(("updated", api.call("PATCH", f"policies/{current['id']}", body)))
    if api.as_json:
        print(json.dumps({"policies": [p for _, p in results]}, indent=2, ensure_ascii=False))
    else:
        for verb, policy in results:
            print(f"{verb} {policy['name']} ({policy['id']})")
    return 0


def _policies_delete(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("DELETE", f"policies/{_quote(args.policy)}")
    return api.show(answer, lambda p: f"deleted {p['name']} ({p['id']})")


# Grants -------------------------------------------------------------------------


def _grants_list(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("GET", f"agents/{_quote(args.agent)}/grants")
    return api.show(answer, lambda a: _lines(a["grants"], _grant_line))


def _grants_create(api: _Api, args: argparse.Namespace) -> int:
    actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    body: dict[str, Any] = {"targetAgentId": args.target, "allowedActions": actions}
    if args.expires_at is not None:
        body["expiresAt"] = args.expires_at
    answer = api.call("POST", f"agents/{_quote(args.agent)}/grants", body)
    return api.show(answer, lambda g: f"created {_grant_line(g)}")


def _grants_delete(api: _Api, args: argparse.Namespace) -> int:
    path = f"agents/{_quote(args.agent)}/grants/{_quote(args.grant_id)}"
    return api.show(api.call("DELETE", path), lambda g: f"revoked {_grant_line(g)}")


# Keys ---------------------------------------------------------------------------


def _keys_list(api: _Api, args: argparse.Namespace) -> int:
    return api.show(api.call("GET", "keys"), lambda a: _lines(a["keys"], _key_line))


def _keys_create(api: _Api, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.expires_at is not None:
        body["expiresAt"] = args.expires_at
    answer = api.call("POST", "keys", body)
    return api.show(
        answer, lambda k: f"created {_key_line(k)}; the key is shown only now:\n{k['secret']}"
    )


def _keys_revoke(api: _Api, args: argparse.Namespace) -> int:
    answer = api.call("DELETE", f"keys/{_quote(args.key_id)}")
    return api.show(answer, lambda k: f"revoked {_key_line(k)}")


def _snapshot_get(api: _Api, args: argparse.Namespace) -> int:
    print(json.dumps(api.call("GET", "snapshot"), indent=2, ensure_ascii=False))
    return 0


_ACTIONS: dict[tuple[str, str], Callable[[_Api, argparse.Namespace], int]] = {
    ("agents", "list"): _agents_list,
    ("agents", "get"): _agents_get,
    ("agents", "create"): _agents_create,
    ("agents", "pause"): _agents_pause,
    ("agents", "resume"): _agents_resume,
    ("agents", "delete"): _agents_delete,
    ("agents", "rename"): _agents_rename,
    ("policies", "list"): _policies_list,
    ("policies", "get"): _policies_get,
    ("policies", "apply"): _policies_apply,
    ("policies", "delete"): _policies_delete,
    ("grants", "list"): _grants_list,
    ("grants", "create"): _grants_create,
    ("grants", "delete"): _grants_delete,
    ("keys", "list"): _keys_list,
    ("keys", "create"): _keys_create,
    ("keys", "revoke"): _keys_revoke,
    ("snapshot", "get"): _snapshot_get,
}
