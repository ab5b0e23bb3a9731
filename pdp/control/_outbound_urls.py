"""URLs written through the API that the outbound policy refuses whatever
DNS answers (an address such as 169.254.169.254, however written, or a
cloud metadata host name): a 422 naming the field, rather than a call that
can only fail later. Names are checked when they are resolved, at each
call.

At start, the URLs stored under a broader ``--outbound-allow`` that the
current one refuses are named (:func:`stored_url_refusals`), by the same
check: calls to them fail until they are changed or the list is."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pdp.outbound import OutboundPolicy

from ._errors import FieldProblem, ValidationFailedError
from ._objects import Policy
from ._schemas import CandidateIn
from ._webhooks import Webhook

__all__ = ["check_candidate_urls", "check_policy_url", "stored_url_refusals", "url_problem"]

_URL_POLICY_TYPES = frozenset({"custom_validator"})


def url_problem(outbound: OutboundPolicy, url: str, field: str) -> FieldProblem | None:
    why = outbound.url_refusal(url)
    if why is None:
        return None
    return FieldProblem(field, f"is refused by the outbound policy: {why}")


def _rule_problems(
    outbound: OutboundPolicy, policy_type: str | None, rule: Mapping[str, Any] | None, at: str
) -> list[FieldProblem]:
    if policy_type not in _URL_POLICY_TYPES or rule is None:
        return []
    url = rule.get("url")
    if not isinstance(url, str):
        return []  # the engine names what is wrong with it
    problem = url_problem(outbound, url, f"{at}ruleDefinition.url")
    return [] if problem is None else [problem]


def _raise(problems: Iterable[FieldProblem]) -> None:
    found = list(problems)
    if found:
        raise ValidationFailedError(found)


def check_policy_url(
    outbound: OutboundPolicy, policy_type: str | None, rule: Mapping[str, Any] | None
) -> None:
    """ValidationFailedError when a policy's URL (``ruleDefinition.url``) is refused."""
    _raise(_rule_problems(outbound, policy_type, rule, ""))


def check_candidate_urls(outbound: OutboundPolicy, body: CandidateIn) -> None:
    """ValidationFailedError naming each refused URL of a candidate's policies."""
    problems: list[FieldProblem] = []
    for i, policy in enumerate(body.policies or ()):
        at = f"policies[{i}]."
        problems += _rule_problems(outbound, policy.policyType, policy.ruleDefinition, at)
    for i, change in enumerate(body.changes or ()):
        if change.policy is not None:
            given, at = change.policy, f"changes[{i}].policy."
            problems += _rule_problems(outbound, given.policyType, given.ruleDefinition, at)
    _raise(problems)


def _shown(url: str) -> str:
    """``url`` for a log line: without credentials, query or fragment,
    which may carry a secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def stored_url_refusals(
    outbound: OutboundPolicy, webhooks: Iterable[Webhook], policies: Iterable[Policy]
) -> list[str]:
    """One line per stored webhook URL and custom_validator policy URL
    that ``outbound`` refuses whatever DNS answers, naming it and why."""
    found: list[str] = []
    for hook in webhooks:
        if (why := outbound.url_refusal(hook.url)) is not None:
            found.append(f"webhook {hook.id} ({_shown(hook.url)}): {why}")
    for policy in policies:
        url = policy.ruleDefinition.get("url")
        if policy.policyType not in _URL_POLICY_TYPES or not isinstance(url, str):
            continue
        if (why := outbound.url_refusal(url)) is not None:
            found.append(f"policy {policy.id} {policy.name!r} ({_shown(url)}): {why}")
    return found
