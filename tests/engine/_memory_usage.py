"""The engine's usage view over plain records in memory, for engine tests:
the one ``pdp test`` runs policy tests with."""

from __future__ import annotations

from pdp.policytest import MemoryUsage

__all__ = ["MemoryUsage"]
