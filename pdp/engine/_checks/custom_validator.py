"""``custom_validator``: an HTTPS endpoint the user runs answers whether the
call may proceed. The compiled check is ``_validator.ValidatorCheck``; this
module reads and validates the rule."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .._fields import Reader
from .._model import PolicySpec
from .._policy import Check, PolicyType
from .._signing import signing_key
from .._validator import INSECURE_URL_PROBLEM, FailMode, Validator, ValidatorCheck

__all__ = [
    "MAX_TIMEOUT_MS",
    "MIN_TIMEOUT_MS",
    "POLICY_TYPE",
]

MIN_TIMEOUT_MS = 10
MAX_TIMEOUT_MS = 10_000
MAX_CACHE_TTL_S = 86_400
_FAIL_MODES = {mode.value: mode for mode in FailMode}


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_url(r: Reader) -> tuple[str, bool] | None:
    """The URL and whether it is plain http to loopback; None (with the
    problem reported) when it cannot be used."""
    url = r.string("url", required=True, max_len=2048)
    if url is None:
        return None
    where = r.at("url")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        r.problems.add(where, "must not contain spaces or control characters")
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises for a port out of range
    except ValueError as exc:
        r.problems.add(where, f"is not a valid URL: {exc}")
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        r.problems.add(where, f"must be an https:// URL, got {got}")
        return None
    if not parts.hostname:
        r.problems.add(where, "must name a host")
        return None
    if parts.username is not None or parts.password is not None:
        r.problems.add(where, "must not carry credentials (user:password@); the secret signs calls")
        return None
    if parts.fragment:
        r.problems.add(where, "must not have a #fragment")
        return None
    if scheme == "http" and not _is_loopback(parts.hostname):
        r.problems.add(where, INSECURE_URL_PROBLEM)
        return None
    return url, scheme == "http"


def build(r: Reader, spec: PolicySpec) -> Check | None:
    url = _read_url(r)
    secret = r.string("secret", required=True, max_len=400)
    key: bytes | None = None
    if secret is not None:
        try:
            key = signing_key(secret)
        except ValueError as exc:
            r.problems.add(r.at("secret"), str(exc))
    timeout_ms = r.integer(
        "timeout_ms", default=200, minimum=MIN_TIMEOUT_MS, maximum=MAX_TIMEOUT_MS
    )
    fail_mode = r.choice("fail_mode", _FAIL_MODES) or "closed"
    cache_ttl_s = r.number("cache_ttl_s", maximum=MAX_CACHE_TTL_S) or 0.0
    ca_file = r.string("ca_file", max_len=4096)
    if ca_file is not None and not ca_file.strip():
        r.problems.add(r.at("ca_file"), "must not be empty")
        ca_file = None
    if ca_file is not None and url is not None and url[1]:
        r.problems.add(r.at("ca_file"), "applies only to an https:// URL")
    if url is None or key is None:
        return None
    validator = Validator(
        url=url[0],
        key=key,
        timeout_s=timeout_ms / 1000,
        fail_mode=_FAIL_MODES[fail_mode],
        cache_ttl_s=cache_ttl_s,
        ca_file=ca_file,
        insecure=url[1],
    )
    return ValidatorCheck(validator)


POLICY_TYPE = PolicyType(
    name="custom_validator",
    summary="an HTTPS endpoint you run, called with the signed request context, answers "
    "allow or deny",
    rule_fields=("url", "secret", "timeout_ms", "fail_mode", "cache_ttl_s", "ca_file"),
    build=build,
)
