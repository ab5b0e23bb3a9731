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
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _pii_lookalikes as lookalike
from bench import _pii_values as v

__all__ = ["DEFAULT_SEED", "KINDS", "Record", "generate"]

DEFAULT_SEED = 20240611


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    text: str
    spans: tuple[v.Span, ...]


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


def _ssn(separator: str, bare: bool = False) -> v.Maker:
    def make(rng: random.Random) -> v.Text:
        digits = v.ssn_digits(rng)
        value = digits if bare else separator.join((digits[:3], digits[3:5], digits[5:]))
        return v.pick(rng, _SSN_BARE_TEXT if bare else _SSN_TEXT, ("ssn", value), v.name(rng))

    return make


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


def _card(separator: str) -> v.Maker:
    def make(rng: random.Random) -> v.Text:
        value = v.group_card(v.card(rng), separator) if separator else v.card(rng)
        return v.pick(rng, _CARD_TEXT, ("credit_card", value), v.name(rng))

    return make


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


def _phone(make_number: Callable[[random.Random], str]) -> v.Maker:
    def make(rng: random.Random) -> v.Text:
        template = rng.choice(_PHONE_TEXT)
        number, fax = make_number(rng), make_number(rng)
        return v.fill(template, ("phone", number), v.name(rng), ("phone", fax))

    return make


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


def _iban(spaced: bool) -> v.Maker:
    def make(rng: random.Random) -> v.Text:
        value = v.iban(rng)
        value = v.space_iban(value) if spaced else value
        return v.pick(rng, _IBAN_TEXT, ("iban", value), v.name(rng))

    return make


def _email(rng: random.Random) -> v.Text:
    return v.pick(
        rng,
        ("Write to {0} for a copy.", "From: {1} <{0}>", "cc {0}; {2}", '{{"email": "{0}"}}',
         "contact: {0}.", "{0},{1},active"),
        ("email", v.email(rng)), v.name(rng), ("email", v.email(rng)),
    )  # fmt: skip


def _ip(rng: random.Random) -> v.Text:
    address = v.ipv4(rng) if rng.random() < 0.6 else v.ipv6(rng)
    return v.pick(
        rng,
        ("Connection from {0} refused", "ssh admin@{0}", "client_ip={0} status=403",
         "The server at {0} is down.", '{{"ip": "{0}"}}'),
        ("ip_address", address),
    )  # fmt: skip


# ---------------------------------------------------------------- secrets


def _secret(rng: random.Random) -> v.Text:
    choice = rng.randrange(7)
    if choice == 0:
        key_id, secret = ("secret", v.aws_key_id(rng)), ("secret", v.aws_secret(rng))
        return v.pick(
            rng,
            ("[default]\naws_access_key_id = {0}\naws_secret_access_key = {1}\nregion = eu-west-1",
             "export AWS_ACCESS_KEY_ID={0}\nexport AWS_SECRET_ACCESS_KEY={1}",
             "Access key ID,Secret access key\n{0},{1}\n",
             '{{"AccessKeyId": "{0}", "SecretAccessKey": "{1}"}}',
             "key id {0} secret {1}"),
            key_id, secret,
        )  # fmt: skip
    if choice == 1:
        return v.fill(
            '{{\n  "type": "service_account",\n  "project_id": "billing-prod",\n'
            '  "private_key_id": "{1}",\n  "private_key": "{0}\\n",\n'
            '  "client_email": "{2}"\n}}',
            ("secret", v.gcp_private_key(rng)),
            v.token(rng, 40, "0123456789abcdef"),
            ("email", "etl@billing-prod.iam.gserviceaccount.com"),
        )
    if choice == 2:
        return v.pick(
            rng,
            ('"ConnectionStrings": {{"Storage": "{0}"}}', "AZURE_STORAGE_CONNECTION_STRING={0}",
             "conn = BlobServiceClient.from_connection_string('{0}')"),
            ("secret", v.azure_connection_string(rng)),
        )  # fmt: skip
    if choice == 3:
        return v.pick(
            rng,
            ("here is the key, {0}", "-----\n{0}\n-----", "deploy_key: |\n  {0}"),
            ("secret", v.pem_private_key(rng)),
        )  # fmt: skip
    if choice == 4:
        return v.pick(
            rng,
            ("Authorization: Bearer {0}",
             "curl -H 'Authorization: Bearer {0}' https://api.example.com",
             "my session token is {0}"),
            ("secret", v.jwt(rng)),
        )  # fmt: skip
    return v.pick(
        rng,
        ("OPENAI_API_KEY={0}", "client = Client(api_key=\"{0}\")", "why does {0} return 401?",
         "token: {0}", "I pasted {0} into the config by mistake", "export GITHUB_TOKEN={0}",
         "  slack_token: '{0}'"),
        ("secret", v.api_token(rng)),
    )  # fmt: skip


def _support_message(rng: random.Random) -> v.Text:
    """A support conversation: several kinds of PII among order, tracking and
    ticket numbers, dates and amounts."""
    digits, ssn = v.card(rng), v.ssn_digits(rng)
    d = partial(v.digits, rng)
    return v.pick(
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

KINDS: dict[str, v.Maker] = {
    "ssn/dashes": _ssn("-"),
    "ssn/spaces": _ssn(" "),
    "ssn/dots": _ssn("."),
    "ssn/bare-with-context": _ssn("", bare=True),
    "not-ssn/itin-invalid-or-bare": lookalike.not_ssn,
    "credit_card/spaces": _card(" "),
    "credit_card/dashes": _card("-"),
    "credit_card/dots": _card("."),
    "credit_card/none": _card(""),
    "not-credit_card/luhn-failing": lookalike.not_card,
    "phone/us": _phone(v.phone_us),
    "phone/international": _phone(v.phone_intl),
    "phone/national": _phone(v.phone_national),
    "not-phone/gps": lookalike.gps,
    "not-phone/tracking": lookalike.tracking,
    "not-phone/ticket": lookalike.ticket,
    "not-phone/order-sku": lookalike.order,
    "not-phone/dates-versions-amounts": lookalike.numbers,
    "iban/compact": _iban(spaced=False),
    "iban/spaced": _iban(spaced=True),
    "not-iban/bad-check": lookalike.not_iban,
    "email/plain": _email,
    "not-email/handles": lookalike.not_email,
    "ip_address/plain": _ip,
    "secret/credentials": _secret,
    "mixed/support-messages": _support_message,
    "not-secret/hashes-placeholders": lookalike.not_secret,
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
            # Drawn for every kind, so one kind's records do not depend on the selection.
            text, spans = make(rng)
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
