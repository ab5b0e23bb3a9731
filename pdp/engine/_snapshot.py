"""A compiled snapshot: immutable, shared by every request until the next
activation swaps it for another."""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ._agent_id import agent_keys_of, resolve_agent
from ._cel import CelJob, CelResult
from ._checks.expression import ExpressionCheck
from ._consultation import Consultation, consult
from ._context import NO_CEL_RESULTS, Context
from ._errors import AgentIdError, SnapshotError, StateUnavailableError
from ._explain import Explanation, explain
from ._fields import Problems
from ._json_items import Pace, no_pace
from ._model import NO_KNOWN_SPECS, AgentSpec, GrantSpec, KnownSpecs, PolicySpec, read_snapshot
from ._plan import NO_PII_COUNTS, Plan, Policy, conclude, state_error_hit, violation
from ._registry import REGISTRY, CompiledRule, compile_rule
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
from ._validator import INSECURE_URL_PROBLEM, NO_ANSWERS, Answer, Validator, ValidatorCheck

__all__ = ["BudgetState", "CompiledSnapshot", "compile_snapshot"]

_PLAN_CACHE_LIMIT = 10_000
_DEFAULT_SEVERITIES = {name: entry.default_severity for name, entry in REGISTRY.items()}


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


def _agent_info(spec: AgentSpec) -> AgentInfo:
    return AgentInfo(spec.id, spec.name, True, spec.paused, spec.pause_reason, spec.paused_at)


def _order(policies: list[PolicySpec], refs: dict[str, str], problems: Problems) -> list[int]:
    """Indexes of ``policies`` in dependency order, document order otherwise;
    a cycle is reported with its path."""
    index = {p.id: i for i, p in enumerate(policies)}
    deps: list[list[int]] = [[] for _ in policies]
    for i, p in enumerate(policies):
        for pre in p.prerequisites:
            target = refs.get(pre.policy)
            if target is None:
                problems.add(pre.path, f"unknown policy {pre.policy!r}")
            elif target == p.id:
                problems.add(pre.path, "a policy cannot be its own prerequisite")
            else:
                deps[i].append(index[target])
    indegree = [len(d) for d in deps]
    dependents: list[list[int]] = [[] for _ in policies]
    for i, d in enumerate(deps):
        for j in d:
            dependents[j].append(i)
    ready = [i for i, n in enumerate(indegree) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in dependents[i]:
            indegree[k] -= 1
            if indegree[k] == 0:
                heapq.heappush(ready, k)
    if len(order) < len(policies):
        _report_cycle(policies, deps, set(range(len(policies))) - set(order), refs, problems)
    return order


def _report_cycle(
    policies: list[PolicySpec],
    deps: list[list[int]],
    stuck: set[int],
    refs: dict[str, str],
    problems: Problems,
) -> None:
    # Walk prerequisites from the first stuck policy until one repeats.
    path: list[int] = [min(stuck)]
    while True:
        nxt = next(j for j in deps[path[-1]] if j in stuck)
        if nxt in path:
            cycle = [*path[path.index(nxt) :], nxt]
            names = " -> ".join(repr(policies[i].name) for i in cycle)
            first, second = policies[cycle[0]], policies[cycle[1]]
            pre = next(p for p in first.prerequisites if refs.get(p.policy) == second.id)
            problems.add(pre.path, f"prerequisites form a cycle: {names}")
            return
        path.append(nxt)


def _find_agent(
    ref: str, agents: Mapping[str, AgentInfo], keys: Mapping[str, str]
) -> AgentInfo | None:
    """A listed agent named by ``ref`` or a variant of it, as Enforce finds it."""
    agent = agents.get(ref)
    if agent is None and agents:
        try:
            agent = resolve_agent(ref, agents, keys)
        except AgentIdError:
            return None
    return agent if agent is not None and agent.known else None


def _resolve_agents(
    refs: tuple[str, ...],
    agents: Mapping[str, AgentInfo],
    keys: Mapping[str, str],
    path: str,
    problems: Problems,
) -> frozenset[str] | None:
    if not refs:
        return None
    out: set[str] = set()
    for i, ref in enumerate(refs):
        agent = _find_agent(ref, agents, keys)
        if agent is None and agents:
            problems.add(f"{path}.appliesToAgents[{i}]", f"unknown agent {ref!r}")
        out.add(agent.id if agent is not None else ref)
    return frozenset(out)


RuleKey = tuple[str, str, str, str, str, str]


def rule_key(spec: PolicySpec) -> RuleKey | None:
    """What a policy's compiled rule depends on: its type, identity, mode,
    severity and ruleDefinition (canonical JSON); None when the rule is not
    plain JSON data (then it is compiled anew)."""
    try:
        rule = json.dumps(spec.rule, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return (spec.policy_type, spec.id, spec.name, spec.mode.name, spec.severity.name, rule)


def compile_snapshot(
    document: object,
    *,
    allow_insecure_validators: bool = False,
    reuse: CompiledSnapshot | None = None,
    pace: Pace = no_pace,
) -> CompiledSnapshot:
    """Validates and compiles a snapshot document (the parsed YAML/JSON).
    Custom validators must be HTTPS, except plain HTTP to a loopback address
    with ``allow_insecure_validators``. Policies whose content ``reuse`` (the
    active snapshot) compiled already take its compiled rules; items of
    ``document`` that are the very objects ``reuse`` read (documents are
    never changed in place) are not read again. ``pace`` is
    called after each agent and policy read and each policy compiled, so
    that a caller can make the compiling thread give way now and then.

    Raises SnapshotError listing every problem with its field path."""
    problems = Problems()
    spec = read_snapshot(
        document,
        problems,
        _DEFAULT_SEVERITIES,
        NO_KNOWN_SPECS if reuse is None else reuse.specs,
        pace,
    )
    agents: dict[str, AgentInfo] = {}
    caller_tokens: dict[str, tuple[bytes, ...]] = {}
    for a in spec.agents:
        info = _agent_info(a)
        agents.setdefault(a.id, info)
        agents.setdefault(a.name, info)
        if a.caller_tokens:
            caller_tokens.setdefault(a.id, a.caller_tokens)
    if agents:
        keys = agent_keys_of([(ref, info.id) for ref, info in agents.items()])
    else:  # no agents listed: variants of the ids policies and grants name
        named = [ref for p in spec.policies for ref in p.applies_to]
        named += [ref for g in spec.grants for ref in (g.source, g.target)]
        keys = agent_keys_of([(ref, ref) for ref in named])

    policy_specs = list(spec.policies)
    refs: dict[str, str] = {}
    for p in policy_specs:
        refs.setdefault(p.id, p.id)
        refs.setdefault(p.name, p.id)
    known = reuse.rules if reuse is not None else {}
    known_keyed = reuse.keyed if reuse is not None else {}
    rules_by_key: dict[RuleKey, CompiledRule] = {}
    keyed: dict[int, tuple[PolicySpec, RuleKey | None, CompiledRule]] = {}
    rules: list[CompiledRule] = []
    for p in policy_specs:
        earlier = known_keyed.get(id(p))
        if earlier is not None and earlier[0] is p:
            _, content, rule = earlier
        else:
            content, rule = rule_key(p), None
        if rule is None:
            rule = known.get(content) if content is not None else None
        if rule is None:
            errors = len(problems.errors)
            rule = compile_rule(p, problems)
            if content is not None and len(problems.errors) == errors:
                rules_by_key[content] = rule
        elif content is not None:
            rules_by_key[content] = rule
        keyed[id(p)] = (p, content, rule)
        rules.append(rule)
        pace()
    validators: dict[Validator, None] = {}
    for p, (check, _, _) in zip(policy_specs, rules, strict=True):
        if isinstance(check, ValidatorCheck):
            if check.validator.insecure and not allow_insecure_validators:
                problems.add(f"{p.path}.ruleDefinition.url", INSECURE_URL_PROBLEM)
            elif p.is_active:
                validators.setdefault(check.validator)
    order = _order(policy_specs, refs, problems)

    # The active snapshot's policies by spec: one whose spec, rule and
    # resolved references are unchanged is taken whole, so that replacing a
    # snapshot frees (on the thread that serves) only what changed.
    earlier_policies = {} if reuse is None else {id(q.spec): q for q in reuse.policies}
    compiled: list[Policy] = []
    inactive: list[tuple[str, str, str, str]] = []
    for i in order:
        p, (check, open_on_state_error, approval_timeout_s) = policy_specs[i], rules[i]
        applies_to = _resolve_agents(p.applies_to, agents, keys, p.path, problems)
        pace()
        if check is None:
            continue
        if not p.is_active:
            inactive.append((p.id, p.name, p.policy_type, p.mode.wire_name))
            continue
        pres = tuple(
            (refs[pre.policy], pre.when_fired) for pre in p.prerequisites if pre.policy in refs
        )
        policy = Policy(
            p.id,
            p.name,
            p.policy_type,
            p,
            check,
            applies_to,
            pres,
            open_on_state_error,
            approval_timeout_s,
        )
        earlier_policy = earlier_policies.get(id(p))
        if earlier_policy is not None and earlier_policy.spec is p and earlier_policy == policy:
            policy = earlier_policy
        compiled.append(policy)

    grants: dict[tuple[str, str], list[GrantSpec]] = {}
    for g in spec.grants:
        ids = []
        for key, ref in (("sourceAgentId", g.source), ("targetAgentId", g.target)):
            agent = _find_agent(ref, agents, keys)
            if agent is None and agents:
                problems.add(f"{g.path}.{key}", f"unknown agent {ref!r}")
            ids.append(agent.id if agent is not None else ref)
        grants.setdefault((ids[0], ids[1]), []).append(g)

    if problems.errors:
        raise SnapshotError(problems.errors)
    assert isinstance(document, Mapping)
    read: dict[int, tuple[object, object]] = {}
    for what, specs in (("agents", spec.agents), ("policies", spec.policies)):
        items = document.get(what)
        if isinstance(items, list) and len(items) == len(specs):  # all read
            read.update((id(item), (item, s)) for item, s in zip(items, specs, strict=True))
    return CompiledSnapshot(
        revision=spec.revision,
        document=document,
        agents=agents,
        policies=tuple(compiled),
        grants={k: tuple(v) for k, v in grants.items()},
        validators=tuple(validators),
        inactive=tuple(inactive),
        agent_keys=keys,
        deny_unknown=bool(agents) and spec.unknown_agents == "deny",
        rules=rules_by_key,
        offloads=any(
            isinstance(p.check, ExpressionCheck) and not p.check.program.inline for p in compiled
        ),
        caller_tokens=caller_tokens,
        specs=KnownSpecs(read),
        keyed=keyed,
    )
