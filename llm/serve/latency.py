"""A hosted model's latency, simulated: an OpenAI-compatible server that answers from
recorded transcripts after a time to first token, then streams the answer at N tokens/s.

Wall time under a real model is the model's: a hosted API answers at 50-100 tokens/s after
0.3-1 s to the first token. This server gives any client (``mgpt run``, another framework)
the same answers as a recorded run, at a profile set on the command line, so a scheduler can
be measured against the floor its calls allow::

    python -m mgpt.llm.serve.latency tests/golden/lending_library.jsonl --ttft 0.5 --tps 80 --jitter 0.1
    mgpt run --model openai:simulated --base-url http://127.0.0.1:PORT/v1 -w /tmp/lib "..."

An answer is the recorded call whose request matches: the same messages exactly, else the
unused recorded call of the same system prompt that is most alike (the file paths a prompt
names in backticks, such as the file it asks for, first; then its words), so a client whose
prompts are worded differently still gets the answer meant for that step. A token is
``chars_per_token`` characters of the answer; the usage reports those counts, and cached
prompt tokens the way OpenAI counts them (the prefix shared with an earlier request, in
blocks of 128 tokens once it reaches 1,024).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable

from mgpt.llm.backends.replay import CallRecord, Transcript

__all__ = ["LatencyProfile", "LatencyServer", "RecordedAnswers", "main"]


@dataclass(frozen=True)
class LatencyProfile:
    """How the simulated model answers: the figures a benchmark names."""

    #: Seconds from the request to the first token.
    ttft: float = 0.5
    #: Tokens per second after the first.
    tokens_per_s: float = 80.0
    #: Each call's time to first token and rate are scaled by a factor drawn from
    #: [1 - jitter, 1 + jitter], the same for the same recorded call every run.
    jitter: float = 0.0
    #: Characters of text per simulated token.
    chars_per_token: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ttft < 0 or self.tokens_per_s <= 0 or not 0 <= self.jitter < 1 or self.chars_per_token <= 0:
            raise ValueError("a latency profile needs ttft >= 0, tokens_per_s > 0, 0 <= jitter < 1, chars_per_token > 0")

    def tokens(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token)

    def factors(self, key: tuple[str, str, int]) -> tuple[float, float]:
        """(time-to-first-token factor, rate factor) of one recorded call."""
        if not self.jitter:
            return 1.0, 1.0
        rng = random.Random(f"{self.seed}:{key[0]}:{key[1]}:{key[2]}")
        return 1 + rng.uniform(-self.jitter, self.jitter), 1 + rng.uniform(-self.jitter, self.jitter)

    def seconds(self, record: CallRecord) -> float:
        """How long this server takes for ``record``'s answer, start to last token: the
        call's duration on the critical path."""
        first, rate = self.factors((record.role, record.action, record.turn))
        return self.ttft * first + self.tokens(record.response.text) / (self.tokens_per_s * rate)


#: Seconds between two writes of one stream (the tokens due by then go together).
TICK = 0.025


def _paths(text: str) -> set[str]:
    """The file paths a prompt names in backticks (``pkg/store.py``): what a step's call is
    about (the file to write, the module to test). Other backticked text, such as the
    docstrings of the interfaces a prompt carries, says nothing about which call it is."""
    return {name for name in re.findall(r"`([^`\s]{1,120})`", text) if "/" in name}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_./]*", text))


def _alike(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class RecordedAnswers:
    """The calls of one or more transcripts, handed out once each to the requests that match them."""

    def __init__(self, transcripts: Iterable[str | Path]):
        self.calls: list[CallRecord] = []
        for path in transcripts:
            self.calls += Transcript.load(path).calls
        if not self.calls:
            raise ValueError("the transcripts hold no calls to answer with")
        self._used: set[int] = set()
        self._exact: dict[str, list[int]] = {}
        for i, call in enumerate(self.calls):
            self._exact.setdefault(_key(call.request), []).append(i)
        self._lock = threading.Lock()
        #: How each request was matched: "exact" or "alike", in arrival order.
        self.matches: list[str] = []

    def answer(self, messages: list[dict[str, Any]]) -> CallRecord:
        with self._lock:
            exact = [i for i in self._exact.get(_key(messages), []) if i not in self._used]
            index = exact[0] if exact else self._most_alike(messages)
            self._used.add(index)
            self.matches.append("exact" if exact else "alike")
            return self.calls[index]

    def _most_alike(self, messages: list[dict[str, Any]]) -> int:
        system = next((m["content"] for m in messages if m.get("role") == "system"), None)
        text = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") != "system")
        names, words = _paths(text), _words(text)
        unused = [i for i in range(len(self.calls)) if i not in self._used] or list(range(len(self.calls)))
        same = [i for i in unused if _system(self.calls[i]) == system] or unused

        def score(i: int) -> tuple[float, float, int]:
            asked = "\n".join(m.content for m in self.calls[i].request if m.role != "system")
            return _alike(names, _paths(asked)), _alike(words, _words(asked)), -i

        return max(same, key=score)


def _key(messages: list[Any]) -> str:
    rows = [(m["role"], m["content"]) if isinstance(m, dict) else (m.role, m.content) for m in messages]
    return json.dumps(rows)


def _system(call: CallRecord) -> str | None:
    return next((m.content for m in call.request if m.role == "system"), None)


@dataclass
class Served:
    """One request as the server answered it (seconds from the server's start)."""

    key: tuple[str, str, int]
    start: float
    first: float
    end: float
    stream: bool


@dataclass
class _State:
    answers: RecordedAnswers
    profile: LatencyProfile
    started: float = field(default_factory=time.perf_counter)
    served: list[Served] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Requests being answered now, and those whose client went away before the answer ended.
    in_flight: int = 0
    dropped: int = 0

    def cached_tokens(self, prompt: str) -> int:
        """OpenAI's rule: the longest prefix shared with an earlier prompt, counted in
        whole blocks of 128 tokens once it reaches 1,024 tokens."""
        with self.lock:
            shared = max((_common(prompt, p) for p in self.prompts), default=0)
            self.prompts.append(prompt)
        tokens = int(shared / self.profile.chars_per_token)
        return tokens // 128 * 128 if tokens >= 1024 else 0


def _common(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the benchmark prints its own
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "simulated", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        with self.state.lock:
            self.state.in_flight += 1
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):  # the client went away (killed, cancelled)
            with self.state.lock:
                self.state.dropped += 1
        finally:
            with self.state.lock:
                self.state.in_flight -= 1

    def _answer(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        start = time.perf_counter()
        messages = body.get("messages") or []
        record = self.state.answers.answer(messages)
        profile = self.state.profile
        prompt = "".join(f"{m.get('role')}\n{m.get('content')}\n" for m in messages)
        usage = {
            "prompt_tokens": profile.tokens(prompt),
            "completion_tokens": profile.tokens(record.response.text),
            "prompt_tokens_details": {"cached_tokens": self.state.cached_tokens(prompt)},
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        first, rate = profile.factors((record.role, record.action, record.turn))
        ttft, tps = profile.ttft * first, profile.tokens_per_s * rate
        if body.get("stream"):
            first_at = self._stream(body, record.response.text, start, ttft, tps, usage)
        else:
            _sleep_until(start + ttft + usage["completion_tokens"] / tps)
            first_at = start + ttft
            self._json(200, {
                "id": "chatcmpl-simulated", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "simulated"), "usage": usage,
                "choices": [{"index": 0, "finish_reason": record.response.finish_reason or "stop",
                             "message": {"role": "assistant", "content": record.response.text}}],
            })
        end = time.perf_counter()
        zero = self.state.started
        with self.state.lock:
            self.state.served.append(Served((record.role, record.action, record.turn), start - zero,
                                            first_at - zero, end - zero, bool(body.get("stream"))))

    def _stream(self, body: dict, text: str, start: float, ttft: float, tps: float, usage: dict) -> float:
        """Send ``text`` token by token: the first at ``ttft``, then ``tps`` a second
        (written at most every :data:`TICK` seconds). Returns when the first token went out."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        size = self.state.profile.chars_per_token
        tokens = [text[int(i * size):int((i + 1) * size)] for i in range(usage["completion_tokens"])]
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._chunk(body, {"role": "assistant", "content": ""})
        first_at = start + ttft
        _sleep_until(first_at)
        sent = 0
        while sent < len(tokens):  # token i is due at first_at + i / tps
            now = time.perf_counter()
            due = min(len(tokens), 1 + int((now - first_at) * tps))
            if due > sent:
                self._chunk(body, {"content": "".join(tokens[sent:due])})
                sent = due
            if sent < len(tokens):
                _sleep_until(max(first_at + sent / tps, now + TICK))
        self._chunk(body, {}, finish="stop")
        if include_usage:
            self._chunk(body, None, usage=usage)
        self._write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        return first_at

    def _chunk(self, body: dict, delta: dict | None, *, finish: str | None = None, usage: dict | None = None) -> None:
        data: dict[str, Any] = {
            "id": "chatcmpl-simulated", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "simulated"),
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            data["usage"] = usage
        self._write(f"data: {json.dumps(data)}\n\n".encode())

    def _write(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _json(self, status: int, data: dict) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(raw)


def _sleep_until(when: float) -> None:
    left = when - time.perf_counter()
    if left > 0:
        time.sleep(left)


class LatencyServer:
    """The simulated model on 127.0.0.1 (``port=0``: any free port), in a thread::

        with LatencyServer(["run.jsonl"], LatencyProfile(ttft=0.5, tokens_per_s=80)) as server:
            ... OpenAIModel("simulated", base_url=server.base_url) ...
        server.served  # each request: its recorded call, when it started, its first token, its end
    """

    def __init__(self, transcripts: Iterable[str | Path], profile: LatencyProfile | None = None, *,
                 host: str = "127.0.0.1", port: int = 0):
        self.state = _State(RecordedAnswers(transcripts), profile or LatencyProfile())
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._http = ThreadingHTTPServer((host, port), handler)
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def served(self) -> list[Served]:
        with self.state.lock:
            return list(self.state.served)

    @property
    def in_flight(self) -> int:
        """Requests being answered right now."""
        return self.state.in_flight

    def start(self) -> "LatencyServer":
        self._thread = threading.Thread(target=self._http.serve_forever, name="latency-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> "LatencyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m mgpt.llm.serve.latency TRANSCRIPT... [--ttft S] [--tps N] [--jitter F] [--port P]``"""
    parser = argparse.ArgumentParser(prog="python -m mgpt.llm.serve.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("transcripts", nargs="+", type=Path, help="recorded transcripts to answer from")
    parser.add_argument("--ttft", type=float, default=0.5, help="seconds to the first token (default 0.5)")
    parser.add_argument("--tps", type=float, default=80.0, help="tokens per second after it (default 80)")
    parser.add_argument("--jitter", type=float, default=0.0, help="+- this fraction per call, e.g. 0.1")
    parser.add_argument("--chars-per-token", type=float, default=4.0, help="characters per simulated token (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the jitter")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    profile = LatencyProfile(ttft=args.ttft, tokens_per_s=args.tps, jitter=args.jitter,
                             chars_per_token=args.chars_per_token, seed=args.seed)
    server = LatencyServer(args.transcripts, profile, host=args.host, port=args.port)
    print(f"simulated model at {server.base_url} ({len(server.state.answers.calls)} recorded calls; "
          f"first token after {args.ttft} s, then {args.tps} tokens/s, jitter {args.jitter})", flush=True)
    try:
        server._http.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._http.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
