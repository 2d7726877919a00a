"""``hf:<dir>``: a local HuggingFace transformers checkpoint behind the model interface.

The checkpoint (one trained by ``mgpt train``, or any causal LM folder) is loaded on the
first call, not at construction, and generation runs in a worker thread so the event loop
(and the other roles) keep going. Calls to one model are serialised: one forward pass at a
time is what a single local model can do anyway. A request with an ``output`` format is
decoded under that format's grammar (:mod:`mgpt.llm.local.constrained`; needs the ``[local]``
extra), so structured answers always parse.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, AsyncIterator

from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, StreamChunk, Usage


class LocalModel(Model):
    """A local causal LM. ``max_new_tokens`` bounds each answer; ``temperature`` 0 is greedy."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_new_tokens: int = 1024,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = 0,
        device: str | None = None,
        threads: int | None = None,
        name: str | None = None,
        decoder: str | None = None,
        constrained: bool = True,
    ):
        from mgpt.llm.local.generate import check_checkpoint

        self.path = check_checkpoint(path)  # a clear error now, not at the first call
        self.name = name or f"hf:{self.path.name}"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.device = device
        #: torch intra-op threads; None sizes them to the free cores (see pick_threads).
        self.threads = threads
        #: ``hf`` (HF generate), ``fast``, ``fast-int8`` or ``fast-int4`` (mgpt's lean Llama
        #: decoder; about 3x HF's decode speed on CPU with int4): ``$MGPT_DECODER``, else hf.
        self.decoder = decoder or os.environ.get("MGPT_DECODER") or "hf"
        from mgpt.llm.local.generate import DECODERS
        from mgpt.llm.errors import ModelConfigError

        if self.decoder not in DECODERS:
            raise ModelConfigError(f"unknown decoder {self.decoder!r} (MGPT_DECODER): choose one of {', '.join(DECODERS)}")
        #: Whether a request's ``output`` format is enforced by its grammar. False (spec
        #: option ``MGPT_CONSTRAINED=0``) decodes freely, as a model without constraints
        #: would answer: for measuring what the grammar buys, and for debugging prompts.
        self.constrained = constrained
        self._loaded: Any = None
        self._lock = asyncio.Lock()

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
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
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
