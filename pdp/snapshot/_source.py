"""What a snapshot source is: something that fetches a document and reports
what happened, one :data:`Update` per attempt, to whoever activates
documents (the :class:`~pdp.snapshot.SnapshotHolder`). A source never
activates anything and never decides whether a snapshot is stale.

An attempt ends in one of five ways:

- :class:`NewDocument`: the source answered with a document, new or not
  (the holder recognises one it already has);
- :class:`NoChange`: the source answered that nothing changed;
- :class:`Unreachable`: no answer (network, timeout, a server error, a file
  that cannot be read): the silence that staleness counts;
- :class:`Refused`: the source answered but refuses this sidecar (a wrong,
  expired or revoked API key): configuration to show, not an outage;
- :class:`NoDocument`: the source answered that it has no document now (a
  control plane with no candidate snapshot); only optional sources say so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "NewDocument",
    "NoChange",
    "NoDocument",
    "Refused",
    "Report",
    "SnapshotSource",
    "Unreachable",
    "Update",
]


@dataclass(frozen=True, slots=True)
class NewDocument:
    """The source answered with a document (its raw bytes)."""

    source: str
    data: bytes


@dataclass(frozen=True, slots=True)
class NoChange:
    """The source answered: the document is the one it gave last."""

    source: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No answer from the source; ``reason`` says why."""

    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The source answered and refuses this sidecar; ``reason`` says why."""

    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class NoDocument:
    """The source answered that it has no document now."""

    source: str


Update = NewDocument | NoChange | Unreachable | Refused | NoDocument
Report = Callable[[Update], Awaitable[object]]


class SnapshotSource(Protocol):
    """A place snapshots come from (a file, a control plane's URL)."""

    @property
    def name(self) -> str:
        """Where the snapshots come from, for logs and ``AgentStatus``."""
        ...

    async def fetch(self) -> Update:
        """One attempt now, without waiting for a change. Failures to reach
        the source are an :class:`Unreachable`, not an exception."""
        ...

    async def run(self, report: Report) -> None:
        """Watches the source until cancelled, reporting every attempt."""
        ...

    async def aclose(self) -> None:
        """Releases what the source holds (connections); called once, last."""
        ...
