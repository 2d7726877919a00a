"""A labelled set of tool-call requests, and how a model's calls to them are scored.

Fourteen tools with schemas of every shape a model must fill (nested objects, enums,
arrays, optional fields) and :func:`labelled_requests`: requests spread evenly over them,
each labelled with the right tool and the argument values it must carry, each offering the
right tool among four others. :func:`score` says whether a reply's calls are valid (each
names an offered tool with arguments that validate), the right tool, and the right call.
``benchmarks/bench_tools.py`` measures the embedded model with it.
"""

from __future__ import annotations

import json
import random
from typing import Any, Literal

from pydantic import BaseModel

from mgpt.agents.tools import FunctionTool, ToolCall, tool
from mgpt.llm.backends.base import ToolOptions

__all__ = ["BY_NAME", "SYSTEM", "TOOLS", "ToolRequest", "labelled_requests", "options_for", "score"]

# -- the tools (bodies are never run: only their schemas and argument validation matter) ----


class Customer(BaseModel):
    name: str
    email: str


class Item(BaseModel):
    sku: str
    quantity: int


class Address(BaseModel):
    street: str
    city: str
    zip: str | None = None


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Current weather in a city."""


@tool
def convert_currency(amount: float, source: Literal["USD", "EUR", "GBP", "JPY"], target: Literal["USD", "EUR", "GBP", "JPY"]) -> str:
    """Convert an amount of money from one currency to another."""


@tool
def search_products(query: str, category: Literal["books", "electronics", "toys", "garden"] | None = None, max_price: float | None = None) -> str:
    """Search the shop's catalogue."""


@tool
def place_order(customer: Customer, items: list[Item], express: bool = False) -> str:
    """Order items for a customer."""


@tool
def cancel_order(order_id: str, reason: Literal["changed_mind", "too_late", "damaged", "other"]) -> str:
    """Cancel an order."""


@tool
def track_package(tracking_number: str) -> str:
    """Where a package is now."""


@tool
def book_flight(origin: str, destination: str, date: str, passengers: int = 1, cabin: Literal["economy", "business"] | None = None) -> str:
    """Book a flight."""


@tool
def create_event(title: str, date: str, attendees: list[str], duration_minutes: int = 60) -> str:
    """Put a meeting in the calendar."""


@tool
def set_reminder(text: str, minutes_from_now: int) -> str:
    """Remind the user of something later."""


@tool
def send_email(to: list[str], subject: str, body: str, cc: list[str] | None = None) -> str:
    """Send an email."""


@tool
def get_stock_price(symbol: str) -> str:
    """The latest price of a stock."""


@tool
def translate_text(text: str, language: Literal["french", "german", "spanish", "italian"]) -> str:
    """Translate text into another language."""


@tool
def calculate_tip(bill: float, percent: int = 15) -> str:
    """How much to tip on a bill."""


@tool
def add_contact(name: str, address: Address, phone: str | None = None) -> str:
    """Save a contact in the address book."""


TOOLS: list[FunctionTool] = [
    get_weather, convert_currency, search_products, place_order, cancel_order, track_package, book_flight,
    create_event, set_reminder, send_email, get_stock_price, translate_text, calculate_tip, add_contact,
]
BY_NAME = {t.name: t for t in TOOLS}

# -- the labelled requests ---------------------------------------------------------------------

CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Denver", "Madrid", "Seoul"]
PEOPLE = ["Ann", "Bob", "Chen", "Dana", "Emil", "Fatima"]
TEMPLATES: dict[str, list[tuple[str, Any]]] = {
    "get_weather": [("What is the weather in {c}?", lambda r: {"city": r["c"]}),
                    ("Is it raining in {c} right now? Answer in fahrenheit.", lambda r: {"city": r["c"], "unit": "fahrenheit"})],
    "convert_currency": [("Convert {n} USD to EUR.", lambda r: {"amount": r["n"], "source": "USD", "target": "EUR"}),
                         ("How many yen is {n} pounds?", lambda r: {"amount": r["n"], "source": "GBP", "target": "JPY"})],
    "search_products": [("Find toys under {n} dollars.", lambda r: {"category": "toys", "max_price": r["n"]}),
                        ("Search the shop for books about {c}.", lambda r: {"category": "books"})],
    "place_order": [("Order {q} of item SKU-{k} for {p} ({e}).", lambda r: {"customer": {"name": r["p"], "email": r["e"]}}),
                    ("Please buy {q} units of SKU-{k} for customer {p}, email {e}, express delivery.",
                     lambda r: {"customer": {"name": r["p"], "email": r["e"]}, "express": True})],
    "cancel_order": [("Cancel order A{k}, it arrived damaged.", lambda r: {"order_id": f"A{r['k']}", "reason": "damaged"}),
                     ("I changed my mind, cancel order A{k}.", lambda r: {"order_id": f"A{r['k']}", "reason": "changed_mind"})],
    "track_package": [("Where is my package {t}?", lambda r: {"tracking_number": r["t"]}),
                      ("Track parcel number {t} please.", lambda r: {"tracking_number": r["t"]})],
    "book_flight": [("Book a flight from {c} to {d} on 2027-03-{day}.", lambda r: {"origin": r["c"], "destination": r["d"]}),
                    ("I need {q} business seats from {c} to {d} on 2027-03-{day}.",
                     lambda r: {"origin": r["c"], "destination": r["d"], "passengers": r["q"], "cabin": "business"})],
    "create_event": [("Schedule a meeting called Review with {p} on 2027-04-{day}.", lambda r: {"title": "Review"}),
                     ("Put a 30 minute call named Sync with {p} and {p2} in the calendar for 2027-04-{day}.",
                      lambda r: {"title": "Sync", "duration_minutes": 30})],
    "set_reminder": [("Remind me to call {p} in {m} minutes.", lambda r: {"minutes_from_now": r["m"]}),
                     ("In {m} minutes remind me to water the plants.", lambda r: {"minutes_from_now": r["m"]})],
    "send_email": [("Email {e} with the subject Invoice saying the invoice is attached.", lambda r: {"to": [r["e"]], "subject": "Invoice"}),
                   ("Send an email to {e} titled Hello that says hi from {p}.", lambda r: {"to": [r["e"]], "subject": "Hello"})],
    "get_stock_price": [("What is the stock price of {s}?", lambda r: {"symbol": r["s"]}),
                        ("How much is one {s} share trading at?", lambda r: {"symbol": r["s"]})],
    "translate_text": [("Translate 'good morning' into french.", lambda r: {"text": "good morning", "language": "french"}),
                       ("How do you say 'thank you' in german?", lambda r: {"text": "thank you", "language": "german"})],
    "calculate_tip": [("How much should I tip on a {n} dollar bill at 20 percent?", lambda r: {"bill": r["n"], "percent": 20}),
                      ("What is a 15 percent tip on {n}?", lambda r: {"bill": r["n"], "percent": 15})],
    "add_contact": [("Save {p} at 12 Main Street, {c} in my contacts.", lambda r: {"name": r["p"], "address": {"city": r["c"]}}),
                    ("Add a contact: {p}, phone 555-01{k}, living on Oak Road in {c}.",
                     lambda r: {"name": r["p"], "phone": f"555-01{r['k']}", "address": {"city": r["c"]}})],
}


class ToolRequest(BaseModel):
    """One labelled request: what the user says, the right tool and arguments, the tools offered."""

    text: str
    tool: str
    arguments: dict[str, Any]
    offered: list[str]


def labelled_requests(n: int, seed: int = 0) -> list[ToolRequest]:
    """``n`` requests, spread evenly over the tools, each offering the right tool and 4 others."""
    rng = random.Random(seed)
    names = list(TEMPLATES)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        template, expected = TEMPLATES[name][(i // len(names)) % 2]
        slots = {
            "c": rng.choice(CITIES), "d": rng.choice(CITIES), "p": rng.choice(PEOPLE), "p2": rng.choice(PEOPLE),
            "n": rng.choice([20, 35, 48, 60, 120]), "q": rng.choice([2, 3, 4]), "k": rng.randint(10, 99),
            "m": rng.choice([5, 10, 30, 45]), "day": rng.randint(10, 28), "s": rng.choice(["AAPL", "MSFT", "NVDA", "TSLA"]),
            "t": f"1Z{rng.randint(100000, 999999)}",
        }
        slots["e"] = f"{slots['p'].lower()}@example.com"
        while slots["d"] == slots["c"]:
            slots["d"] = rng.choice(CITIES)
        others = rng.sample([t for t in names if t != name], 4)
        offered = others[: i % 5] + [name] + others[i % 5:]  # the right tool at every position
        out.append(ToolRequest(text=template.format(**slots), tool=name, arguments=expected(slots), offered=offered))
    return out


def options_for(request: ToolRequest) -> ToolOptions:
    return ToolOptions(tools=[BY_NAME[n].spec() for n in request.offered], choice="required", parallel=False)


SYSTEM = "You are a helpful assistant. Use a tool to do what the user asks."

# -- scoring -----------------------------------------------------------------------------------


def _matches(expected: Any, got: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(_matches(v, got.get(k)) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(_matches(a, b) for a, b in zip(expected, got))
    if isinstance(expected, str):
        return isinstance(got, str) and got.strip().lower() == expected.lower()
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return isinstance(got, (int, float)) and not isinstance(got, bool) and float(got) == float(expected)
    return got == expected


def score(request: ToolRequest, calls: list[ToolCall]) -> dict[str, bool]:
    """valid: every call names an offered tool and its arguments validate (at least one call)."""
    valid = bool(calls)
    for call in calls:
        found = BY_NAME.get(call.name)
        try:
            arguments = json.loads(call.arguments)
            if found is None or call.name not in request.offered or not isinstance(arguments, dict):
                raise ValueError("not a real tool")
            found.validate(arguments)
        except ValueError:
            valid = False
    right_tool = bool(calls) and calls[0].name == request.tool
    right_call = right_tool and valid and _matches(request.arguments, json.loads(calls[0].arguments))
    return {"valid": valid, "right_tool": right_tool, "right_call": right_call}


