"""How the sidecar's listener admits callers: TLS (mutual with a client CA)
for TCP, file permissions for a Unix socket.

gRPC's Python server does not give a handler the peer's credentials on a
Unix socket (``context.peer()`` is ``unix:PATH`` and the auth context of an
insecure or local-credentials port carries no uid), so the sidecar cannot
check the calling uid itself. The socket file's permission bits decide who
may connect instead: ``--socket-mode 0600`` admits only the sidecar's user
(and root), ``0660`` its group as well."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator

import grpc

__all__ = ["restrict_socket", "server_credentials", "socket_umask"]


def _read_pem(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read(1024 * 1024)
    except OSError as exc:
        raise OSError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise OSError(f"{what} {path} holds no PEM block")
    return data


def server_credentials(
    cert: str | None, key: str | None, client_ca: str | None
) -> grpc.ServerCredentials | None:
    """TLS credentials for the listener, None for plain text. With
    ``client_ca`` every client must present a certificate it signed."""
    if cert is None and key is None:
        if client_ca is not None:
            raise OSError("--client-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise OSError("--tls-cert and --tls-key go together")
    pair = (_read_pem(key, "the TLS key"), _read_pem(cert, "the TLS certificate"))
    roots = None if client_ca is None else _read_pem(client_ca, "the client CA file")
    return grpc.ssl_server_credentials(
        [pair], root_certificates=roots, require_client_auth=roots is not None
    )


@contextlib.contextmanager
def socket_umask(mode: int | None) -> Iterator[None]:
    """Files made meanwhile get at most ``mode``'s permission bits."""
    if mode is None:
        yield
        return
    previous = os.umask(0o777 & ~mode)
    try:
        yield
    finally:
        os.umask(previous)


def restrict_socket(path: str, mode: int) -> None:
    """Sets the socket file's permission bits to ``mode`` exactly."""
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} is not a socket")
    os.chmod(path, mode)
