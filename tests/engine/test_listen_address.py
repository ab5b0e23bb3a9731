"""The one listen-address parser, shared by `pdp serve`, `pdp control` and
the servers that report where they listen."""

from __future__ import annotations

import pytest

from pdp.engine import ListenAddress, parse_listen_address

ACCEPTED = [
    ("127.0.0.1:50051", ListenAddress("127.0.0.1", 50051)),
    ("0.0.0.0:0", ListenAddress("0.0.0.0", 0)),
    ("localhost:8080", ListenAddress("localhost", 8080)),
    ("pdp.internal.example:65535", ListenAddress("pdp.internal.example", 65535)),
    ("[::1]:50051", ListenAddress("::1", 50051)),
    ("[::]:0", ListenAddress("::", 0)),
    ("[fe80::1%eth0]:80", ListenAddress("fe80::1%eth0", 80)),
    ("unix:/run/pdp/pdp.sock", ListenAddress(path="/run/pdp/pdp.sock")),
    ("unix:pdp.sock", ListenAddress(path="pdp.sock")),
]

REFUSED = [
    ("", "no port"),
    ("nohost", "no port"),
    ("h:99999", "out of range"),
    ("h:", "not a number"),
    ("h:8o", "not a number"),
    ("h:-1", "not a number"),
    ("h:٨٠", "not a number"),  # Arabic-Indic digits
    (":8080", "no host"),
    ("::1:80", "in brackets"),
    ("[::1:80", "no closing"),
    ("[not-v6]:80", "not an IPv6 address"),
    ("[127.0.0.1]:80", "not an IPv6 address"),
    ("my host:80", "not a host name"),
    ("h\x00:80", "not a host name"),
    ("h" * 254 + ":80", "not a host name"),
    ("unix:", "needs a socket path"),
    ("unix:/tmp/a\x00b", "NUL"),
    ("unix:/" + "x" * 107, "longer than 107 bytes"),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_forms_read_and_write_back(text: str, expected: ListenAddress) -> None:
    address = parse_listen_address(text)
    assert address == expected
    assert str(address) == text
    assert address.is_unix is text.startswith("unix:")


@pytest.mark.parametrize(("text", "reason"), REFUSED, ids=[repr(r[0])[:30] for r in REFUSED])
def test_refused_forms_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_listen_address(text)


def test_unix_sockets_are_refused_where_they_do_not_apply() -> None:
    assert parse_listen_address("[::1]:8080", unix=False) == ListenAddress("::1", 8080)
    with pytest.raises(ValueError, match="Unix sockets are not supported here"):
        parse_listen_address("unix:/run/pdp.sock", unix=False)


def test_the_bound_port_replaces_port_zero() -> None:
    assert str(parse_listen_address("[::]:0").with_port(50051)) == "[::]:50051"
    assert str(parse_listen_address("0.0.0.0:0").with_port(8080)) == "0.0.0.0:8080"
