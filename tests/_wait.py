"""Waiting in tests for something another task or process does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

__all__ = ["until"]


async def until(predicate: Callable[[], object], within: float = 15.0, what: str = "") -> None:
    """Returns once ``predicate()`` is true; fails the test after ``within``
    seconds. Polled: what it waits for happens elsewhere (another task, a
    child process, a database written by another connection). The default
    bound is generous on purpose: a loaded machine is slow, not wrong."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"not within {within:g}s: {what or predicate}")
        await asyncio.sleep(0.02)
