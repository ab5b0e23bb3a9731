"""The PII detector and masking: validated detection per type, code-point
spans, format-preserving masks, linear time on hostile input, and the
precision/recall floors on labelled data."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from bench import pii_quality
from pdp.engine._pii import PII_TYPES, PiiDetector, PiiMatch, mask_text
from tests._process import run_python

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "pii_quality.py"
ALL = PiiDetector(PII_TYPES)


def found(text: str, detector: PiiDetector = ALL) -> list[tuple[str, str]]:
    """(type, matched text) for each finding."""
    return [(m.pii_type, text[m.start : m.end]) for m in detector.find(text)]


def masked(text: str, detector: PiiDetector = ALL) -> str:
    return mask_text(text, detector.find(text))


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def with_check_digit(partial: str) -> str:
    """``partial`` plus the digit that makes it pass Luhn."""
    return next(partial + d for d in "0123456789" if luhn_ok(partial + d))


def iban(country: str, bban: str) -> str:
    """A compact IBAN with correct ISO 7064 check digits."""
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


# ------------------------------------------------------------------- API


def test_the_documented_types_are_supported() -> None:
    assert {"ssn", "credit_card", "email", "phone", "iban", "ip_address", "api_key"} == PII_TYPES


def test_an_unknown_type_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'passport'"):
        PiiDetector(["ssn", "passport"])
    with pytest.raises(TypeError):  # one string is not a list of types
        PiiDetector("ssn")


def test_only_the_configured_types_are_reported() -> None:
    text = "card 4111 1111 1111 1111, ssn 123-45-6789, mail a.b@example.com"
    assert found(text, PiiDetector(["ssn"])) == [("ssn", "123-45-6789")]
    assert found(text, PiiDetector([])) == []


def test_findings_are_sorted_and_do_not_overlap() -> None:
    text = "b@example.com 4111-1111-1111-1111 10.0.0.1 +1 415-555-2671 123-45-6789 " * 3
    matches = ALL.find(text)
    assert len(matches) == 15
    assert all(a.end <= b.start for a, b in itertools.pairwise(matches))


def test_spans_are_code_point_offsets() -> None:
    prefix = "😀🎉 你好，世界 é "  # astral, CJK and combining-free accented text
    text = prefix + "SSN 123-45-6789 then 4111 1111 1111 1111"
    matches = ALL.find(text)
    ssn_start = len(prefix) + 4
    assert matches[0] == PiiMatch("ssn", ssn_start, ssn_start + 11)
    assert [text[m.start : m.end] for m in matches] == ["123-45-6789", "4111 1111 1111 1111"]


def test_fullwidth_digits_and_typographic_separators_are_read_and_masked() -> None:
    card = "４１１１－１１１１－１１１１－１１１１"
    assert found("カード " + card) == [("credit_card", card)]
    assert masked("カード " + card) == "カード ****－****－****－１１１１"
    text = "SSN 123\u201345\u20136789, card 4111\u00a01111\u00a01111\u00a01111"
    assert [pii_type for pii_type, _ in found(text)] == ["ssn", "credit_card"]
    assert masked(text) == "SSN ***\u2013**\u20136789, card ****\u00a0****\u00a0****\u00a01111"


# ----------------------------------------------------------------- cards


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1111",  # Visa, spaces
        "4111-1111-1111-1111",  # Visa, hyphens
        "5555555555554444",  # Mastercard
        with_check_digit("222100000000000"),  # Mastercard 2-series
        "3782 822463 10005",  # American Express, 4-6-5
        with_check_digit("601100000000000"),  # Discover
        with_check_digit("3056930902590"),  # Diners Club, 14 digits
        with_check_digit("353011133330000"),  # JCB
        with_check_digit("621234567890123"),  # UnionPay
        with_check_digit("50181234567"),  # Maestro, 12 digits
        with_check_digit("411111111111111111"),  # Visa, 19 digits
    ],
)
def test_a_luhn_valid_card_with_a_known_prefix_is_found(number: str) -> None:
    text = f"pay with {number}, thanks"
    assert found(text) == [("credit_card", number)]


def test_a_number_failing_luhn_or_without_an_issuer_prefix_is_not_a_card() -> None:
    assert found("order 4111 1111 1111 1112 shipped") == []
    assert found("order 4111111111111112 shipped") == []
    for partial in ("900000000000000", "123456781234567", "700012345678901"):
        assert found(f"ref {with_check_digit(partial)}", PiiDetector(["credit_card"])) == []


def test_a_card_inside_a_longer_number_is_not_a_card() -> None:
    card = "4111111111111111"
    detector = PiiDetector(["credit_card"])
    for text in (f"00{card}11", f"x{card}", f"{card}abc", f"0.{card}", f"{card}.25"):
        assert found(text, detector) == [], text


def test_a_card_next_to_other_numbers_is_still_found() -> None:
    text = "4111 1111 1111 1111 123 12/26"  # number, CVV, expiry
    assert found(text, PiiDetector(["credit_card"])) == [("credit_card", "4111 1111 1111 1111")]


def test_a_card_is_masked_keeping_separators_and_the_last_four() -> None:
    assert masked("4111-1111-1111-1111") == "****-****-****-1111"
    assert masked("card 4111 1111 1111 1111.") == "card **** **** **** 1111."
    assert masked("4111111111111111") == "************1111"
    assert masked("3782 822463 10005") == "**** ****** *0005"


# ------------------------------------------------------------------ SSNs


def test_a_valid_ssn_is_found_with_hyphens_or_spaces() -> None:
    expected = [("ssn", "123-45-6789"), ("ssn", "234 56 7890")]
    assert found("SSN 123-45-6789 and 234 56 7890") == expected


@pytest.mark.parametrize(
    "value",
    ["000-12-3456", "666-12-3456", "900-12-3456", "987-65-4321", "123-00-4567", "123-45-0000"],
)
def test_numbers_the_ssa_never_issues_are_not_ssns(value: str) -> None:
    assert found(f"ssn {value}", PiiDetector(["ssn"])) == []


def test_nine_bare_digits_are_an_ssn_only_after_an_ssn_word() -> None:
    detector = PiiDetector(["ssn"])
    assert found("SSN: 123456789", detector) == [("ssn", "123456789")]
    assert found("social security number 123456789", detector) == [("ssn", "123456789")]
    assert found("order 123456789 shipped", detector) == []
    assert found("ssn 1, then order 123456789", detector) == []


def test_an_ssn_inside_a_longer_number_is_not_an_ssn() -> None:
    detector = PiiDetector(["ssn"])
    for text in ("1123-45-6789", "123-45-67890", "555-123-45-6789", "ID123-45-6789"):
        assert found(text, detector) == [], text


def test_an_ssn_is_masked_keeping_the_last_four() -> None:
    assert masked("SSN 123-45-6789.") == "SSN ***-**-6789."
    assert masked("SSN 123 45 6789") == "SSN *** ** 6789"
    assert masked("SSN: 123456789") == "SSN: *****6789"


# ----------------------------------------------------------------- IBANs


@pytest.mark.parametrize(
    "value",
    [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        iban("NO", "86011117947"),  # 15 characters, the shortest
        iban("FR", "20041010050500013M02606"),  # letters inside the BBAN
        iban("GB", "NWBK60161331926819").lower(),  # written in lower case
    ],
)
def test_a_valid_iban_is_found(value: str) -> None:
    assert found(f"IBAN {value} thanks", PiiDetector(["iban"])) == [("iban", value)]


def test_an_iban_with_a_wrong_check_or_length_is_not_an_iban() -> None:
    detector = PiiDetector(["iban"])
    assert found("GB83 WEST 1234 5698 7654 32", detector) == []
    assert found("GB82WEST1234569876543", detector) == []  # one character short
    assert found("DE89 3704 0044 0532 0130 01", detector) == []


def test_a_spaced_iban_does_not_take_in_the_next_word() -> None:
    text = "to BE71 0961 2345 6769 then"
    assert found(text, PiiDetector(["iban"])) == [("iban", "BE71 0961 2345 6769")]


def test_an_iban_is_masked_keeping_its_country_and_last_four() -> None:
    assert masked("GB82 WEST 1234 5698 7654 32") == "GB** **** **** **** **54 32"
    assert masked("DE89370400440532013000") == "DE****************3000"


# ---------------------------------------------------------------- emails


def test_emails_are_found_and_masked() -> None:
    text = "write to john.doe@example.com or ops+alerts@mail.example.co.uk."
    expected = [("email", "john.doe@example.com"), ("email", "ops+alerts@mail.example.co.uk")]
    assert found(text) == expected
    assert masked(text) == "write to j***@example.com or o***@mail.example.co.uk."


def test_things_with_an_at_sign_that_are_not_emails() -> None:
    detector = PiiDetector(["email"])
    for text in ("icon@2x.png", "root@localhost", "a..b@example.com", "@example.com", "x@y.z"):
        assert found(text, detector) == [], text


# ---------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "number",
    ["+1 415-555-2671", "(415) 555-2671", "415.555.2671", "415-555-2671 x204", "1 800 555 1234",
     "+44 20 7946 0958", "+46 (0)8 928 571 38", "020 7946 0958", "01 23 45 67 89", "+14155552671"],
)  # fmt: skip
def test_phone_numbers_are_found(number: str) -> None:
    assert found(f"it is {number} today", PiiDetector(["phone"])) == [("phone", number)]


def test_a_bare_run_of_digits_is_a_phone_only_after_a_phone_word() -> None:
    detector = PiiDetector(["phone"])
    assert found("phone: 4155552671", detector) == [("phone", "4155552671")]
    assert found("invoice 4155552671", detector) == []


@pytest.mark.parametrize(
    "text",
    [
        "on 2024-01-15 at noon",  # a date
        "on 15.01.2024 at noon",  # a date
        "ssn 123-45-6789",  # an SSN
        "host 192.168.10.10",  # an IPv4 address
        "version 10.0.19041.1",  # a version
        "from 1990-2000",  # a range of years
        "scores 100 200 300 400",  # a list of numbers
        "pi is 3.14159265",
    ],
)
def test_numbers_that_are_not_phones(text: str) -> None:
    assert found(text, PiiDetector(["phone"])) == []


def test_a_card_is_reported_as_a_card_not_a_phone() -> None:
    digits = with_check_digit("50181234567")  # a 12-digit Maestro card
    card = f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"
    assert found(card, PiiDetector(["phone"])) == [("phone", card)]  # it reads as one too
    assert found(card) == [("credit_card", card)]


def test_a_phone_is_masked_keeping_separators_and_the_last_two_digits() -> None:
    assert masked("call +1 415-555-2671") == "call +* ***-***-**71"
    assert masked("call (415) 555-2671") == "call (***) ***-**71"


# ----------------------------------------------------------- IP addresses


def test_ip_addresses_are_found_and_masked() -> None:
    text = "hosts 192.168.1.20 and 2001:db8::8a2e:370:7334 and ::ffff:10.0.0.1"
    assert found(text) == [
        ("ip_address", "192.168.1.20"),
        ("ip_address", "2001:db8::8a2e:370:7334"),
        ("ip_address", "::ffff:10.0.0.1"),
    ]
    assert masked("ssh 192.168.1.20") == "ssh ***.***.*.**"
    assert masked("ssh fe80::1") == "ssh ****::*"


@pytest.mark.parametrize(
    "text",
    ["999.1.1.1", "1.2.3.4.5", "10.0.0.256", "at 12:30:45", "std::vector", "v1.2.3.4",
     "01.02.03.04"],
)  # fmt: skip
def test_things_that_are_not_ip_addresses(text: str) -> None:
    assert found(text, PiiDetector(["ip_address"])) == []


# --------------------------------------------------------------- secrets

_RANDOM = random.Random(7)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def token(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(_RANDOM.choice(alphabet) for _ in range(length))


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("sk-" + token(40), "sk-"),
        ("sk-proj-" + token(48), "sk-proj-"),
        ("sk_live_" + token(24), "sk_live_"),
        ("AKIA" + token(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), "AKIA"),
        ("ghp_" + token(36), "ghp_"),
        ("xoxb-" + token(12, "0123456789") + "-" + token(24), "xoxb-"),
        ("AIza" + token(35), "AIza"),
    ],
)
def test_known_keys_are_found_and_masked_after_their_prefix(key: str, prefix: str) -> None:
    text = f"use {key} here"
    assert found(text) == [("api_key", key)]
    assert masked(text) == f"use {prefix}{'*' * (len(key) - len(prefix))} here"


def test_a_random_value_given_to_a_secret_name_is_a_secret() -> None:
    value = token(32)
    named = (f"api_key={value}", f'"client_secret": "{value}"', f"Authorization: Bearer {value}")
    for text in named:
        assert found(text, PiiDetector(["api_key"])) == [("api_key", value)], text
    assert masked(f"TOKEN: {value}") == "TOKEN: " + "*" * len(value)


def test_words_given_to_a_secret_name_are_not_secrets() -> None:
    detector = PiiDetector(["api_key"])
    for text in ("token: hello world", "password: correcthorsebatterystaple", "max_tokens: 4096"):
        assert found(text, detector) == [], text


def test_a_private_key_is_masked_between_its_armour_lines() -> None:
    body = "\n".join(token(64, _ALNUM + "+/") for _ in range(3))
    text = f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\nbye"
    assert [m.pii_type for m in ALL.find(text)] == ["api_key"]
    result = masked(text)
    assert "-----BEGIN RSA PRIVATE KEY-----\n" in result
    assert "\n-----END RSA PRIVATE KEY-----\nbye" in result
    assert not any(line in result for line in body.splitlines())


# --------------------------------------------------------------- masking


def test_masking_keeps_only_the_documented_hints() -> None:
    text = "4111-1111-1111-1111 123-45-6789 +1 415-555-2671"
    result = masked(text)
    assert [c for c in result if c.isdigit()] == list("1111" + "6789" + "71")


def test_overlapping_spans_are_masked_whole() -> None:
    text = "id 4111111111111111 end"
    matches = [PiiMatch("credit_card", 3, 19), PiiMatch("phone", 10, 19)]
    assert mask_text(text, matches) == "id **************** end"


def test_masking_nothing_returns_the_text_and_a_span_outside_it_is_an_error() -> None:
    assert mask_text("nothing here", []) == "nothing here"
    with pytest.raises(ValueError, match="outside"):
        mask_text("short", [PiiMatch("ssn", 2, 40)])


# ------------------------------------------------------------ hostile input


_HOSTILE_UNITS = (
    "1 ", "4111 ", "123-45-", "1.", ":", "ab:", "a@", "api_key=", "7", "+1 (", "GB82 ",
    "-----BEGIN RSA PRIVATE KEY-----",
)  # fmt: skip


@pytest.mark.parametrize("unit", [*_HOSTILE_UNITS, "0123456789 -.", "0123456789 -.:@+()xa=_/"])
def test_hostile_input_of_100kb_is_scanned(unit: str) -> None:
    """Repeats of one unit, or random picks among the characters of a longer one."""
    if unit in _HOSTILE_UNITS:
        text = unit * (100_000 // len(unit))
    else:
        rng = random.Random(11)
        text = "".join(rng.choice(unit) for _ in range(100_000))
    matches = ALL.find(text)
    assert all(0 <= m.start < m.end <= len(text) for m in matches)
    mask_text(text, matches)


# ------------------------------------------------------------ labelled data


def test_cards_and_ssns_meet_the_precision_and_recall_floors() -> None:
    path = pii_quality.default_data_path()
    if not path.is_file():
        pytest.skip(f"labelled data not found: {path}")
    scores = pii_quality.score(pii_quality.load_records(path))
    for pii_type in ("credit_card", "ssn"):
        result = scores[pii_type]
        assert result.support > 0
        assert result.precision >= 0.99, (pii_type, result.errors[:5])
        assert result.recall >= 0.99, (pii_type, result.errors[:5])


def test_the_quality_script_reports_every_type_and_passes() -> None:
    if not pii_quality.default_data_path().is_file():
        pytest.skip("labelled data not found")
    run = run_python(str(BENCH), timeout=50)
    assert run.returncode == 0, run.stdout + run.stderr
    for pii_type in ("credit_card", "ssn", "email", "phone", "iban", "ip_address"):
        assert pii_type in run.stdout
