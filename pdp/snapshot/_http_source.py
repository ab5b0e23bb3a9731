"""A control plane's snapshot endpoint, long-polled.

``GET <url>?wait=S`` with ``If-None-Match: "<revision>"`` returns the new
document as soon as the revision changes (200), or 304 after ``S`` seconds.
Failed attempts back off with jitter (at most half a second apart) so that many
sidecars do not hammer a control plane that is coming back. The first
request after a failure is not held: a control plane that is back answers
it at once (304 when nothing changed), so a sidecar that went stale is
current, and ready, within a second of its return instead of after a
whole long poll.

Each request names the sidecar and the revisions it has applied (headers
the control plane shows per agent), carries the API key (given, or read
from a file, which is read again when the control plane refuses the key:
a rotated Kubernetes Secret takes effect without a restart), and verifies
an https control plane against the system's CAs or a given CA file. A body
is read as it streams and never past the sidecars' document limit.

Several URLs (replicas of one control plane on one database, so one
revision sequence) are tried in turn: the source stays with the one that
answers and moves to the next as soon as it stops answering (connection
refused or reset, a timeout, a 5xx), keeping its ETag, so that the long poll
goes on at the next replica without fetching the document again."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Sequence

import httpx

from pdp.engine import MAX_DOCUMENT_BYTES

from ._errors import SourceError
from ._files import read_regular_file
from ._source import NewDocument, NoChange, NoDocument, Refused, Report, Unreachable, Update

__all__ = ["Applied", "HttpSource", "read_api_key_file"]

# The revisions a sidecar has applied: of its whole snapshot, and of the
# pause state in force; None before the first.
Applied = Callable[[], tuple[int, int] | None]
_MAX_KEY_FILE_BYTES = 4096

log = logging.getLogger("pdp.snapshot")

# Statuses that mean "not you" rather than "not now": a wrong, expired or
# revoked API key is configuration, shown in AgentStatus, not an outage.
_REFUSED = frozenset({401, 403})


class HttpSource:
    def __init__(
        self,
        url: str | Sequence[str],
        *,
        api_key: str | None = None,
        api_key_file: str | None = None,
        ca_file: str | None = None,
        name: str | None = None,
        applied: Applied | None = None,
        wait: float = 20.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 0.5,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        optional: bool = False,
    ) -> None:
        """Raises SourceError for a malformed URL, or a key or CA file that
        cannot be read. ``optional``: the URL may have no document (404),
        which is a :class:`NoDocument` (long-polled like a document) rather
        than an error. ``url``: one URL, or several replicas' in the order
        to try them."""
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise SourceError("no control plane URL given")
        for each in urls:
            _check_url(each)
        self.urls = urls
        self._current = 0
        self.wait = wait
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_bytes = max_bytes
        self.optional = optional
        self._etag: str | None = None
        self._applied = applied
        self._api_key_file = api_key_file
        if api_key_file is not None:
            api_key = read_api_key_file(api_key_file)
        headers = {"Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        if name:
            headers["X-PDP-Sidecar"] = name
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise SourceError(f"cannot use CA file {ca_file!r}: {exc}") from None
        self.verify = verify
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(wait + 10.0, connect=2.0), verify=verify
        )

    @property
    def url(self) -> str:
        """The URL in use now (the replica that last answered)."""
        return self.urls[self._current]

    @property
    def name(self) -> str:
        return ",".join(self.urls)

    @property
    def api_key(self) -> str | None:
        """The API key sent now (read again from its file when refused)."""
        key: str | None = self._client.headers.get("X-API-Key")
        return key

    async def fetch(self) -> Update:
        return await self._get(wait=0.0)

    async def _get(self, wait: float) -> Update:
        """One request, held by the server up to ``wait`` seconds when we
        already have a revision; with several URLs, the next ones are tried
        at once while a replica does not answer."""
        update = await self._get_one(wait)
        for _ in range(len(self.urls) - 1):
            if not isinstance(update, Unreachable):
                break
            failed = self.url
            self._current = (self._current + 1) % len(self.urls)
            log.warning("%s does not answer (%s); trying %s", failed, update.reason, self.url)
            update = await self._get_one(wait)
        return update

    async def _get_one(self, wait: float) -> Update:
        url = self.url
        headers = {"If-None-Match": self._etag} if self._etag else {}
        applied = self._applied() if self._applied is not None else None
        if applied is not None:
            headers["X-PDP-Revision"] = str(applied[0])
            headers["X-PDP-Pause-Revision"] = str(applied[1])
        params = {"wait": f"{wait:g}"} if wait > 0 and self._etag else {}
        try:
            async with self._client.stream("GET", url, headers=headers, params=params) as response:
                status = response.status_code
                # At most one byte past the limit: the holder then rejects the
                # document as too large, naming the limit.
                limit = self.max_bytes + 1 if status == 200 else 200
                body = await _read_at_most(response, limit)
        except httpx.HTTPError as exc:
            return Unreachable(url, str(exc) or type(exc).__name__)
        if status == 304:
            return NoChange(url)
        if status == 200:
            # Remember the revision even if the document is rejected: the
            # next request then waits for a newer one instead of refetching it.
            self._etag = response.headers.get("ETag")
            return NewDocument(url, body)
        if status == 404 and self.optional:
            self._etag = response.headers.get("ETag")
            return NoDocument(url)
        text = body.decode("utf-8", "replace").strip()
        reason = f"HTTP {status} from the control plane: {text}"
        if status in _REFUSED:
            await self.reread_api_key()
            return Refused(url, reason)
        return Unreachable(url, reason)

    async def reread_api_key(self) -> None:
        """Reads the key file again (a rotated key), when there is one."""
        if self._api_key_file is None:
            return
        try:
            key = await asyncio.to_thread(read_api_key_file, self._api_key_file)
        except SourceError as exc:
            log.warning("%s", exc)
            return
        if key != self._client.headers.get("X-API-Key"):
            log.info("API key file %s changed: using the new key", self._api_key_file)
            self._client.headers["X-API-Key"] = key

    async def run(self, report: Report) -> None:
        """Long-polls until cancelled; the owner then calls :meth:`aclose`."""
        failures = 0
        while True:
            # Held only while the last answer came: after a failure, ask
            # for an answer now (see the module's docstring).
            update = await self._get(self.wait if failures == 0 else 0.0)
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


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def read_api_key_file(path: str) -> str:
    """The API key in a file (surrounding white space ignored, as a
    Kubernetes Secret or an editor may leave a newline); raises SourceError
    naming the file when it cannot be read or holds no key."""
    try:
        data = read_regular_file(path, _MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"cannot read API key file {path!r}: {exc.strerror}") from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise SourceError(f"API key file {path!r} is larger than {_MAX_KEY_FILE_BYTES} bytes")
    try:
        key = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SourceError(f"API key file {path!r} holds bytes that are not ASCII") from None
    if not key or any(c.isspace() for c in key):
        raise SourceError(f"API key file {path!r} must hold one key and nothing else")
    return key


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
