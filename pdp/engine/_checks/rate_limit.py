"""``rate_limit``: calls per agent (or per agent and tool) in a sliding window.

Calls are counted per second: a call counts for ``per_seconds`` seconds from
the start of the second it was made in. Only calls that were let through
count (the decision's charges); a blocked call adds nothing."""

from __future__ import annotations

import math

from .._context import Context
from .._fields import Reader
from .._model import PolicySpec
from .._policy import Check, Hit, PolicyType
from .._usage import CALL_WINDOW_MAX_SECONDS, CounterKey

__all__ = ["POLICY_TYPE", "RateLimitCheck"]

_MAX_REQUESTS = 10**9


class RateLimitCheck(Check):
    __slots__ = ("max_requests", "per_seconds", "per_tool")

    def __init__(self, max_requests: int, per_seconds: int, per_tool: bool) -> None:
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self.per_tool = per_tool

    def run(self, ctx: Context) -> Hit | None:
        if ctx.output_only:  # scans an answer; gates no call
            return None
        key: CounterKey = (
            ("agent_tool", ctx.agent.id, ctx.request.tool)
            if self.per_tool
            else ("agent", ctx.agent.id)
        )
        second = ctx.second
        since = second - self.per_seconds + 1
        most = self.max_requests
        counted = ctx.usage.calls_since(key, since)
        if counted < most:
            ctx.count_call(key, (since, most))
            return None
        # A call the policy lets through anyway (monitor, warn) still counts.
        ctx.count_call(key, None)
        # The window admits a call again once the calls that put it at the
        # limit have left it: the oldest (counted - most + 1) of them.
        oldest = ctx.usage.nth_call_since(key, since, counted - most + 1)
        free_at = (oldest if oldest is not None else since) + self.per_seconds
        retry_after_ms = max(1, math.ceil((free_at - ctx.timestamp) * 1000))
        whom = f"agent and tool {ctx.request.tool!r}" if self.per_tool else "agent"
        return Hit(
            f"rate limit reached: {counted} calls in the last {self.per_seconds} s for this "
            f"{whom} (at most {most}); retry after {math.ceil(retry_after_ms / 1000)} s",
            retry_after_ms=retry_after_ms,
        )


def build(r: Reader, spec: PolicySpec) -> Check | None:
    if not r.has("max_requests"):
        r.problems.add(r.at("max_requests"), "required")
    max_requests = r.integer("max_requests", default=0, minimum=1, maximum=_MAX_REQUESTS)
    per_seconds = r.integer("per_seconds", default=60, minimum=1, maximum=CALL_WINDOW_MAX_SECONDS)
    scope = r.choice("scope", ("agent", "agent_tool")) or "agent"
    if max_requests < 1:
        return None
    return RateLimitCheck(max_requests, per_seconds, scope == "agent_tool")


POLICY_TYPE = PolicyType(
    name="rate_limit",
    summary="the agent (or the agent with this tool) already made `max_requests` calls that "
    "were let through in the last `per_seconds` seconds",
    rule_fields=("max_requests", "per_seconds", "scope"),
    build=build,
    reads_usage=True,
)
