"""A reload does on the serving process only what the new document changed:
its unchanged agents and policies are neither parsed into new objects, read
nor compiled again, and the loading thread leaves most of the interpreter to
decisions."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

from pdp.engine import NO_USAGE, Decision, EnforceInput, utc_now
from pdp.snapshot import NewDocument, SnapshotHolder
from pdp.snapshot._pacing import Pacer
from tests.conftest import example_document


def _with_many_policies(revision: int, message: str) -> dict[str, Any]:
    document = example_document()
    document["revision"] = revision
    for i in range(200):
        document["policies"].append(
            {
                "name": f"patterns {i}",
                "policyType": "injection_scan",
                "enforcementMode": "block",
                "ruleDefinition": {"patterns": [f"forbidden phrase {i}"], "action": "block"},
                "appliesToAgents": ["agent-a"],
            }
        )
    for policy in document["policies"]:
        if policy["policyType"] == "expression":
            policy["ruleDefinition"]["message"] = message
    return document


async def test_a_reload_keeps_what_did_not_change_and_serves_what_did() -> None:
    holder = SnapshotHolder()
    first = _with_many_policies(1, "revision 1")
    assert await holder.report(NewDocument("test", json.dumps(first).encode()))
    assert holder.active is not None
    before = holder.active.snapshot
    second = copy.deepcopy(first)
    second["revision"] = 2
    for policy in second["policies"]:
        if policy["policyType"] == "expression":
            policy["ruleDefinition"]["message"] = "revision 2"
    assert await holder.report(NewDocument("test", json.dumps(second).encode()))
    after = holder.active.snapshot
    assert after.revision == 2
    kept = {id(p) for p in before.policies}
    changed = [p for p in after.policies if id(p) not in kept]
    assert [p.policy_type for p in changed] == ["expression"]
    old_document, new_document = before.document["policies"], after.document["policies"]
    assert isinstance(old_document, list) and isinstance(new_document, list)
    assert (
        sum(a is b for a, b in zip(old_document, new_document, strict=True))
        == len(new_document) - 1
    )
    # The new revision decides with the changed policy.
    request = EnforceInput(agent_id="my-chatbot", tool="shell", metadata={"env": "prod"})
    decision = after.enforce(request, NO_USAGE, utc_now())
    assert isinstance(decision, Decision)
    assert [v.message for v in decision.violations if v.policy_type == "expression"] == [
        "revision 2"
    ]


def test_a_paced_thread_works_at_most_about_its_share_of_the_time() -> None:
    pace = Pacer(share=0.25)
    used: list[float] = []

    def busy() -> None:
        cpu, until = time.thread_time(), time.monotonic() + 0.3
        while time.monotonic() < until:
            pace()
        used.append(time.thread_time() - cpu)

    thread = threading.Thread(target=busy)
    thread.start()
    thread.join()
    # Sleeping costs no CPU: a quarter of 0.3 s and a slice over, at most.
    assert used[0] < 0.3 * 0.25 + 0.03


def test_waiting_before_and_between_steps_of_a_load_is_not_paced() -> None:
    # A load of a tiny document (a pause) hops between threads and waits for
    # the event loop; none of that is work, so it must not sleep a pause of
    # 2 ms * 0.99 / 0.01 = 198 ms (the bound leaves room for a busy machine).
    pace = Pacer(share=0.01)
    elapsed: list[float] = []

    def step() -> None:
        start = time.perf_counter()
        for _ in range(10):
            pace()
        elapsed.append(time.perf_counter() - start)

    for _ in range(2):
        time.sleep(0.01)  # the hop to a worker thread, the event loop's turn
        thread = threading.Thread(target=step)
        thread.start()
        thread.join()
        time.sleep(0.01)
        step()  # a later step in a thread that was idle meanwhile
    assert max(elapsed) < 0.1, elapsed
