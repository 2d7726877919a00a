"""One client for every OpenAI-compatible chat-completions server.

OpenAI, Azure (v1 endpoint), vLLM, Ollama, llama.cpp and ``mgpt serve`` all speak the same
wire format; they differ only by base URL and key, so one class serves them all::

    model = OpenAIModel("gpt-4o-mini", api_key=key)
    model = OpenAIModel("qwen2.5:7b", base_url="http://localhost:11434/v1")

A request that asks for a JSON schema (:class:`~mgpt.llm.backends.base.OutputFormat`) sends it as
``response_format={"type": "json_schema", ...}``, which OpenAI, vLLM, Ollama and llama.cpp
honour. A server that refuses the field is remembered (per base URL and model, for the
life of the process) and asked again without it; the caller's parse-and-re-ask covers it.

Tools go as the native ``tools`` / ``tool_choice`` / ``parallel_tool_calls`` fields and come
back as ``tool_calls``. A server that refuses ``tools`` is remembered the same way, and from
then on gets the tools through the prompt-and-parse protocol
(:mod:`~mgpt.llm.backends.tool_protocol`) instead: the run goes on, on any server.

The SDK's own retries are switched off (``max_retries=0``): we retry here, bounded in attempts
and in total time, so that a run stops with one clear :class:`ModelUnavailableError` instead of
the SDK's silent ten-minute backoffs. Errors the user must fix (key, model name, a request the
server rejects) raise :class:`ModelConfigError` at once, without retrying.

``openai`` is imported only when a model is built: ``import mgpt.llm`` must stay light.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from mgpt.agents import secrets
from mgpt.agents.tools import ToolCall
from mgpt.llm.backends import guard

from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, StreamChunk, ToolOptions, Usage
from mgpt.llm.errors import ModelConfigError, ModelUnavailableError

if TYPE_CHECKING:  # only for type checkers: importing openai here would defeat the lazy import
    import openai

__all__ = ["OpenAIModel", "retry_after_seconds", "server_problem", "DEFAULT_BASE_URL"]

log = logging.getLogger(__name__)

#: Used when no base URL is given. Explicit rather than left to the SDK so that error messages
#: can name it and so that ``OPENAI_BASE_URL`` in the environment cannot silently redirect us
#: (resolving the environment is the caller's job).
DEFAULT_BASE_URL = "https://api.openai.com/v1"

#: Local servers (vLLM, Ollama, llama.cpp) ignore the key, but the SDK insists on one.
_PLACEHOLDER_KEY = "not-needed"

#: A server asking us to wait longer than this is waited for only this long: the total-time
#: bound (``max_retry_time``) decides when to give up, not one header.
MAX_RETRY_AFTER = 60.0

#: Backoff when the server gives no Retry-After: 0.5 s, 1 s, 2 s, ... up to 20 s, each plus up
#: to 0.5 s of jitter so that clients failing together do not retry together.
_BACKOFF_START = 0.5
_BACKOFF_MAX = 20.0
_BACKOFF_JITTER = 0.5

#: Statuses worth another try: request timeout, conflict, rate limit; >= 500 are added in code.
_RETRY_STATUSES = frozenset({408, 409, 429})

#: Longest piece of a server's error message we quote back to the user.
_MAX_SERVER_MESSAGE = 300

#: Seconds one request may take by default, and the least time retries may go on. The retry
#: window is at least three timeouts long, so a request that hangs is retried, not given up on.
DEFAULT_TIMEOUT = 120.0
MIN_RETRY_TIME = 120.0

#: Hosts whose newer models refuse ``max_tokens`` and want ``max_completion_tokens``; other
#: servers (vLLM, Ollama, llama.cpp) all read ``max_tokens``.
_COMPLETION_TOKENS_HOSTS = ("api.openai.com", ".openai.azure.com")


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long the server asked us to wait, in seconds, or None if it did not say.

    Reads ``retry-after-ms`` (OpenAI, Azure) first as the more precise one, then ``Retry-After``
    as seconds or as an HTTP-date (RFC 9110). A date in the past gives 0. ``now`` (a Unix time)
    is for tests. Header names are matched case-insensitively, also for a plain dict.
    """
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}

    ms = lowered.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass  # a malformed header is no reason to fail; fall back to Retry-After

    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _display_url(url: str) -> str:
    """The base URL as we show it: without any ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def server_problem(base_url: str, *, api_key: str | None = None, timeout: float = 3.0) -> str | None:
    """Why the OpenAI-compatible server at ``base_url`` does not answer (None when it does):
    one ``GET /models`` with a short timeout. Any HTTP answer counts, except one refusing
    the key (the key goes only to this server, as a run would send it)."""
    import urllib.error
    import urllib.request

    shown = _display_url(base_url)
    guard.check_model_request(base_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(base_url.rstrip("/") + "/models", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403) and api_key:
            return f"{shown} refuses the API key (HTTP {exc.code})"
        return None  # it answered: a server without /models is still a server
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"{shown} does not answer within {timeout:g} s"
        return f"{shown} does not answer ({reason})"


def _is_retryable(exc: BaseException) -> bool:
    """Rate limits, server errors, timeouts and dropped connections: the service's trouble,
    which may pass. Everything else (bad key, unknown model, bad request) will not."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUSES or exc.status_code >= 500
    return False


def _server_message(exc: BaseException) -> str:
    """The human part of an API error: the server's ``error.message`` when it sent one."""
    import openai

    message = ""
    if isinstance(exc, openai.APIError):
        body = exc.body
        if isinstance(body, Mapping):
            inner = body.get("message") or body.get("detail") or body.get("error")
            if inner:
                message = str(inner)
        elif isinstance(body, str) and body.strip():
            message = body.strip()
        if not message:
            message = exc.message
    else:
        message = str(exc) or type(exc).__name__
    message = " ".join(message.split())
    if len(message) > _MAX_SERVER_MESSAGE:
        message = message[:_MAX_SERVER_MESSAGE] + "..."
    return message


def _is_model_not_found(exc: "openai.APIStatusError") -> bool:
    if exc.status_code == 404:
        return True
    # Some servers say so with a 400 and a code instead (OpenAI's own "model_not_found").
    return exc.code == "model_not_found"


#: (base URL, model) pairs whose server refused ``response_format``: not sent to them again.
_FORMAT_REFUSED: set[tuple[str, str]] = set()


def _refuses_response_format(exc: BaseException | None) -> bool:
    """A 400/422 that names response_format or json_schema, or says a parameter is
    unsupported: the server does not do structured output (it is not the request's fault)."""
    import openai

    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422):
        return False
    said = f"{_server_message(exc)} {exc.param or ''} {exc.code or ''}".lower()
    return any(
        word in said
        for word in ("response_format", "json_schema", "unsupported_parameter", "unsupported parameter")
    )


#: (base URL, model) pairs whose server refused ``tools``: they get the text protocol instead.
_TOOLS_REFUSED: set[tuple[str, str]] = set()


def _refuses_tools(exc: BaseException | None) -> bool:
    """A 400/422/501 that names tools or function calling, or says a parameter is
    unsupported: the server does not call tools natively."""
    import openai

    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422, 501):
        return False
    said = f"{_server_message(exc)} {exc.param or ''} {exc.code or ''}".lower()
    return any(word in said for word in ("tool", "function", "unsupported_parameter", "unsupported parameter"))


def tool_fields(tools: ToolOptions) -> dict[str, Any]:
    """The request fields that offer ``tools``, in OpenAI's shape."""
    choice: Any = tools.choice
    if choice not in ("auto", "required", "none"):
        choice = {"type": "function", "function": {"name": choice}}
    return {
        "tools": [
            {"type": "function", "function": {
                "name": t["name"], "description": t.get("description") or "",
                "parameters": t.get("parameters") or {"type": "object", "properties": {}},
            }}
            for t in tools.tools
        ],
        "tool_choice": choice,
        "parallel_tool_calls": tools.parallel,
    }


def _wire_message(m: ChatMessage) -> dict[str, Any]:
    """One message in OpenAI's shape (assistant tool calls and tool results included)."""
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content}
    if m.role == "assistant" and m.tool_calls:
        return {
            "role": "assistant",
            "content": m.content or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ],
        }
    return {"role": m.role, "content": m.content}


def strict_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``schema`` as OpenAI's strict mode wants it, and whether strict mode can be used.

    Strict mode needs every object to list all its properties as required and to forbid
    extra keys. When every object already requires all its properties, the copy gets
    ``additionalProperties: false`` everywhere and strict is True; otherwise (a field with a
    default) the schema goes unchanged with strict False, which servers treat as guidance.
    """
    import copy

    objects: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" or "properties" in node:
                objects.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    copied = copy.deepcopy(schema)
    walk(copied)
    strict = all(
        set(o.get("properties", {})) == set(o.get("required", [])) and o.get("additionalProperties") in (None, False)
        for o in objects
    )
    if not strict:
        return schema, False
    for o in objects:
        o["additionalProperties"] = False
    return copied, True


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    details = getattr(raw, "prompt_tokens_details", None)
    if isinstance(details, dict):  # a server the SDK does not know the shape of
        cached = details.get("cached_tokens")
    else:
        cached = getattr(details, "cached_tokens", None)
    return Usage(
        prompt_tokens=getattr(raw, "prompt_tokens", None) or 0,
        completion_tokens=getattr(raw, "completion_tokens", None) or 0,
        cached_tokens=cached if isinstance(cached, int) and cached > 0 else 0,
    )


class OpenAIModel(Model):
    """A chat model behind any OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: the model name the server knows (``gpt-4o-mini``, ``qwen2.5:7b``...).
        base_url: the server's API root, e.g. ``http://localhost:8000/v1``;
            None means OpenAI (:data:`DEFAULT_BASE_URL`).
        api_key: the key. May be None for a local server (``base_url`` given), which gets a
            placeholder; required for OpenAI itself.
        timeout: seconds one HTTP request may take (:data:`DEFAULT_TIMEOUT`); a request that
            runs longer is abandoned and retried.
        max_attempts: attempts per call, the first included.
        max_retry_time: seconds after which no new attempt is started; by default
            ``max(MIN_RETRY_TIME, 3 * timeout)``, so a hung request is retried. A call can
            take at most about ``max_retry_time + timeout``.
        temperature: sent only when set, so the server's default applies otherwise.
        max_tokens: completion tokens per call; sent only when set, like ``temperature``.
        sleep: how to wait between attempts (``asyncio.sleep``); tests pass a fake one.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = 6,
        max_retry_time: float | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not model:
            raise ModelConfigError("no model name given; pass one with --model, e.g. openai:gpt-4o-mini")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        try:
            import openai
        except ImportError:
            raise ModelConfigError(
                "the OpenAI-compatible backend needs the openai package: pip install openai"
            ) from None

        if not api_key:
            if base_url is None:
                raise ModelConfigError(
                    "no API key for OpenAI: set OPENAI_API_KEY or MGPT_API_KEY, or pass --api-key-file PATH "
                    "(or pass --base-url for a local server that needs no key)"
                )
            api_key = _PLACEHOLDER_KEY

        self.model = model
        self.name = f"openai:{model}"
        #: A hosted API answers many calls at once: a run makes up to 16 of its calls together.
        self.parallel = 16
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_retry_time = max(MIN_RETRY_TIME, 3 * timeout) if max_retry_time is None else max_retry_time
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._sleep = sleep
        # Kept only to scrub it from any text we raise; never shown, not in __repr__.
        self._secret = api_key if api_key != _PLACEHOLDER_KEY else None
        secrets.register(self._secret)
        host = (urlsplit(self.base_url).hostname or "").lower()
        self._max_tokens_field = (
            "max_completion_tokens" if host.endswith(_COMPLETION_TOKENS_HOSTS) else "max_tokens"
        )
        # Learned on the first stream: some servers reject stream_options with a 400.
        self._stream_options_ok = True
        # (event loop, lock): see _sending.
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=self.base_url, max_retries=0, timeout=timeout
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIModel(model={self.model!r}, base_url={_display_url(self.base_url)!r}, "
            f"timeout={self.timeout}, max_attempts={self.max_attempts}, "
            f"max_retry_time={self.max_retry_time})"
        )

    async def aclose(self) -> None:
        await self._client.close()

    # -- the two calls ---------------------------------------------------------------------

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
    ) -> Completion:
        if tools is not None and (self.base_url, self.model) in _TOOLS_REFUSED:
            return await self._complete_as_text(messages, tools, context)
        extra = self._response_format(output)
        fixed = tool_fields(tools) if tools is not None else None
        try:
            async for attempt in self._retrying():
                with attempt:
                    response = await self._create_with_format(messages, extra, stream=False, fixed=fixed)
        except ModelConfigError as exc:
            if tools is None or not _refuses_tools(exc.__cause__):
                raise
            _TOOLS_REFUSED.add((self.base_url, self.model))
            log.info(
                "%s at %s refused tools (%s); tools are offered through the prompt instead",
                self.name, _display_url(self.base_url), self._scrub(_server_message(exc.__cause__)),
            )
            return await self._complete_as_text(messages, tools, context)
        return self._completion_from(response)

    async def _complete_as_text(
        self, messages: list[ChatMessage], tools: ToolOptions, context: CallContext | None
    ) -> Completion:
        """Tools through the prompt-and-parse protocol, for a server without native tools."""
        from mgpt.llm.backends.tool_protocol import complete_as_text

        async def plain(msgs: list[ChatMessage], fmt: OutputFormat | None) -> Completion:
            return await self.complete(msgs, context=context, output=fmt)

        return await complete_as_text(plain, messages, tools)

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> AsyncIterator[StreamChunk]:
        # Retrying is safe only while the caller has seen nothing, so each attempt opens the
        # stream and reads up to the first piece of text; after that a failure is final.
        # (Yielding inside tenacity's attempt block would also swallow the caller's aclose.)
        sdk_stream, head, ended = await self._open_in_order(messages, self._response_format(output))

        text: list[str] = []
        usage = Usage()
        finish_reason: str | None = None

        def take(chunk: Any) -> str:
            nonlocal usage, finish_reason
            if getattr(chunk, "usage", None) is not None:
                usage = _usage(chunk.usage)
            if not chunk.choices:
                return ""
            choice = chunk.choices[0]
            if choice.finish_reason:
                finish_reason = choice.finish_reason
            return (choice.delta.content if choice.delta else None) or ""

        if head and isinstance(head[0], Completion):  # the whole answer came in one body
            yield StreamChunk(delta=head[0].text)
            yield StreamChunk(completion=head[0])
            return
        try:
            for chunk in head:
                if delta := take(chunk):
                    text.append(delta)
                    yield StreamChunk(delta=delta)
            if not ended:
                async for chunk in sdk_stream:
                    if delta := take(chunk):
                        text.append(delta)
                        yield StreamChunk(delta=delta)
        except Exception as exc:
            import openai

            if not isinstance(exc, openai.OpenAIError):
                raise
            raise ModelUnavailableError(
                self._scrub(
                    f"the stream from {self.name} at {_display_url(self.base_url)} broke after "
                    f"{len(''.join(text))} characters ({self._describe(exc)}); not retried because "
                    "part of the answer was already delivered"
                )
            ) from exc
        finally:
            await sdk_stream.close()
        if finish_reason is None:  # every OpenAI-compatible stream ends with one: this was cut short
            raise ModelUnavailableError(
                self._scrub(
                    f"the stream from {self.name} at {_display_url(self.base_url)} ended after "
                    f"{len(''.join(text))} characters without a finish_reason (cut short); not "
                    "retried because part of the answer was already delivered"
                )
            )

        yield StreamChunk(
            completion=Completion(
                text="".join(text), usage=usage, finish_reason=finish_reason, model=self.name
            )
        )

    # -- helpers ---------------------------------------------------------------------------

    def _payload(self, messages: list[ChatMessage]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(m) for m in messages],
        }
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_tokens is not None:
            payload[self._max_tokens_field] = self.max_tokens
        return payload

    async def _create(self, messages: list[ChatMessage], *, stream: bool, extra: dict[str, Any] | None = None) -> Any:
        """One request; turns the errors the user must fix into ModelConfigError at once.
        ``extra`` holds further request fields (``response_format``)."""
        import openai

        payload = self._payload(messages)
        payload.update(extra or {})
        try:
            if not stream:
                return await self._client.chat.completions.create(**payload)
            if not self._stream_options_ok:
                return await self._client.chat.completions.create(**payload, stream=True)
            try:
                return await self._client.chat.completions.create(
                    **payload, stream=True, stream_options={"include_usage": True}
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                # Older vLLM / llama.cpp builds reject the field; the usage is a nicety, so
                # try once without it and remember only if that is what fixed it. A request
                # refused for another field (response_format, a prompt too long) is not sent
                # again here: that refusal is the caller's to handle.
                if "stream" not in _server_message(exc).lower():
                    raise
                sdk_stream = await self._client.chat.completions.create(**payload, stream=True)
                self._stream_options_ok = False
                log.info("%s rejected stream_options; streaming without usage", self.base_url)
                return sdk_stream
        except openai.APIStatusError as exc:
            if _is_retryable(exc):
                raise
            if exc.status_code in (401, 403):
                # The SDK's error quotes the server, which may echo the rejected key: drop it
                # from the chain so no traceback can show it. Our message keeps what matters.
                raise self._config_error(exc) from None
            raise self._config_error(exc) from exc
        except openai.APIError as exc:
            if _is_retryable(exc):
                raise
            raise self._service_error(exc) from exc
        except ValueError as exc:  # a 200 whose body does not parse as JSON
            raise self._not_an_answer(f"a body that is not valid JSON ({exc})") from None

    async def _open_in_order(
        self, messages: list[ChatMessage], extra: dict[str, Any] | None
    ) -> tuple[Any, list[Any], bool]:
        """:meth:`_open_stream` with the retries, holding the send lock (see :meth:`_sending`)
        through them until a response begins, so a call that is refused and retried keeps
        its place in the order."""
        gate = self._sending()
        await gate.acquire()
        held = [True]

        def sent() -> None:
            if held[0]:
                held[0] = False
                gate.release()

        try:
            async for attempt in self._retrying():
                with attempt:
                    return await self._open_stream(messages, extra, sent=sent)
        finally:
            sent()
        raise AssertionError("unreachable: the retries end in an answer or an error")

    def _sending(self) -> asyncio.Lock:
        """Held by a stream's request from sending until the server's response begins (its
        headers; through any retries before that), so concurrent calls reach the server one
        at a time, in the order they were made (the scheduler's plan order), and still
        overlap while the answers stream. A server that answers in arrival order then
        answers each call as if they came one after another. The lock belongs to the
        running event loop, like the client."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Lock())
        return self._gate[1]

    async def _open_stream(
        self, messages: list[ChatMessage], extra: dict[str, Any] | None = None, *, sent: Callable[[], None]
    ) -> tuple[Any, list[Any], bool]:
        """Open a stream and read it up to the first text delta; ``sent`` is called once the
        response has begun (its headers are in).

        Returns the SDK stream, the chunks read so far, and whether the stream already ended.
        """
        sdk_stream = await self._create_with_format(messages, extra, stream=True)
        sent()
        head: list[Any] = []
        whole = await self._not_a_stream(sdk_stream)
        if whole is not None:  # a server that answers a stream request in one JSON body
            return sdk_stream, [whole], True
        try:
            async for chunk in sdk_stream:
                head.append(chunk)
                if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                    return sdk_stream, head, False
        except BaseException as exc:
            await sdk_stream.close()
            import openai

            if isinstance(exc, openai.APIError) and not _is_retryable(exc):
                # An error event inside the stream (vLLM sends these with status 200).
                raise self._service_error(exc) from exc
            raise
        if not head:  # a web page, or anything else that is not server-sent events
            raise self._not_an_answer("a stream with no events")
        return sdk_stream, head, True

    async def _not_a_stream(self, sdk_stream: Any) -> Any:
        """For a 200 that is not server-sent events: the chat completion a server sent in
        one JSON body instead (some ignore ``stream``), else the error that says what came."""
        response = getattr(sdk_stream, "response", None)
        content_type = str(getattr(response, "headers", {}).get("content-type", "")) if response is not None else ""
        if response is None or "event-stream" in content_type:
            return None
        text = (await response.aread()).decode("utf-8", errors="replace")
        await sdk_stream.close()
        if "json" not in content_type:
            raise self._not_an_answer(f"a page that is not JSON (it starts {' '.join(text.split())[:60]!r})")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise self._not_an_answer(f"a body that is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise self._not_an_answer("JSON that is not a chat completion (no 'choices' list)")
        if not data["choices"]:
            raise ModelUnavailableError(f"{self.name} at {_display_url(self.base_url)} returned an answer with no choices")
        choice = data["choices"][0]
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise self._not_an_answer("a chat completion of the wrong shape (a choice without a message)")
        message = choice["message"]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        return Completion(text=str(message.get("content") or ""), usage=_usage(SimpleNamespace(**usage) if usage else None),
                          finish_reason=choice.get("finish_reason"), model=self.name)

    # -- structured output (response_format) ------------------------------------------------

    def _response_format(self, output: OutputFormat | None) -> dict[str, Any] | None:
        """The ``response_format`` field for ``output``, or None: no schema asked for, or
        this server refused the field before."""
        if output is None or output.kind != "json_schema" or not output.json_schema:
            return None
        if (self.base_url, self.model) in _FORMAT_REFUSED:
            return None
        schema, strict = strict_schema(output.json_schema)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", output.name)[:64] or "answer"
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": strict},
            }
        }

    async def _create_with_format(
        self, messages: list[ChatMessage], extra: dict[str, Any] | None, *, stream: bool,
        fixed: dict[str, Any] | None = None,
    ) -> Any:
        """:meth:`_create` with ``extra`` (and ``fixed``, fields always sent: the tools);
        when the server refuses ``response_format``, send the request again without it and,
        if that is accepted, remember the refusal for this server and model."""
        if not extra:
            return await self._create(messages, stream=stream, extra=fixed)
        try:
            return await self._create(messages, stream=stream, extra={**extra, **(fixed or {})})
        except ModelConfigError as exc:
            # With tools on the request, a vague "unsupported parameter" may be about them:
            # only a refusal that names response_format drops it here.
            if not _refuses_response_format(exc.__cause__) or (fixed and "response_format" not in str(exc).lower()):
                raise
            refusal = exc
        # Remembered only once the request without the field is accepted: an "unsupported
        # parameter" about some other field then fails here as it should, and marks nothing.
        response = await self._create(messages, stream=stream, extra=fixed)
        _FORMAT_REFUSED.add((self.base_url, self.model))
        log.info(
            "%s at %s refused response_format (%s); structured answers are parsed instead",
            self.name, _display_url(self.base_url), self._scrub(_server_message(refusal.__cause__)),
        )
        return response

    def _completion_from(self, response: Any) -> Completion:
        if isinstance(response, str):  # the SDK hands back the text of a non-JSON answer
            start = " ".join(response.split())[:60]
            raise self._not_an_answer(f"a page that is not JSON (it starts {start!r})")
        if not isinstance(getattr(response, "choices", None), list):
            raise self._not_an_answer("JSON that is not a chat completion (no 'choices' list)")
        if not response.choices:
            raise ModelUnavailableError(
                f"{self.name} at {_display_url(self.base_url)} returned an answer with no choices"
            )
        try:
            choice = response.choices[0]
            calls = [
                ToolCall(name=c.function.name, arguments=c.function.arguments or "{}", **({"id": c.id} if c.id else {}))
                for c in (getattr(choice.message, "tool_calls", None) or [])
                if getattr(c, "function", None) is not None
            ]
            return Completion(
                text=(choice.message.content if choice.message else None) or "",
                usage=_usage(response.usage),
                finish_reason=choice.finish_reason,
                model=self.name,
                tool_calls=calls,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise self._not_an_answer(f"a chat completion of the wrong shape ({exc})") from None

    def _not_an_answer(self, what: str) -> ModelConfigError:
        """A 200 answer that is no chat completion: most often a ``--base-url`` that points at
        an ordinary web page, or at the server's root instead of its API root."""
        return ModelConfigError(
            self._scrub(
                f"{_display_url(self.base_url)} answered {self.name}'s request with {what}; "
                "is --base-url the API root of an OpenAI-compatible server (it usually ends in /v1)?"
            )
        )

    def _retrying(self) -> AsyncRetrying:
        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_retry_time),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=self._log_retry,
            retry_error_callback=self._give_up,
            reraise=False,
            **kwargs,
        )

    def _wait(self, state: RetryCallState) -> float:
        """The server's Retry-After when it sent one (capped), else backoff with jitter."""
        import openai

        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, openai.APIStatusError):
            asked = retry_after_seconds(exc.response.headers)
            if asked is not None:
                return min(asked, MAX_RETRY_AFTER)
        backoff = min(_BACKOFF_MAX, _BACKOFF_START * 2 ** (state.attempt_number - 1))
        return backoff + random.uniform(0, _BACKOFF_JITTER)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s at %s: %s; retrying in %.1fs (attempt %d of %d)",
            self.name,
            _display_url(self.base_url),
            self._scrub(self._describe(exc)) if exc else "failed",
            wait,
            state.attempt_number + 1,
            self.max_attempts,
        )

    def _give_up(self, state: RetryCallState) -> Any:
        """Called by tenacity when it stops: retries ran out, or the error is not retryable."""
        exc = state.outcome.exception() if state.outcome else None
        if exc is None or not _is_retryable(exc):
            # Not ours to wrap (ModelConfigError, a bug, a cancellation): let it through.
            raise exc  # type: ignore[misc]
        elapsed = state.seconds_since_start or 0.0
        raise ModelUnavailableError(
            self._scrub(
                f"{self.name} at {_display_url(self.base_url)} kept failing: gave up after "
                f"{state.attempt_number} attempt(s) in {elapsed:.1f}s "
                f"(limits: {self.max_attempts} attempts, {self.max_retry_time:g}s); "
                f"last error: {self._describe(exc)}"
            )
        ) from exc

    def _describe(self, exc: BaseException) -> str:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return f"no answer within the {self.timeout:g}s timeout"
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            detail = f": {cause}" if cause and str(cause) else ""
            return f"connection failed{detail}"
        if isinstance(exc, openai.APIStatusError):
            return f"HTTP {exc.status_code}: {_server_message(exc)}"
        return _server_message(exc)

    def _config_error(self, exc: "openai.APIStatusError") -> ModelConfigError:
        url = _display_url(self.base_url)
        said = _server_message(exc)
        if exc.status_code in (401, 403):
            message = (
                f"the API key was rejected by {url} (HTTP {exc.status_code}: {said}); "
                "set MGPT_API_KEY/OPENAI_API_KEY or pass --api-key-file PATH"
            )
        elif _is_model_not_found(exc):
            message = (
                f"model '{self.model}' was not found at {url} (HTTP {exc.status_code}: {said}); "
                "check --model, and that the base URL ends in /v1"
            )
        else:
            message = f"{url} rejected the request for model '{self.model}' (HTTP {exc.status_code}): {said}"
            if self.max_tokens is not None and ("token" in said.lower() or "context" in said.lower()):
                # vLLM refuses max_tokens that, with the prompt, exceed the model's context.
                message += (
                    f" (each request asks for up to {self.max_tokens} completion tokens: lower "
                    "max_tokens_per_call in the config file for a model with a short context)"
                )
        return ModelConfigError(self._scrub(message))

    def _service_error(self, exc: BaseException) -> ModelUnavailableError:
        """An API failure that retrying will not fix and that is not the user's setting:
        an error event in a stream, an answer that does not parse."""
        return ModelUnavailableError(
            self._scrub(f"{self.name} at {_display_url(self.base_url)} failed: {self._describe(exc)}")
        )

    def _scrub(self, text: str) -> str:
        """Servers sometimes echo the key back in an error; it must never reach a message."""
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text
