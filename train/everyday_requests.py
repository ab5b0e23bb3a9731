"""Generated benign text: short everyday requests to an assistant or an agent.

Orders, accounts, dates and years, ids and reference numbers, social
networks, shops, travel and support tickets, each a template filled from
lists below. Public prompt sets are long or about other things, so without
these a single ordinary word ("2022", "Instagram", "ID", "please"), seen
mostly in jailbreaks, could carry a short request over the threshold.

Every choice is made by a hash of the template and the text's number, so the
texts are the same on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

__all__ = ["everyday_requests"]

_OPENINGS = ("", "", "", "Hi, ", "Hello, ", "Hey, ", "Please, ", "Good morning, ", "Hi there! ")
_CLOSINGS = ("", "", "", " Thanks!", " Thank you.", " Thanks in advance.", " Please.", " Cheers.")
_YEARS = tuple(str(year) for year in range(2008, 2027))
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip
_SITES = ("Instagram", "Facebook", "TikTok", "YouTube", "Twitter", "X", "LinkedIn", "Reddit",
          "WhatsApp", "Snapchat", "Pinterest", "Telegram", "Discord", "Twitch", "Threads",
          "Mastodon", "Tumblr", "Quora")  # fmt: skip
_SHOPS = ("Amazon", "eBay", "Etsy", "Walmart", "Target", "IKEA", "Zalando", "AliExpress",
          "Best Buy", "Shopify", "Costco", "Apple Store", "Google Play", "Steam",
          "Temu")  # fmt: skip
_SERVICES = ("Netflix", "Spotify", "Uber", "Airbnb", "Booking.com", "Expedia", "PayPal",
             "Dropbox", "Google Drive", "iCloud", "Microsoft 365", "Zoom", "Slack", "Notion",
             "ChatGPT Plus", "OpenAI API", "GitHub", "Duolingo", "Revolut", "Venmo")  # fmt: skip
_CITIES = ("Paris", "Berlin", "Tokyo", "New York", "Lisbon", "Toronto", "Madrid", "Rome",
           "Chicago", "Seoul", "London", "Sydney", "Istanbul", "Mexico City", "Prague")  # fmt: skip
_ITEMS = ("headphones", "running shoes", "a phone case", "a coffee maker", "a winter jacket",
          "a laptop stand", "a birthday gift", "two books", "a desk lamp", "a blender",
          "a yoga mat", "a backpack", "a monitor", "kitchen knives",
          "a printer cartridge")  # fmt: skip
_THINGS = ("order", "invoice", "parcel", "booking", "ticket", "refund", "claim", "payment",
           "reservation", "subscription", "return", "delivery")  # fmt: skip
_ID_FORMS = ("ID {n}", "id {n}", "#{n}", "number {n}", "no. {n}", "{n}", "ref {n}",
             "reference {code}", "{code}", "ID {code}")  # fmt: skip

_TEMPLATES = (
    "{open}Which {thing} did I place in {year}, and what was its ID?{close}",
    "{open}What is the status of my {thing} {id}?{close}",
    "{open}Can you look up {thing} {id} and tell me when it was placed?{close}",
    "{open}I ordered {item} from {shop} in {month} {year} and never got it. What can I do?{close}",
    "{open}Where is my {shop} {thing} {id}?{close}",
    "{open}My {thing} {id} shows as delivered but it is not here.{close}",
    "{open}How do I download every invoice from {year} for my {service} account?{close}",
    "{open}Please cancel my {service} subscription at the end of {month}.{close}",
    "{open}Which {site} accounts grew fastest in {year}?{close}",
    "{open}How many people used {site} in {year}?{close}",
    "{open}Write a short {site} caption for a photo of {city} at night.{close}",
    "{open}How do I recover my {site} account? I forgot the password.{close}",
    "{open}Can you help me write a {site} post announcing our sale in {month}?{close}",
    "{open}Is {site} or {site2} better for a small bakery?{close}",
    "{open}Summarize what changed on {site} in {year}.{close}",
    "{open}Please find flights from {city} to {city2} on {day} {month} {year}.{close}",
    "{open}Book a table for four in {city} on {month} {day}.{close}",
    "{open}My booking reference is {code}. Can I change the date to {month} {day}?{close}",
    "{open}What is the weather usually like in {city} in {month}?{close}",
    "{open}Find me a hotel in {city} for {month} {year}, under 150 euros a night.{close}",
    "{open}I need a copy of my tax documents for {year}.{close}",
    "{open}Why was I charged twice on {month} {day}, {year}? The payment ID is {code}.{close}",
    "{open}Please update the shipping address on {thing} {id} to 12 Elm Street.{close}",
    "{open}Can you open a support ticket about my {service} login? My user ID is {n}.{close}",
    "{open}Ticket {id} is still open since {month}. Any news?{close}",
    "{open}Please close ticket {id}, the issue is fixed.{close}",
    "{open}What does error code {n} mean when I sign in to {service}?{close}",
    "{open}List my {shop} orders from {year} with their totals.{close}",
    "{open}Compare the prices of {item} on {shop} and {shop2}.{close}",
    "{open}Is there a discount code for {shop} this {month}?{close}",
    "{open}Send the receipt for {thing} {id} to my email.{close}",
    "{open}Who won the World Cup in {year}?{close}",
    "{open}What happened in the stock market in {year}?{close}",
    "{open}Remind me to renew my passport in {month} {year}.{close}",
    "{open}How old is someone born in {year}?{close}",
    "{open}Add a meeting with Sam on {month} {day} at 3 pm.{close}",
    "{open}Transfer 50 dollars to account {n} on {service}.{close}",
    "{open}Can I get a refund for {item}? The order ID is {n}.{close}",
    "{open}Track parcel {code} for me.{close}",
    "{open}What is my {service} customer ID and where can I find it?{close}",
    "{open}Please share the {year} annual report for our team.{close}",
    "{open}Export all {site} messages from {year} to a file.{close}",
    "{open}How do I verify my {site} account with my phone number?{close}",
    "{open}Schedule {n2} {site} posts for next week.{close}",
    "{open}Draft a polite reply to a customer asking about {thing} {id}.{close}",
    "{open}Employee ID {n} needs access to the {year} budget sheet.{close}",
    "{open}Which {item} had the best reviews on {shop} in {year}?{close}",
    "{open}Give me three gift ideas under 40 dollars from {shop}.{close}",
    "{open}Can you translate this {shop} review into Spanish: great product, fast delivery.{close}",
    "{open}When does my {service} plan renew? Account {id}.{close}",
    "{open}Show me the top {site} accounts about cooking in {year}.{close}",
    "{open}What is the best time to visit {city}?{close}",
    "{open}Please check whether seat {n2}A is free on flight {code}.{close}",
    "{open}I lost my {service} receipt from {month} {year}, can you resend it?{close}",
    "{open}Which version of the app was released in {month} {year}?{close}",
    "{open}How many orders did we ship in {month} {year}?{close}",
)
_PER_TEMPLATE = 36


def _pick(options: tuple[str, ...], seed: int, salt: int) -> str:
    return options[(seed // int(7**salt)) % len(options)]


def everyday_requests() -> Iterator[str]:
    """``_PER_TEMPLATE`` filled copies of each template (duplicates are
    dropped later, with the other sources' texts)."""
    for template in _TEMPLATES:
        for n in range(_PER_TEMPLATE):
            seed = int(hashlib.sha256(f"{template}\0{n}".encode()).hexdigest()[:16], 16)
            number = str(1000 + seed % 9_999_000)
            code = "".join(
                "ABCDEFGHJKLMNPQRSTUVWXYZ"[(seed >> (5 * i)) % 24] for i in range(3)
            ) + str(seed % 100_000)
            fields = {
                "open": _pick(_OPENINGS, seed, 1),
                "close": _pick(_CLOSINGS, seed, 2),
                "year": _pick(_YEARS, seed, 3),
                "month": _pick(_MONTHS, seed, 4),
                "day": str(1 + seed % 28),
                "site": _pick(_SITES, seed, 5),
                "site2": _pick(_SITES, seed, 6),
                "shop": _pick(_SHOPS, seed, 7),
                "shop2": _pick(_SHOPS, seed, 8),
                "service": _pick(_SERVICES, seed, 9),
                "city": _pick(_CITIES, seed, 10),
                "city2": _pick(_CITIES, seed, 11),
                "item": _pick(_ITEMS, seed, 12),
                "thing": _pick(_THINGS, seed, 13),
                "n": number,
                "n2": str(2 + seed % 20),
                "code": code,
            }
            fields["id"] = _pick(_ID_FORMS, seed, 14).format(n=number, code=code)
            text = template.format(**fields)
            opening = fields["open"]
            if opening.endswith(", "):  # "Hello, which ...", "Please, can you ..."
                text = opening + text[len(opening)].lower() + text[len(opening) + 1 :]
            yield text.replace("please, please", "please")
