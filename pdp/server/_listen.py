"""How the sidecar's listener admits callers: TLS (mutual with a client CA)
for TCP, file permissions for a Unix socket.

gRPC's Python server does not give a handler the peer's credentials on a
Unix socket (``context.peer()`` is ``unix:``, and the auth context of an
insecure or local-credentials port carries no uid), so the sidecar cannot
check the calling uid itself. The socket file's owner and permission bits
decide who may connect instead, checked by the kernel at connect time:
``--socket-mode 0600`` admits only the sidecar's user (and root);
``--socket-mode 0660 --socket-group agents`` that group as well."""

from __future__ import annotations

import contextlib
import grp
import os
import stat
from collections.abc import Iterator

import grpc

__all__ = ["restrict_socket", "server_credentials", "socket_gid", "socket_umask"]


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


def socket_gid(group: str) -> int:
    """The id of ``group`` (a name or a number)."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise OSError(f"--socket-group: no group named {group!r}") from None


def restrict_socket(path: str, mode: int, gid: int | None = None) -> None:
    """Sets the socket file's group (when given), then its permission bits
    to ``mode`` exactly."""
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} is not a socket")
    if gid is not None:
        try:
            os.chown(path, -1, gid)
        except OSError as exc:
            raise OSError(f"cannot give {path} to group {gid}: {exc.strerror}") from None
    os.chmod(path, mode)
