"""``hf:<dir>``: a local HuggingFace transformers checkpoint behind the model interface.

The checkpoint (one trained by ``mgpt train``, or any causal LM folder) is loaded on the
first call, not at construction, and generation runs in a worker thread so the event loop
(and the other roles) keep going. Calls made at the same time (files written together, two
roles at once) share one batched decoder: the continuous-batching engine ``mgpt serve``
runs (:class:`~mgpt.llm.serve.engine.Engine`), whose every forward pass decodes all of them,
up to ``parallel`` rows; a prompt that starts like an earlier one reuses its keys and values
(the prefix cache; reported as cached tokens). ``parallel=1`` decodes one request at a time
instead, under a lock. A request with an ``output`` format is decoded under that format's
grammar (:mod:`mgpt.llm.local.constrained`; needs the ``[local]`` extra), each request its
own, so structured answers always parse.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any, AsyncIterator

from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, StreamChunk, Usage
from mgpt.llm.local.sampling import SamplingParams

__all__ = ["LOCAL_DEFAULTS", "LocalModel"]


def _sampling_field(field: str, doc: str) -> property:
    """An attribute that reads and sets (checked) one field of ``self.sampling``."""
    return property(
        lambda self: getattr(self.sampling, field),
        lambda self, value: self._set_sampling(**{field: value}),
        doc=f"{doc} (``sampling.{field}``)",
    )


#: How a :class:`LocalModel` decodes unless told: greedy, at most 1024 new tokens, and a
#: fixed seed so that a sampled answer repeats.
LOCAL_DEFAULTS = SamplingParams(max_tokens=1024, seed=0)


class LocalModel(Model):
    """A local causal LM, decoded as ``sampling`` says (default :data:`LOCAL_DEFAULTS`).

    The sampling fields may also be given as keyword ``options``, which override
    ``sampling``: ``LocalModel(path, max_new_tokens=64, temperature=0.7)``. Each is an
    attribute too (``model.temperature = 1.0`` changes the next answers)."""

    def __init__(
        self,
        path: str | Path,
        *,
        sampling: SamplingParams | None = None,
        device: str | None = None,
        threads: int | None = None,
        name: str | None = None,
        decoder: str | None = None,
        constrained: bool = True,
        parallel: int = 4,
        **options: Any,
    ):
        from mgpt.llm.errors import ModelConfigError
        from mgpt.llm.local.generate import DECODERS, check_checkpoint

        self.path = check_checkpoint(path)  # a clear error now, not at the first call
        self.name = name or f"hf:{self.path.name}"
        self.sampling = _checked((sampling or LOCAL_DEFAULTS).with_options(**options))
        self.device = device
        #: torch intra-op threads; None sizes them to the free cores (see pick_threads).
        self.threads = threads
        #: ``hf`` (HF generate), ``fast``, ``fast-int8`` or ``fast-int4`` (mgpt's lean Llama
        #: decoder; about 3x HF's decode speed on CPU with int4): ``$MGPT_DECODER``, else hf.
        self.decoder = decoder or os.environ.get("MGPT_DECODER") or "hf"
        if self.decoder not in DECODERS:
            raise ModelConfigError(f"unknown decoder {self.decoder!r} (MGPT_DECODER): choose one of {', '.join(DECODERS)}")
        #: Whether a request's ``output`` format is enforced by its grammar. False (spec
        #: option ``MGPT_CONSTRAINED=0``) decodes freely, as a model without constraints
        #: would answer: for measuring what the grammar buys, and for debugging prompts.
        self.constrained = constrained
        if parallel < 1:
            raise ModelConfigError("LocalModel: parallel must be at least 1 (1: one request at a time)")
        #: Rows of the batched decoder: calls decoded together (the default of a run's
        #: ``--parallel``). 1 decodes one request at a time with ``generate_text``.
        self.parallel = parallel
        self._loaded: Any = None
        self._lock = asyncio.Lock()
        self._engine: Any = None
        self._engine_lock = threading.Lock()

    # The sampling fields as attributes, as they were before SamplingParams held them.
    max_new_tokens = _sampling_field("max_tokens", "The most tokens an answer may have.")
    temperature = _sampling_field("temperature", "0 is greedy; above 0 samples with this temperature.")
    top_p = _sampling_field("top_p", "Nucleus sampling's probability mass; 1 (or None, when set) is off.")
    seed = _sampling_field("seed", "Seeds each answer's sampling.")

    def _set_sampling(self, **options: Any) -> None:
        self.sampling = _checked(self.sampling.with_options(**options))

    def _load(self) -> Any:
        if self._loaded is None:
            from mgpt.llm.local.generate import load_model, pick_device, pick_dtype

            device = pick_device(self.device)  # bfloat16 on CUDA: half the memory, tensor cores
            loaded = load_model(self.path, device=device, dtype=pick_dtype(device), threads=self.threads)
            if self.decoder != "hf":
                from mgpt.llm.local.generate import use_fast_decoder

                use_fast_decoder(loaded, self.decoder, threads=self.threads)
            self._loaded = loaded
        return self._loaded

    def _generate(self, messages: list[ChatMessage], on_text=None, output: OutputFormat | None = None):
        from mgpt.llm.local.generate import generate_text

        loaded = self._load()
        return generate_text(
            loaded,
            [m.model_dump() for m in messages],
            self.sampling,
            on_text=on_text,
            # decoded under the format's grammar: see mgpt.llm.local.constrained
            output=output if self.constrained else None,
        )

    @staticmethod
    def _completion(gen, name: str) -> Completion:
        return Completion(
            text=gen.text,
            usage=Usage(prompt_tokens=gen.prompt_tokens, completion_tokens=gen.completion_tokens),
            finish_reason=gen.finish_reason,
            model=name,
        )

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> Completion:
        if self.parallel > 1:
            completion = None
            async for chunk in self._batched(messages, output):
                completion = chunk.completion or completion
            assert completion is not None
            return completion
        async with self._lock:
            gen = await asyncio.to_thread(self._generate, messages, None, output)
        return self._completion(gen, self.name)

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> AsyncIterator[StreamChunk]:
        if self.parallel > 1:
            async for chunk in self._batched(messages, output):
                yield chunk
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def on_text(piece: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, piece)

        async with self._lock:
            task = asyncio.ensure_future(asyncio.to_thread(self._generate, messages, on_text, output))
            task.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, None))
            while (piece := await queue.get()) is not None:
                if piece:
                    yield StreamChunk(delta=piece)
            gen = await task
        yield StreamChunk(completion=self._completion(gen, self.name))

    # -- the batched decoder ----------------------------------------------------------------

    @property
    def engine(self) -> Any:
        """The batched decoder (:class:`~mgpt.llm.serve.engine.Engine`; its ``stats`` say how
        many requests it decoded together), once a call has started it; None before."""
        return self._engine

    def _engine_ready(self) -> Any:
        """The engine over the loaded model (built once; its worker thread starts with the
        first request)."""
        with self._engine_lock:
            if self._engine is None:
                from mgpt.llm.local.generate import eos_token_ids
                from mgpt.llm.serve.engine import Engine

                loaded = self._load()
                self._engine = Engine(
                    loaded.model, loaded.tokenizer, eos_ids=eos_token_ids(loaded), max_batch=self.parallel,
                    context=loaded.max_positions, fast=loaded.fast,
                )
            return self._engine

    def _request(self, messages: list[ChatMessage], output: OutputFormat | None) -> tuple[list[int], SamplingParams]:
        """The prompt's tokens and how to decode it: the answer's budget cut to the context
        left, and this request's own grammar when it asks for a shape."""
        from mgpt.llm.local.constrained import MatcherConstraint
        from mgpt.llm.local.generate import answer_budget, encode_prompt, output_matcher

        loaded = self._load()
        ids, _ = encode_prompt(loaded, [m.model_dump() for m in messages])
        budget = answer_budget(loaded, len(ids), self.sampling.max_tokens)
        constraint = None
        if output is not None and self.constrained:
            constraint = MatcherConstraint(output_matcher(loaded, output, budget))
        return ids, self.sampling.with_options(max_tokens=budget, constraint=constraint)

    async def _batched(self, messages: list[ChatMessage], output: OutputFormat | None) -> AsyncIterator[StreamChunk]:
        """One request through the engine, its text streamed as the batch decodes it."""
        from mgpt.llm.errors import ModelUnavailableError

        engine = await asyncio.to_thread(self._engine_ready)
        ids, params = await asyncio.to_thread(self._request, messages, output)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        handle = engine.submit(ids, params, lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
        pieces: list[str] = []
        try:
            while True:
                event = await events.get()
                if event.delta:
                    pieces.append(event.delta)
                    yield StreamChunk(delta=event.delta)
                if event.finished:
                    break
        except BaseException:  # cancelled (Ctrl-C, a sibling's failure): free the row
            handle.cancel()
            raise
        if event.finish_reason in ("error", "cancelled"):
            raise ModelUnavailableError(f"{self.name} could not finish the answer: {event.error or event.finish_reason}")
        usage = Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens,
                      cached_tokens=event.cached_tokens)
        yield StreamChunk(completion=Completion(text="".join(pieces), usage=usage, finish_reason=event.finish_reason,
                                                model=self.name))

    async def aclose(self) -> None:
        """Stop the batched decoder's worker (the loaded weights stay for the next call)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.stop)


def _checked(params: SamplingParams) -> SamplingParams:
    """``params`` if :func:`~mgpt.llm.local.generate.generate_text` can decode with them,
    else ModelConfigError naming the field (at construction, not at the first call)."""
    from mgpt.llm.errors import ModelConfigError

    try:
        params.check()
    except ValueError as exc:
        raise ModelConfigError(f"LocalModel: {exc}") from None
    unsupported = params.unsupported("stop", "ignore_eos", "constraint")
    if unsupported:
        raise ModelConfigError(
            f"LocalModel does not take {', '.join(unsupported)}; serve the model (mgpt serve) for those."
        )
    return params
