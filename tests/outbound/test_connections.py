"""Connections the outbound policy allows and refuses, to real HTTPS
servers on loopback addresses (127.0.0.2, 127.0.0.3) under test names:
the sidecar's validator client (``HttpPool``) and the webhooks' httpx
client both connect to the address that was checked, keep the name for
TLS and the Host header, and follow no redirect."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from pdp.control._webhook_transport import webhook_client
from pdp.outbound import OutboundPolicy, OutboundRefusedError, open_connection
from pdp.server._errors import HttpCallError
from pdp.server._http_client import HttpPool
from tests._https import Certificates, HttpsServer, Reply, reply_json
from tests.outbound._resolver import TestResolver

NAMES = ("validator.test", "hooks.test", "rebind.test", "both.test")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A certificate for the test names only: a client that checked it
    against the address it connected to would fail."""
    return Certificates.create(tmp_path_factory.mktemp("tls"), NAMES)


@pytest.fixture
def allowed(certificates: Certificates) -> Iterator[HttpsServer]:
    with HttpsServer(reply_json({"allow": True}), certificates=certificates, host="127.0.0.2") as s:
        yield s


@pytest.fixture
def forbidden(certificates: Certificates) -> Iterator[HttpsServer]:
    """On the same port as ``allowed``, another address: what a rebinding
    name would reach."""
    with HttpsServer(reply_json({"allow": True}), certificates=certificates, host="127.0.0.3") as s:
        yield s


def tls(certificates: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca_file))


async def post(pool: HttpPool) -> int:
    try:
        response = await pool.post(b"{}", {"Content-Type": "application/json"}, 1024)
    finally:
        pool.close()
    return response.status


async def test_an_allowed_name_is_reached_with_its_name_for_tls_and_host(
    allowed: HttpsServer, certificates: Certificates
) -> None:
    resolver = TestResolver({"validator.test": ["127.0.0.2"]})
    policy = OutboundPolicy.allowing(["127.0.0.2"], resolver)
    url = f"https://validator.test:{allowed.port}/check"
    assert await post(HttpPool(url, tls(certificates), 4, policy)) == 200
    (request,) = allowed.requests
    assert request.headers["host"] == f"validator.test:{allowed.port}"
    assert resolver.lookups == ["validator.test"]


async def test_a_refused_address_is_never_connected_to(
    allowed: HttpsServer, forbidden: HttpsServer, certificates: Certificates
) -> None:
    resolver = TestResolver({"validator.test": ["127.0.0.3"]})
    policy = OutboundPolicy.allowing(["127.0.0.2"], resolver)
    pool = HttpPool(f"https://validator.test:{forbidden.port}/", tls(certificates), 4, policy)
    with pytest.raises(HttpCallError) as caught:
        await post(pool)
    assert caught.value.reason == (
        "refused by the outbound policy: 127.0.0.3 is a loopback address, "
        "which --outbound-allow (127.0.0.2) does not allow"
    )
    assert forbidden.connections == 0 and forbidden.requests == []


async def test_a_name_with_one_refused_address_is_refused_whole(
    allowed: HttpsServer, forbidden: HttpsServer, certificates: Certificates
) -> None:
    resolver = TestResolver({"both.test": ["127.0.0.2", "127.0.0.3"]})
    policy = OutboundPolicy.allowing(["127.0.0.2"], resolver)
    with pytest.raises(OutboundRefusedError) as caught:
        await open_connection(policy, "both.test", allowed.port, tls=None, limit=1024)
    assert caught.value.host == "both.test"
    assert "127.0.0.3" in caught.value.reason
    assert allowed.connections == forbidden.connections == 0


async def test_a_name_that_resolves_elsewhere_the_second_time_gains_nothing(
    allowed: HttpsServer, forbidden: HttpsServer, certificates: Certificates
) -> None:
    """DNS rebinding: the first answer passes the check, a later one would
    not. The connection goes to the checked address; nothing is looked up
    again for it."""
    forbidden.stop()
    forbidden.port = allowed.port
    forbidden.start()
    resolver = TestResolver({"rebind.test": [["127.0.0.2"], ["127.0.0.3"]]})
    policy = OutboundPolicy.allowing(["127.0.0.2"], resolver)
    pool = HttpPool(f"https://rebind.test:{allowed.port}/", tls(certificates), 4, policy)
    assert await post(pool) == 200
    assert resolver.lookups == ["rebind.test"]
    assert len(allowed.requests) == 1
    assert forbidden.connections == 0
    # A new connection looks the name up again, and its answer is checked.
    pool = HttpPool(f"https://rebind.test:{allowed.port}/", tls(certificates), 4, policy)
    with pytest.raises(HttpCallError, match=r"127\.0\.0\.3 is a loopback address"):
        await post(pool)
    assert forbidden.connections == 0


async def test_the_certificate_is_checked_against_the_name(
    allowed: HttpsServer, certificates: Certificates
) -> None:
    """A name the certificate does not hold fails TLS, though its address is
    the server's: the name, not the address, is what TLS checks."""
    resolver = TestResolver({"other.test": ["127.0.0.2"]})
    policy = OutboundPolicy.allowing(["127.0.0.2"], resolver)
    pool = HttpPool(f"https://other.test:{allowed.port}/", tls(certificates), 4, policy)
    with pytest.raises(HttpCallError, match="certificate not trusted"):
        await post(pool)


async def test_webhook_deliveries_connect_only_where_allowed_and_follow_no_redirect(
    allowed: HttpsServer, forbidden: HttpsServer, certificates: Certificates
) -> None:
    resolver = TestResolver({"hooks.test": ["127.0.0.2"], "rebind.test": ["127.0.0.3"]})
    policy = OutboundPolicy.allowing(["127.0.0.2"], resolver)
    redirect = Reply(302, b"", headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    allowed.respond_with(redirect)
    ca_file = str(certificates.ca_file)
    async with webhook_client(policy, ca_file=ca_file, timeout=5, concurrency=2) as client:
        response = await client.post(f"https://hooks.test:{allowed.port}/in", content=b"{}")
        assert response.status_code == 302  # answered, not followed
        with pytest.raises(OutboundRefusedError, match=r"127\.0\.0\.3 is a loopback address"):
            await client.post(f"https://rebind.test:{forbidden.port}/in", content=b"{}")
        with pytest.raises(OutboundRefusedError, match="cloud metadata service"):
            await client.post("http://[::ffff:169.254.169.254]/latest/meta-data/")
    (request,) = allowed.requests
    assert request.headers["host"] == f"hooks.test:{allowed.port}"
    assert forbidden.connections == 0


async def test_a_name_that_does_not_resolve_is_a_connection_error() -> None:
    policy = OutboundPolicy.allowing(["loopback"], TestResolver({}))
    async with webhook_client(policy, ca_file=None, timeout=5, concurrency=2) as client:
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.test"):
            await client.post("https://nowhere.test/in", content=b"{}")
