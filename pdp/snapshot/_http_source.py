"""A control plane's snapshot endpoint, long-polled.

``GET <url>?wait=S`` with ``If-None-Match: "<revision>"`` returns the new
document as soon as the revision changes (200), or 304 after ``S`` seconds.
Every answer counts as contact (for staleness); errors back off with jitter
so that many sidecars do not hammer a control plane that is coming back."""

from __future__ import annotations

import asyncio
import logging
import random

import httpx

from pdp.engine import FieldError

from ._holder import SnapshotHolder

__all__ = ["HttpSource", "SourceStatusError"]

log = logging.getLogger("pdp.snapshot")


class HttpSource:
    def __init__(
        self,
        url: str,
        holder: SnapshotHolder,
        *,
        api_key: str | None = None,
        wait: float = 20.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self.url = url
        self.holder = holder
        self.wait = wait
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._etag: str | None = None
        self._failures = 0
        headers = {"Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(wait + 10.0, connect=2.0)
        )

    @property
    def name(self) -> str:
        return self.url

    async def poll(self, wait: float = 0.0) -> bool:
        """One request; True when a new snapshot became active. Raises
        httpx.HTTPError when the control plane cannot be reached."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        params = {"wait": f"{wait:g}"} if wait > 0 and self._etag else {}
        response = await self._client.get(self.url, headers=headers, params=params)
        if response.status_code == 304:
            self.holder.touch()
            return False
        if response.status_code != 200:
            error = SourceStatusError(response)
            if error.status in (401, 403):
                self._refused(error)
            raise error
        # Remember the revision even if the document is rejected: the next
        # request then waits for a newer one instead of refetching it.
        self._etag = response.headers.get("ETag")
        return await self.holder.offer(response.content, self.name)

    async def run(self) -> None:
        """Long-polls until cancelled; the owner then calls :meth:`aclose`."""
        while True:
            try:
                await self.poll(self.wait)
                self._failures = 0
            except (httpx.HTTPError, SourceStatusError) as exc:
                await self._back_off(exc)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _refused(self, error: SourceStatusError) -> None:
        # A wrong or expired key is configuration, not an outage: show it in
        # AgentStatus and the log (once, not on every retry).
        digest = f"http-{error.status}"
        last = self.holder.last_rejection
        if last is None or last.digest != digest:
            self.holder.reject(self.url, (FieldError("", str(error)),), digest)

    async def _back_off(self, exc: Exception) -> None:
        self._failures += 1
        delay = min(self.backoff_max, self.backoff_initial * 2 ** (self._failures - 1))
        if self._failures == 1 or self._failures % 20 == 0:
            log.warning(
                "snapshot source %s: %s (attempt %d; serving revision %s)",
                self.url,
                exc,
                self._failures,
                self.holder.active.snapshot.revision if self.holder.active else "none",
            )
        await asyncio.sleep(random.uniform(delay / 2, delay))


class SourceStatusError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        detail = response.text[:200].strip()
        super().__init__(f"HTTP {self.status} from the control plane: {detail}")
