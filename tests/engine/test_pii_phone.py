"""Phone numbers: national and international formats are found; numbers
that only look like phones (order, ticket and tracking numbers, SKUs,
coordinates, dates, versions, amounts, SSNs) are not, in whole or in part."""

from __future__ import annotations

import pytest

from pdp.engine._pii import PiiDetector
from tests.engine._pii_helpers import found, masked

PHONES = PiiDetector(["phone"])


@pytest.mark.parametrize(
    "number",
    [
        # North America
        "+1 415-555-2671", "(415) 555-2671", "(415)555-2671", "415.555.2671", "415-555-2671 x204",
        "415-555-2671 ext. 12", "1 800 555 1234", "1-800-555-1234", "+14155552671", "415 555-2671",
        "+1 (415) 555-2671", "555-2671",
        # international formats
        "+49 30 12345678", "+49 30 1234 5678", "+49 (0)30 12345678", "+49 89 636-48018",
        "+49 (0) 30 / 123 456 78", "+44 20 7946 0958", "+44 (0)20 7946 0958", "+44(0)20 7946 0958",
        "+447700 900123", "+46 (0)8 928 571 38", "+33 1 23 45 67 89", "+33 (0)1 23 45 67 89",
        "+91 98765 43210", "+91-9876543210", "+81 3-1234-5678", "+61 2 9876 5432",
        "+86 138 0013 8000", "+7 495 123-45-67", "+55 11 91234-5678", "+1.415.555.2671",
        "0049 30 12345678",
        # national formats with a trunk prefix
        "020 7946 0958", "07700 900123", "030 12345678", "030/1234567", "(089) 1234567",
        "01 23 45 67 89", "06.12.34.56.78", "06-12345678", "0412 345 678", "(02) 9876 5432",
        "03-1234-5678", "090-1234-5678", "(11) 91234-5678", "8 (495) 123-45-67", "02/123.45.67",
    ],
)  # fmt: skip
def test_phone_numbers_are_found(number: str) -> None:
    assert found(f"it is {number} today", PHONES) == [("phone", number)]


def test_a_bare_run_of_digits_is_a_phone_only_next_to_a_phone_word() -> None:
    assert found("phone: 4155552671", PHONES) == [("phone", "4155552671")]
    assert found("4155552671 (mobile)", PHONES) == [("phone", "4155552671")]
    assert found("invoice 4155552671", PHONES) == []
    assert found("ref 4155552671", PHONES) == []


@pytest.mark.parametrize(
    "text",
    [
        # order numbers and SKUs
        "Order #112-4567890-1234567 has shipped", "order number 415-555-2671",
        "PO-4410-2231 approved", "SKU 4006381333931", "SKU 123-4567-89", "part no. 020 7946 0958",
        # parcel tracking numbers
        "tracking 1Z999AA10123456784", "USPS 9400 1000 0000 0000 0000 00",
        "Your parcel 7489 2345 6789 is out", "tracking 1Z 898 UFB 04 4150 5437",
        "shipment 0412 3456 7890 1234 5678",
        # ticket and case numbers
        "ticket 123-456-7890", "Ticket #4521-8876-3321", "INC0012345", "case 02345678",
        "Request ID: 1834-2210-7765",
        # GPS coordinates
        "at 40.7128, -74.0060 now", "coords 48.858844, 2.294351", "lat -33.868820 lon 151.209296",
        "GPS 40.712776 -74.005974", "geo:37.786971,-122.399677", "(51.5074, -0.1278)",
        # dates, times, versions, amounts and other numbers
        "on 2024-01-15 at noon", "on 15.01.2024", "12/25/2024", "2024-03-15 14:22:05",
        "version 10.0.19041.1", "v2.14.3", "from 1990-2000", "scores 100 200 300 400",
        "pi is 3.14159265", "$1,234,567.89", "1 234 567,89 €", "EUR 12.345.678,00",
        "ISBN 978-3-16-148410-0", "ZIP 01066-8829", "epoch 1716239022", "host 192.168.10.10",
        "SSN 123-45-6789", "ssn 123.45.6789", "amount 1 234 567", "NHS number 943 476 5919",
        "Meeting ID: 845 2391 0076", "Chrome 120.0.6099.109",
    ],
)  # fmt: skip
def test_numbers_that_are_not_phones(text: str) -> None:
    assert found(text, PHONES) == []


def test_a_phone_word_wins_over_a_word_for_another_number() -> None:
    assert found("call our order line at 1-800-555-0199", PHONES) == [("phone", "1-800-555-0199")]
    assert found("Order 1-800-555-0199", PHONES) == []
    assert found("Caller ID: 415-555-2671", PHONES) == [("phone", "415-555-2671")]
    # ...but only for a number shaped like a phone: this one is named an id.
    assert found("Contact ID 12345678", PHONES) == []
    # A word before another number does not describe this one.
    assert found("order 12, then call 415-555-2671", PHONES) == [("phone", "415-555-2671")]


def test_a_chain_of_digit_groups_is_a_phone_whole_or_not_at_all() -> None:
    for text in (
        "9400 1000 0000 0000 0000 00",
        "020 7946 0958 1234 5678 9012",
        "1-800-555-0199-77",
    ):
        assert found(text, PHONES) == [], text
    # A phone written with dashes, then another number after a space.
    assert found("+1 415-555-2671 123-45-6789", PHONES) == [("phone", "+1 415-555-2671")]


def test_an_international_number_needs_a_plausible_country_code_and_length() -> None:
    assert found("+1 415-555-267", PHONES) == []  # nine digits after +1
    assert found("+0 415 555 2671", PHONES) == []
    assert found("+44 20 7946 0958 12", PHONES) == []
    assert found("up +12.5% today", PHONES) == []


def test_a_card_is_reported_as_a_card_not_a_phone() -> None:
    text = "card 3782 822463 10005 exp 04/28"
    assert found(text, PHONES) == []
    assert found(text) == [("credit_card", "3782 822463 10005")]


def test_a_phone_is_masked_keeping_separators_and_the_last_two_digits() -> None:
    assert masked("call +1 415-555-2671") == "call +* ***-***-**71"
    assert masked("call (415) 555-2671") == "call (***) ***-**71"
    assert masked("Tel +44 (0)20 7946 0958") == "Tel +** (*)** **** **58"
