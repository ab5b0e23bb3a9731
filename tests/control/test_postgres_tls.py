"""``pdp control --db postgresql://... --db-ca-file PATH`` against a real
PostgreSQL cluster serving TLS with a certificate the test made: the
server's certificate must chain to that CA and name the host; a file that
cannot be read is refused at start, naming the flag."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._postgres import PASSWORD, PostgresServer, postgres_or_skip
from tests._tls import Certificates
from tests.control._harness import pdp_control

_ENV = {"PDP_DB_PASSWORD": PASSWORD}


def _serve_certificate(server: PostgresServer, certificates: Certificates) -> None:
    """Restarts ``server`` presenting ``certificates``' server certificate."""
    server.stop()
    for name, source in (("server.crt", certificates.cert_file), ("server.key", "key")):
        target = server.directory / name
        shutil.copyfile(certificates.key_file if source == "key" else source, target)
        os.chmod(target, 0o600)  # PostgreSQL refuses a key others can read
        if os.geteuid() == 0:
            account = server.directory.stat()
            os.chown(target, account.st_uid, account.st_gid)
    with open(server.data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
        conf.write(
            f"ssl = on\nssl_cert_file = '{server.directory / 'server.crt'}'\n"
            f"ssl_key_file = '{server.directory / 'server.key'}'\n"
        )
    server.start()


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[PostgresServer]:
    """A private cluster (TLS settings would change the shared one)."""
    server = postgres_or_skip()
    try:
        yield server
    finally:
        server.remove()


def _create_key(server: PostgresServer, ca_file: Path, sslmode: str = "") -> tuple[int, str]:
    url = server.new_database() + (f"?sslmode={sslmode}" if sslmode else "")
    result = pdp_control(
        "create-key", "--db", url, "--db-ca-file", str(ca_file), "--name", "k", env=_ENV
    )
    return result.returncode, result.stderr


def test_the_server_certificate_is_checked_against_the_ca_file(
    tls_postgres: PostgresServer, tmp_path: Path
) -> None:
    loopback = Certificates.create(tmp_path / "loopback", hosts=("127.0.0.1",))
    _serve_certificate(tls_postgres, loopback)
    code, stderr = _create_key(tls_postgres, loopback.ca_file)
    assert code == 0, stderr

    # Another CA's file: the server's certificate does not chain to it.
    stranger = Certificates.create(tmp_path / "stranger")
    code, stderr = _create_key(tls_postgres, stranger.ca_file)
    assert code == 1 and "--db:" in stderr
    assert "CERTIFICATE_VERIFY_FAILED" in stderr or "certificate verify failed" in stderr

    # The right CA, but a certificate for another host: refused unless
    # sslmode=verify-ca says the name need not match.
    elsewhere = Certificates.create(tmp_path / "elsewhere", hosts=("db.example",))
    _serve_certificate(tls_postgres, elsewhere)
    code, stderr = _create_key(tls_postgres, elsewhere.ca_file)
    assert code == 1 and "--db:" in stderr
    assert "127.0.0.1" in stderr and "certificate verify failed" in stderr.lower()
    code, stderr = _create_key(tls_postgres, elsewhere.ca_file, sslmode="verify-ca")
    assert code == 0, stderr


def test_an_unreadable_or_misplaced_ca_file_is_refused_naming_the_flag(tmp_path: Path) -> None:
    url = "postgresql://pdp@127.0.0.1:1/pdp"  # never reached: refused before connecting
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    for ca_file, says in (
        (tmp_path / "missing.pem", "No such file or directory"),
        (not_pem, "argument --db-ca-file: cannot read"),
    ):
        result = pdp_control("create-key", "--db", url, "--db-ca-file", str(ca_file), "--name", "k")
        assert result.returncode == 2
        assert f"argument --db-ca-file: cannot read {str(ca_file)!r}" in result.stderr
        assert says in result.stderr
    ca = Certificates.create(tmp_path / "ca").ca_file
    for db, says in (
        (str(tmp_path / "c.db"), "--db-ca-file applies only with a postgresql:// --db"),
        (url + "?sslmode=disable", "--db-ca-file needs TLS: drop sslmode=disable"),
    ):
        result = pdp_control("create-key", "--db", db, "--db-ca-file", str(ca), "--name", "k")
        assert result.returncode == 2 and says in result.stderr
