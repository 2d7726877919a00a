"""Many answers from one local model in few calls: the eval's samples and a trainer's.

A :class:`SampleRequest` asks for ``n`` answers to one chat prompt at one temperature (0:
greedy, one answer repeated ``n`` times) and length. :func:`generate_batched` answers a
list of them with left-padded HF ``generate`` calls, every row at its own temperature and
cut at its own length; :func:`generate_one_by_one` answers them with the lean CPU decoder
(:class:`mgpt.llm.local.fastllama.FastLlama`). :class:`BatchSampler` loads a model folder
and picks one of the two.

Why batched: for a 135M model on a GPU the time goes by decode steps (per-step overhead),
hardly by rows (docs/benchmarks.md, the GPU probe), so one ``generate`` per model serves
the eval's sampled and greedy answers, the structured ones and the next step's training
samples. On a CPU the rows of one length share a batch, sorted by prompt length: a short
prompt padded to a long one costs attention work on every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["BatchSampler", "SampleRequest", "SamplerOptions", "generate_batched", "generate_one_by_one"]

#: Called before each batch (or answer) with what comes next; raises to stop (a deadline).
BeforeStep = Callable[[str], None]


@dataclass
class SampleRequest:
    """``n`` answers to one chat prompt, at ``temperature`` (0: greedy), of at most ``max_new_tokens``."""

    messages: list[dict[str, str]]
    n: int
    temperature: float
    max_new_tokens: int

    @property
    def rows(self) -> int:
        """Answers actually decoded: a greedy request decodes one and repeats it."""
        return self.n if self.temperature > 0 else 1


def _prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _decode(tokenizer: Any, ids: list[int], limit: int, eos: int | None) -> str:
    """The first ``limit`` new tokens, up to the first EOS, as text."""
    ids = ids[:limit]
    if eos in ids:
        ids = ids[:ids.index(eos)]
    return tokenizer.decode(ids, skip_special_tokens=True)


def _repeat_greedy(requests: Sequence[SampleRequest], answers: list[list[str]]) -> list[list[str]]:
    return [a if r.temperature > 0 else a * r.n for r, a in zip(requests, answers)]


def _batches(rows: list[tuple[int, float, int, str]], size: int, by_length: bool) -> list[list[int]]:
    """Row indices in batches of at most ``size``, sorted by prompt length; with ``by_length``
    one answer length per batch."""
    order = sorted(range(len(rows)), key=lambda j: (rows[j][2] if by_length else 0, len(rows[j][3])))
    batches: list[list[int]] = []
    for j in order:
        if not batches or len(batches[-1]) >= size or (by_length and rows[batches[-1][0]][2] != rows[j][2]):
            batches.append([])
        batches[-1].append(j)
    return batches


def _row_temperature(temps: Any) -> Any:
    """A logits processor: each row at its own temperature; a row at 0 keeps only its argmax."""
    import torch
    from transformers import LogitsProcessor

    class RowTemperature(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            top = scores == scores.max(dim=-1, keepdim=True).values
            greedy = scores.masked_fill(~top, float("-inf"))
            return torch.where(temps == 0, greedy, scores / temps.clamp(min=1e-6))

    return RowTemperature()


def generate_batched(model: Any, tokenizer: Any, requests: Sequence[SampleRequest], *, seed: int | None = None,
                     batch_size: int = 2048, by_length: bool | None = None,
                     before: BeforeStep | None = None) -> list[list[str]]:
    """The answers to each request (``n`` texts each), from an HF causal LM in eval mode.

    ``by_length`` (default: on unless the model is on CUDA) puts one answer length per
    batch; on a GPU every length shares one batch, each row cut at its own limit.
    ``seed`` seeds torch first (None: the caller's random state).
    """
    import torch
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    if by_length is None:
        by_length = device.type != "cuda"
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    # rows: (request index, temperature, max_new_tokens, prompt text)
    rows = [(i, r.temperature, r.max_new_tokens, _prompt(tokenizer, r.messages))
            for i, r in enumerate(requests) for _ in range(r.rows)]
    texts: list[str] = [""] * len(rows)
    tokenizer.padding_side = "left"
    if seed is not None:
        torch.manual_seed(seed)
    for idx in _batches(rows, batch_size, by_length):
        if before:
            before("the next generate batch")
        enc = tokenizer([rows[j][3] for j in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        temps = torch.tensor([[float(rows[j][1])] for j in idx], device=device)  # (B, 1)
        kw: dict[str, Any] = {"do_sample": False}
        if bool((temps > 0).any()):
            # temperature 1 and no top-k/top-p: the distribution is the row temperature's alone
            kw = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
                  "logits_processor": LogitsProcessorList([_row_temperature(temps)])}
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max(rows[j][2] for j in idx), pad_token_id=pad,
                                 eos_token_id=eos, **kw)
        for row, j in zip(gen[:, enc["input_ids"].shape[1]:].tolist(), idx):
            texts[j] = _decode(tokenizer, row, rows[j][2], eos)
    out: list[list[str]] = [[] for _ in requests]
    for (i, _, _, _), text in zip(rows, texts):
        out[i].append(text)
    return _repeat_greedy(requests, out)


def generate_one_by_one(fast: Any, tokenizer: Any, requests: Sequence[SampleRequest], *, seed: int = 0,
                        before: BeforeStep | None = None) -> list[list[str]]:
    """The answers to each request from a :class:`~mgpt.llm.local.fastllama.FastLlama`, one
    answer at a time; answer ``j`` of request ``i`` has its own seed, so a run repeats."""
    eos = tokenizer.eos_token_id
    out = []
    for i, r in enumerate(requests):
        if before:
            before("the next answer")
        ids = tokenizer(_prompt(tokenizer, r.messages), add_special_tokens=False)["input_ids"]
        answers = []
        for j in range(r.rows):
            g = fast.generate(ids, max_new_tokens=r.max_new_tokens, temperature=r.temperature, eos_ids=[eos],
                              seed=seed * 1_000_003 + i * 1009 + j)
            answers.append(_decode(tokenizer, g.tokens, r.max_new_tokens, eos))
        out.append(answers)
    return _repeat_greedy(requests, out)


@dataclass
class SamplerOptions:
    """How a :class:`BatchSampler` decodes."""

    kind: str = "fast"
    """``hf``: batched HF ``generate`` (the CUDA path); ``fast``: FastLlama, one answer at a time (CPU)."""
    device: str = "cpu"
    quant: str | None = "int8"
    """FastLlama's weights: int8, int4 or None (fp32)."""
    threads: int | None = None
    gen_batch: int = 2048
    """Rows per ``generate`` call (``hf``)."""


class BatchSampler:
    """Answers from one model folder: ``sample(requests, seed)`` returns the texts of each request.

    ``before`` is called before each batch or answer (a deadline raises there)."""

    def __init__(self, model_dir: str | Path, options: SamplerOptions, *, before: BeforeStep | None = None):
        import torch

        from mgpt.llm.local.fastllama import FastLlama
        from mgpt.llm.local.generate import load_model

        if options.kind not in ("hf", "fast"):
            raise ValueError(f"sampler kind {options.kind!r}: use hf or fast")
        self.options, self.before = options, before
        loaded = load_model(model_dir, device="cpu", threads=options.threads)
        model, self.tokenizer = loaded.model.eval(), loaded.tokenizer
        self.model: Any = None
        self.fast: Any = None
        if options.kind == "hf":
            dtype = torch.bfloat16 if options.device == "cuda" else torch.float32
            self.model = model.to(options.device, dtype=dtype)
        else:
            self.fast = FastLlama.from_model(model, quant=options.quant, threads=options.threads)

    def sample(self, requests: Sequence[SampleRequest], seed: int) -> list[list[str]]:
        if self.model is not None:
            return generate_batched(self.model, self.tokenizer, requests, seed=seed,
                                    batch_size=self.options.gen_batch, before=self.before)
        return generate_one_by_one(self.fast, self.tokenizer, requests, seed=seed, before=self.before)

    def close(self) -> None:
        """Free the model (and CUDA's cache): the next model of a loop needs the memory."""
        self.model = self.fast = None
        if self.options.device == "cuda":
            import torch

            torch.cuda.empty_cache()
