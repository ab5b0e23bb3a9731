"""Secrets: provider tokens, cloud credentials, connection strings and
private keys are found and masked whole; hashes, placeholders and public
material are not secrets."""

from __future__ import annotations

import base64
import json

import pytest

from pdp.engine._pii import PiiDetector
from tests.engine._pii_helpers import ALNUM, found, masked, token

SECRETS = PiiDetector(["secret"])
URLSAFE = ALNUM + "-_"


def stars(value: str) -> str:
    """``value`` masked whole: every character but whitespace."""
    return "".join(char if char.isspace() else "*" for char in value)


def _jwt() -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    claims = base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"Jane Roe"}').decode()
    return f"{header}.{claims.rstrip('=')}.{token(43, URLSAFE)}"


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("sk-" + token(48), "sk-"),  # OpenAI
        ("sk-proj-" + token(120, URLSAFE), "sk-proj-"),
        ("sk-ant-api03-" + token(93, URLSAFE) + "AA", "sk-ant-api03-"),  # Anthropic
        ("sk_live_" + token(24), "sk_live_"),  # Stripe
        ("rk_live_" + token(34), "rk_live_"),
        ("AKIA" + token(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), "AKIA"),  # AWS key id
        ("ghp_" + token(36), "ghp_"),  # GitHub
        ("gho_" + token(36), "gho_"),
        ("github_pat_" + token(22) + "_" + token(59), "github_pat_"),
        ("xoxb-" + token(12, "0123456789") + "-" + token(24), "xoxb-"),  # Slack
        ("xoxp-" + token(12, "0123456789") + "-" + token(32, "0123456789abcdef"), "xoxp-"),
        ("xoxa-2-" + token(30), "xoxa-"),
        ("xoxr-" + token(40), "xoxr-"),
        ("AIza" + token(35, URLSAFE), "AIza"),  # Google API key
        (_jwt(), "eyJ"),
    ],
)
def test_tokens_with_a_known_prefix_are_found_and_masked_whole(key: str, prefix: str) -> None:
    text = f"use {key} here"
    assert key.startswith(prefix)
    assert found(text, SECRETS) == [("secret", key)]
    assert masked(text, SECRETS) == f"use {'*' * len(key)} here"


def test_api_key_is_the_older_name_of_secret() -> None:
    key = "ghp_" + token(36)
    assert found(f"use {key}", PiiDetector(["api_key"])) == [("api_key", key)]
    assert found(f"use {key}", PiiDetector(["api_key", "secret"])) == [("secret", key)]


def test_an_aws_secret_key_next_to_its_key_id_is_found() -> None:
    key_id = "AKIA" + token(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    secret = token(38, ALNUM + "+/") + "a1"
    for text in (
        f"Access key ID,Secret access key\n{key_id},{secret}\n",
        f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n",
        f"key id {key_id} secret {secret}",
        json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret}),
    ):
        assert found(text, SECRETS) == [("secret", key_id), ("secret", secret)], text
    # Forty characters far from any key id are not taken for one.
    assert found(f"blob {secret}", SECRETS) == []


def test_a_service_account_private_key_inside_json_is_found_whole() -> None:
    body = "\\n".join(token(64, ALNUM + "+/") for _ in range(4))
    key = f"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----"
    key_id = token(40, "0123456789abcdef")
    text = f'{{"type": "service_account", "private_key_id": "{key_id}", "private_key": "{key}\\n"}}'
    assert found(text, SECRETS) == [("secret", key)]
    assert masked(text, SECRETS) == text.replace(key, stars(key))


@pytest.mark.parametrize(
    "connection",
    [
        "DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey={key};"
        "EndpointSuffix=core.windows.net",
        "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName="
        "RootManageSharedAccessKey;SharedAccessKey={key}",
    ],
)
def test_an_azure_connection_string_is_found_and_masked_whole(connection: str) -> None:
    value = connection.format(key=base64.b64encode(token(64).encode()).decode())
    for text in (f'"Storage": "{value}"', f"AZURE_STORAGE_CONNECTION_STRING={value}\n"):
        assert found(text, SECRETS) == [("secret", value)], text
    assert masked(f"conn = '{value}'", SECRETS) == f"conn = '{'*' * len(value)}'"


def test_a_random_value_given_to_a_secret_name_is_a_secret() -> None:
    value = token(32)
    named = (f"api_key={value}", f'"client_secret": "{value}"', f"Authorization: Bearer {value}")
    for text in named:
        assert found(text, SECRETS) == [("secret", value)], text
    assert masked(f"TOKEN: {value}", SECRETS) == "TOKEN: " + "*" * len(value)
    quoted = "S3cr3t-P4ssw0rd-2024!"  # a quoted value runs to its quote
    assert found(f"password = '{quoted}'", SECRETS) == [("secret", quoted)]
    long_value = token(600)  # a long opaque token is still taken whole
    assert found(f"Bearer {long_value}", SECRETS) == [("secret", long_value)]


@pytest.mark.parametrize(
    "text",
    [
        "token: hello world", "password: correcthorsebatterystaple", "max_tokens: 4096",
        "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "AKIAXXXXXXXXXXXXXXXX", "api_key: YOUR_API_KEY_HERE", "token: <redacted>",
        "commit 3f2a9c1e7b4d6a8f0e1c2b3a4d5e6f708192a3b4", "pip install scikit-learn sk-video",
        f"image digest sha256:{token(64, '0123456789abcdef')}",
        f"-----BEGIN PUBLIC KEY-----\n{token(64)}\n-----END PUBLIC KEY-----",
        f"-----BEGIN CERTIFICATE-----\n{token(64)}\n-----END CERTIFICATE-----",
    ],
)  # fmt: skip
def test_things_that_are_not_secrets(text: str) -> None:
    assert found(text, SECRETS) == []


@pytest.mark.parametrize(
    "label",
    ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
     "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"],
)  # fmt: skip
def test_a_private_key_block_is_found_and_masked_whole(label: str) -> None:
    body = "\n".join(token(64, ALNUM + "+/") for _ in range(3))
    block = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"
    text = f"key:\n{block}\nbye"
    assert found(text, SECRETS) == [("secret", block)]
    assert masked(text, SECRETS) == f"key:\n{stars(block)}\nbye"


def test_a_truncated_private_key_is_masked_to_the_end_of_its_body() -> None:
    body = token(64, ALNUM + "+/")
    text = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n\nand then the message goes on"
    (finding,) = found(text, SECRETS)
    assert finding[1].endswith(body)
