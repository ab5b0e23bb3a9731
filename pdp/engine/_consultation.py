"""The evaluation of a plan with custom validators: it runs the policies it
can, and pauses where it needs validators' answers.

The engine does no I/O, so an evaluation that reaches a validator whose
prerequisites hold hands back a :class:`Consultation`: the calls it needs
(``calls``, every one that can be asked at this point, so the caller makes
them concurrently). The caller makes them and ``resume``\\ s with the
answers; the evaluation goes on from where it paused and returns the
decision, or another consultation when an answer lets a further validator
run (a validator whose prerequisite is another validator).

Policies that do not depend on an unanswered validator run in the first
pass. A validator is not called when its prerequisites already decided it
does not run, nor when a policy already blocks the request (no answer could
change the decision); policies still waiting then do not run either."""

from __future__ import annotations

from collections.abc import Mapping

from ._context import Context
from ._plan import Plan, conclude, violation
from ._types import AgentInfo, Decision, EnforceInput, Mode, Violation
from ._validator import Answer, ValidatorCall, ValidatorCheck

__all__ = ["Consultation", "consult"]


class Consultation:
    """An Enforce evaluation paused until validators answer. ``calls`` are
    the answers it needs; :meth:`resume` (once) continues with them."""

    __slots__ = (
        "_agent",
        "_answers",
        "_ctx",
        "_fired",
        "_open",
        "_plan",
        "_request",
        "_revision",
        "_violations",
        "calls",
    )

    def __init__(
        self,
        plan: Plan,
        agent: AgentInfo,
        request: EnforceInput,
        ctx: Context,
        answers: Mapping[str, Answer],
        revision: int,
    ) -> None:
        self.calls: tuple[ValidatorCall, ...] = ()
        self._plan = plan
        self._agent = agent
        self._request = request
        self._ctx = ctx
        self._answers = dict(answers)
        self._revision = revision
        self._fired: set[str] = set()
        self._violations: list[tuple[int, Violation]] = []  # (plan index, violation)
        self._open: list[int] = list(range(len(plan.policies)))  # not run nor skipped yet

    def resume(self, answers: Mapping[str, Answer]) -> Decision | Consultation:
        """Continues with ``answers`` (by policy id) to every call in
        :attr:`calls`; returns the decision or the next consultation."""
        if not self.calls:
            raise RuntimeError("this consultation was already resumed")
        missing = [call.policy_id for call in self.calls if call.policy_id not in answers]
        if missing:
            raise ValueError(f"no answer for the validators of policies {missing}")
        self._answers.update(answers)
        self.calls = ()
        return self._advance()

    def _advance(self) -> Decision | Consultation:
        policies = self._plan.policies
        fired, answers, ctx = self._fired, self._answers, self._ctx
        waiting: set[str] = set()  # policy ids pending an answer, or after one
        still_open: list[int] = []
        calls: list[ValidatorCall] = []
        for i in self._open:
            policy = policies[i]
            prerequisites = policy.prerequisites
            if prerequisites:
                if any(pid in waiting for pid, _ in prerequisites):
                    waiting.add(policy.id)
                    still_open.append(i)
                    continue
                if not all((pid in fired) is want for pid, want in prerequisites):
                    continue
            check = policy.check
            if isinstance(check, ValidatorCheck):
                answer = answers.get(policy.id)
                if answer is None:
                    calls.append(check.call(ctx, policy.id, policy.name))
                    waiting.add(policy.id)
                    still_open.append(i)
                    continue
                hit = check.judge(answer)
            else:
                hit = check.run(ctx)
            if hit is not None:
                fired.add(policy.id)
                self._violations.append((i, violation(policy, hit)))
        blocked = any(v.mode is Mode.BLOCK for _, v in self._violations)
        if calls and not blocked:
            self._open = still_open
            self.calls = tuple(calls)
            return self
        self._violations.sort(key=lambda pair: pair[0])
        found = [v for _, v in self._violations]
        return conclude(self._plan, self._agent, self._request, ctx, found, self._revision)


def consult(
    plan: Plan,
    agent: AgentInfo,
    request: EnforceInput,
    ctx: Context,
    answers: Mapping[str, Answer],
    revision: int,
) -> Decision | Consultation:
    """Evaluates ``plan`` (which has validators) as far as ``answers`` (by
    policy id, possibly none) allow."""
    return Consultation(plan, agent, request, ctx, answers, revision)._advance()
