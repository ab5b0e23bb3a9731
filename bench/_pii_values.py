"""Values for generated PII records: the formats people and systems write
SSNs, card numbers, phone numbers, IBANs, addresses and credentials in, the
values that look like them but are not (checksum-failing card numbers and
IBANs, coordinates), and the templates records are filled from.

Every function takes the ``random.Random`` to draw from, so a seed fixes the
values. Used by ``bench/pii_records.py``.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable, Sequence
from functools import partial

from pdp.engine._pii_iban import IBAN_FORMATS

__all__ = [
    "Maker", "Slot", "Span", "Text", "api_token", "aws_key_id", "aws_secret",
    "azure_connection_string", "card", "card_failing_luhn", "coordinates", "digits", "email",
    "fill", "gcp_private_key", "group_card", "iban", "iban_bad_check", "ipv4", "ipv6", "jwt",
    "name", "pem_private_key", "phone_intl", "phone_national", "phone_us", "pick", "space_iban",
    "ssn_digits", "token", "with_check_digit",
]  # fmt: skip

_ALNUM = string.ascii_letters + string.digits
_BASE64 = _ALNUM + "+/"
_URLSAFE = _ALNUM + "-_"


def digits(rng: random.Random, count: int) -> str:
    """``count`` random decimal digits."""
    return "".join(rng.choice(string.digits) for _ in range(count))


def token(rng: random.Random, count: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


# ------------------------------------------------------------------ numbers


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def with_check_digit(partial: str) -> str:
    """``partial`` and the digit that makes it pass the Luhn check."""
    return next(partial + d for d in string.digits if _luhn_ok(partial + d))


def ssn_digits(rng: random.Random) -> str:
    """Nine digits the SSA could issue: area 001-899 but not 666, group
    01-99, serial 0001-9999."""
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


# (prefix, length) of issued card numbers, by network.
_NETWORKS = (
    ("4", 16), ("4", 16), ("4", 16), ("51", 16), ("53", 16), ("55", 16), ("2221", 16),
    ("2720", 16), ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3528", 16),
    ("3589", 16), ("36", 14), ("62", 16), ("6759", 16), ("4", 19),
)  # fmt: skip


def card(rng: random.Random) -> str:
    """A Luhn-valid card number of a real network, as digits."""
    prefix, length = rng.choice(_NETWORKS)
    return with_check_digit(prefix + digits(rng, length - len(prefix) - 1))


def group_card(digits: str, separator: str) -> str:
    """Grouped the way the network prints it: 4-6-5 (15), 4-6-4 (14), else fours."""
    if len(digits) == 15:
        sizes = [4, 6, 5]
    elif len(digits) == 14:
        sizes = [4, 6, 4]
    else:
        sizes = [4] * (len(digits) // 4) + ([len(digits) % 4] if len(digits) % 4 else [])
    groups, at = [], 0
    for size in sizes:
        groups.append(digits[at : at + size])
        at += size
    return separator.join(groups)


def card_failing_luhn(rng: random.Random) -> str:
    """16 digits with a card network's prefix that fail the Luhn check; half
    of them start with 12 digits that pass it (a Maestro-length number)."""
    while True:
        if rng.random() < 0.5:
            head = with_check_digit(rng.choice(("50", "56", "58", "63", "67")) + digits(rng, 9))
            number = head + digits(rng, 4)
        else:
            prefix, _ = rng.choice(_NETWORKS)
            number = prefix + digits(rng, 16 - len(prefix))
        if not _luhn_ok(number):
            return number


# ------------------------------------------------------------------- phones


def _nanp(rng: random.Random) -> tuple[str, str, str]:
    """Area code, exchange and line of a North American number."""
    area = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
    while area[1:] == "11":
        area = f"{rng.randint(2, 9)}{rng.randint(0, 8)}{rng.randint(0, 9)}"
    exchange = f"{rng.randint(2, 9)}{digits(rng, 2)}"
    return area, exchange, digits(rng, 4)


def phone_us(rng: random.Random) -> str:
    a, e, n = _nanp(rng)
    form = rng.choice(
        [
            f"({a}) {e}-{n}", f"{a}-{e}-{n}", f"{a}.{e}.{n}", f"+1 {a}-{e}-{n}",
            f"+1 ({a}) {e}-{n}", f"1-{a}-{e}-{n}", f"+1{a}{e}{n}", f"{a} {e} {n}",
            f"({a}){e}-{n}", f"+1.{a}.{e}.{n}", f"{a}-{e}-{n} ext. {rng.randint(10, 999)}",
            f"({a}) {e}-{n} x{rng.randint(100, 9999)}", f"1 ({a}) {e}-{n}", f"{a} {e}-{n}",
            f"1.{a}.{e}.{n}", f"+1-{a}-{e}-{n}", f"001-{a}-{e}-{n}",
        ]
    )  # fmt: skip
    return form  # noqa: RET504


def _national_formats(rng: random.Random) -> list[tuple[str, str]]:
    """(international, national) pairs, one per country, as written there."""
    d = partial(digits, rng)
    return [
        (f"+44 20 {d(4)} {d(4)}", f"020 {d(4)} {d(4)}"),
        (f"+44 7{d(3)} {d(6)}", f"07{d(3)} {d(6)}"),
        (f"+44 (0)161 {d(3)} {d(4)}", f"0161 {d(3)} {d(4)}"),
        (f"+49 30 {d(8)}", f"030 {d(8)}"),
        (f"+49 30 {d(4)} {d(4)}", f"030/{d(7)}"),
        (f"+49 (0)89 {d(7)}", f"089 {d(3)}-{d(5)}"),
        (f"+49 89 {d(3)}-{d(5)}", f"(089) {d(7)}"),
        (f"+49 151 {d(8)}", f"0151 {d(8)}"),
        (f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"01 {d(2)} {d(2)} {d(2)} {d(2)}"),
        (f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}", f"06.{d(2)}.{d(2)}.{d(2)}.{d(2)}"),
        (f"+33 (0)4 {d(2)} {d(2)} {d(2)} {d(2)}", f"04-{d(2)}-{d(2)}-{d(2)}-{d(2)}"),
        (f"+91 9{d(4)} {d(5)}", f"09{d(4)} {d(5)}"),
        (f"+91-9{d(9)}", f"0{rng.randint(11, 99)}-{d(8)}"),
        (f"+91 22 {d(4)} {d(4)}", f"022 {d(4)} {d(4)}"),
        (f"+34 6{d(2)} {d(3)} {d(3)}", f"+34 91 {d(3)} {d(2)} {d(2)}"),
        (f"+39 06 {d(4)} {d(4)}", f"06 {d(4)} {d(4)}"),
        (f"+39 3{d(2)} {d(3)} {d(4)}", f"3{d(2)} {d(3)} {d(4)}"),
        (f"+31 20 {d(3)} {d(4)}", f"020-{d(7)}"),
        (f"+31 6 {d(8)}", f"06-{d(8)}"),
        (f"+61 2 {d(4)} {d(4)}", f"(02) {d(4)} {d(4)}"),
        (f"+61 4{d(2)} {d(3)} {d(3)}", f"04{d(2)} {d(3)} {d(3)}"),
        (f"+81 3-{d(4)}-{d(4)}", f"03-{d(4)}-{d(4)}"),
        (f"+81 90-{d(4)}-{d(4)}", f"090-{d(4)}-{d(4)}"),
        (f"+86 1{d(2)} {d(4)} {d(4)}", f"+86 10 {d(4)} {d(4)}"),
        (f"+55 11 9{d(4)}-{d(4)}", f"(11) 9{d(4)}-{d(4)}"),
        (f"+55 (21) {d(4)}-{d(4)}", f"(21) {d(4)}-{d(4)}"),
        (f"+52 55 {d(4)} {d(4)}", f"+52 1 55 {d(4)} {d(4)}"),
        (f"+7 495 {d(3)}-{d(2)}-{d(2)}", f"8 (495) {d(3)}-{d(2)}-{d(2)}"),
        (f"+7 (912) {d(3)}-{d(2)}-{d(2)}", f"8 912 {d(3)} {d(2)} {d(2)}"),
        (f"+27 21 {d(3)} {d(4)}", f"021 {d(3)} {d(4)}"),
        (f"+82 2-{d(3)}-{d(4)}", f"010-{d(4)}-{d(4)}"),
        (f"+353 1 {d(3)} {d(4)}", f"01 {d(3)} {d(4)}"),
        (f"+41 44 {d(3)} {d(2)} {d(2)}", f"044 {d(3)} {d(2)} {d(2)}"),
        (f"+43 1 {d(7)}", f"0664 {d(7)}"),
        (f"+46 8 {d(3)} {d(3)} {d(2)}", f"08-{d(3)} {d(2)} {d(2)}"),
        (f"+48 22 {d(3)} {d(2)} {d(2)}", f"+48 {d(3)} {d(3)} {d(3)}"),
        (f"+971 4 {d(3)} {d(4)}", f"+971 50 {d(3)} {d(4)}"),
        (f"+65 {d(4)} {d(4)}", f"+852 {d(4)} {d(4)}"),
        (f"+234 803 {d(3)} {d(4)}", f"0803 {d(3)} {d(4)}"),
        (f"+44(0)20 {d(4)} {d(4)}", f"0049 30 {d(8)}"),
        (f"+49 (0) 30 / {d(3)} {d(3)} {d(2)}", f"0{rng.randint(1, 9)}{d(2)} / {d(6)}"),
        (f"+32 2 {d(3)} {d(2)} {d(2)}", f"02/{d(3)}.{d(2)}.{d(2)}"),
    ]


def phone_intl(rng: random.Random) -> str:
    """A number in the international format of one of ~25 countries."""
    return rng.choice(_national_formats(rng))[0]


def phone_national(rng: random.Random) -> str:
    """A number as written inside its country (trunk prefix, local grouping)."""
    return rng.choice(_national_formats(rng))[1]


# -------------------------------------------------------------- other types


def iban(rng: random.Random, country: str | None = None) -> str:
    """A compact IBAN of ``country`` (or any registered one), valid check digits."""
    country = country or rng.choice(sorted(IBAN_FORMATS))
    classes = {
        "n": string.digits,
        "a": string.ascii_uppercase,
        "c": string.ascii_uppercase + string.digits,
    }
    bban = "".join(rng.choice(classes[kind]) for kind in IBAN_FORMATS[country])
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def iban_bad_check(rng: random.Random) -> str:
    value = iban(rng)
    wrong = (int(value[2:4]) + rng.randint(1, 90)) % 97 + 2
    return f"{value[:2]}{wrong:02d}{value[4:]}"


def space_iban(value: str) -> str:
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


_FIRST = (
    "anna",
    "li",
    "omar",
    "sofia",
    "james",
    "maria",
    "chen",
    "priya",
    "lukas",
    "emma",
    "noah",
    "fatima",
    "yuki",
    "carlos",
    "olga",
    "ben",
    "aisha",
    "mateo",
    "hana",
    "ivan",
)
_LAST = (
    "smith",
    "garcia",
    "nguyen",
    "mueller",
    "rossi",
    "kowalski",
    "tanaka",
    "okafor",
    "dubois",
    "silva",
    "patel",
    "johansson",
    "kim",
    "novak",
    "haddad",
    "obrien",
)
_DOMAINS = ("example.com", "mail.example.org", "acme-corp.co.uk", "uni-heidelberg.de",
            "gmail.com", "outlook.com", "startup.io", "dept.gov.au", "yahoo.co.jp")  # fmt: skip


def name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST).title()} {rng.choice(_LAST).title()}"


def email(rng: random.Random) -> str:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}",
         f"{first}+billing", f"{last}.{first}", f"{first}"]
    )  # fmt: skip
    return f"{local}@{rng.choice(_DOMAINS)}"


def ipv4(rng: random.Random) -> str:
    first = rng.choice((10, 172, 192, rng.randint(11, 223)))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    if rng.random() < 0.5:
        return "2001:db8::" + ":".join(groups[5:])
    return ":".join(groups)


def coordinates(rng: random.Random) -> tuple[str, str]:
    places = rng.choice((4, 5, 6, 7))
    return (f"{rng.uniform(-89, 89):.{places}f}", f"{rng.uniform(-179, 179):.{places}f}")


# ------------------------------------------------------------- credentials


def aws_key_id(rng: random.Random) -> str:
    return rng.choice(("AKIA", "ASIA")) + token(rng, 16, string.ascii_uppercase + "234567")


def aws_secret(rng: random.Random) -> str:
    return token(rng, 40, _BASE64)


def _b64(rng: random.Random, raw_bytes: int) -> str:
    return base64.b64encode(rng.randbytes(raw_bytes)).decode()


def pem_private_key(rng: random.Random, newline: str = "\n") -> str:
    label = rng.choice(
        ("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
         "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY")
    )  # fmt: skip
    body = _b64(rng, rng.choice((121, 240, 600)))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return newline.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def gcp_private_key(rng: random.Random) -> str:
    """The private key of a service-account JSON file, as it stands inside its
    JSON string (newlines written as ``\\n``)."""
    body = _b64(rng, 600)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\\n".join(["-----BEGIN PRIVATE KEY-----", *lines, "-----END PRIVATE KEY-----"])


def azure_connection_string(rng: random.Random) -> str:
    account = rng.choice(("prodstore", "contosodata", "logs")) + str(rng.randint(1, 99))
    if rng.random() < 0.6:
        return (
            f"DefaultEndpointsProtocol=https;AccountName={account};"
            f"AccountKey={_b64(rng, 64)};EndpointSuffix=core.windows.net"
        )
    return (
        f"Endpoint=sb://{account}.servicebus.windows.net/;"
        f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={_b64(rng, 32)}"
    )


def jwt(rng: random.Random) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    header = part({"alg": rng.choice(("HS256", "RS256")), "typ": "JWT"})
    payload = part({"sub": str(rng.randint(1, 10**9)), "iat": 1716239022, "name": name(rng)})
    return f"{header}.{payload}.{token(rng, 43, _URLSAFE)}"


def api_token(rng: random.Random) -> str:
    """A token with a provider's published prefix."""
    return rng.choice(
        [
            "ghp_" + token(rng, 36), "gho_" + token(rng, 36),
            "github_pat_" + token(rng, 22) + "_" + token(rng, 59),
            f"xoxb-{digits(rng, 12)}-{digits(rng, 13)}-{token(rng, 24)}",
            f"xoxp-{digits(rng, 12)}-{digits(rng, 12)}-{digits(rng, 13)}-"
            + token(rng, 32, "0123456789abcdef"),
            f"xoxa-2-{digits(rng, 12)}-{token(rng, 30)}", f"xoxr-{token(rng, 40)}",
            "sk_live_" + token(rng, rng.choice((24, 34, 99))), "rk_live_" + token(rng, 34),
            "sk-" + token(rng, 48), "sk-proj-" + token(rng, 156, _URLSAFE),
            "sk-ant-api03-" + token(rng, 93, _URLSAFE) + "AA",
            "AIza" + token(rng, 35, _URLSAFE),
        ]
    )  # fmt: skip


# ------------------------------------------------------------- templates

Span = tuple[str, int, int]  # (pii_type, start, end), code points, end exclusive
Slot = tuple[str, str]  # (pii_type, value)
Text = tuple[str, tuple[Span, ...]]  # a record's text and its labelled spans
Maker = Callable[[random.Random], Text]


def fill(template: str, *slots: Slot | str) -> Text:
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


def pick(rng: random.Random, templates: Sequence[str], *slots: Slot | str) -> Text:
    """One of ``templates``, filled."""
    return fill(rng.choice(templates), *slots)
