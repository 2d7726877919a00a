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
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mgpt.agents.tools import ToolCall
from mgpt.llm.backends.base import CallContext, ChatMessage
from mgpt.llm.backends.tool_protocol import call_model
from mgpt.llm.eval.tool_calls import SYSTEM, TOOLS, ToolRequest as Request, labelled_requests, options_for, score

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
