"""Custom validators ("bring your own validator"): a policy whose result is
the answer of an HTTPS endpoint the user runs.

The engine does no I/O, so it does not call the endpoint. A policy of type
``custom_validator`` compiles to a :class:`ValidatorCheck`; when an
evaluation reaches one whose prerequisites hold, it asks for the answer with
a :class:`ValidatorCall` (see ``_consultation``), and the check turns the
answer it is given (:class:`ValidatorAnswer`, or :class:`ValidatorFailure`
when none came) into the policy's result, ``fail_mode`` deciding on a
failure."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ._context import Context
from ._policy import Check, Hit

__all__ = [
    "INSECURE_URL_PROBLEM",
    "NO_ANSWERS",
    "Answer",
    "FailMode",
    "Validator",
    "ValidatorAnswer",
    "ValidatorCall",
    "ValidatorCheck",
    "ValidatorFailure",
]


INSECURE_URL_PROBLEM = (
    "plain http:// is allowed only to a loopback address and only when the sidecar runs "
    "with --allow-insecure-validators; use https://"
)


class FailMode(enum.Enum):
    """What a failed call means: ``closed``, the policy fires; ``open``, it
    does not."""

    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Validator:
    """One endpoint, as a policy's ruleDefinition gives it. ``key`` is the
    HMAC key of its secret (never printed); ``ca_file`` a CA bundle to trust
    instead of the system's; ``insecure`` marks a plain-http loopback URL."""

    url: str
    key: bytes = field(repr=False)
    timeout_s: float
    fail_mode: FailMode
    cache_ttl_s: float
    ca_file: str | None = None
    insecure: bool = False

    @property
    def origin(self) -> str:
        """``scheme://host:port`` of the URL: what messages name (a path may
        carry a token)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class ValidatorCall:
    """A validator's answer the evaluation needs. ``payload`` is the JSON
    body to send, without the per-call ``requestId``; two calls with equal
    payloads to one validator ask the same question (the answer cache's
    key)."""

    policy_id: str
    policy_name: str
    validator: Validator
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ValidatorAnswer:
    """What the validator answered: ``allow`` false means the policy fires,
    with ``message``."""

    allow: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class ValidatorFailure:
    """No usable answer came; ``reason`` says what went wrong (``no answer
    within 200 ms``, ``answered HTTP 503``, ...)."""

    reason: str


Answer = ValidatorAnswer | ValidatorFailure
NO_ANSWERS: Mapping[str, Answer] = MappingProxyType({})


class ValidatorCheck(Check):
    """The compiled ``custom_validator`` policy. The evaluation asks
    :meth:`call` for the question and :meth:`judge` for the result; it never
    calls :meth:`run`."""

    __slots__ = ("validator",)

    def __init__(self, validator: Validator) -> None:
        self.validator = validator

    def run(self, ctx: Context) -> Hit | None:
        raise TypeError("a custom validator's result is its answer: use call() and judge()")

    def call(self, ctx: Context, policy_id: str, policy_name: str) -> ValidatorCall:
        request = ctx.request
        payload = {
            "policyId": policy_id,
            "policyName": policy_name,
            "agent": {"id": ctx.agent.id, "name": ctx.agent.name},
            "input": request.input,
            "output": request.output,
            "model": request.model,
            "tool": request.tool,
            "metadata": dict(request.metadata),
            "estimatedCostUsd": request.estimated_cost_usd,
            "context": [
                {"kind": item.kind.value, "source": item.source, "content": item.content}
                for item in request.context
            ],
        }
        return ValidatorCall(policy_id, policy_name, self.validator, payload)

    def judge(self, answer: Answer) -> Hit | None:
        if isinstance(answer, ValidatorAnswer):
            if answer.allow:
                return None
            return Hit(answer.message or f"denied by the validator at {self.validator.origin}")
        if self.validator.fail_mode is FailMode.OPEN:
            return None
        return Hit(
            f"the validator at {self.validator.origin} failed ({answer.reason}); failing closed"
        )
