"""A scriptable OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1.

Tests talk to it with the real ``openai`` SDK (or the whole ``mgpt`` CLI), so the wire format,
streaming and error handling are exercised for real, with no network::

    from openai_stub import OpenAIStub

    with OpenAIStub(responses=[("status", 429, {"Retry-After": "0"}), ("ok", "hello")]) as stub:
        model = OpenAIModel("stub-model", base_url=stub.base_url, api_key="sk-test")
        ...
        assert len(stub.chat_requests) == 2
        assert stub.chat_requests[0].headers["authorization"] == "Bearer sk-test"

Each ``POST /v1/chat/completions`` takes the next planned response from the queue; when the
queue is empty the ``default`` responder answers. A planned response is a tuple:

``("ok", text)`` or ``("ok", text, {"finish_reason": "length", "usage": (3, 5) or None})``
    a normal answer. Usage defaults to word counts (prompt: all message words); ``None``
    leaves usage out. A streaming request gets ``text`` as SSE chunks, one per word, then a
    usage chunk if the request asked for ``stream_options.include_usage``, then ``[DONE]``.
``("tool_calls", [(name, arguments), ...])``
    the model asks for those calls (``arguments`` a dict, or a string sent as written);
    ``finish_reason`` is ``tool_calls`` and the ids are ``call_1``, ``call_2``... A
    streaming request gets each call as ``delta.tool_calls`` pieces: the id and name
    first, then the arguments in two halves, as OpenAI streams them.
``("status", code)``, ``("status", code, headers)``, ``("status", code, headers, message)``
    an OpenAI-style error body ``{"error": {"message", "type", "code"}}`` with that status.
``("drop",)``
    close the connection without sending anything.
``("sleep", seconds)``
    wait, then answer with the default responder (a client with a shorter timeout gives up).
``("stream_error", message)``
    a streaming request gets a 200 and then an SSE error event (as vLLM sends mid-stream); a
    non-streaming one gets a 500.
``("break", text)``
    stream ``text`` and then close the connection without ``[DONE]`` (a non-streaming
    request just gets the connection closed).

``default`` is a callable ``(request_json) -> str | tuple``: a string is an ``("ok", text)``
answer. Without one, an exhausted queue answers 418 "no planned response left", which the
client does not retry, so an unplanned call fails loudly.

``GET /v1/models`` lists ``models``. With ``require_key`` set, a request without
``Authorization: Bearer <require_key>`` gets 401. Every request is recorded in
``stub.requests`` (method, path, lower-cased headers, parsed JSON body).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

__all__ = ["OpenAIStub", "RecordedRequest"]

Planned = tuple
Responder = Callable[[dict], "str | Planned"]


@dataclass
class RecordedRequest:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    json: Any = None  # the parsed body, None for a GET
    received_at: float = field(default_factory=time.monotonic)

    @property
    def stream(self) -> bool:
        return bool(isinstance(self.json, dict) and self.json.get("stream"))


def _words(text: str) -> int:
    return len(text.split())


class OpenAIStub:
    """A chat-completions server on ``127.0.0.1`` (a free port), run in a daemon thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop` (e.g. in a fixture).
    ``base_url`` is ``http://127.0.0.1:PORT/v1``, ready for ``OpenAIModel(base_url=...)``.
    """

    def __init__(
        self,
        responses: Iterable[Planned] = (),
        *,
        default: Responder | None = None,
        models: Iterable[str] = ("stub-model",),
        require_key: str | None = None,
    ) -> None:
        self._queue: deque[Planned] = deque(responses)
        self.default = default
        self.models = list(models)
        self.require_key = require_key
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "OpenAIStub":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False  # a handler still sleeping must not hold up stop()
        self._server = server
        self._port = server.server_address[1]
        # A short poll interval keeps stop() quick; the default 0.5 s adds up over a test run.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "OpenAIStub was never started"
        return self._port  # still known after stop(), so tests can name it in assertions

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completions requests received so far, in order."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def push(self, *responses: Planned) -> None:
        """Plan more responses, after those already queued."""
        with self._lock:
            self._queue.extend(responses)

    @property
    def pending(self) -> int:
        """How many planned responses are still unused."""
        with self._lock:
            return len(self._queue)

    # -- used by the handler ---------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_plan(self, body: dict) -> Planned:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self._default_plan(body)

    def _default_plan(self, body: dict) -> Planned:
        if self.default is None:
            return ("status", 418, {}, "OpenAIStub: no planned response left and no default responder")
        answer = self.default(body)
        return ("ok", answer) if isinstance(answer, str) else answer


def _make_handler(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.stub = stub
    return Handler


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a "drop" never hits a pooled connection.
    # Streams are sent as HTTP/1.1 chunked bodies (see _send_stream) so that a "break" is a
    # protocol error the client notices, as with a real server, not a clean end of body.
    protocol_version = "HTTP/1.0"
    stub: OpenAIStub

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    # -- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorized():
            return
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in self.stub.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(404, f"no route for GET {self.path}", code="not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        self._record(body)
        if not self._authorized():
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_error(404, f"no route for POST {self.path}", code="not_found")
            return
        if not isinstance(body, dict):
            self._send_error(400, "the request body is not a JSON object")
            return
        try:
            self._answer(body, self.stub._next_plan(body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to do

    # -- answers ---------------------------------------------------------------------------

    def _answer(self, body: dict, plan: Planned) -> None:
        kind = plan[0]
        if kind == "ok":
            options = plan[2] if len(plan) > 2 else {}
            self._send_ok(body, plan[1], options)
        elif kind == "tool_calls":
            self._send_tool_calls(body, plan[1])
        elif kind == "status":
            code = plan[1]
            headers = plan[2] if len(plan) > 2 else {}
            message = plan[3] if len(plan) > 3 else f"planned error {code}"
            error_code = "model_not_found" if code == 404 else None
            self._send_error(code, message, headers=headers, code=error_code)
        elif kind == "drop":
            self._drop()
        elif kind == "sleep":
            time.sleep(plan[1])
            self._answer(body, self.stub._default_plan(body))
        elif kind == "stream_error":
            if body.get("stream"):
                self.protocol_version = "HTTP/1.1"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                event = {"error": {"message": plan[1], "type": "server_error", "code": None}}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            else:
                self._send_error(500, plan[1])
        elif kind == "break":
            if body.get("stream"):
                self._send_stream(body, plan[1], {}, complete=False)
            self._drop()
        else:
            raise ValueError(f"OpenAIStub: unknown planned response {plan!r}")

    def _send_ok(self, body: dict, text: str, options: dict) -> None:
        finish_reason = options.get("finish_reason", "stop")
        usage_pair = options.get("usage", "count")
        if usage_pair == "count":
            prompt = sum(_words(str(m.get("content", ""))) for m in body.get("messages", []))
            usage_pair = (prompt, _words(text))
        usage = None
        if usage_pair is not None:
            p, c = usage_pair
            usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

        if body.get("stream"):
            self._send_stream(body, text, {"finish_reason": finish_reason, "usage": usage})
            return
        answer: dict[str, Any] = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
        }
        if usage is not None:
            answer["usage"] = usage
        self._send_json(200, answer)

    def _send_tool_calls(self, body: dict, planned: list) -> None:
        calls = [
            {"id": f"call_{i}", "type": "function", "function": {
                "name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for i, (name, args) in enumerate(planned, 1)
        ]
        if body.get("stream"):
            deltas = []
            for i, call in enumerate(calls):
                args = call["function"]["arguments"]
                half = len(args) // 2
                deltas.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                               "function": {"name": call["function"]["name"], "arguments": args[:half]}}]})
                deltas.append({"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]})
            self._send_stream(body, "", {"finish_reason": "tool_calls", "usage": None}, deltas=deltas)
            return
        self._send_json(200, {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls},
                         "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    def _send_stream(self, body: dict, text: str, end: dict, *, complete: bool = True, deltas: list | None = None) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def write(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def chunk(delta: dict, finish_reason: str | None = None, choices: bool = True, usage: Any = None) -> None:
            data: dict[str, Any] = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}] if choices else [],
            }
            if include_usage:
                data["usage"] = usage  # null on every chunk but the last, as OpenAI does
            write(f"data: {json.dumps(data)}\n\n".encode())

        chunk({"role": "assistant", "content": ""})
        # One chunk per word, keeping the spaces, so the deltas join back to the text exactly.
        pieces = [w + " " for w in text.split(" ")]
        pieces[-1] = pieces[-1][:-1]
        for piece in pieces:
            if piece:
                chunk({"content": piece})
        for delta in deltas or ():
            chunk(delta)
        if not complete:
            return
        chunk({}, finish_reason=end.get("finish_reason", "stop"))
        if include_usage and end.get("usage") is not None:
            chunk({}, choices=False, usage=end["usage"])
        write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")  # the last chunk: a clean end of body
        self.wfile.flush()

    # -- plumbing --------------------------------------------------------------------------

    def _record(self, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.stub._record(RecordedRequest(self.command, self.path, headers, body))

    def _authorized(self) -> bool:
        if self.stub.require_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.stub.require_key}":
            return True
        self._send_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return False

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _send_error(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, code: str | None = None
    ) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._send_json(status, {"error": {"message": message, "type": kind, "code": code}}, headers)

    def _drop(self) -> None:
        import socket

        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
