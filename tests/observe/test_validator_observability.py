"""Custom validators in what the sidecar reports: their calls in /metrics
(by origin and outcome, never a URL's path), and shadow evaluation, which
reuses the answers the active decision got and calls nothing itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._https import HttpsServer, Reply, reply_json
from tests.conftest import StartSidecar, write_atomically
from tests.observe._scrape import scrape, value
from tests.server._validators import validator_snapshot


async def test_validator_calls_are_counted_by_origin_and_outcome(
    start_sidecar: StartSidecar,
) -> None:
    async with HttpsServer(reply_json({"allow": True})) as server:
        url = f"{server.url}/check?token=secret-token"
        sidecar = await start_sidecar(
            validator_snapshot(url, ca_file=server.ca_file, cache_ttl_s=60),
            metrics_listen="127.0.0.1:0",
        )
        stub = sidecar.stub
        for text in ("a", "a", "b"):  # the second "a" is answered from the cache
            await stub.Enforce(pb.EnforceRequest(agent_id="billing-bot", input=text))
        server.respond_with(Reply(503))
        await stub.Enforce(pb.EnforceRequest(agent_id="billing-bot", input="c"))
        samples = await scrape(sidecar.sidecar.metrics_url)
    name = "pdp_validator_calls_total"
    counts = {
        outcome: value(samples, name, validator=server.url, outcome=outcome)
        for outcome in ("answered", "cached", "failed_closed", "failed_open")
    }
    assert counts == {"answered": 2, "cached": 1, "failed_closed": 1, "failed_open": 0}
    assert not any("secret-token" in str(key) for key in samples)


def at_revision(document: dict[str, Any], revision: int) -> dict[str, Any]:
    return document | {"revision": revision}


async def test_shadow_reuses_the_active_answers_and_counts_what_it_cannot_decide(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    async with (
        HttpsServer(reply_json({"allow": False, "message": "no"})) as active_validator,
        HttpsServer(reply_json({"allow": True})) as new_validator,
    ):
        active = validator_snapshot(active_validator.url, ca_file=active_validator.ca_file)
        # The candidate makes the same validator warn instead of block...
        candidate = validator_snapshot(
            active_validator.url, ca_file=active_validator.ca_file, mode="warn"
        )
        candidate_path = tmp_path / "candidate.yaml"
        write_atomically(candidate_path, at_revision(candidate, 2))
        sidecar = await start_sidecar(active, shadow_snapshot=str(candidate_path))
        shadow = sidecar.sidecar.shadow
        assert shadow is not None
        await sidecar.wait_for(lambda: shadow.candidate is not None)
        runner_started = shadow.evaluated
        await sidecar.stub.Enforce(pb.EnforceRequest(agent_id="billing-bot", input="x"))
        await sidecar.wait_for(lambda: shadow.evaluated == runner_started + 1)
        assert shadow.differences == {("BLOCK", "ALLOW_WITH_WARNINGS"): 1}
        assert len(active_validator.requests) == 1  # asked once, by the active decision

        # ...then a candidate with a validator the active snapshot does not have.
        other = validator_snapshot(new_validator.url, ca_file=new_validator.ca_file)
        other["policies"][0] |= {"id": "new-check", "name": "New Check"}
        write_atomically(candidate_path, at_revision(other, 3))
        await sidecar.wait_for(
            lambda: shadow.candidate is not None and shadow.candidate.revision == 3
        )
        await sidecar.stub.Enforce(pb.EnforceRequest(agent_id="billing-bot", input="y"))
        await sidecar.wait_for(lambda: shadow.unanswered == 1)
        assert new_validator.requests == []
