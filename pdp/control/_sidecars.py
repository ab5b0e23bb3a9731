"""What the sidecars following the snapshot feed say of themselves. Each
long poll names the sidecar and the revisions it has applied, in headers;
the control plane keeps the last report of each sidecar in memory, so that
an operator can see whether a pause has taken effect everywhere
(``GET /api/v1/agents/ID``). Reports are not stored: after a restart the
list fills again within one long poll."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pdp.engine import utc_now

__all__ = [
    "PAUSE_REVISION_HEADER",
    "REVISION_HEADER",
    "SIDECAR_HEADER",
    "SidecarRegistry",
    "SidecarReport",
]

SIDECAR_HEADER = "X-PDP-Sidecar"
REVISION_HEADER = "X-PDP-Revision"
PAUSE_REVISION_HEADER = "X-PDP-Pause-Revision"
MAX_NAME_CHARS = 200
# Memory is bounded whatever callers send: past this many names, the one
# heard from longest ago is forgotten.
MAX_SIDECARS = 10_000
# A sidecar long-polls again as soon as an answer arrives, and a poll is
# held at most a minute: one not heard from for longer has gone.
CONNECTED_FOR = timedelta(seconds=90)
_MAX_REVISION = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SidecarReport:
    """A sidecar's last report: the revision of the whole snapshot it
    serves, and the revision whose pause state is in force there (newer
    while a newer document compiles, or after one was rejected)."""

    name: str
    revision: int
    pause_revision: int
    seen_at: datetime


def _revision(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if number <= _MAX_REVISION else None


class SidecarRegistry:
    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._reports: dict[str, SidecarReport] = {}

    def report(self, headers: Mapping[str, str]) -> None:
        """Records the report in a request's headers (lower-case names); a
        request without one, or with a malformed one, records nothing."""
        name = headers.get(SIDECAR_HEADER.lower())
        revision = _revision(headers.get(REVISION_HEADER.lower()))
        if not name or revision is None or len(name) > MAX_NAME_CHARS or not name.isprintable():
            return
        pause_revision = _revision(headers.get(PAUSE_REVISION_HEADER.lower()))
        reports = self._reports
        reports.pop(name, None)  # re-inserted last: the dict is ordered by last report
        reports[name] = SidecarReport(
            name, revision, revision if pause_revision is None else pause_revision, self._clock()
        )
        if len(reports) > MAX_SIDECARS:
            del reports[next(iter(reports))]

    def connected(self) -> list[SidecarReport]:
        """The sidecars heard from recently, by name."""
        since = self._clock() - CONNECTED_FOR
        return sorted(
            (r for r in self._reports.values() if r.seen_at >= since), key=lambda r: r.name
        )
