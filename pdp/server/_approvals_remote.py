"""The control plane's side of approvals, for a sidecar that follows it:
reading an approval (waiting for a decision) and consuming one. The control
plane decides approvals and is where consumption is atomic across the
replicas of an agent."""

from __future__ import annotations

from typing import Any

import httpx

from pdp.engine import Approval, approval_from_json

from ._uplink import Uplink

__all__ = ["RemoteApprovals", "RemoteUnavailableError"]

# How long the control plane may hold one read of an approval.
MAX_REMOTE_WAIT = 20.0


class RemoteUnavailableError(Exception):
    """The control plane did not answer (or answered with a fault)."""


class RemoteApprovals:
    def __init__(self, uplink: Uplink) -> None:
        self._uplink = uplink

    async def get(self, approval_id: str, wait: float = 0.0) -> Approval | None:
        """The approval as the control plane has it (None: it does not know
        it); with ``wait``, held until it is decided or ``wait`` seconds pass."""
        wait = min(max(wait, 0.0), MAX_REMOTE_WAIT)
        params = {"wait": f"{wait:.3f}"} if wait > 0 else {}
        response = await self._request(
            "GET", f"approvals/{approval_id}", params=params, seconds=wait + 10.0
        )
        if response.status_code == 404:
            return None
        return self._approval(response)

    async def consume(self, approval_id: str, digest: str) -> Approval | None:
        """Uses the approval for the request with ``digest``: the approval,
        used now, or None when the control plane refused (not approved,
        already used, another request)."""
        response = await self._request(
            "POST",
            f"approvals/{approval_id}/consume",
            json={"digest": digest, "sidecarId": self._uplink.sidecar_id},
            seconds=10.0,
        )
        if response.status_code in (404, 409):
            return None
        return self._approval(response)

    async def _request(
        self, method: str, path: str, *, seconds: float, **kw: Any
    ) -> httpx.Response:
        try:
            response = await self._uplink.client.request(
                method,
                self._uplink.url(path),
                timeout=httpx.Timeout(seconds, connect=2.0),
                headers=self._uplink.headers(),
                **kw,
            )
        except httpx.HTTPError as exc:
            raise RemoteUnavailableError(str(exc) or type(exc).__name__) from None
        if response.status_code in (401, 403):
            await self._uplink.refused()
        return response

    def _approval(self, response: httpx.Response) -> Approval:
        if response.status_code != 200:
            raise RemoteUnavailableError(
                f"HTTP {response.status_code}: {response.text[:200].strip()}"
            )
        try:
            return approval_from_json(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteUnavailableError(
                f"unreadable approval from the control plane: {exc}"
            ) from None
