"""A lean decoder for Llama-family causal LMs, one stream or a batch, with int8/int4 weights.

Why: Hugging Face ``generate`` on a 2-core CPU spends a token streaming every fp32
weight (538 MB for SmolLM2-135M) through a general-purpose model with a lot of Python
and dispatch per layer; it decoded at 0.29x llama.cpp's speed. This module keeps only
what one stream of greedy or sampled decoding needs:

* weights packed once: fused QKV and gate/up projections, q/k rows permuted so rotary
  embedding is one complex multiply with a precomputed table;
* a preallocated KV cache written in place, SDPA for attention (grouped-query heads
  folded into the query length on decode, so no K/V repeat);
* weight-only quantization for the matmuls: ``int8`` (per output channel, symmetric,
  ``torch._weight_int8pack_mm``) or ``int4`` (groups of 32 along the input, min/max
  asymmetric like GGUF's Q4_1, ``torch._weight_int4pack_mm_for_cpu``); the LM head
  (the largest single matmul, vocab x hidden) is quantized too, int8 by default, as
  llama.cpp's Q4_1 files keep it at 8 bits (an int4 head cost 5.6% perplexity).
  Quantized matmuls take bf16 activations (their fast kernels need them); the
  residual stream, norms and logits stay fp32.
  ``quant=None`` keeps the checkpoint's weights in ``dtype`` (fp32 matches HF exactly).
  ``w8a8`` (x86) quantizes the activations too, per row, for fbgemm's int8 kernel: it
  scales better with batch rows, at some quality (see :func:`_w8a8_linear`);
* many streams at once: :meth:`FastLlama.batch` gives a :class:`FastBatch` (one KV-cache
  row per stream, batched decode steps and prefills), which ``mgpt serve``'s engine runs.

Use it::

    from mgpt.llm.local.fastllama import FastLlama

    fast = FastLlama.from_pretrained("models/smollm2", quant="int4", threads=2)
    out = fast.generate(prompt_ids, max_new_tokens=256, temperature=0.0, eos_ids=[2],
                        logits_hook=None, on_token=print)
    out.tokens, out.finish_reason          # new token ids; "stop" (EOS) or "length"

``prompt_ids`` is a list of ints or a ``[T]``/``[1, T]`` tensor (one stream: batch 1).
``temperature`` 0 is greedy; above 0 it samples with optional ``top_k``/``top_p`` and a
``seed``. ``logits_hook(step_logits) -> logits`` sees each step's fp32 ``[vocab]`` logits
before the choice and may return a masked copy (constrained decoding: set banned ids to
``-inf``); ``on_token(token_id)`` is called for every token as it is chosen, the EOS
token included. ``FastLlama.from_model(hf_model, ...)`` wraps a model already loaded
(``from_pretrained`` loads with transformers, packs, and drops the HF model).
``fast.logits(ids)`` returns ``[T, vocab]`` fp32 logits for scoring (perplexity).

Architectures: ``llama`` (LlamaForCausalLM), ``mistral`` (without a sliding window
shorter than the context used) and ``qwen2`` (q/k/v biases). CUDA: pass
``device="cuda"``; weights go there in bf16 by default (``quant`` must be None: the
int4/int8 kernels used here are the CPU ones). ``threads`` sets torch's intra-op
threads for the duration of each call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mgpt.llm.errors import ModelConfigError
from mgpt.llm.local.sampling import SamplingParams, pick_token

__all__ = [
    "FastBatch", "FastGeneration", "FastLlama", "FastLlamaError", "QUANT_MODES", "dequantize", "quantize_int4", "quantize_int8",
]

#: Weight formats for the matmuls: None keeps ``dtype``.
QUANT_MODES = (None, "int8", "int4", "w8a8")
_ARCHS = ("llama", "mistral", "qwen2")
_STATIC_ROPE = ("default", "linear", "llama3", "yarn")
INT4_GROUP = 32


class FastLlamaError(ModelConfigError):
    """The checkpoint or the options are outside what the fast decoder handles; the
    message says which, and the plain transformers path (``mgpt.llm.local.generate``) still
    works for it."""


@dataclass
class FastGeneration:
    """One decoded continuation."""

    #: The new token ids (the EOS token included when it ended the answer).
    tokens: list[int]
    #: ``"stop"`` on an EOS token, ``"length"`` at ``max_new_tokens`` or the context end.
    finish_reason: str
    prompt_tokens: int
    #: Seconds spent on the prompt (first token included) and on the rest.
    prefill_s: float = 0.0
    decode_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- weights


def quantize_int8(w):
    """Symmetric int8 per output row: ``w ~ q * scale[:, None]``; returns (q, scale)."""
    import torch

    w = w.float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-8).to(torch.bfloat16).float()
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
    return q, scale


def quantize_int4(w, group: int = INT4_GROUP):
    """4-bit groups of ``group`` inputs, GGUF Q4_1's scheme: ``w ~ (q - 8) * s + z`` with
    q in 0..15 spanning each group's min..max. Returns (q [n, k] int32, scale and zero
    [n, k/group]), scale and zero rounded to bf16 as the kernel reads them."""
    import torch

    n, k = w.shape
    wg = w.float().reshape(n, k // group, group)
    lo, hi = wg.amin(-1), wg.amax(-1)
    scale = ((hi - lo) / 15.0).clamp(min=1e-8).to(torch.bfloat16).float()
    zero = (lo + 8 * scale).to(torch.bfloat16).float()
    # Pick q against the rounded scale/zero so the kernel's dequantization is the nearest.
    q = torch.round((wg - zero[..., None]) / scale[..., None] + 8).clamp(0, 15).to(torch.int32)
    return q.reshape(n, k), scale, zero


def dequantize(w, mode: str | None, group: int = INT4_GROUP):
    """The fp32 weight the ``mode`` kernels effectively multiply by (for tests and
    error reports); ``w`` unchanged for None."""
    if mode == "int8":
        q, scale = quantize_int8(w)
        return q.float() * scale[:, None]
    if mode == "w8a8":  # the weights' part (activations are quantized per row at run time)
        import torch

        w = w.float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-8)
        return torch.round(w / scale[:, None]).clamp(-127, 127) * scale[:, None]
    if mode == "int4":
        n, k = w.shape
        q, scale, zero = quantize_int4(w, group)
        return ((q.float().reshape(n, -1, group) - 8) * scale[..., None] + zero[..., None]).reshape(n, k)
    return w.float()


def int4_fits(shape, group: int = INT4_GROUP) -> bool:
    """Whether a [n, k] weight fits the packed int4 kernel (else int8 is used)."""
    n, k = shape
    return k % group == 0 and n % 16 == 0


def _int8_linear(w):
    """``x @ w.T`` with w int8 per output channel; x must be bf16 [M, K]."""
    import torch

    q, scale = quantize_int8(w)
    scale = scale.to(torch.bfloat16)
    op = torch._weight_int8pack_mm
    return lambda x: op(x, q, scale)


def _int4_linear(w, group: int = INT4_GROUP):
    """``x @ w.T`` with w in 4-bit groups (:func:`quantize_int4`); x must be bf16
    [M, K]. None if the shape does not fit the packed kernel."""
    import torch

    if not int4_fits(w.shape, group):
        return None
    n, k = w.shape
    q, scale, zero = quantize_int4(w, group)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    # [k/group, n, 2]: (scale, zero) per group and output channel, as the kernel reads it.
    sz = torch.stack([scale.t(), zero.t()], -1).contiguous().to(torch.bfloat16)
    op = torch._weight_int4pack_mm_for_cpu
    return lambda x: op(x, packed, group, sz)


def _w8a8_linear(w):
    """``x @ w.T`` with int8 weights per output channel *and* int8 activations per row,
    through fbgemm's dynamic-quantization kernel (``quantized::linear_dynamic``, VNNI).

    Why: the weight-only int4/int8 kernels multiply in fp32 and are bound by that
    arithmetic, not by reading weights, so on this CPU a 4-row matmul costs 1.7x a
    1-row one and batching pays back little; VNNI's int8 dot products do four products
    per lane (4 rows measured 1.3x one row; the 49152-wide LM head 0.9 ms vs 4 ms
    weight-only).

    fbgemm picks one activation scale for the whole [M, K] input, which would make a
    row's result depend on the other rows of its batch. So each row is divided by its
    own max |x| and two columns, -1 and +1 (against zero weights), pin every row's range
    to [-1, 1]: the kernel's scale is the same for any batch, each row is quantized as
    if alone (per-row int8), and the result is scaled back. x is float [M, K]; the
    result fp32 [M, N]. Activations get all 8 bits where the CPU has VNNI (7 bits, as
    fbgemm's ``reduce_range`` asks, cost SmolLM2 14% perplexity against 4.6% with 8);
    without VNNI fbgemm's int16 pair sums could saturate, so 7 bits there."""
    import torch

    n, k = w.shape
    padded = torch.cat([w.float(), torch.zeros(n, 2)], dim=1)
    scale = (padded.abs().amax(dim=1) / 127.0).clamp(min=1e-8).double()
    import warnings

    with warnings.catch_warnings():  # torch deprecates quantized tensors; we hold one only to pack it
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_channel(padded, scale, torch.zeros(n, dtype=torch.long), 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(q, None)
    op = torch.ops.quantized.linear_dynamic
    ends = torch.tensor([[-1.0, 1.0]])
    reduce_range = not _has_vnni()

    def fn(x):
        x = x.float()
        s = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)
        xa = torch.cat([x / s, ends.expand(x.shape[0], 2)], dim=1)
        return op(xa, packed, reduce_range).mul_(s)

    return fn


def _has_vnni() -> bool:
    """Whether this x86 CPU has VNNI (integer dot products without int16 saturation)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def _dense_linear(w, bias=None):
    import torch.nn.functional as F

    if bias is None:
        return lambda x: F.linear(x, w)
    return lambda x: F.linear(x, w, bias)


def _rope_permutation(n_heads: int, head_dim: int):
    """Row order that turns each head's [first half | second half] rotary layout into
    interleaved (re, im) pairs, so rotation is a complex multiply. q and k get the same
    order, so q.k (and so attention) is unchanged."""
    import torch

    half = head_dim // 2
    within = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)
    return (torch.arange(n_heads)[:, None] * head_dim + within[None, :]).reshape(-1)


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


# -- packing an HF model (FastLlama.from_model) -------------------------------------------------


def _head_format(quant: str | None, head_quant: str | None) -> str | None:
    """The LM head's weight format: ``head_quant``, or for ``"default"`` w8a8 under w8a8,
    int8 under int8/int4 (as GGUF Q4_1 files keep it), else unquantized."""
    if head_quant == "default":
        head_quant = "w8a8" if quant == "w8a8" else "int8" if quant else None
    if head_quant not in QUANT_MODES:
        raise FastLlamaError(f"head_quant must be one of {QUANT_MODES} or 'default', not {head_quant!r}.")
    return head_quant


def _placement_dtype(device: str, dtype, quant: str | None, head_quant: str | None):
    """The dtype of unquantized weights, activations and cache on ``device`` (``dtype``,
    else bf16 on CUDA and fp32 on CPU), or FastLlamaError where the kernels asked for do
    not run: the int8/int4 ones are CPU ones, w8a8's need fbgemm (x86)."""
    import torch

    on_cuda = str(device).startswith("cuda")
    if on_cuda and (quant or head_quant):
        raise FastLlamaError(
            "The int8/int4 kernels here are the CPU ones; on CUDA use quant=None (bf16 weights)."
        )
    if on_cuda and not torch.cuda.is_available():
        raise FastLlamaError("device='cuda' but torch sees no GPU; leave device unset for the CPU.")
    if "w8a8" in (quant, head_quant) and "fbgemm" not in torch.backends.quantized.supported_engines:
        raise FastLlamaError("w8a8 needs torch's fbgemm kernels (x86 CPUs); use int4 or int8 here.")
    if dtype is None:
        dtype = torch.bfloat16 if on_cuda else torch.float32
    return dtype


def _context_limit(config, max_positions: int | None) -> int:
    """Positions the rotary table and cache cover: ``max_positions``, else the config's
    ``max_position_embeddings``; cut to a sliding window shorter than that (inside the
    window full attention is exact), or FastLlamaError if ``max_positions`` asks past it."""
    sliding = getattr(config, "sliding_window", None)
    use_sliding = getattr(config, "use_sliding_window", config.model_type == "mistral")
    limit = int(max_positions or getattr(config, "max_position_embeddings", 0) or 4096)
    if sliding and use_sliding and sliding < limit:
        if max_positions is not None:
            raise FastLlamaError(
                f"This model attends within a {sliding}-token sliding window; the fast decoder "
                f"does full attention, so max_positions must be at most {sliding}."
            )
        limit = int(sliding)
    return limit


def _packed_linear(w, bias, mode: str | None, *, device, dtype) -> Callable[[Any], Any]:
    """``x @ w.T (+ bias)`` in the weight format ``mode`` (see :data:`QUANT_MODES`).
    int4 falls back to int8 for a shape outside the int4 kernel's. int8/int4 take and
    return bf16 ``[M, K] -> [M, N]``; w8a8 returns fp32; unquantized, ``dtype`` on ``device``."""
    import torch

    if mode == "w8a8":
        fn = _w8a8_linear(w)
        if bias is None:
            return fn
        b32 = bias.float()
        return lambda x: fn(x).add_(b32)
    if mode in ("int4", "int8"):
        fn = (_int4_linear(w) if mode == "int4" else None) or _int8_linear(w)
        if bias is None:
            return fn
        b = bias.to(torch.bfloat16)
        return lambda x: fn(x).add_(b)
    return _dense_linear(w.to(device=device, dtype=dtype), None if bias is None else bias.to(device=device, dtype=dtype))


def _pack_layer(sd: dict, p: str, linear: Callable, perms: tuple, device) -> tuple:
    """One decoder layer from state dict ``sd`` (keys under prefix ``p``) as
    ``(ln1, qkv, o, ln2, gate_up, down)``: q, k and v fused into one matmul (q/k rows in
    the rotary order ``perms``), gate and up into another; norms fp32 on ``device``."""
    import torch

    perm_q, perm_k = perms
    wq = sd[p + "self_attn.q_proj.weight"][perm_q]
    wk = sd[p + "self_attn.k_proj.weight"][perm_k]
    wv = sd[p + "self_attn.v_proj.weight"]
    biases = [sd.get(p + f"self_attn.{n}_proj.bias") for n in "qkv"]
    bias = None
    if any(b is not None for b in biases):  # qwen2: q/k/v biases (a missing one is zeros)
        bq, bk, bv = (b if b is not None else torch.zeros(w.shape[0]) for b, w in zip(biases, (wq, wk, wv)))
        bias = torch.cat([bq[perm_q], bk[perm_k], bv]).float()
    qkv = linear(torch.cat([wq, wk, wv]), bias)
    o = linear(sd[p + "self_attn.o_proj.weight"], sd.get(p + "self_attn.o_proj.bias"))
    gu_bias = [sd.get(p + f"mlp.{n}_proj.bias") for n in ("gate", "up")]
    gu = linear(torch.cat([sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]]),
                None if gu_bias[0] is None else torch.cat(gu_bias))
    down = linear(sd[p + "mlp.down_proj.weight"], sd.get(p + "mlp.down_proj.bias"))
    ln1 = sd[p + "input_layernorm.weight"].to(device=device, dtype=torch.float32)
    ln2 = sd[p + "post_attention_layernorm.weight"].to(device=device, dtype=torch.float32)
    return ln1, qkv, o, ln2, gu, down


class FastLlama:
    """A packed Llama-family decoder; build it with :meth:`from_pretrained` or
    :meth:`from_model`. One instance serves one stream at a time."""

    def __init__(self, *, layers, embed, final_norm, head, config, device, act_dtype, cache_dtype,
                 dense_dtype, cis, quant, head_quant, threads):
        import torch

        self._layers = layers
        self._embed = embed
        self._final_norm = final_norm
        self._head = head
        self.config = config
        self.device = device
        self.quant = quant
        self.head_quant = head_quant
        self.threads = threads
        self._act = act_dtype
        self._cache_dtype = cache_dtype
        self._cis = cis
        # Quantized heads take bf16 like the other packed matmuls; a dense one its dtype.
        self._head_dtype = torch.bfloat16 if head_quant else dense_dtype
        c = config
        self.n_heads = c.num_attention_heads
        self.n_kv = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.hidden = c.hidden_size
        self.eps = float(c.rms_norm_eps)
        self.vocab_size = c.vocab_size
        self.max_positions = int(cis.shape[0])
        self._cache = None  # (k, v) each [layers, n_kv, length, head_dim]

    # ------------------------------------------------------------------ building

    @classmethod
    def from_pretrained(cls, path: str | Path, *, quant: str | None = None, threads: int | None = None,
                        device: str | None = None, dtype=None, head_quant: str | None = "default",
                        max_positions: int | None = None) -> "FastLlama":
        """Load the checkpoint folder ``path`` (what ``save_pretrained`` writes) and pack
        it; see :meth:`from_model` for the options."""
        try:
            import torch
            from transformers import AutoConfig, AutoModelForCausalLM
        except ImportError as exc:
            raise FastLlamaError(
                f"The fast decoder needs the model workshop's libraries ({exc.name} is missing): "
                "pip install 'mgpt[train]'."
            ) from None
        path = Path(path).expanduser()
        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise FastLlamaError(f"Could not read the model config in {path}: {exc}") from None
        cls._check_config(config, quant)
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise FastLlamaError(f"Could not load the checkpoint in {path}: {exc}") from None
        return cls.from_model(model, quant=quant, threads=threads, device=device, dtype=dtype,
                              head_quant=head_quant, max_positions=max_positions)

    @staticmethod
    def _check_config(config, quant) -> None:
        c = _text_config(config)
        if quant not in QUANT_MODES:
            raise FastLlamaError(f"quant must be one of {QUANT_MODES}, not {quant!r}.")
        if c.model_type not in _ARCHS:
            raise FastLlamaError(
                f"The fast decoder runs {', '.join(_ARCHS)} models, not {c.model_type!r}; "
                "use the plain transformers path for it."
            )
        act = getattr(c, "hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise FastLlamaError(f"The fast decoder runs SiLU MLPs, not {act!r}.")
        rope = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {}
        rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
        if rope_type not in _STATIC_ROPE:
            raise FastLlamaError(
                f"Rotary scaling {rope_type!r} depends on the sequence length; the fast decoder "
                f"precomputes its tables and runs {', '.join(_STATIC_ROPE)} only."
            )

    @classmethod
    def from_model(cls, model, *, quant: str | None = None, threads: int | None = None,
                   device: str | None = None, dtype=None, head_quant: str | None = "default",
                   max_positions: int | None = None) -> "FastLlama":
        """Pack an HF ``*ForCausalLM`` (llama, mistral, qwen2) already in memory.

        ``quant``: None, ``"int8"`` or ``"int4"`` (CPU only). ``head_quant``: the LM
        head's format; ``"default"`` is int8 when ``quant`` is set (as GGUF Q4_1 files
        keep it: an int4 head cost SmolLM2 5.6% perplexity, int8 0.3%), else none.
        ``dtype``: the unquantized weights, activations and KV cache (default fp32 on
        CPU, bf16 on CUDA). ``threads``: torch
        intra-op threads during calls (None leaves torch's setting). ``max_positions``
        caps the context (default: the config's ``max_position_embeddings``).
        The HF model is not modified."""
        import torch

        config = _text_config(model.config)
        cls._check_config(config, quant)
        head_quant = _head_format(quant, head_quant)
        device = device or "cpu"
        dtype = _placement_dtype(device, dtype, quant, head_quant)
        limit = _context_limit(config, max_positions)
        # Quantized matmuls take bf16 activations (the fast kernels need them); the
        # residual stream, norms and logits stay fp32.
        # (w8a8 quantizes its own activations from fp32: they stay in ``dtype``.)
        act = torch.bfloat16 if quant in ("int8", "int4") else dtype
        n_heads = config.num_attention_heads
        n_kv = getattr(config, "num_key_value_heads", None) or n_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
        sd = {k: v.detach() for k, v in model.state_dict().items()}
        if not any(k.startswith("model.") for k in sd):
            raise FastLlamaError("Expected a *ForCausalLM model with a .model backbone.")

        def linear(w, bias=None, mode=quant):
            return _packed_linear(w, bias, mode, device=device, dtype=dtype)

        perms = (_rope_permutation(n_heads, head_dim), _rope_permutation(n_kv, head_dim))
        layers = [_pack_layer(sd, f"model.layers.{i}.", linear, perms, device) for i in range(config.num_hidden_layers)]
        embed = sd["model.embed_tokens.weight"].to(device=device, dtype=torch.float32)
        head_w = sd.get("lm_head.weight", sd["model.embed_tokens.weight"])  # tied embeddings: no lm_head
        head = linear(head_w, None, mode=head_quant)
        final_norm = sd["model.norm.weight"].to(device=device, dtype=torch.float32)
        cis = cls._rotary_table(model, head_dim, limit).to(device)
        # The KV cache stays in ``dtype``: on CPU, SDPA over an fp32 cache measured
        # faster than over bf16 (60 vs 75 us a layer at 400 positions) and is exact.
        return cls(layers=layers, embed=embed, final_norm=final_norm, head=head, config=config,
                   device=device, act_dtype=act, cache_dtype=dtype, dense_dtype=dtype, cis=cis, quant=quant,
                   head_quant=head_quant, threads=threads)

    @staticmethod
    def _rotary_table(model, head_dim: int, length: int):
        """``[length, head_dim/2]`` complex64 rotations, from the model's own rotary module
        (so its rope type and attention scaling are honoured)."""
        import torch

        rotary = getattr(model.model, "rotary_emb", None)
        if rotary is None:
            raise FastLlamaError("This model has no shared rotary embedding (model.model.rotary_emb).")
        half = head_dim // 2
        chunks = []
        with torch.no_grad():
            for start in range(0, length, 4096):
                pos = torch.arange(start, min(length, start + 4096))[None]
                x = torch.zeros(1, dtype=torch.float32)
                cos, sin = rotary(x, pos)
                chunks.append(torch.complex(cos[0, :, :half].float(), sin[0, :, :half].float()))
        return torch.cat(chunks)

    # ------------------------------------------------------------------ running

    def _ensure_cache(self, length: int) -> None:
        import torch

        if self._cache is not None and self._cache[0].shape[2] >= length:
            return
        length = min(self.max_positions, -(-length // 256) * 256)
        shape = (len(self._layers), self.n_kv, length, self.head_dim)
        self._cache = (torch.empty(shape, dtype=self._cache_dtype, device=self.device),
                       torch.empty(shape, dtype=self._cache_dtype, device=self.device))

    def _forward(self, ids, pos: int, all_logits: bool = False, cache=None):
        """Run tokens ``ids`` ([T] long) at positions pos..pos+T-1 through the model,
        writing their keys/values into the cache (``cache``, default this stream's:
        ``(k, v)`` each ``[layers, n_kv, length, head_dim]``); logits fp32 for the last
        token ([vocab]) or every token ([T, vocab])."""
        import torch
        import torch.nn.functional as F

        t = ids.shape[0]
        nh, nkv, hd, hidden, eps, act = self.n_heads, self.n_kv, self.head_dim, self.hidden, self.eps, self._act
        end = pos + t
        cis = self._cis[pos:end].view(t, 1, hd // 2)
        kc, vc = self._cache if cache is None else cache
        rep = nh // nkv
        cdt = self._cache_dtype
        norm_shape = (hidden,)
        if t > 1:
            if pos:  # more tokens after a cached prefix: each sees the prefix and its own past
                mask = torch.ones(t, end, dtype=torch.bool, device=self.device).tril(pos)
            else:
                mask = None
        x = self._embed[ids]  # [T, hidden] fp32 residual stream
        for li, (ln1, qkv_fn, o_fn, ln2, gu_fn, down_fn) in enumerate(self._layers):
            qk, v_new = self._qkv(x, ln1, qkv_fn, cis)
            k_all, v_all = kc[li], vc[li]  # [nkv, L, hd]
            k_all[:, pos:end] = qk[:, nh:].transpose(0, 1)
            v_all[:, pos:end] = v_new.transpose(0, 1)
            k_all, v_all = k_all[None, :, :end], v_all[None, :, :end]
            if t == 1:
                # Decode: the query heads sharing a KV head become its query rows, so
                # attention needs neither a mask nor repeated K/V.
                q = qk[0, :nh].view(1, nkv, rep, hd).to(cdt)
                a = F.scaled_dot_product_attention(q, k_all, v_all)
            else:
                q = qk[:, :nh].transpose(0, 1)[None].to(cdt)  # [1, nh, T, hd]
                a = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask,
                                                   is_causal=mask is None, enable_gqa=rep > 1)
                a = a[0].transpose(0, 1)
            x += o_fn(a.reshape(t, nh * hd).to(act))
            x += self._mlp(x, ln2, gu_fn, down_fn)
        if not all_logits:
            x = x[-1:]
        h = F.rms_norm(x, norm_shape, self._final_norm, eps)
        logits = self._head(h.to(self._head_dtype)).float()
        return logits if all_logits else logits[0]

    def _qkv(self, x, ln, qkv_fn, cis):
        """One layer's normed projections of ``x`` ([T, hidden]): the queries and keys with
        rotary positions applied (``[T, heads + kv_heads, head_dim]``, fp32; ``cis`` holds
        each token's rotation) and the values (``[T, kv_heads, head_dim]``)."""
        import torch
        import torch.nn.functional as F

        t, nh, nkv, hd = x.shape[0], self.n_heads, self.n_kv, self.head_dim
        qkv = qkv_fn(F.rms_norm(x, (self.hidden,), ln, self.eps).to(self._act))  # [T, (nh + 2 nkv) hd]
        width = (nh + nkv) * hd
        qk = torch.view_as_complex(qkv[:, :width].float().view(t, nh + nkv, hd // 2, 2))
        return torch.view_as_real(qk * cis).view(t, nh + nkv, hd), qkv[:, width:].reshape(t, nkv, hd)

    def _mlp(self, x, ln, gu_fn, down_fn):
        """What one layer's gated MLP adds to the residual stream ``x`` ([T, hidden])."""
        import torch.nn.functional as F

        h = F.rms_norm(x, (self.hidden,), ln, self.eps).to(self._act)
        gu = gu_fn(h)  # gate and up projections fused: [T, 2 * intermediate]
        inter = gu.shape[1] // 2
        g = F.silu(gu[:, :inter])
        g *= gu[:, inter:]
        return down_fn(g)

    def _forward_rows(self, ids, pos, cache):
        """One decode step for ``B`` streams at once: token ``ids[b]`` ([B] long) at
        position ``pos[b]`` ([B] long) of row ``b`` of ``cache`` (``(k, v)`` each
        ``[layers, rows, n_kv, length, head_dim]``; rows 0..B-1 are the streams). Writes
        each row's new key/value at its own position; returns fp32 logits ``[B, vocab]``.

        Every matmul takes the B rows together (M = B), so the weights are read once per
        step for all streams: that is the whole point on a CPU, where one decode step is
        bound by reading the weights. Rows of different lengths share one attention
        call over the longest, with each row's keys past its own position masked out.
        """
        import torch
        import torch.nn.functional as F

        b = ids.shape[0]
        nh, nkv, hd, hidden, eps, act = self.n_heads, self.n_kv, self.head_dim, self.hidden, self.eps, self._act
        rep = nh // nkv
        cdt = self._cache_dtype
        norm_shape = (hidden,)
        end = int(pos.max()) + 1
        cis = self._cis[pos].view(b, 1, hd // 2)
        rows = torch.arange(b, device=self.device)
        mask = None
        if int(pos.min()) + 1 != end:  # rows differ in length: hide each one's tail
            mask = (torch.arange(end, device=self.device)[None, :] <= pos[:, None]).view(b, 1, 1, end)
        kc, vc = cache
        x = self._embed[ids]  # [B, hidden] fp32 residual stream
        for li, (ln1, qkv_fn, o_fn, ln2, gu_fn, down_fn) in enumerate(self._layers):
            qk, v_new = self._qkv(x, ln1, qkv_fn, cis)
            k_layer, v_layer = kc[li], vc[li]  # [rows, nkv, L, hd]
            k_layer[rows, :, pos] = qk[:, nh:].to(cdt)
            v_layer[rows, :, pos] = v_new.to(cdt)
            # As in the single stream: query heads sharing a KV head are its query rows.
            q = qk[:, :nh].reshape(b, nkv, rep, hd).to(cdt)
            a = F.scaled_dot_product_attention(q, k_layer[:b, :, :end], v_layer[:b, :, :end], attn_mask=mask)
            x += o_fn(a.reshape(b, nh * hd).to(act))
            x += self._mlp(x, ln2, gu_fn, down_fn)
        h = F.rms_norm(x, norm_shape, self._final_norm, eps)
        return self._head(h.to(self._head_dtype)).float()

    def _forward_segments(self, ids, segments, cache):
        """Prefill several prompts in one pass: ``ids`` ([T] long) is their new tokens
        end to end; ``segments`` lists ``(row, start, length)`` for each (its cache row,
        the position of its first new token, how many), in the order of ``ids``. The
        matmuls take all T tokens at once; attention runs per prompt, each over its own
        row (its cached prefix and its own past). Returns fp32 logits ``[len(segments),
        vocab]`` of each prompt's last token."""
        import torch
        import torch.nn.functional as F

        t = ids.shape[0]
        nh, nkv, hd, hidden, eps, act = self.n_heads, self.n_kv, self.head_dim, self.hidden, self.eps, self._act
        rep = nh // nkv
        cdt = self._cache_dtype
        norm_shape = (hidden,)
        positions = torch.cat([torch.arange(start, start + n) for _, start, n in segments]).to(self.device)
        cis = self._cis[positions].view(t, 1, hd // 2)
        offsets, masks, off = [], [], 0
        for _, start, n in segments:
            offsets.append(off)
            off += n
            # After a cached prefix each new token sees the prefix and its own past.
            masks.append(torch.ones(n, start + n, dtype=torch.bool, device=self.device).tril(start) if start else None)
        kc, vc = cache
        x = self._embed[ids]  # [T, hidden] fp32 residual stream
        for li, (ln1, qkv_fn, o_fn, ln2, gu_fn, down_fn) in enumerate(self._layers):
            qk, v_new = self._qkv(x, ln1, qkv_fn, cis)
            outs = []
            for (row, start, n), o, mask in zip(segments, offsets, masks):
                end = start + n
                k_row, v_row = kc[li, row], vc[li, row]  # [nkv, L, hd]
                k_row[:, start:end] = qk[o:o + n, nh:].transpose(0, 1)
                v_row[:, start:end] = v_new[o:o + n].transpose(0, 1)
                q = qk[o:o + n, :nh].transpose(0, 1)[None].to(cdt)  # [1, nh, n, hd]
                a = F.scaled_dot_product_attention(q, k_row[None, :, :end], v_row[None, :, :end], attn_mask=mask,
                                                   is_causal=mask is None, enable_gqa=rep > 1)
                outs.append(a[0].transpose(0, 1).reshape(n, nh * hd))
            x += o_fn(torch.cat(outs).to(act))
            x += self._mlp(x, ln2, gu_fn, down_fn)
        last = torch.tensor([o + n - 1 for o, (_, _, n) in zip(offsets, segments)], device=self.device)
        h = F.rms_norm(x[last], norm_shape, self._final_norm, eps)
        return self._head(h.to(self._head_dtype)).float()

    def reserve(self, length: int) -> None:
        """Make this stream's KV cache hold ``length`` positions (for :meth:`forward`). A
        cache that has to grow starts empty: reserve before the prefill."""
        self._ensure_cache(length)

    def forward(self, ids, pos: int) -> Any:
        """fp32 ``[vocab]`` logits of the last of ``ids`` ([T] long) run at positions
        pos..pos+T-1 of this stream, their keys/values written into its cache: one
        prefill (pos 0) or decode step, without sampling. :meth:`reserve` the positions
        first; call it under ``torch.inference_mode()``. For timing a step
        (benchmarks/bench_decode.py); :meth:`generate` decodes."""
        end = pos + int(ids.shape[0])
        if self._cache is None or self._cache[0].shape[2] < end:
            raise ValueError(f"the cache does not hold {end} positions: reserve({end}) before the prefill")
        return self._forward(ids, pos)

    def matmuls(self) -> list[tuple[str, Callable[[Any], Any], int, Any]]:
        """Every packed matmul of a decode step as ``(name, fn, in_features,
        input_dtype)``: per layer ``qkv``, ``o``, ``gate_up`` and ``down``, then ``head``.
        ``fn`` maps ``[M, in_features]`` to ``[M, out_features]``; for timing the matmuls
        apart from the rest of the step (benchmarks/bench_decode.py)."""
        widths = {"qkv": self.hidden, "o": self.n_heads * self.head_dim, "gate_up": self.hidden,
                  "down": self.config.intermediate_size}
        out = []
        for _ln1, qkv, o, _ln2, gu, down in self._layers:
            for name, fn in (("qkv", qkv), ("o", o), ("gate_up", gu), ("down", down)):
                out.append((name, fn, widths[name], self._act))
        out.append(("head", self._head, self.hidden, self._head_dtype))
        return out

    def batch(self, max_rows: int) -> "FastBatch":
        """A :class:`FastBatch` over this model: up to ``max_rows`` streams decoded
        together (what ``mgpt serve``'s engine uses)."""
        return FastBatch(self, max_rows)

    def _as_ids(self, input_ids):
        import torch

        if isinstance(input_ids, torch.Tensor):
            if input_ids.dim() == 2:
                if input_ids.shape[0] != 1:
                    raise ValueError("FastLlama decodes one stream: pass a [T] or [1, T] prompt.")
                input_ids = input_ids[0]
            ids = input_ids.to(device=self.device, dtype=torch.long)
        else:
            ids = torch.tensor(list(input_ids), dtype=torch.long, device=self.device)
        if ids.dim() != 1 or ids.numel() == 0:
            raise ValueError("The prompt must hold at least one token id.")
        if int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size:
            raise ValueError(f"Token ids must be in 0..{self.vocab_size - 1}.")
        return ids

    def _threads(self):
        """Context manager: torch's intra-op threads set to ``self.threads`` for a call."""
        import contextlib

        import torch

        @contextlib.contextmanager
        def scope():
            if not self.threads:
                yield
                return
            before = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                yield
            finally:
                torch.set_num_threads(before)

        return scope()

    def logits(self, input_ids) -> Any:
        """fp32 ``[T, vocab]`` logits of every position of ``input_ids`` (one forward
        pass; for scoring text, e.g. perplexity). T must fit ``max_positions``."""
        import torch

        ids = self._as_ids(input_ids)
        if ids.numel() > self.max_positions:
            raise ValueError(f"{ids.numel()} tokens but the context holds {self.max_positions}.")
        with self._threads(), torch.inference_mode():
            self._ensure_cache(ids.numel())
            return self._forward(ids, 0, all_logits=True)

    def generate(
        self,
        input_ids,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float | None = None,
        eos_ids: Sequence[int] = (),
        logits_hook: Callable[[Any], Any] | None = None,
        on_token: Callable[[int], Any] | None = None,
        *,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> FastGeneration:
        """Continue ``input_ids``; see the module docstring. Stops at an id in
        ``eos_ids``, after ``max_new_tokens``, or at the end of the context."""
        import torch

        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if temperature < 0:
            raise ValueError("temperature must be 0 (greedy) or more")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if top_k is not None and top_k < 0:
            raise ValueError("top_k must be 0 (off) or more")
        ids = self._as_ids(input_ids)
        n_prompt = int(ids.numel())
        if n_prompt >= self.max_positions:
            raise ValueError(
                f"The prompt is {n_prompt} tokens but the model reads at most {self.max_positions}; shorten it."
            )
        max_new_tokens = min(max_new_tokens, self.max_positions - n_prompt)
        eos = {int(e) for e in eos_ids}
        params = SamplingParams(temperature=temperature, top_k=top_k or 0, top_p=1.0 if top_p is None else top_p)
        generator = None
        if temperature > 0:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(0 if seed is None else int(seed))
        tokens: list[int] = []
        finish = "length"
        with self._threads(), torch.inference_mode():
            self._ensure_cache(n_prompt + max_new_tokens)
            start = time.perf_counter()
            logits = self._forward(ids, 0)
            pos = n_prompt
            first_done = None
            step_ids = torch.empty(1, dtype=torch.long, device=self.device)
            for _ in range(max_new_tokens):  # bounded by max_new_tokens
                if logits_hook is not None:
                    logits = logits_hook(logits)
                token = pick_token(logits, params, generator)
                tokens.append(token)
                if first_done is None:
                    first_done = time.perf_counter()
                if on_token is not None:
                    on_token(token)
                if token in eos:
                    finish = "stop"
                    break
                if len(tokens) == max_new_tokens:
                    break
                step_ids.fill_(token)
                logits = self._forward(step_ids, pos)
                pos += 1
            done = time.perf_counter()
        return FastGeneration(tokens=tokens, finish_reason=finish, prompt_tokens=n_prompt,
                              prefill_s=first_done - start, decode_s=done - first_done)


class FastBatch:
    """Many streams of one :class:`FastLlama` decoded together, one row each.

    The caller (``mgpt.llm.serve.engine.Engine``) owns the bookkeeping: which request is in
    which row, each row's length. This class owns the keys/values, ``[layers, rows,
    n_kv, length, head_dim]``, grown on demand (rows up to ``max_rows``, length in steps
    of 256 up to the model's ``max_positions``), and runs:

    * :meth:`prefill`: one prompt into one row, optionally after a cached prefix (its
      keys/values copied in, the rest computed);
    * :meth:`step`: one decode step for rows 0..B-1 at once, each at its own position;
    * :meth:`move`: copy a row's keys/values to another row, so the running streams stay
      packed in rows 0..B-1 when one leaves;
    * :meth:`keys_values`: a copy of a row's first ``n`` keys/values, for a prefix cache.

    Not thread-safe: one worker thread drives it. torch's thread setting is the
    caller's (``FastLlama.threads`` is ignored here).
    """

    def __init__(self, fast: FastLlama, max_rows: int):
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.fast = fast
        self.max_rows = max_rows
        self._k = None
        self._v = None

    @property
    def capacity(self) -> tuple[int, int]:
        """(rows, positions) allocated now."""
        return (0, 0) if self._k is None else (int(self._k.shape[1]), int(self._k.shape[3]))

    def ensure(self, rows: int, length: int) -> None:
        """Room for ``rows`` rows of ``length`` positions (keeping what is stored)."""
        import torch

        f = self.fast
        if rows > self.max_rows:
            raise ValueError(f"{rows} rows but this batch holds at most {self.max_rows}")
        if length > f.max_positions:
            raise ValueError(f"{length} positions but the model reads at most {f.max_positions}")
        have_rows, have_len = self.capacity
        if rows <= have_rows and length <= have_len:
            return
        # Rows grow in powers of two (few reallocations), positions in steps of 256.
        new_rows = min(self.max_rows, max(rows, have_rows, 1 << (max(rows, 1) - 1).bit_length()))
        new_len = min(f.max_positions, max(have_len, -(-length // 256) * 256))
        shape = (len(f._layers), new_rows, f.n_kv, new_len, f.head_dim)
        k = torch.zeros(shape, dtype=f._cache_dtype, device=f.device)
        v = torch.zeros(shape, dtype=f._cache_dtype, device=f.device)
        if self._k is not None:
            k[:, :have_rows, :, :have_len] = self._k
            v[:, :have_rows, :, :have_len] = self._v
        self._k, self._v = k, v

    def prefill(self, row: int, ids, start: int = 0, prefix=None):
        """Fill row ``row`` with prompt ``ids`` ([T] long): positions ``0..start-1`` from
        ``prefix`` (``(k, v)`` each ``[layers, n_kv, >= start, head_dim]``, as
        :meth:`keys_values` returns), the rest computed. Returns the fp32 logits
        ``[vocab]`` of the token after the prompt. ``start`` must leave at least one
        token to compute."""
        n = int(ids.shape[0])
        if not 0 <= start < n:
            raise ValueError("a prefill must compute at least one token")
        if start and prefix is None:
            raise ValueError("start > 0 needs the prefix's keys/values")
        self.ensure(row + 1, n)
        k, v = self._k[:, row], self._v[:, row]  # views: [layers, nkv, L, hd]
        if start:
            k[:, :, :start] = prefix[0][:, :, :start]
            v[:, :, :start] = prefix[1][:, :, :start]
        return self.fast._forward(ids[start:], start, cache=(k, v))

    def prefill_many(self, rows: list[int], prompts: list, starts: list[int], prefixes: list):
        """:meth:`prefill` for several prompts at once, in one pass whose matmuls take all
        their new tokens together (prompts that arrive together share the weights' reads
        as decode steps do). ``prompts[i]`` ([T_i] long) goes into row ``rows[i]`` after
        ``starts[i]`` positions copied from ``prefixes[i]``. Returns fp32 logits
        ``[len(rows), vocab]``, one row per prompt."""
        import torch

        for ids, start, prefix in zip(prompts, starts, prefixes):
            if not 0 <= start < int(ids.shape[0]):
                raise ValueError("a prefill must compute at least one token")
            if start and prefix is None:
                raise ValueError("start > 0 needs the prefix's keys/values")
        self.ensure(max(rows) + 1, max(int(ids.shape[0]) for ids in prompts))
        for row, start, prefix in zip(rows, starts, prefixes):
            if start:
                self._k[:, row, :, :start] = prefix[0][:, :, :start]
                self._v[:, row, :, :start] = prefix[1][:, :, :start]
        ids = torch.cat([p[s:] for p, s in zip(prompts, starts)])
        segments = [(row, s, int(p.shape[0]) - s) for row, p, s in zip(rows, prompts, starts)]
        return self.fast._forward_segments(ids, segments, (self._k, self._v))

    def step(self, ids, positions):
        """Decode token ``ids[b]`` at ``positions[b]`` for rows ``b`` in 0..B-1 (both
        ``[B]`` long); fp32 logits ``[B, vocab]``."""
        b = int(ids.shape[0])
        self.ensure(b, int(positions.max()) + 1)
        return self.fast._forward_rows(ids, positions, (self._k, self._v))

    def release(self, keep_positions: int = 1024) -> bool:
        """Free the keys/values if they span more than ``keep_positions`` positions (one
        long answer should not pin its memory once nothing runs); True if freed. Call it
        only when no row holds a running stream."""
        if self.capacity[1] <= keep_positions:
            return False
        self._k = self._v = None
        return True

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy row ``src``'s first ``length`` positions to row ``dst``."""
        if src != dst and length > 0:
            self._k[:, dst, :, :length] = self._k[:, src, :, :length]
            self._v[:, dst, :, :length] = self._v[:, src, :, :length]

    def keys_values(self, row: int, length: int):
        """A copy of row ``row``'s first ``length`` keys and values, each ``[layers,
        n_kv, length, head_dim]``."""
        return (self._k[:, row, :, :length].clone(), self._v[:, row, :, :length].clone())
