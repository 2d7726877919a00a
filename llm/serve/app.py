"""``mgpt serve``: an OpenAI-compatible HTTP server for a local model.

Any OpenAI client — the ``openai`` SDK, ``mgpt run -m openai:NAME --base-url
http://127.0.0.1:8000/v1``, curl — talks to it. Requests are answered by one
:class:`~mgpt.llm.serve.engine.Engine`, so concurrent clients share forward passes
(continuous batching) and a shared prompt start is computed once (prefix cache).

Endpoints: ``POST /v1/chat/completions`` (JSON or server-sent events), ``GET /v1/models``,
``GET /health``. Errors have OpenAI's shape, ``{"error": {"message", "type", "param",
"code"}}``, with a 4xx status for anything the client must fix. What one request may ask
for is bounded (:class:`ServeLimits`): body bytes, messages, ``max_tokens``, and the
model's context.

``tools`` / ``tool_choice`` / ``parallel_tool_calls`` are taken and ``tool_calls`` come
back in OpenAI's shape, decoded under a grammar of the tools' schemas
(:mod:`mgpt.llm.serve.tools`).

``response_format`` (``json_object``, ``json_schema``) constrains decoding through a
per-request hook, ``constraint(generated_ids) -> allowed-token mask | None``, made by the
app's ``constraint_factory``. The default factory compiles the schema with
:mod:`mgpt.llm.local.constrained` (xgrammar, the ``[local]`` extra) and wraps the request's
matcher (:class:`MatcherConstraint`); without it such requests get a 400 that says which
extra is missing.

Starlette, uvicorn, torch and transformers are needed here (``pip install
'mgpt[train,serve]'``); this module is imported only by the ``serve`` command.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import threading
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mgpt.llm.serve.engine import Constraint, Engine, EngineEvent, SamplingParams
from mgpt.llm.errors import ModelConfigError

log = logging.getLogger("mgpt.serve")

__all__ = ["ServeLimits", "ServedModel", "create_app", "load_served_model", "run_server"]


def _require_serve_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ModelConfigError(
            f"mgpt serve needs the serve extra ({exc.name} is missing): pip install 'mgpt[train,serve]'"
        ) from None


@dataclass
class ServeLimits:
    """What one request may ask for; larger requests are refused with a 4xx."""

    #: Bytes of request body (413 above).
    max_body_bytes: int = 1_000_000
    #: Messages in one chat request.
    max_messages: int = 512
    #: The largest ``max_tokens`` a request may ask for.
    max_tokens: int = 4096
    #: The answer length when a request does not say (also cut to the context left).
    default_max_tokens: int = 512
    #: Stop strings per request (OpenAI allows 4).
    max_stop: int = 4


@dataclass
class ServedModel:
    """A loaded model behind an engine, under the name clients ask for."""

    name: str
    engine: Engine
    loaded: Any  # mgpt.llm.local.generate.LoadedModel
    #: The forward path the engine runs: ``hf``, or the lean decoder (``fast``,
    #: ``fast-int8``, ``fast-int4``), as :func:`load_served_model` settled it.
    decoder: str = "hf"

    @property
    def context(self) -> int | None:
        return self.engine.context

    @property
    def vocab_size(self) -> int:
        """The width of the model's logits (may exceed the tokenizer's size)."""
        return int(self.loaded.model.get_output_embeddings().weight.shape[0])

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat prompt's token ids, formatted exactly as :func:`generate_text` does
        (the tokenizer's chat template, else ``role: content`` lines)."""
        from mgpt.llm.local.generate import _prompt_text

        text, templated = _prompt_text(self.loaded, messages, None)
        ids = self.loaded.tokenizer(text, add_special_tokens=not templated)["input_ids"]
        if not ids:
            tok = self.loaded.tokenizer
            start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            ids = [start] if start is not None else []
        return list(ids)


#: The forward path serve uses unless told: mgpt's lean decoder with int4 weights, for
#: Llama-family models on the CPU (others, and CUDA, run the HF model); int8 weights for a
#: model mgpt's trainer wrote (:func:`mgpt.llm.local.generate.quantized_decoder`: int4 would
#: undo most of a fine-tune).
DEFAULT_DECODER = "fast-int4"
#: What ``--decoder`` takes: generate's decoders, plus ``fast-w8a8`` (int8 weights and
#: per-row int8 activations: batches scale better on x86, at some quality; see
#: :func:`mgpt.llm.local.fastllama._w8a8_linear` and docs/benchmarks.md).
SERVE_DECODERS = ("hf", "fast", "fast-int8", "fast-int4", "fast-w8a8")


def load_served_model(
    path: str | Path,
    *,
    name: str | None = None,
    device: str | None = None,
    max_batch: int = 16,
    prefix_cache_tokens: int = 8192,
    decoder: str | None = None,
    threads: int | None = None,
) -> ServedModel:
    """Load the checkpoint in ``path`` and start an engine on it.

    ``decoder`` (default ``$MGPT_DECODER``, else :data:`DEFAULT_DECODER`, or
    ``fast-int8`` for a model mgpt's trainer wrote): ``hf`` runs
    the HF model; ``fast``, ``fast-int8`` and ``fast-int4`` run mgpt's lean decoder (fp32,
    int8 or int4 weights; ``fast-w8a8`` int8 weights and activations) where it applies: a Llama, Mistral or Qwen2 model on the CPU.
    Elsewhere (other architectures, CUDA, where the int kernels do not run) the HF model
    serves and :attr:`ServedModel.decoder` says ``hf``. ``threads``: torch's intra-op
    threads (default :func:`~mgpt.llm.local.generate.pick_threads`: the cores not already busy).
    """
    import os

    from mgpt.llm.local.fastllama import FastLlama, FastLlamaError
    from mgpt.llm.local.generate import _eos_ids, load_model, quantized_decoder

    decoder = decoder or os.environ.get("MGPT_DECODER") or quantized_decoder(path)
    if decoder not in SERVE_DECODERS:
        raise ModelConfigError(f"unknown decoder {decoder!r}: choose one of {', '.join(SERVE_DECODERS)}")
    loaded = load_model(path, device=device, threads=threads)
    fast = None
    if decoder != "hf" and loaded.device == "cpu":
        quant = {"fast": None, "fast-int8": "int8", "fast-int4": "int4", "fast-w8a8": "w8a8"}[decoder]
        try:
            fast = FastLlama.from_model(loaded.model, quant=quant, device="cpu")
        except FastLlamaError as exc:
            log.info("serving with the HF model: %s", exc)
    engine = Engine(
        loaded.model,
        loaded.tokenizer,
        eos_ids=_eos_ids(loaded),
        max_batch=max_batch,
        context=loaded.max_positions,
        prefix_cache_tokens=prefix_cache_tokens,
        fast=fast,
    )
    return ServedModel(
        name=name or Path(loaded.path).name, engine=engine, loaded=loaded, decoder=decoder if fast else "hf"
    )


# -- errors ---------------------------------------------------------------------------------


class RequestError(Exception):
    """A request the server refuses: becomes an OpenAI-shaped error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


SHUTTING_DOWN = RequestError(503, "the server is shutting down; try again later", type="server_error", code="shutting_down")

ConstraintFactory = Callable[[dict, "ServedModel"], Constraint]


def default_constraint_factory(response_format: dict, served: "ServedModel") -> Constraint:
    """The per-request constraint for ``response_format``, from :mod:`mgpt.llm.local.constrained`
    (a grammar compiled once per schema and tokenizer, one matcher per request).

    ``json_object`` is any JSON object; ``json_schema`` its ``schema``. Without
    constrained decoding installed the request gets a 400 naming what is missing.
    """
    kind = response_format.get("type")
    try:
        from mgpt.llm import constrained  # type: ignore[attr-defined]
    except ImportError:
        raise RequestError(
            400,
            f"response_format {kind} needs the constrained-decoding extra "
            "(mgpt.llm.local.constrained is not available in this installation)",
            param="response_format",
            code="unsupported_response_format",
        ) from None
    if kind == "json_object":
        schema: dict = {"type": "object", "additionalProperties": True}
    else:
        schema = response_format["json_schema"].get("schema") or {"type": "object", "additionalProperties": True}
        if not isinstance(schema, dict):
            raise RequestError(400, "response_format.json_schema.schema must be an object", param="response_format")
    try:
        grammar = constrained.compile_schema(
            served.loaded.tokenizer,
            schema,
            vocab_size=served.vocab_size,
            stop_token_ids=sorted(served.engine.eos_ids) or None,
        )
        matcher = grammar.matcher()
    except ModelConfigError as exc:  # ConstraintError: xgrammar missing, a schema it cannot compile
        raise RequestError(400, str(exc), param="response_format", code="unsupported_response_format") from None
    return MatcherConstraint(matcher)


class MatcherConstraint:
    """One request's grammar matcher as the engine's constraint hook.

    Called with the tokens so far it returns the allowed-token mask; the engine prefers
    :meth:`mask_logits`, which also closes the answer (strings, objects) before the token
    budget runs out, so a small model's JSON still parses at ``max_tokens``.
    """

    def __init__(self, matcher: Any):
        self.matcher = matcher

    def _catch_up(self, generated: list[int]) -> None:
        for token in generated[len(self.matcher.tokens) :]:  # the tokens picked since the last call
            self.matcher.advance(token)

    def __call__(self, generated: list[int]) -> Any:
        self._catch_up(generated)
        return self.matcher.allowed_mask()

    def mask_logits(self, row: Any, generated: list[int], remaining: int) -> None:
        self._catch_up(generated)
        self.matcher.mask_logits(row, remaining=remaining)


# -- request parsing ------------------------------------------------------------------------


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestError(400, "only text content parts are supported", param=f"messages.{index}.content")
            parts.append(part["text"])
        return "".join(parts)
    raise RequestError(400, "content must be a string or a list of text parts", param=f"messages.{index}.content")


def _number(body: dict, key: str, kind: type, low: float | None = None, high: float | None = None) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise RequestError(400, f"{key} must be {'a number' if kind is float else 'an integer'}", param=key)
    if (low is not None and value < low) or (high is not None and value > high):
        raise RequestError(400, f"{key} must be between {low} and {high}, got {value}", param=key, code="invalid_value")
    return kind(value)


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None
    response_format: dict | None
    ignore_eos: bool = False
    #: The tools offered (None: none); the reply is then parsed into ``tool_calls``.
    tools: Any = None


def parse_chat_request(body: Any, served_name: str, limits: ServeLimits) -> ChatRequest:
    """Check a chat-completions body; raise :class:`RequestError` naming the bad field."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "you must provide a model parameter", param="model")
    if model != served_name:
        raise RequestError(
            404,
            f"The model `{model}` does not exist; this server serves `{served_name}`",
            param="model",
            code="model_not_found",
        )
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "messages must be a non-empty list", param="messages")
    if len(raw) > limits.max_messages:
        raise RequestError(
            400, f"too many messages: {len(raw)} (this server takes at most {limits.max_messages})",
            param="messages", code="too_many_messages",
        )
    from mgpt.llm.serve.tools import ToolRequestError, chat_message, parse_tool_options, render_chat

    chat = []
    try:
        for i, m in enumerate(raw):
            if not isinstance(m, dict):
                raise RequestError(400, "each message must be an object with role and content", param=f"messages.{i}")
            role = m.get("role")
            if role == "developer":
                role = "system"
            if role not in ("system", "user", "assistant", "tool"):
                raise RequestError(400, f"unsupported role {role!r} (system, user, assistant, tool)", param=f"messages.{i}.role")
            chat.append(chat_message({**m, "role": role}, _content_text(m.get("content"), i), i))
        tools = parse_tool_options(body)
    except ToolRequestError as exc:
        raise RequestError(400, str(exc), param=exc.param) from None
    messages = render_chat(chat, tools)
    n = _number(body, "n", int, 1, 1)
    del n  # only n=1 is accepted; _number refused anything else
    max_tokens = _number(body, "max_completion_tokens", int, 1, None)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", int, 1, None)
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise RequestError(
            400, f"max_tokens is {max_tokens} but this server allows at most {limits.max_tokens}",
            param="max_tokens", code="invalid_value",
        )
    temperature = _number(body, "temperature", float, 0, 2)
    top_p = _number(body, "top_p", float, 0, 1)
    seed = _number(body, "seed", int)
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    elif not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise RequestError(400, "stop must be a string or a list of strings", param="stop")
    if len(stop) > limits.max_stop:
        raise RequestError(400, f"at most {limits.max_stop} stop strings", param="stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "stream must be true or false", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "stream_options must be an object", param="stream_options")
    response_format = body.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict) or response_format.get("type") not in ("text", "json_object", "json_schema"):
            raise RequestError(400, "response_format.type must be text, json_object or json_schema", param="response_format")
        if response_format["type"] == "text":
            response_format = None
        elif response_format["type"] == "json_schema" and not isinstance(response_format.get("json_schema"), dict):
            raise RequestError(400, "response_format json_schema needs a json_schema object", param="response_format")
    ignore_eos = body.get("ignore_eos", False)  # vLLM's extension; benchmarks want fixed lengths
    if not isinstance(ignore_eos, bool):
        raise RequestError(400, "ignore_eos must be true or false", param="ignore_eos")
    return ChatRequest(
        ignore_eos=ignore_eos,
        messages=messages,
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        max_tokens=max_tokens,
        temperature=0.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else max(top_p, 1e-9),  # 0 keeps only the likeliest token
        stop=[s for s in stop if s],
        seed=seed,
        response_format=response_format,
        tools=tools,
    )


async def _read_json(request: Any, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body is {declared} bytes; this server takes at most {limit}", code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"request body is over {limit} bytes", code="request_too_large")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None


# -- the app --------------------------------------------------------------------------------


def create_app(
    served: ServedModel,
    *,
    api_key: str | None = None,
    limits: ServeLimits | None = None,
    constraint_factory: ConstraintFactory | None = None,
    shutdown_cancel_after: float = 10.0,
):
    """The Starlette app serving ``served``. With ``api_key`` set, ``/v1/*`` requests need
    ``Authorization: Bearer <api_key>``. The engine starts with the app and stops (after
    cancelling what is left) when it shuts down."""
    _require_serve_extra()
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    limits = limits or ServeLimits()
    make_constraint = constraint_factory or default_constraint_factory
    created = int(time.time())
    engine = served.engine

    def error_response(exc: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    def check_key(request: Any) -> None:
        if api_key is None:
            return
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise RequestError(
                401,
                "Incorrect API key provided" if token else "Missing API key: send Authorization: Bearer <key>",
                code="invalid_api_key",
            )

    async def health(request: Any) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": served.name, "running": engine.running, "waiting": engine.waiting})

    async def models(request: Any) -> JSONResponse:
        try:
            check_key(request)
        except RequestError as exc:
            return error_response(exc)
        return JSONResponse(
            {"object": "list", "data": [{"id": served.name, "object": "model", "created": created, "owned_by": "mgpt"}]}
        )

    async def chat_completions(request: Any):
        started = time.perf_counter()
        try:
            check_key(request)
            parsed = parse_chat_request(await _read_json(request, limits.max_body_bytes), served.name, limits)
            # Tokenizing a long prompt and compiling a schema take a while: not on the event loop.
            ids = await asyncio.to_thread(served.prompt_ids, parsed.messages)
            context = served.context
            if context is not None and len(ids) >= context:
                raise RequestError(
                    400,
                    f"This model's maximum context length is {context} tokens; the messages are {len(ids)} tokens",
                    param="messages", code="context_length_exceeded",
                )
            max_tokens = parsed.max_tokens
            if context is not None and max_tokens is not None and len(ids) + max_tokens > context:
                raise RequestError(
                    400,
                    f"This model's maximum context length is {context} tokens; you asked for {len(ids)} in the "
                    f"messages plus {max_tokens} in the completion. Shorten the messages or lower max_tokens",
                    param="max_tokens", code="context_length_exceeded",
                )
            if max_tokens is None:
                max_tokens = limits.default_max_tokens
                if context is not None:
                    max_tokens = min(max_tokens, context - len(ids))
            response_format = parsed.response_format
            if parsed.tools is not None:
                from mgpt.llm.serve.tools import response_format as tool_format

                response_format = tool_format(parsed.tools) or response_format
            constraint = (
                await asyncio.to_thread(make_constraint, response_format, served)
                if response_format else None
            )
            params = SamplingParams(
                max_tokens=max_tokens,
                temperature=parsed.temperature,
                top_p=parsed.top_p,
                stop=parsed.stop,
                seed=parsed.seed,
                ignore_eos=parsed.ignore_eos,
                constraint=constraint,
            )
            loop = asyncio.get_running_loop()
            events: asyncio.Queue[EngineEvent] = asyncio.Queue()

            def on_event(event: EngineEvent) -> None:
                loop.call_soon_threadsafe(events.put_nowait, event)

            try:
                handle = engine.submit(ids, params, on_event)
            except RuntimeError:
                raise SHUTTING_DOWN from None
        except RequestError as exc:
            return error_response(exc)

        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"

        def usage(event: EngineEvent) -> dict[str, Any]:
            return {
                "prompt_tokens": event.prompt_tokens,
                "completion_tokens": event.completion_tokens,
                "total_tokens": event.prompt_tokens + event.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": event.cached_tokens},
            }

        def logged(event: EngineEvent) -> None:
            log.info(
                "%s %s: %d prompt tokens (%d cached) + %d completion tokens, finish %s, %.2f s%s",
                completion_id, "stream" if parsed.stream else "complete", event.prompt_tokens,
                event.cached_tokens, event.completion_tokens, event.finish_reason,
                time.perf_counter() - started, f", error: {event.error}" if event.error else "",
            )

        if not parsed.stream:
            pieces = []
            try:
                while True:
                    event = await events.get()
                    pieces.append(event.delta)
                    if event.finished:
                        break
            finally:
                handle.cancel()  # a no-op once finished; stops the work if the client left
            logged(event)
            if event.finish_reason == "error":
                return error_response(RequestError(500, f"generation failed: {event.error}", type="server_error"))
            if event.finish_reason == "cancelled":
                return error_response(SHUTTING_DOWN)
            message, finish = {"role": "assistant", "content": "".join(pieces)}, event.finish_reason
            if parsed.tools is not None:
                from mgpt.llm.serve.tools import openai_reply

                message, called = openai_reply(message["content"], parsed.tools)
                finish = "tool_calls" if called else finish
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": served.name,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": finish,
                            "logprobs": None,
                        }
                    ],
                    "usage": usage(event),
                }
            )

        def chunk(delta: dict, finish: str | None = None) -> str:
            body = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": served.name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }
            return f"data: {json.dumps(body)}\n\n"

        async def sse():
            held: list[str] = []  # a tool reply is sent once complete: calls are parsed from it
            try:
                yield chunk({"role": "assistant", "content": ""})
                while True:
                    event = await events.get()
                    if event.delta and parsed.tools is not None:
                        held.append(event.delta)
                    elif event.delta:
                        yield chunk({"content": event.delta})
                    if event.finished:
                        break
                finish = event.finish_reason
                if parsed.tools is not None and finish not in ("error", "cancelled"):
                    from mgpt.llm.serve.tools import stream_deltas

                    deltas, called = stream_deltas("".join(held), parsed.tools)
                    for delta in deltas:
                        yield chunk(delta)
                    finish = "tool_calls" if called else finish
                logged(event)
                if event.finish_reason in ("error", "cancelled"):
                    # An error event, as vLLM sends mid-stream: the client knows the answer is cut.
                    error = (
                        SHUTTING_DOWN if event.finish_reason == "cancelled"
                        else RequestError(500, f"generation failed: {event.error}", type="server_error")
                    )
                    yield f"data: {json.dumps(error.body())}\n\n"
                    return
                yield chunk({}, finish)
                if parsed.include_usage:
                    body = {
                        "id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": served.name, "choices": [], "usage": usage(event),
                    }
                    yield f"data: {json.dumps(body)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                handle.cancel()  # the client went away, or the server is stopping

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def not_found(request: Any, exc: Exception) -> JSONResponse:
        return error_response(RequestError(404, f"no route {request.method} {request.url.path}", code="not_found"))

    async def bad_method(request: Any, exc: Exception) -> JSONResponse:
        return error_response(RequestError(405, f"method {request.method} not allowed on {request.url.path}"))

    @asynccontextmanager
    async def lifespan(app: Any):
        engine.start()
        log.info("serving %s (context %s tokens, batch up to %d)", served.name, served.context, engine.max_batch)
        try:
            yield
        finally:
            # uvicorn has let in-flight requests finish (or cancelled them); stop the worker.
            await asyncio.to_thread(engine.stop, cancel=True, timeout=shutdown_cancel_after)
            log.info("engine stopped")

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ],
        exception_handlers={404: not_found, 405: bad_method},
        lifespan=lifespan,
    )


def run_server(
    app: Any, *, host: str = "127.0.0.1", port: int = 8000, graceful_timeout: int = 10, engine: Engine | None = None
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM. On a signal the server stops accepting and lets
    in-flight requests finish; after ``graceful_timeout`` seconds (less one, so their
    clients get a proper "shutting down" error rather than a dropped connection) the
    ``engine`` cancels whatever still runs, and the server exits with status 0."""
    import uvicorn

    class Server(uvicorn.Server):
        _deadline: threading.Timer | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            if engine is not None and self._deadline is None:
                log.info("shutting down: in-flight requests have %d s to finish", graceful_timeout)
                self._deadline = threading.Timer(
                    max(0.0, graceful_timeout - 1.0), engine.stop, kwargs={"cancel": True, "timeout": 5.0}
                )
                self._deadline.daemon = True
                self._deadline.start()

        @contextmanager
        def capture_signals(self):
            # uvicorn re-raises the signal after its graceful shutdown, so a SIGTERM ends
            # the process as "killed" and a SIGINT as a KeyboardInterrupt traceback. The
            # shutdown is complete by then: exit normally instead.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=graceful_timeout, lifespan="on"
    )
    Server(config).run()
