"""Compiling a snapshot document: reading it, compiling each policy's rule
(or taking the active snapshot's compiled form of an unchanged one),
ordering policies by their prerequisites and resolving the agents that
policies and grants name."""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping

from ._agent_id import agent_keys_of, resolve_agent
from ._checks.expression import ExpressionCheck
from ._errors import AgentIdError, SnapshotError
from ._fields import Problems
from ._json_items import Pace, no_pace
from ._model import NO_KNOWN_SPECS, AgentSpec, GrantSpec, KnownSpecs, PolicySpec, read_snapshot
from ._plan import Policy
from ._registry import REGISTRY, CompiledRule, compile_rule
from ._snapshot import CompiledSnapshot
from ._types import AgentInfo
from ._validator import INSECURE_URL_PROBLEM, Validator, ValidatorCheck

__all__ = ["RuleKey", "compile_snapshot", "rule_key"]

_DEFAULT_SEVERITIES = {name: entry.default_severity for name, entry in REGISTRY.items()}


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
