"""Tool-call validity on the embedded model (SmolLM2-135M), with and without the grammar.

    MGPT_THREADS=2 nice python benchmarks/bench_tools.py          # 200 requests, all modes
    python benchmarks/bench_tools.py --requests 20 --local-requests 5 # a quick look

Needs the embedded model (``mgpt models pull``). 200 labelled requests across 14 tool
schemas (nested objects, enums, arrays, optional fields); each request offers the model
the right tool and 4 others (fixed per request) with ``tool_choice="required"``, greedy
decoding, at most ``--max-tokens`` new tokens. For each mode it reports:

* valid: the reply names a real (offered) tool with arguments that validate against the
  tool's own pydantic model (the function's signature);
* right tool: the first call names the labelled tool; right call: also every labelled
  argument value matches (strings case-insensitively);
* grammar overhead per generated token: the time mgpt's matcher takes (mask + advance),
  measured around the matcher's own calls, beside the model's ms per token.

Modes, side by side in one process:

* ``serve``: the requests go to ``mgpt serve`` (started here on 127.0.0.1, the default
  ``fast-int4`` decoder) through the ``openai`` SDK with native ``tools``, ``tool_choice``
  and ``parallel_tool_calls``; ``--clients`` requests at a time (the engine batches them);
* ``free``: the same prompt (the tools in the system message, as the protocol writes it)
  through the same server without tools, so without the grammar; its reply is parsed the
  way mgpt parses a free model's tool reply (:func:`~mgpt.llm.backends.tool_protocol.parse_reply`);
* ``local``: the agents' path, :func:`~mgpt.llm.backends.tool_protocol.call_model` on the
  ``local`` backend in this process, one request at a time (slow on a shared CPU: the first
  ``--local-requests`` requests only), to check it gives what the server gives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from mgpt.agents.tools import FunctionTool, ToolCall, tool
from mgpt.llm.backends.base import CallContext, ChatMessage, ToolOptions
from mgpt.llm.backends.tool_protocol import call_model

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


class Request(BaseModel):
    text: str
    tool: str
    arguments: dict[str, Any]
    offered: list[str]


def labelled_requests(n: int, seed: int = 0) -> list[Request]:
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
        out.append(Request(text=template.format(**slots), tool=name, arguments=expected(slots), offered=offered))
    return out


def options_for(request: Request) -> ToolOptions:
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


def score(request: Request, calls: list[ToolCall]) -> dict[str, bool]:
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


# -- the modes ---------------------------------------------------------------------------------


class MatcherClock:
    """Times mgpt's matcher (mask + advance) per generated token, by wrapping its methods."""

    def __init__(self) -> None:
        from mgpt.llm.local import constrained

        self.seconds = 0.0
        self.tokens = 0
        self._originals = (constrained.Matcher.mask_logits, constrained.Matcher.advance)
        clock = self
        mask, advance = self._originals

        def timed_mask(self_, *args, **kwargs):
            started = time.perf_counter()
            try:
                return mask(self_, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - started

        def timed_advance(self_, *args, **kwargs):
            started = time.perf_counter()
            try:
                return advance(self_, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - started
                clock.tokens += 1

        constrained.Matcher.mask_logits, constrained.Matcher.advance = timed_mask, timed_advance

    def reset(self) -> None:
        self.seconds, self.tokens = 0.0, 0


def run_local(requests: list[Request], *, constrained: bool, max_tokens: int, threads: int | None) -> dict[str, Any]:
    from mgpt.llm.models import infer_model

    env = {**os.environ, "MGPT_CONSTRAINED": "1" if constrained else "0"}
    model = infer_model("local", env=env, max_tokens=max_tokens, threads=threads)
    rows = []
    for i, request in enumerate(requests):
        messages = [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=request.text)]
        started = time.perf_counter()
        completion = asyncio.run(call_model(model, messages, context=CallContext(turn=i + 1), tools=options_for(request)))
        seconds = time.perf_counter() - started
        rows.append({**score(request, completion.tool_calls), "seconds": seconds,  # one at a time: wall = sum
                     "tokens": completion.usage.completion_tokens, "prompt_tokens": completion.usage.prompt_tokens,
                     "calls": [c.model_dump() for c in completion.tool_calls], "text": completion.text[:300]})
        if (i + 1) % 20 == 0:
            print(f"  {'grammar' if constrained else 'free'}: {i + 1}/{len(requests)}", file=sys.stderr, flush=True)
    return {"rows": rows}


class ServeProcess:
    """``mgpt serve`` on the embedded model, in this process, on a free 127.0.0.1 port."""

    def __init__(self, threads: int | None, max_batch: int):
        import socket
        import threading

        import uvicorn

        from mgpt.llm.local.store import resolve_local
        from mgpt.llm.serve.app import create_app, load_served_model

        _, path = resolve_local("", os.environ)
        served = load_served_model(path, name="smollm2", threads=threads, max_batch=max_batch)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(served), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.1)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def run_serve(server: ServeProcess, requests: list[Request], *, tools: bool, max_tokens: int, clients: int) -> dict[str, Any]:
    """The requests through the server with the openai SDK, ``clients`` at a time. With
    ``tools`` the native fields; without, the protocol's prompt and no tools (no grammar)."""
    from concurrent.futures import ThreadPoolExecutor

    import openai

    from mgpt.llm.backends.tool_protocol import parse_reply, render_messages

    client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=3600)

    def one(request: Request) -> dict[str, Any]:
        options = options_for(request)
        messages = [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=request.text)]
        started = time.perf_counter()
        if tools:
            response = client.chat.completions.create(
                model="smollm2", max_tokens=max_tokens, temperature=0,
                messages=[m.model_dump() for m in messages],
                tools=[{"type": "function", "function": t} for t in options.tools],
                tool_choice="required", parallel_tool_calls=False,
            )
            message = response.choices[0].message
            calls = [ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments) for c in message.tool_calls or []]
            text = message.content or ""
        else:
            response = client.chat.completions.create(
                model="smollm2", max_tokens=max_tokens, temperature=0,
                messages=[{"role": m.role, "content": m.content} for m in render_messages(messages, options)],
            )
            text = response.choices[0].message.content or ""
            _, calls = parse_reply(text)
        seconds = time.perf_counter() - started
        return {**score(request, calls), "seconds": seconds, "tokens": response.usage.completion_tokens,
                "prompt_tokens": response.usage.prompt_tokens, "calls": [c.model_dump() for c in calls],
                "text": text[:300]}

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        rows = []
        for i, row in enumerate(pool.map(one, requests)):
            rows.append(row)
            if (i + 1) % 20 == 0:
                print(f"  {'serve' if tools else 'free'}: {i + 1}/{len(requests)}", file=sys.stderr, flush=True)
    return {"rows": rows, "wall_s": time.perf_counter() - started}


def summary(name: str, result: dict[str, Any], clock: tuple[float, int] | None = None) -> dict[str, Any]:
    rows = result["rows"]
    n = len(rows)
    tokens = sum(r["tokens"] for r in rows)
    seconds = result.get("wall_s") or sum(r["seconds"] for r in rows)
    out = {
        "mode": name, "requests": n,
        "valid": sum(r["valid"] for r in rows) / n,
        "right_tool": sum(r["right_tool"] for r in rows) / n,
        "right_call": sum(r["right_call"] for r in rows) / n,
        "completion_tokens": tokens, "wall_s": round(seconds, 1),
        "tokens_per_s": round(tokens / max(seconds, 1e-9), 2),
        "mean_prompt_tokens": round(sum(r["prompt_tokens"] for r in rows) / n, 1),
        "median_request_s": round(statistics.median(r["seconds"] for r in rows), 2),
    }
    if clock is not None and clock[1]:
        out["grammar_ms_per_token"] = round(1000 * clock[0] / clock[1], 3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--local-requests", type=int, default=20, help="requests for the in-process local mode")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--clients", type=int, default=8, help="concurrent requests to the server (its max batch)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default $MGPT_THREADS)")
    parser.add_argument("--modes", default="serve,free,local")
    parser.add_argument("--out", type=Path, default=None, help="write every reply and the summary here (JSON)")
    args = parser.parse_args(argv)

    requests = labelled_requests(args.requests)
    modes = [m for m in args.modes.split(",") if m]
    print(f"{len(requests)} requests over {len(TOOLS)} tools; 5 offered each, tool_choice=required", file=sys.stderr)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    summaries = []
    clock = MatcherClock()
    server = ServeProcess(args.threads, args.clients) if {"serve", "free"} & set(modes) else None
    try:
        for mode in modes:
            clock.reset()
            if mode in ("serve", "free"):
                assert server is not None
                results[mode] = run_serve(server, requests, tools=mode == "serve", max_tokens=args.max_tokens,
                                          clients=args.clients)
            else:
                results[mode] = run_local(requests[: args.local_requests], constrained=True,
                                          max_tokens=args.max_tokens, threads=args.threads)
            summaries.append(summary(mode, results[mode], (clock.seconds, clock.tokens) if mode != "free" else None))
            print(json.dumps(summaries[-1]), flush=True)
    finally:
        if server is not None:
            server.stop()
    wall = time.perf_counter() - started
    print(f"wall time: {wall:.0f} s", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps({"summaries": summaries, "wall_s": wall, "results": results,
                                        "requests": [r.model_dump() for r in requests]}, indent=1))


if __name__ == "__main__":
    main()
