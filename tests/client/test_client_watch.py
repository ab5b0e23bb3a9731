"""``watch_agent_status`` against a real sidecar: a pause written to its
snapshot reaches a watcher, leaving the loop cancels the call on the
sidecar, and a watch fails closed (bad id, unreachable or silent sidecar,
its own deadline)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pdp_client import (
    AgentStatusResult,
    AsyncClient,
    Client,
    DeadlineExceededError,
    InvalidRequestError,
    SidecarUnavailableError,
)

from pdp.embedded import EmbeddedClient
from tests.client.conftest import Connect, SilentServer
from tests.conftest import RunningSidecar, example_document, write_atomically


def _paused_document(reason: str) -> dict[str, Any]:
    document = example_document()
    document["revision"] = 2
    document["agents"][0]["paused"] = True  # my-chatbot
    document["agents"][0]["pauseReason"] = reason
    return document


async def _watchers_reach(sidecar: RunningSidecar, count: int) -> None:
    """The sidecar's handlers waiting on its snapshot come to ``count``: a
    watch is open on the sidecar (one more), or has ended there."""
    holder = sidecar.sidecar.holder
    await sidecar.wait_for(lambda: holder.waiting == count)


async def test_a_pause_reaches_an_async_watcher_and_leaving_the_loop_cancels(
    example_sidecar: RunningSidecar,
) -> None:
    idle = example_sidecar.sidecar.holder.waiting
    seen: list[AgentStatusResult] = []
    async with AsyncClient(example_sidecar.address) as pdp:
        async for status in pdp.watch_agent_status("my-chatbot"):
            seen.append(status)
            if len(seen) == 1:
                await _watchers_reach(example_sidecar, idle + 1)
                await example_sidecar.write_snapshot(_paused_document("maintenance"))
            elif status.paused:
                break
        assert [(s.paused, s.reason) for s in seen] == [(False, ""), (True, "maintenance")]
        assert seen[0].agent_name == "my-chatbot" and seen[1].snapshot_revision == 2
        await _watchers_reach(example_sidecar, idle)


async def test_a_pause_reaches_a_sync_watcher_and_closing_it_cancels(
    example_sidecar: RunningSidecar,
) -> None:
    # The blocking client runs in a thread: the sidecar serves on this loop.
    idle = example_sidecar.sidecar.holder.waiting
    with Client(example_sidecar.address) as pdp:
        watch = pdp.watch_agent_status("my-chatbot")
        assert isinstance(watch, Iterator)
        first = await asyncio.to_thread(next, watch)
        assert (first.known, first.paused) == (True, False)
        await example_sidecar.write_snapshot(_paused_document("incident 9"))
        second = await asyncio.to_thread(next, watch)
        assert (second.paused, second.reason) == (True, "incident 9")
        await asyncio.to_thread(watch.close)
        await _watchers_reach(example_sidecar, idle)


async def test_cancelling_the_task_of_an_async_watch_cancels_the_call(
    example_sidecar: RunningSidecar,
) -> None:
    idle = example_sidecar.sidecar.holder.waiting
    first = asyncio.Event()

    async def watch(pdp: AsyncClient) -> None:
        async for _ in pdp.watch_agent_status("my-chatbot"):
            first.set()

    async with AsyncClient(example_sidecar.address) as pdp:
        task = asyncio.create_task(watch(pdp))
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _watchers_reach(example_sidecar, idle)


async def test_an_embedded_client_watches_its_in_process_kill_switch(tmp_path: Any) -> None:
    path = tmp_path / "policies.yaml"
    write_atomically(path, example_document())
    opened = await EmbeddedClient.open(str(path), state=str(tmp_path / "s.db"), poll_interval=0.05)
    async with opened as pdp:
        states = []
        async with contextlib.aclosing(pdp.watch_agent_status("my-chatbot")) as watch:
            async for status in watch:
                states.append((status.paused, status.reason))
                if len(states) == 1:
                    write_atomically(path, _paused_document("incident 7"))
                elif status.paused:
                    break
        assert states == [(False, ""), (True, "incident 7")]
        with pytest.raises(StopAsyncIteration):
            await anext(watch)  # closed with the handler it read
        with pytest.raises(InvalidRequestError) as refused:
            pdp.watch_agent_status("")
        assert refused.value.field == "agent_id"


async def _first(watch: Any) -> AgentStatusResult:
    if isinstance(watch, Iterator):
        return await asyncio.to_thread(next, watch)
    result: AgentStatusResult = await anext(watch)
    await watch.aclose()
    return result


async def _collect(watch: AsyncIterator[AgentStatusResult], into: list[AgentStatusResult]) -> None:
    async for status in watch:
        into.append(status)


@pytest.mark.parametrize("agent_id", ["", "   ", 7])
async def test_a_bad_agent_id_is_refused_before_anything_is_sent(
    connect: Connect, refused_target: str, agent_id: Any
) -> None:
    client = connect(refused_target)
    with pytest.raises(InvalidRequestError) as refused:
        client.watch_agent_status(agent_id)
    assert refused.value.field == "agent_id" and refused.value.code is None


async def test_a_bad_timeout_is_refused_at_once(connect: Connect, refused_target: str) -> None:
    with pytest.raises(ValueError, match="timeout"):
        connect(refused_target).watch_agent_status("my-chatbot", timeout=-1)


async def test_an_unreachable_sidecar_fails_the_watch(
    connect: Connect, refused_target: str
) -> None:
    client = connect(refused_target)
    started = time.monotonic()
    with pytest.raises(SidecarUnavailableError) as failed:
        await _first(client.watch_agent_status("my-chatbot"))
    assert refused_target in str(failed.value)
    assert time.monotonic() - started < 5


async def test_a_silent_sidecar_fails_the_watch_within_the_client_timeout(
    connect: Connect, silent_tcp: SilentServer
) -> None:
    client = connect(silent_tcp.target, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as late:
        await _first(client.watch_agent_status("my-chatbot"))
    assert late.value.timeout == 0.3
    assert time.monotonic() - started < 5


async def test_a_watch_with_a_deadline_ends_with_deadline_exceeded(
    example_sidecar: RunningSidecar,
) -> None:
    async with AsyncClient(example_sidecar.address) as pdp:
        seen: list[AgentStatusResult] = []
        with pytest.raises(DeadlineExceededError) as late:
            await _collect(pdp.watch_agent_status("my-chatbot", timeout=0.5), seen)
        assert len(seen) == 1 and late.value.timeout == 0.5
    with Client(example_sidecar.address) as client:
        watch = client.watch_agent_status("my-chatbot", timeout=0.5)
        await asyncio.to_thread(next, watch)
        with pytest.raises(DeadlineExceededError):
            await asyncio.to_thread(next, watch)


async def test_a_stopped_sidecar_ends_the_watch_with_an_error(
    example_sidecar: RunningSidecar,
) -> None:
    async with AsyncClient(example_sidecar.address) as pdp:
        watch = pdp.watch_agent_status("my-chatbot")
        assert not (await anext(watch)).paused
        await example_sidecar.sidecar.stop(grace=0)
        with pytest.raises(SidecarUnavailableError):
            await anext(watch)
        await watch.aclose()
