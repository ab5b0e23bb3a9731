"""A control plane's snapshot endpoint, long-polled.

``GET <url>?wait=S`` with ``If-None-Match: "<revision>"`` returns the new
document as soon as the revision changes (200), or 304 after ``S`` seconds.
Failed attempts back off with jitter so that many sidecars do not hammer a
control plane that is coming back."""

from __future__ import annotations

import asyncio
import logging
import random

import httpx

from ._errors import SourceError
from ._source import NewDocument, NoChange, NoDocument, Refused, Report, Unreachable, Update

__all__ = ["HttpSource"]

log = logging.getLogger("pdp.snapshot")

# Statuses that mean "not you" rather than "not now": a wrong, expired or
# revoked API key is configuration, shown in AgentStatus, not an outage.
_REFUSED = frozenset({401, 403})


class HttpSource:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        wait: float = 20.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        optional: bool = False,
    ) -> None:
        """``optional``: the URL may have no document (404), which is a
        :class:`NoDocument` (long-polled like a document) rather than an error."""
        _check_url(url)
        self.url = url
        self.wait = wait
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.optional = optional
        self._etag: str | None = None
        headers = {"Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(wait + 10.0, connect=2.0)
        )

    @property
    def name(self) -> str:
        return self.url

    async def fetch(self) -> Update:
        return await self._get(wait=0.0)

    async def _get(self, wait: float) -> Update:
        """One request, held by the server up to ``wait`` seconds when we
        already have a revision."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        params = {"wait": f"{wait:g}"} if wait > 0 and self._etag else {}
        try:
            response = await self._client.get(self.url, headers=headers, params=params)
        except httpx.HTTPError as exc:
            return Unreachable(self.url, str(exc) or type(exc).__name__)
        if response.status_code == 304:
            return NoChange(self.url)
        if response.status_code == 200:
            # Remember the revision even if the document is rejected: the
            # next request then waits for a newer one instead of refetching it.
            self._etag = response.headers.get("ETag")
            return NewDocument(self.url, response.content)
        if response.status_code == 404 and self.optional:
            self._etag = response.headers.get("ETag")
            return NoDocument(self.url)
        reason = (
            f"HTTP {response.status_code} from the control plane: {response.text[:200].strip()}"
        )
        if response.status_code in _REFUSED:
            return Refused(self.url, reason)
        return Unreachable(self.url, reason)

    async def run(self, report: Report) -> None:
        """Long-polls until cancelled; the owner then calls :meth:`aclose`."""
        failures = 0
        while True:
            update = await self._get(self.wait)
            try:
                await report(update)
            except Exception:  # a watcher that dies would freeze policies silently
                log.exception("handling an answer from %s failed", self.url)
            if isinstance(update, NewDocument | NoChange | NoDocument):
                failures = 0
                if isinstance(update, NoDocument) and self._etag is None:
                    # A server that cannot long-poll this URL: ask again later.
                    await asyncio.sleep(self.backoff_max)
                continue
            failures += 1
            delay = min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1))
            await asyncio.sleep(random.uniform(delay / 2, delay))

    async def aclose(self) -> None:
        await self._client.aclose()


def _check_url(url: str) -> None:
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise SourceError(f"{url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise SourceError(f"{url!r} is not an http:// or https:// URL with a host")
    if port is not None and not 0 < port <= 65535:
        raise SourceError(f"{url!r}: port {port} is out of range")
