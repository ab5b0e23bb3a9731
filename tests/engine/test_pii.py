"""The PII detector: validated detection per type, whole tokens only,
code-point spans, format-preserving masks, linear time on hostile input, and
the precision/recall floors on labelled and generated data. Phones, secrets
and the masking properties have their own modules."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from bench import pii_quality
from pdp.engine._pii import PII_TYPES, PiiDetector, PiiMatch, mask_text
from pdp.engine._pii_iban import IBAN_FORMATS
from tests._process import run_python
from tests.engine._pii_helpers import ALL, found, iban, masked, with_check_digit

REPO = Path(__file__).resolve().parents[2]
CARDS = PiiDetector(["credit_card"])
SSNS = PiiDetector(["ssn"])
IBANS = PiiDetector(["iban"])

# ------------------------------------------------------------------- API


def test_the_documented_types_are_supported() -> None:
    expected = {"ssn", "credit_card", "email", "phone", "iban", "ip_address", "secret", "api_key"}
    assert expected == PII_TYPES


def test_an_unknown_type_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'passport'"):
        PiiDetector(["ssn", "passport"])
    with pytest.raises(TypeError):  # one string is not a list of types
        PiiDetector("ssn")


def test_only_the_configured_types_are_reported() -> None:
    text = "card 4111 1111 1111 1111, ssn 123-45-6789, mail a.b@example.com"
    assert found(text, SSNS) == [("ssn", "123-45-6789")]
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
        "4111.1111.1111.1111",  # Visa, dots
        "5555555555554444",  # Mastercard
        with_check_digit("222100000000000"),  # Mastercard 2-series
        "3782 822463 10005",  # American Express, 4-6-5
        "3782-822463-10005",
        with_check_digit("601100000000000"),  # Discover
        with_check_digit("3056930902590"),  # Diners Club, 14 digits
        "3056 930902 5904",  # Diners Club, 4-6-4
        with_check_digit("353011133330000"),  # JCB
        with_check_digit("621234567890123"),  # UnionPay
        with_check_digit("411111111111111111"),  # Visa, 19 digits
    ],
)
def test_a_luhn_valid_card_with_a_known_prefix_is_found(number: str) -> None:
    text = f"pay with {number}, thanks"
    assert found(text) == [("credit_card", number)]


@pytest.mark.parametrize("separator", [" ", "-", ".", ""])
def test_a_card_is_found_whatever_separates_its_groups(separator: str) -> None:
    number = separator.join(("5555", "5555", "5555", "4444"))
    assert found(f"Card: {number}.", CARDS) == [("credit_card", number)]


def test_a_12_or_13_digit_card_is_found_only_after_a_card_word() -> None:
    # Product codes and parcel numbers of that length pass the same checks.
    maestro = with_check_digit("50181234567")
    for text in (
        f"Maestro card {maestro}",
        f"debit card: {maestro[:4]} {maestro[4:8]} {maestro[8:]}",
    ):
        assert [t for t, _ in found(text, CARDS)] == ["credit_card"], text
    assert found(f"pay with {maestro}", CARDS) == []
    assert found(f"EAN {with_check_digit('400638133393')}", CARDS) == []


def test_a_number_failing_luhn_or_without_an_issuer_prefix_is_not_a_card() -> None:
    assert found("order 4111 1111 1111 1112 shipped") == []
    assert found("order 4111111111111112 shipped") == []
    for partial in ("900000000000000", "123456781234567", "700012345678901"):
        assert found(f"ref {with_check_digit(partial)}", CARDS) == []


@pytest.mark.parametrize("separator", [" ", "-", ".", ""])
def test_no_part_of_a_checksum_failing_number_is_a_card(separator: str) -> None:
    # Its first 12 digits are a valid Maestro number; the 16 fail the check.
    head = with_check_digit("50181234567")
    number = next(head + tail for tail in ("0001", "0002") if not luhn_16(head + tail))
    text = "card " + separator.join(number[i : i + 4] for i in range(0, 16, 4))
    assert found(text, CARDS) == []
    assert found(text) == []
    assert masked(text) == text


def luhn_16(digits: str) -> bool:
    return with_check_digit(digits[:-1]) == digits


def test_a_card_inside_a_longer_number_is_not_a_card() -> None:
    card = "4111111111111111"
    for text in (f"00{card}11", f"x{card}", f"{card}abc", f"0.{card}", f"{card}.25"):
        assert found(text, CARDS) == [], text
    # Five groups of four digits are one 20-digit number, not a card and a bit.
    assert found("id 4111 1111 1111 1111 2222", CARDS) == []


def test_a_card_next_to_other_numbers_is_still_found() -> None:
    text = "4111 1111 1111 1111 123 12/26"  # number, CVV, expiry
    assert found(text, CARDS) == [("credit_card", "4111 1111 1111 1111")]
    two = "4111 1111 1111 1111 5555 5555 5555 4444"  # a list written with spaces
    assert found(two, CARDS) == [
        ("credit_card", "4111 1111 1111 1111"),
        ("credit_card", "5555 5555 5555 4444"),
    ]


def test_the_account_number_inside_an_iban_is_not_a_card() -> None:
    value = iban("TL", "4111111111111111" + "000")  # 19 digits holding a valid card
    spaced = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    for text in (f"IBAN {spaced}", f"pay to {spaced} today"):
        assert found(text, CARDS) == [], text
        assert found(text) == [("iban", spaced)]


def test_a_card_is_masked_keeping_separators_and_the_last_four() -> None:
    assert masked("4111-1111-1111-1111") == "****-****-****-1111"
    assert masked("card 4111 1111 1111 1111.") == "card **** **** **** 1111."
    assert masked("card 4111.1111.1111.1111") == "card ****.****.****.1111"
    assert masked("4111111111111111") == "************1111"
    assert masked("3782 822463 10005") == "**** ****** *0005"


# ------------------------------------------------------------------ SSNs


@pytest.mark.parametrize(
    "text",
    [
        "SSN 123-45-6789", "ssn: 123 45 6789", "SSN 123.45.6789", "my SSN is 123456789",
        "social security number 123456789", "SSN#123456789", "Soc. Sec. No. 123456789",
        "123456789 is my SSN", "Jane Roe (123456789, SSN) called", "applicant 123-45-6789",
    ],
)  # fmt: skip
def test_an_ssn_is_found_in_the_formats_people_write(text: str) -> None:
    assert [pii_type for pii_type, _ in found(text)] == ["ssn"]
    assert found(text, SSNS)[0][1].replace("-", "").replace(" ", "").replace(".", "") == (
        "123456789"
    )


@pytest.mark.parametrize(
    "value",
    ["000-12-3456", "666-12-3456", "900-12-3456", "987-65-4321", "123-00-4567", "123-45-0000",
     "912-70-1234", "000.12.3456"],
)  # fmt: skip
def test_numbers_the_ssa_never_issues_are_not_ssns(value: str) -> None:
    assert found(f"ssn {value}", SSNS) == []


def test_nine_bare_digits_are_an_ssn_only_next_to_an_ssn_word() -> None:
    assert found("SSN: 123456789", SSNS) == [("ssn", "123456789")]
    assert found("order 123456789 shipped", SSNS) == []
    assert found("ssn 1, then order 123456789", SSNS) == []
    assert found("123456789 then 42 and then the SSN", SSNS) == []


def test_an_ssn_inside_a_longer_number_is_not_an_ssn() -> None:
    for text in ("1123-45-6789", "123-45-67890", "555-123-45-6789", "ID123-45-6789"):
        assert found(text, SSNS) == [], text


@pytest.mark.parametrize(
    "text", ["SSN 123-45-6789", "ssn 123 45 6789", "SSN 123.45.6789", "SSN: 123456789"]
)
def test_an_ssn_is_never_also_a_phone(text: str) -> None:
    assert found(text, PiiDetector(["phone"])) == []
    assert [t for t, _ in found(text, PiiDetector(["phone", "ssn"]))] == ["ssn"]


def test_an_ssn_is_masked_keeping_the_last_four() -> None:
    assert masked("SSN 123-45-6789.") == "SSN ***-**-6789."
    assert masked("SSN 123 45 6789") == "SSN *** ** 6789"
    assert masked("SSN 123.45.6789") == "SSN ***.**.6789"
    assert masked("SSN: 123456789") == "SSN: *****6789"


# ----------------------------------------------------------------- IBANs

# The example IBAN the SWIFT registry gives for each of its countries.
REGISTRY_EXAMPLES = (REPO / "tests" / "engine" / "iban_registry_examples.txt").read_text().split()


def test_every_country_of_the_registry_is_known() -> None:
    assert len(REGISTRY_EXAMPLES) == len(IBAN_FORMATS) == 89
    assert {example[:2] for example in REGISTRY_EXAMPLES} == set(IBAN_FORMATS)


@pytest.mark.parametrize("example", REGISTRY_EXAMPLES)
def test_the_registry_example_of_each_country_is_found_compact_and_spaced(example: str) -> None:
    spaced = " ".join(example[i : i + 4] for i in range(0, len(example), 4))
    for value, after in itertools.product((example, spaced, example.lower()), (" thanks", ".", "")):
        text = f"pay to {value}{after}"
        assert found(text, IBANS) == [("iban", value)], text


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
    assert found(f"IBAN {value} thanks", IBANS) == [("iban", value)]


def test_an_iban_with_a_wrong_check_length_or_structure_is_not_an_iban() -> None:
    assert found("GB83 WEST 1234 5698 7654 32", IBANS) == []
    assert found("GB82WEST1234569876543", IBANS) == []  # one character short
    assert found("DE89 3704 0044 0532 0130 01", IBANS) == []
    # Right length and check digits, but digits where GB has its bank's letters.
    assert found(f"IBAN {iban('GB', '123460161331926819')}", IBANS) == []


def test_a_compact_iban_followed_by_a_word_is_found() -> None:
    # Lengths that are a multiple of four make the word look like a group.
    for value in ("BE71096123456769", "ES9121000418450200051332", "SI56263300012039086"):
        for text in (f"to {value} then", f"to {value} thanks, {value} done"):
            assert [v for _, v in found(text, IBANS)] == [value] * text.count(value), text


def test_a_spaced_iban_does_not_take_in_the_next_word() -> None:
    assert found("to BE71 0961 2345 6769 then", IBANS) == [("iban", "BE71 0961 2345 6769")]
    assert found("to BE71 0961 2345 6769 XY12", IBANS) == [("iban", "BE71 0961 2345 6769")]


def test_a_country_outside_the_registry_only_after_the_word_iban() -> None:
    value = iban("SN", "SN0100152000048500003035")  # uses IBANs, not registered
    assert found(f"IBAN: {value}", IBANS) == [("iban", value)]
    assert found(f"parcel {value} arrived", IBANS) == []


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


# ------------------------------------------------------------ hostile input


_HOSTILE_UNITS = (
    "1 ", "4111 ", "123-45-", "1.", ":", "ab:", "a@", "api_key=", "7", "+1 (", "GB82 ",
    "-----BEGIN RSA PRIVATE KEY-----", "(0)1 ", "1 / ", "AccountKey=", "AKIA" + "A" * 16 + " ",
    "GB82WEST ", "1-2 ", "token='a1", "password: \"",
)  # fmt: skip


@pytest.mark.parametrize(
    "unit", [*_HOSTILE_UNITS, "0123456789 -.", "0123456789 -.:@+()xa=_/", "0123456789 /()+"]
)
def test_hostile_input_of_100kb_is_scanned(unit: str) -> None:
    """Repeats of one unit, or random picks among the characters of a longer one."""
    if unit in _HOSTILE_UNITS:
        text = unit * (100_000 // len(unit))
    else:
        rng = random.Random(11)
        text = "".join(rng.choice(unit) for _ in range(100_000))
    matches = PiiDetector(PII_TYPES).find(text)
    assert all(0 <= m.start < m.end <= len(text) for m in matches)
    mask_text(text, matches)


# ------------------------------------------------------------ labelled data


def test_cards_and_ssns_meet_the_floors_on_presidio_data() -> None:
    path = pii_quality.default_data_path()
    if not path.is_file():
        pytest.skip(f"labelled data not found: {path}")
    scores = pii_quality.score(pii_quality.load_records(path), ("credit_card", "ssn"))
    assert scores["credit_card"].support > 0
    assert pii_quality.below_floor("presidio", scores) == []


def test_every_type_meets_its_floor_on_generated_records() -> None:
    """SSN recall and phone precision among them, on records of each defect
    class: dotted cards, checksum-failing numbers, compact IBANs before a
    word, coordinates, tracking, ticket and order numbers."""
    scores = pii_quality.score(pii_quality.generated_records(per_kind=60), exact=True)
    assert scores["ssn"].support > 200 and scores["phone"].support > 150
    failures = pii_quality.below_floor("generated", scores)
    assert failures == [], [e for s in scores.values() for e in s.errors[:3]]


def test_the_quality_script_reports_every_type_and_passes() -> None:
    run = run_python(str(REPO / "bench" / "pii_quality.py"), "--per-kind", "40", timeout=50)
    assert run.returncode == 0, run.stdout + run.stderr
    for pii_type in ("credit_card", "ssn", "email", "phone", "iban", "ip_address", "secret"):
        assert pii_type in run.stdout
    assert "generated" in run.stdout
