"""A compiled snapshot: immutable, shared by every request until the next
activation swaps it for another."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ._agent_id import resolve_agent
from ._cel import CelJob, CelResult
from ._checks.expression import ExpressionCheck
from ._consultation import Consultation, consult
from ._context import NO_CEL_RESULTS, Context
from ._errors import StateUnavailableError
from ._explain import Explanation, explain
from ._model import NO_KNOWN_SPECS, GrantSpec, KnownSpecs, PolicySpec
from ._plan import NO_PII_COUNTS, Plan, Policy, conclude, state_error_hit, violation
from ._registry import CompiledRule
from ._types import (
    AgentInfo,
    AuthorizeResult,
    Decision,
    DecisionKind,
    DenialReason,
    EnforceInput,
    Mode,
    Severity,
    Violation,
)
from ._usage import UsageView
from ._validator import NO_ANSWERS, Answer, Validator, ValidatorCheck

if TYPE_CHECKING:
    from ._compile import RuleKey

__all__ = ["BudgetState", "CompiledSnapshot"]

_PLAN_CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class BudgetState:
    """Spend against one budget, for AgentStatus."""

    policy_id: str
    policy_name: str
    period: str  # "daily" or "monthly"
    limit_usd: float
    spent_usd: float
    period_start: datetime


@dataclass(slots=True)
class CompiledSnapshot:
    revision: int
    document: Mapping[str, object]
    agents: Mapping[str, AgentInfo]  # by id and by name
    policies: tuple[Policy, ...]  # in evaluation order
    grants: Mapping[tuple[str, str], tuple[GrantSpec, ...]]  # by (source id, target id)
    validators: tuple[Validator, ...] = ()  # of custom_validator policies, distinct
    # (id, name, type, mode) of the policies with isActive false: never run,
    # listed by explanations.
    inactive: tuple[tuple[str, str, str, str], ...] = ()
    # The agent id behind each look-alike key (``_agent_id.agent_id_keys``) of
    # the listed agents' ids and names; with no agents listed, of the ids the
    # policies and grants name.
    agent_keys: Mapping[str, str] = field(default_factory=dict)
    # The document lists agents and does not say ``unknownAgents: allow``:
    # an id it does not list is refused.
    deny_unknown: bool = False
    # Each policy's compiled rule by its content (``rule_key``), for the next
    # revision to reuse: one policy changed in 10,000 compiles one.
    rules: Mapping[RuleKey, CompiledRule] = field(default_factory=dict)
    # The agents and policies it read, by the document object each came
    # from, and each policy's content key and rule by its spec's id: an
    # unchanged item of the next document (the same object, see
    # ``parse_document_items``) is neither read nor keyed again.
    specs: KnownSpecs = NO_KNOWN_SPECS
    keyed: Mapping[int, tuple[PolicySpec, RuleKey | None, CompiledRule]] = field(
        default_factory=dict
    )
    # Whether a policy's expression may be too costly to evaluate in place.
    offloads: bool = False
    # SHA-256 digests of each agent's caller tokens, by agent id.
    caller_tokens: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    _plans: dict[str, Plan] = field(default_factory=dict)

    def resolve_agent(self, ref: str) -> AgentInfo:
        """The agent named by id or name, or by a variant of one (another
        case, look-alike characters, another NFKC spelling); an unlisted
        agent is ``known=False``. Raises AgentIdError for an id that is
        refused (white space at an end, a control or format character) or
        that looks like two agents."""
        agent = self.agents.get(ref)
        return agent if agent is not None else resolve_agent(ref, self.agents, self.agent_keys)

    def unknown_agent(self, agent: AgentInfo) -> Decision:
        """The decision for an agent the snapshot does not list when it
        refuses those: BLOCK, saying so."""
        message = f'unknown agent "{agent.id}"'
        refusal = Violation(
            "", "unknown agent", "unknown_agent", Severity.HIGH, message, Mode.BLOCK
        )
        return Decision(DecisionKind.BLOCK, agent, (refusal,), snapshot_revision=self.revision)

    def _plan(self, agent: AgentInfo) -> Plan:
        plan = self._plans.get(agent.id)
        if plan is None:
            policies = tuple(
                p for p in self.policies if p.applies_to is None or agent.id in p.applies_to
            )
            allow = Decision(
                DecisionKind.ALLOW,
                agent,
                pii_counts=NO_PII_COUNTS,
                snapshot_revision=self.revision,
            )
            consults = any(isinstance(p.check, ValidatorCheck) for p in policies)
            offloads = tuple(
                p
                for p in policies
                if isinstance(p.check, ExpressionCheck) and not p.check.program.inline
            )
            plan = Plan(policies, allow, consults, offloads)
            if len(self._plans) >= _PLAN_CACHE_LIMIT:  # unknown agents are unbounded
                self._plans.clear()
            self._plans[agent.id] = plan
        return plan

    def enforce(
        self,
        request: EnforceInput,
        usage: UsageView,
        now: datetime,
        answers: Mapping[str, Answer] = NO_ANSWERS,
        steady: float | None = None,
        approved: frozenset[str] = frozenset(),
        cel_results: Mapping[str, CelResult] = NO_CEL_RESULTS,
    ) -> Decision | Consultation:
        """The decision for ``request`` at ``now``, reading usage from ``usage``.
        A decision that lets the call proceed carries what it charges to usage
        (``charges``), for the caller to apply. ``steady`` is the time on the
        steady timeline (seconds, see ``SteadyClock``) that windows of calls
        are counted on; ``now``'s when not given.

        When the agent's plan has a custom validator whose answer is needed,
        the result is a :class:`Consultation` instead: make its ``calls``,
        then ``resume`` it with the answers. ``answers`` (by policy id) are
        answers already at hand, e.g. when deciding the same request again.

        ``approved`` holds ids of require_approval policies a reviewer
        approved for this very request: they still fire (and are listed) but
        no longer hold the call. A decision that holds the call carries the
        shortest ``approval_timeout_s`` of the policies holding it.

        ``cel_results`` are the results of the jobs :meth:`cel_jobs` gave
        for this request (by source); an expression too costly to evaluate
        in place without one is evaluated in place all the same."""
        agent = self.agents.get(request.agent_id)
        if agent is None:
            agent = self.resolve_agent(request.agent_id)
            if agent.paused:
                return Decision(DecisionKind.AGENT_PAUSED, agent, snapshot_revision=self.revision)
            if not agent.known and self.deny_unknown:
                return self.unknown_agent(agent)
        elif agent.paused:
            return Decision(DecisionKind.AGENT_PAUSED, agent, snapshot_revision=self.revision)
        plan = self._plans.get(agent.id) or self._plan(agent)
        ctx = Context(request, agent, usage, now, steady, cel_results)
        if plan.consults:
            return consult(plan, agent, request, ctx, answers, self.revision, approved)
        fired: set[str] = set()
        violations: list[Violation] = []
        for policy in plan.policies:
            if policy.prerequisites and not all(
                (pid in fired) is want for pid, want in policy.prerequisites
            ):
                continue
            # run_check, inlined: this loop runs every policy of every request.
            try:
                hit = policy.check.run(ctx)
            except StateUnavailableError as error:
                hit = state_error_hit(policy, error)
            if hit is None:
                continue
            fired.add(policy.id)
            violations.append(violation(policy, hit))
        if not violations:  # the usual outcome, decided here as conclude does, charges read once
            charges = ctx.charges()
            allow = plan.allow
            if not charges and (allow.agent is agent or not agent.known):
                return allow
            return Decision(
                DecisionKind.ALLOW, agent, snapshot_revision=self.revision, charges=charges
            )
        return conclude(plan, agent, request, ctx, violations, self.revision, approved)

    def cel_jobs(
        self,
        request: EnforceInput,
        usage: UsageView,
        now: datetime,
        steady: float | None = None,
    ) -> tuple[CelJob, ...]:
        """The CEL evaluations of ``request`` too costly to make in place
        (estimated over ``INLINE_COST``, within the budget): the caller makes
        them off its event loop and passes the results to :meth:`enforce`.
        Empty, at the cost of an attribute load, for a snapshot without
        costly expressions."""
        if not self.offloads:
            return ()
        agent = self.resolve_agent(request.agent_id)
        if agent.paused or (not agent.known and self.deny_unknown):
            return ()  # decided before any policy runs
        plan = self._plans.get(agent.id) or self._plan(agent)
        if not plan.offloads:
            return ()
        ctx = Context(request, agent, usage, now, steady)
        jobs: dict[str, CelJob] = {}
        for policy in plan.offloads:
            check = policy.check
            assert isinstance(check, ExpressionCheck)
            try:
                job = check.job(ctx)
            except StateUnavailableError:
                continue  # the policy's on_state_error decides in enforce
            if job is not None:
                jobs.setdefault(job.source, job)
        return tuple(jobs.values())

    def explain(
        self,
        request: EnforceInput,
        usage: UsageView,
        now: datetime,
        answers: Mapping[str, Answer] = NO_ANSWERS,
    ) -> Explanation:
        """The decision :meth:`enforce` gives, with every policy's result and
        why (explanation mode: ``enforce`` itself does none of this work).
        It calls no custom validator: ``answers`` (by policy id) stand for
        theirs; one without an answer fails, as not called."""
        return explain(self, request, usage, now, answers)

    def authorize(self, source: str, target: str, action: str, now: datetime) -> AuthorizeResult:
        src = self.resolve_agent(source)
        tgt = self.resolve_agent(target)
        if self.deny_unknown and not (src.known and tgt.known):
            which, unknown = ("source", src) if not src.known else ("target", tgt)
            reason = f'{which} agent: unknown agent "{unknown.id}"'
            return AuthorizeResult(False, reason, DenialReason.UNKNOWN_AGENT)
        if src.paused:
            reason = f"source agent {src.name!r} is paused: {src.pause_reason or 'no reason given'}"
            return AuthorizeResult(False, reason, DenialReason.SOURCE_PAUSED)
        if tgt.paused:
            reason = f"target agent {tgt.name!r} is paused: {tgt.pause_reason or 'no reason given'}"
            return AuthorizeResult(False, reason, DenialReason.TARGET_PAUSED)
        grants = self.grants.get((src.id, tgt.id), ())
        if not grants:
            reason = f"no grant from {src.name!r} to {tgt.name!r}"
            return AuthorizeResult(False, reason, DenialReason.NO_GRANT)
        listing = [g for g in grants if action in g.actions]
        if not listing:
            reason = f"no grant from {src.name!r} to {tgt.name!r} allows {action!r}"
            return AuthorizeResult(False, reason, DenialReason.ACTION_NOT_GRANTED)
        live = [g for g in listing if g.expires_at is None or g.expires_at > now]
        if not live:
            latest = max(g.expires_at for g in listing if g.expires_at is not None)
            reason = f"the grant allowing {action!r} expired at {latest.isoformat()}"
            return AuthorizeResult(False, reason, DenialReason.GRANT_EXPIRED)
        # The grant that lasts longest answers; a grant without expiry lasts forever.
        best = max(live, key=lambda g: g.expires_at or datetime.max.replace(tzinfo=UTC))
        return AuthorizeResult(True, f"allowed by grant {best.id!r}", None, best.expires_at)

    def budgets(self, agent: AgentInfo, usage: UsageView, now: datetime) -> list[BudgetState]:
        """Spend against every budget that applies to ``agent``."""
        out: list[BudgetState] = []
        for p in self._plan(agent).policies:
            for budget in p.check.budgets():
                start = budget.start(now)
                spent = usage.spent_since(agent.id, start)
                out.append(BudgetState(p.id, p.name, budget.period, budget.limit_usd, spent, start))
        return out
