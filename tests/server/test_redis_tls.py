"""Redis over TLS (``rediss://``): the server's certificate is checked
against ``--state-ca-file``; a certificate that does not verify stops the
start with an error naming ``--state``, not a silent plain connection."""

from __future__ import annotations

from pathlib import Path

from pdp.engine import CostCharge, UsageReport
from pdp.state import RedisLocation, RedisUsage, parse_state_location
from tests._clock import START, ManualClock
from tests._process import run_python
from tests._redis import RedisServer, redis_or_skip
from tests._tls import Certificates
from tests.conftest import EXAMPLE_SNAPSHOT


def tls_redis(directory: Path) -> tuple[RedisServer, Path]:
    """A TLS-only Redis and the file of the CA that signed its certificate."""
    certificates = Certificates.create(directory / "tls")
    tls = (certificates.cert_file, certificates.key_file)
    return redis_or_skip(directory, tls=tls), certificates.ca_file


async def test_rediss_with_its_ca_keeps_budgets(tmp_path: Path) -> None:
    server, ca_file = tls_redis(tmp_path)
    try:
        location = parse_state_location(server.url)
        assert isinstance(location, RedisLocation) and location.tls
        usage = await RedisUsage.open(location, ca_file=str(ca_file), clock=ManualClock())
        usage.start()
        try:
            assert usage.status().healthy
            await usage.record(UsageReport("agent-a", 2.0, "req-1"))
            fits = CostCharge("agent-a", "req-2", 8.0, ((START, 10.0),))
            over = CostCharge("agent-a", "req-3", 0.5, ((START, 10.0),))
            assert await usage.charge([fits]) == ()
            assert await usage.charge([over]) == (over,)
        finally:
            await usage.close()
    finally:
        server.stop()


def test_a_certificate_that_does_not_verify_stops_the_start(tmp_path: Path) -> None:
    server, _ = tls_redis(tmp_path)
    other_ca = Certificates.create(tmp_path / "other").ca_file
    try:
        result = run_python(
            "-m", "pdp", "serve", "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0",
            "--state", server.url, "--state-ca-file", str(other_ca),
            "--local-state", str(tmp_path / "local.db"),
            timeout=60,
        )  # fmt: skip
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    assert f"cannot use --state {server.url}: TLS failed" in result.stderr
    assert "--state-ca-file" in result.stderr
