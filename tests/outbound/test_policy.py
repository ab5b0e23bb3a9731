"""What the outbound policy allows and refuses, by address and by name,
however an address is written, and how --outbound-allow entries read."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from pdp.outbound import Kind, OutboundPolicy, OutboundRuleError, address_kind, host_address

DEFAULT = OutboundPolicy()

# 169.254.169.254 (and the other metadata services) as a URL may write it.
METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://169.254.169.254./latest/",
    "http://2852039166/",  # decimal
    "http://0xa9fea9fe/",  # hexadecimal
    "http://0XA9FEA9FE/",
    "http://0251.0376.0251.0376/",  # octal parts
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://169.254.43518/",  # the last part fills the bytes left
    "http://169.16689662/",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::169.254.169.254]/",  # NAT64
    "http://[2002:a9fe:a9fe::]/",  # 6to4
    "http://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64
    "http://[::169.254.169.254]/",  # IPv4-compatible
    "http://[::ffff:0:a9fe:a9fe]/",  # IPv4-translated
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS over IPv6
    "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud
    "http://169.254.170.2/v2/credentials/",  # AWS ECS task credentials
    "http://[fd00:ec2::23]/v1/credentials",  # AWS EKS pod identity
    "http://168.63.129.16/machine?comp=goalstate",  # Azure WireServer, a public address
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
    "http://169.254.1.1/",  # any link-local address
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
]


@pytest.mark.parametrize("url", METADATA_URLS)
def test_link_local_and_metadata_destinations_are_refused_by_default(url: str) -> None:
    why = DEFAULT.url_refusal(url)
    assert why is not None
    assert "metadata" in why or "link-local" in why


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8443/check",
        "https://[::1]/",
        "https://localhost/",
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://192.168.1.10/",
        "https://100.64.0.1/",
        "https://[fd12:3456::1]/",
        "https://93.184.215.14/",
        "https://[2606:4700::1111]/",
        "https://validators.example.com/check",
        "https://[::ffff:127.0.0.1]/",
    ],
)
def test_loopback_private_and_public_destinations_are_allowed_by_default(url: str) -> None:
    assert DEFAULT.url_refusal(url) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2852039166", "169.254.169.254"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.258", "10.1.1.2"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
    ],
)
def test_integer_hosts_read_as_the_resolver_reads_them(host: str, address: str) -> None:
    assert host_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["example.com", "09", "1.2.3.4.5", "256.1.1.1", "1.2.65536", "1e3", "-1", "1_0"]
)
def test_names_that_are_not_addresses_stay_names(host: str) -> None:
    assert host_address(host) is None


def test_every_integer_form_the_system_reads_as_an_address_reads_the_same() -> None:
    """``inet_aton`` is what getaddrinfo uses on a numeric host: each form it
    takes for an address, the policy takes for the same address."""
    values = [0xA9FEA9FE, 0x7F000001, 0x64646464 + 0x64, 0x0A000001, 0, 0xFFFFFFFF]
    checked = 0
    for value in values:
        octets = value.to_bytes(4, "big")
        for parts in (1, 2, 3, 4):
            head = list(octets[: parts - 1])
            last = int.from_bytes(octets[parts - 1 :], "big")
            for style in ("{}", "0{:o}", "0x{:x}", "0X{:X}", "00{:o}"):
                text = ".".join(style.format(n) for n in [*head, last])
                try:
                    expected = ipaddress.ip_address(socket.inet_ntoa(socket.inet_aton(text)))
                except OSError:
                    continue
                assert host_address(text) == expected, text
                checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", Kind.METADATA),
        ("::ffff:100.100.100.200", Kind.METADATA),
        ("64:ff9b::a9fe:1", Kind.LINK_LOCAL),
        ("0.0.0.0", Kind.LOOPBACK),
        ("::", Kind.LOOPBACK),
        ("::ffff:10.0.0.1", Kind.PRIVATE),
        ("8.8.8.8", Kind.PUBLIC),
        ("224.0.0.1", Kind.RESERVED),
        ("255.255.255.255", Kind.RESERVED),
        ("ff02::1", Kind.RESERVED),
        ("::1", Kind.LOOPBACK),
        ("::a00:1", Kind.PRIVATE),  # IPv4-compatible 10.0.0.1
        ("64:ff9b::808:808", Kind.PUBLIC),  # NAT64 8.8.8.8
        ("2606:4700::1111", Kind.PUBLIC),
    ],
)
def test_address_kinds(address: str, kind: Kind) -> None:
    assert address_kind(ipaddress.ip_address(address)) is kind


def test_an_allow_list_replaces_the_default_ranges() -> None:
    public_only = OutboundPolicy.allowing(["public"])
    why = public_only.url_refusal("https://127.0.0.1/")
    assert why == "127.0.0.1 is a loopback address, which --outbound-allow (public) does not allow"
    assert public_only.url_refusal("https://10.0.0.1/") is not None
    assert public_only.url_refusal("https://8.8.8.8/") is None
    assert public_only.url_refusal("https://169.254.169.254/") is not None


def test_an_address_or_range_entry_is_the_only_way_to_a_metadata_address() -> None:
    allowed = OutboundPolicy.allowing(["loopback,169.254.169.254", "fd00:ec2::/64"])
    assert allowed.url_refusal("http://169.254.169.254/") is None
    assert allowed.url_refusal("http://[::ffff:169.254.169.254]/") is None  # the same address
    assert allowed.url_refusal("http://[fd00:ec2::254]/") is None
    assert allowed.url_refusal("http://169.254.169.253/") is not None
    assert allowed.url_refusal("http://8.8.8.8/") is not None
    # A name of a cloud metadata service is refused unless named itself.
    assert allowed.url_refusal("http://metadata.google.internal/") is not None
    named = OutboundPolicy.allowing(["metadata.google.internal", "169.254.169.254"])
    assert named.url_refusal("http://metadata.google.internal/") is None


def test_named_hosts_reach_loopback_private_and_public_but_never_link_local() -> None:
    policy = OutboundPolicy.allowing(["validators.internal", "*.corp.example"])
    for host in ("validators.internal", "a.corp.example", "b.a.corp.example"):
        for address in ("127.0.0.1", "10.0.0.7", "8.8.8.8"):
            assert policy.address_refusal(host, ipaddress.ip_address(address)) is None
        why = policy.address_refusal(host, ipaddress.ip_address("169.254.169.254"))
        assert why is not None and "metadata" in why
    # *.domain is the names under the domain, not the domain itself.
    refused = policy.address_refusal("corp.example", ipaddress.ip_address("10.0.0.7"))
    assert refused is not None and "private" in refused
    assert policy.address_refusal("evilcorp.example", ipaddress.ip_address("8.8.8.8"))


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("", "empty"),
        ("public,,private", "empty"),
        ("*", "not a host"),
        ("*.", "not a host"),
        ("*.exa mple.com", "not a *.domain"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("exa mple.com", "not a host"),
        ("https://example.com/", "not a host"),
    ],
)
def test_bad_entries_are_refused_naming_them(entry: str, words: str) -> None:
    with pytest.raises(OutboundRuleError) as caught:
        OutboundPolicy.allowing([entry])
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)
