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

Each route is one method of :class:`ChatServer` (the app's state: the model, the limits,
the key). A chat request is checked by :func:`parse_chat_request`, one small function per
field, into a :class:`ChatRequest`; :meth:`ChatServer.submit` queues it on the engine and
:meth:`ChatServer.complete` or :meth:`ChatServer.stream` turn the engine's events into the
reply. A new request field is one more parser and one more ``ChatRequest`` field.

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

from mgpt.llm.errors import ModelConfigError
from mgpt.llm.local.constrained import MatcherConstraint
from mgpt.llm.local.sampling import Constraint, SamplingParams
from mgpt.llm.serve.engine import Engine, EngineEvent

log = logging.getLogger("mgpt.serve")

__all__ = [
    "ChatRequest", "ChatServer", "RequestError", "ServeLimits", "ServedModel", "create_app", "default_constraint_factory",
    "load_served_model", "parse_chat_request", "require_serve_extra", "run_server",
]


def require_serve_extra() -> None:
    """ModelConfigError naming the missing package and the extra to install, unless
    Starlette and uvicorn (the ``[serve]`` extra) are importable."""
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
        from mgpt.llm.local.generate import logits_width

        return logits_width(self.loaded)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat prompt's token ids, formatted exactly as
        :func:`~mgpt.llm.local.generate.generate_text` does (the tokenizer's chat template,
        else ``role: content`` lines; see :func:`~mgpt.llm.local.generate.encode_prompt`)."""
        from mgpt.llm.local.generate import encode_prompt

        ids, _ = encode_prompt(self.loaded, messages)
        return ids


#: The forward path serve uses unless told: mgpt's lean decoder with int4 weights, for
#: Llama-family models on the CPU (others, and CUDA, run the HF model); int8 weights for a
#: model mgpt's trainer wrote (:func:`mgpt.llm.local.generate.quantized_decoder`: int4 would
#: undo most of a fine-tune).
DEFAULT_DECODER = "fast-int4"
#: What ``--decoder`` takes: generate's decoders, plus ``fast-w8a8`` (int8 weights and
#: per-row int8 activations: batches scale better on x86, at some quality; see
#: the ``w8a8`` mode of :mod:`mgpt.llm.local.fastllama` and docs/benchmarks.md).
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
    from mgpt.llm.local.generate import eos_token_ids, load_model, quantized_decoder

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
        eos_ids=eos_token_ids(loaded),
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


def generation_failed(error: str | None) -> RequestError:
    """The error for an answer the engine could not finish (a bug, out of memory)."""
    return RequestError(500, f"generation failed: {error}", type="server_error")


def error_response(exc: RequestError) -> Any:
    """``exc`` as a JSON response in OpenAI's error shape (a 401 also says the scheme)."""
    from starlette.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


# -- structured output ----------------------------------------------------------------------

ConstraintFactory = Callable[[dict, "ServedModel"], Constraint]


def default_constraint_factory(response_format: dict, served: "ServedModel") -> Constraint:
    """The per-request constraint for ``response_format``, from :mod:`mgpt.llm.local.constrained`
    (a grammar compiled once per schema and tokenizer, one matcher per request).

    ``json_object`` is any JSON object; ``json_schema`` its ``schema``. Without
    constrained decoding installed the request gets a 400 naming what is missing.
    """
    import importlib

    kind = response_format.get("type")
    try:
        constrained = importlib.import_module("mgpt.llm.local.constrained")
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


# -- request parsing ------------------------------------------------------------------------


@dataclass
class ChatRequest:
    """A checked chat-completions request: what :func:`parse_chat_request` returns."""

    messages: list[dict[str, str]]
    stream: bool
    #: ``stream_options.include_usage``: a last chunk with the token counts.
    include_usage: bool
    #: None: the server's default, cut to the context left.
    max_tokens: int | None
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None
    #: ``json_object`` or ``json_schema`` (``text`` is None: free text).
    response_format: dict | None
    ignore_eos: bool = False
    #: The tools offered (a :class:`~mgpt.llm.backends.base.ToolOptions`; None: none): the
    #: reply is decoded under their grammar and parsed into ``tool_calls``.
    tools: Any = None

    def constraint_format(self) -> dict | None:
        """The ``response_format`` decoding is held to: the tools' reply shape when tools
        are offered, else the request's own."""
        if self.tools is not None:
            from mgpt.llm.serve.tools import response_format

            return response_format(self.tools) or self.response_format
        return self.response_format

    def sampling_params(self, max_tokens: int, constraint: Constraint | None) -> SamplingParams:
        """How the engine decodes this request, given the settled answer length."""
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=self.stop,
            seed=self.seed,
            ignore_eos=self.ignore_eos,
            constraint=constraint,
        )


def parse_chat_request(body: Any, served_name: str, limits: ServeLimits) -> ChatRequest:
    """Check a chat-completions body; raise :class:`RequestError` naming the bad field."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    _check_model(body, served_name)
    messages, tools = _parse_messages(body, limits)
    _number(body, "n", int, 1, 1)  # only n=1 is accepted: anything else is refused
    max_tokens = _parse_max_tokens(body, limits)
    temperature = _number(body, "temperature", float, 0, 2)
    top_p = _number(body, "top_p", float, 0, 1)
    seed = _number(body, "seed", int)
    stop = _parse_stop(body, limits)
    stream = _flag(body, "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "stream_options must be an object", param="stream_options")
    response_format = _parse_response_format(body)
    ignore_eos = _flag(body, "ignore_eos")  # vLLM's extension; benchmarks want fixed lengths
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


def _check_model(body: dict, served_name: str) -> None:
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


def _parse_messages(body: dict, limits: ServeLimits) -> tuple[list[dict[str, str]], Any]:
    """The messages the model reads, and the tools offered (None: none). Tool turns and the
    tools are written as text (:func:`mgpt.llm.serve.tools.render_chat`)."""
    from mgpt.llm.serve.tools import ToolRequestError, chat_message, parse_tool_options, render_chat

    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "messages must be a non-empty list", param="messages")
    if len(raw) > limits.max_messages:
        raise RequestError(
            400, f"too many messages: {len(raw)} (this server takes at most {limits.max_messages})",
            param="messages", code="too_many_messages",
        )
    try:
        chat = [chat_message(*_parse_message(m, i), i) for i, m in enumerate(raw)]
        tools = parse_tool_options(body)
    except ToolRequestError as exc:
        raise RequestError(400, str(exc), param=exc.param) from None
    return render_chat(chat, tools), tools


def _parse_message(message: Any, index: int) -> tuple[dict[str, Any], str]:
    """The message (its role normalised) and its text."""
    if not isinstance(message, dict):
        raise RequestError(400, "each message must be an object with role and content", param=f"messages.{index}")
    role = message.get("role")
    if role == "developer":  # OpenAI's newer name for the system role
        role = "system"
    if role not in ("system", "user", "assistant", "tool"):
        raise RequestError(400, f"unsupported role {role!r} (system, user, assistant, tool)", param=f"messages.{index}.role")
    return {**message, "role": role}, _content_text(message.get("content"), index)


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


def _parse_max_tokens(body: dict, limits: ServeLimits) -> int | None:
    max_tokens = _number(body, "max_completion_tokens", int, 1, None)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", int, 1, None)
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise RequestError(
            400, f"max_tokens is {max_tokens} but this server allows at most {limits.max_tokens}",
            param="max_tokens", code="invalid_value",
        )
    return max_tokens


def _parse_stop(body: dict, limits: ServeLimits) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    elif not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise RequestError(400, "stop must be a string or a list of strings", param="stop")
    if len(stop) > limits.max_stop:
        raise RequestError(400, f"at most {limits.max_stop} stop strings", param="stop")
    return stop


def _parse_response_format(body: dict) -> dict | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    if not isinstance(response_format, dict) or response_format.get("type") not in ("text", "json_object", "json_schema"):
        raise RequestError(400, "response_format.type must be text, json_object or json_schema", param="response_format")
    if response_format["type"] == "text":
        return None
    if response_format["type"] == "json_schema" and not isinstance(response_format.get("json_schema"), dict):
        raise RequestError(400, "response_format json_schema needs a json_schema object", param="response_format")
    return response_format


def _flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise RequestError(400, f"{key} must be true or false", param=key)
    return value


def _number(body: dict, key: str, kind: type, low: float | None = None, high: float | None = None) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise RequestError(400, f"{key} must be {'a number' if kind is float else 'an integer'}", param=key)
    if (low is not None and value < low) or (high is not None and value > high):
        raise RequestError(400, f"{key} must be between {low} and {high}, got {value}", param=key, code="invalid_value")
    return kind(value)


async def read_json(request: Any, limit: int) -> Any:
    """The request's JSON body, read at most ``limit`` bytes far (413 past it, 400 if it
    does not parse)."""
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


def answer_length(prompt_tokens: int, asked: int | None, context: int | None, limits: ServeLimits) -> int:
    """The answer's token budget: what the request ``asked`` (None: the server's default,
    cut to the context left); a 400 when the prompt, or prompt plus answer, overflows
    the model's ``context``."""
    if context is not None and prompt_tokens >= context:
        raise RequestError(
            400,
            f"This model's maximum context length is {context} tokens; the messages are {prompt_tokens} tokens",
            param="messages", code="context_length_exceeded",
        )
    if asked is None:
        default = limits.default_max_tokens
        return default if context is None else min(default, context - prompt_tokens)
    if context is not None and prompt_tokens + asked > context:
        raise RequestError(
            400,
            f"This model's maximum context length is {context} tokens; you asked for {prompt_tokens} in the "
            f"messages plus {asked} in the completion. Shorten the messages or lower max_tokens",
            param="max_tokens", code="context_length_exceeded",
        )
    return asked


# -- responses ------------------------------------------------------------------------------


def usage_body(event: EngineEvent) -> dict[str, Any]:
    """The ``usage`` object of a finished answer."""
    return {
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "total_tokens": event.prompt_tokens + event.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": event.cached_tokens},
    }


def assistant_message(text: str, tools: Any = None) -> tuple[dict[str, Any], bool]:
    """The answer as a chat message, and whether it calls tools: with ``tools`` offered the
    text is the tool protocol's reply, split into ``tool_calls`` or the answer."""
    if tools is None:
        return {"role": "assistant", "content": text}, False
    from mgpt.llm.serve.tools import openai_reply

    return openai_reply(text, tools)


def sse_data(body: Any) -> str:
    """One server-sent event carrying ``body`` as JSON."""
    return f"data: {json.dumps(body)}\n\n"


@dataclass
class Answer:
    """One request on its way through the engine: the events it reports, for the reply."""

    id: str
    model: str
    parsed: ChatRequest
    handle: Any  # the engine's Request: cancel() stops the work
    events: "asyncio.Queue[EngineEvent]"
    started: float

    def chunk(self, delta: dict, finish: str | None = None) -> str:
        """A ``chat.completion.chunk`` event holding ``delta``."""
        return sse_data(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }
        )

    def usage_chunk(self, event: EngineEvent) -> str:
        """The last chunk when the client asked for ``include_usage``: no choices, the usage."""
        body = {
            "id": self.id, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": self.model, "choices": [], "usage": usage_body(event),
        }
        return sse_data(body)

    def completion(self, text: str, event: EngineEvent) -> dict[str, Any]:
        """The whole ``chat.completion`` body of a finished answer."""
        message, called = assistant_message(text, self.parsed.tools)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if called else event.finish_reason,
                 "logprobs": None}
            ],
            "usage": usage_body(event),
        }

    def log(self, event: EngineEvent) -> None:
        log.info(
            "%s %s: %d prompt tokens (%d cached) + %d completion tokens, finish %s, %.2f s%s",
            self.id, "stream" if self.parsed.stream else "complete", event.prompt_tokens,
            event.cached_tokens, event.completion_tokens, event.finish_reason,
            time.perf_counter() - self.started, f", error: {event.error}" if event.error else "",
        )


# -- the app --------------------------------------------------------------------------------


class ChatServer:
    """The routes of the app :func:`create_app` builds, one method each, over one
    :class:`ServedModel`; see there for the arguments."""

    def __init__(
        self,
        served: ServedModel,
        *,
        api_key: str | None = None,
        limits: ServeLimits | None = None,
        constraint_factory: ConstraintFactory | None = None,
        shutdown_cancel_after: float = 10.0,
    ):
        self.served = served
        self.engine = served.engine
        self.api_key = api_key
        self.limits = limits or ServeLimits()
        self.make_constraint = constraint_factory or default_constraint_factory
        self.shutdown_cancel_after = shutdown_cancel_after
        self.created = int(time.time())

    def check_key(self, request: Any) -> None:
        """RequestError 401 unless the request carries the API key (when one is set)."""
        if self.api_key is None:
            return
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise RequestError(
                401,
                "Incorrect API key provided" if token else "Missing API key: send Authorization: Bearer <key>",
                code="invalid_api_key",
            )

    # -- routes --

    async def health(self, request: Any) -> Any:
        """``GET /health``: the model and the engine's load (no key needed)."""
        from starlette.responses import JSONResponse

        engine = self.engine
        return JSONResponse({"status": "ok", "model": self.served.name, "running": engine.running, "waiting": engine.waiting})

    async def models(self, request: Any) -> Any:
        """``GET /v1/models``: the one model served."""
        from starlette.responses import JSONResponse

        try:
            self.check_key(request)
        except RequestError as exc:
            return error_response(exc)
        model = {"id": self.served.name, "object": "model", "created": self.created, "owned_by": "mgpt"}
        return JSONResponse({"object": "list", "data": [model]})

    async def chat_completions(self, request: Any) -> Any:
        """``POST /v1/chat/completions``: one JSON answer, or server-sent events when the
        request streams."""
        started = time.perf_counter()
        try:
            self.check_key(request)
            parsed = parse_chat_request(await read_json(request, self.limits.max_body_bytes), self.served.name, self.limits)
            answer = await self.submit(parsed, started)
        except RequestError as exc:
            return error_response(exc)
        if parsed.stream:
            return self.stream(answer)
        return await self.complete(answer)

    async def not_found(self, request: Any, exc: Exception) -> Any:
        return error_response(RequestError(404, f"no route {request.method} {request.url.path}", code="not_found"))

    async def bad_method(self, request: Any, exc: Exception) -> Any:
        return error_response(RequestError(405, f"method {request.method} not allowed on {request.url.path}"))

    # -- answering a chat request --

    async def submit(self, parsed: ChatRequest, started: float) -> Answer:
        """Tokenize the prompt, settle the answer's budget and constraint, and queue the
        request on the engine; its events arrive on the returned answer's queue."""
        # Tokenizing a long prompt and compiling a schema take a while: not on the event loop.
        ids = await asyncio.to_thread(self.served.prompt_ids, parsed.messages)
        max_tokens = answer_length(len(ids), parsed.max_tokens, self.served.context, self.limits)
        constraint = None
        if parsed.constraint_format():
            constraint = await asyncio.to_thread(self.make_constraint, parsed.constraint_format(), self.served)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[EngineEvent] = asyncio.Queue()

        def on_event(event: EngineEvent) -> None:  # called on the engine's thread
            loop.call_soon_threadsafe(events.put_nowait, event)

        try:
            handle = self.engine.submit(ids, parsed.sampling_params(max_tokens, constraint), on_event)
        except RuntimeError:
            raise SHUTTING_DOWN from None
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        return Answer(completion_id, self.served.name, parsed, handle, events, started)

    async def complete(self, answer: Answer) -> Any:
        """Wait for the whole answer and reply with one ``chat.completion``."""
        from starlette.responses import JSONResponse

        pieces = []
        try:
            while True:
                event = await answer.events.get()
                pieces.append(event.delta)
                if event.finished:
                    break
        finally:
            answer.handle.cancel()  # a no-op once finished; stops the work if the client left
        answer.log(event)
        if event.finish_reason == "error":
            return error_response(generation_failed(event.error))
        if event.finish_reason == "cancelled":
            return error_response(SHUTTING_DOWN)
        return JSONResponse(answer.completion("".join(pieces), event))

    def stream(self, answer: Answer) -> Any:
        """Reply with server-sent events: the role, the text as it comes, the finish
        reason (or an error event), the usage if asked, then ``[DONE]``."""
        from starlette.responses import StreamingResponse

        return StreamingResponse(self._events(answer), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def _events(self, answer: Answer):
        tools = answer.parsed.tools
        held: list[str] = []  # a reply under tools is sent once complete: calls are parsed from it
        try:
            yield answer.chunk({"role": "assistant", "content": ""})
            while True:
                event = await answer.events.get()
                if event.delta and tools is not None:
                    held.append(event.delta)
                elif event.delta:
                    yield answer.chunk({"content": event.delta})
                if event.finished:
                    break
            answer.log(event)
            if event.finish_reason in ("error", "cancelled"):
                # An error event, as vLLM sends mid-stream: the client knows the answer is cut.
                error = SHUTTING_DOWN if event.finish_reason == "cancelled" else generation_failed(event.error)
                yield sse_data(error.body())
                return
            finish = event.finish_reason
            if tools is not None:
                from mgpt.llm.serve.tools import stream_deltas

                deltas, called = stream_deltas("".join(held), tools)
                for delta in deltas:
                    yield answer.chunk(delta)
                finish = "tool_calls" if called else finish
            yield answer.chunk({}, finish)
            if answer.parsed.include_usage:
                yield answer.usage_chunk(event)
            yield "data: [DONE]\n\n"
        finally:
            answer.handle.cancel()  # the client went away, or the server is stopping

    # -- the engine's lifetime --

    @asynccontextmanager
    async def lifespan(self, app: Any):
        """Start the engine with the app; on shutdown stop it, cancelling what is left."""
        self.engine.start()
        log.info("serving %s (context %s tokens, batch up to %d)", self.served.name, self.served.context, self.engine.max_batch)
        try:
            yield
        finally:
            # uvicorn has let in-flight requests finish (or cancelled them); stop the worker.
            await asyncio.to_thread(self.engine.stop, cancel=True, timeout=self.shutdown_cancel_after)
            log.info("engine stopped")


def create_app(
    served: ServedModel,
    *,
    api_key: str | None = None,
    limits: ServeLimits | None = None,
    constraint_factory: ConstraintFactory | None = None,
    shutdown_cancel_after: float = 10.0,
):
    """The Starlette app serving ``served``. With ``api_key`` set, ``/v1/*`` requests need
    ``Authorization: Bearer <api_key>``. ``limits`` bound what one request may ask for;
    ``constraint_factory`` turns a ``response_format`` into the engine's constraint
    (default :func:`default_constraint_factory`). The engine starts with the app and
    stops (cancelling what is left after ``shutdown_cancel_after`` seconds) when it
    shuts down."""
    require_serve_extra()
    from starlette.applications import Starlette
    from starlette.routing import Route

    server = ChatServer(
        served, api_key=api_key, limits=limits, constraint_factory=constraint_factory,
        shutdown_cancel_after=shutdown_cancel_after,
    )
    return Starlette(
        routes=[
            Route("/health", server.health, methods=["GET"]),
            Route("/v1/models", server.models, methods=["GET"]),
            Route("/v1/chat/completions", server.chat_completions, methods=["POST"]),
        ],
        exception_handlers={404: server.not_found, 405: server.bad_method},
        lifespan=server.lifespan,
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
