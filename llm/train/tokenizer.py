"""Train a character-level or byte-level BPE tokenizer and save it as an HF tokenizer folder.

The folder loads with ``AutoTokenizer.from_pretrained(dir)`` as it is. Every tokenizer we
train has the same special tokens and the same chat format, so a model pretrained here
can be fine-tuned on chat data and served with ``apply_chat_template``:

    <|bos|><|user|>Hi<|eos|><|assistant|>Hello!<|eos|>

The end of every turn is the eos token, so ``generate`` stops at the end of the
assistant's answer without any extra stop string.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["CHAT_TEMPLATE", "ROLE_TOKENS", "SPECIAL_TOKENS", "load_tokenizer", "train_tokenizer"]

PAD, BOS, EOS, UNK = "<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, *ROLE_TOKENS]

# A turn is <|role|>content<|eos|>; the generation prompt opens an assistant turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def _read_corpus(paths: list[Path]) -> str:
    texts = []
    for p in paths:
        if not p.is_file():
            raise TrainError(f"tokenizer corpus not found: {p}")
        texts.append(p.read_text(encoding="utf-8"))
    text = "".join(texts)
    if not text:
        raise TrainError(f"tokenizer corpus is empty: {', '.join(map(str, paths))}")
    return text


def _chat_text(path: Path) -> str:
    """The message contents of a chat JSONL file, so the tokenizer learns their characters."""
    from mgpt.llm.train.data import read_chat_jsonl

    return "\n".join(m["content"] for ex in read_chat_jsonl(path) for m in ex)


def train_tokenizer(
    corpus: str | Path | list[str | Path],
    out_dir: str | Path,
    kind: Literal["char", "bytebpe"] = "char",
    vocab_size: int = 512,
) -> PreTrainedTokenizerBase:
    """Train a tokenizer on text files (``.jsonl`` files count as chat data) and save it.

    ``char``: one token per distinct character of the corpus (unknown characters map to
    ``<|unk|>``), like nanoGPT's shakespeare_char. ``bytebpe``: GPT-2 style byte-level BPE
    with ``vocab_size`` tokens in all; it never meets an unknown character.
    Returns the loaded ``PreTrainedTokenizerFast``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    paths = [Path(p) for p in (corpus if isinstance(corpus, list) else [corpus])]
    text = "".join(_chat_text(p) if p.suffix == ".jsonl" else _read_corpus([p]) for p in paths)
    if not text:
        raise TrainError(f"tokenizer corpus is empty: {', '.join(map(str, paths))}")

    if kind == "char":
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        for ch in sorted(set(text)):
            vocab[ch] = len(vocab)
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
        # [\s\S] is "any character, newline included": every character is its own word.
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
    elif kind == "bytebpe":
        if vocab_size < 256 + len(SPECIAL_TOKENS):
            raise TrainError(f"tokenizer.vocab_size must be at least {256 + len(SPECIAL_TOKENS)} for bytebpe")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
        )
        # Feed lines in chunks: the trainer counts words per chunk, far faster than one string.
        lines = text.splitlines(keepends=True)
        tok.train_from_iterator(("".join(lines[i:i + 1000]) for i in range(0, len(lines), 1000)), trainer)
    else:
        raise TrainError(f"unknown tokenizer kind {kind!r}: use 'char' or 'bytebpe'")
    tok.add_special_tokens(SPECIAL_TOKENS)

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        extra_special_tokens=ROLE_TOKENS,
    )
    hf.chat_template = CHAT_TEMPLATE
    hf.model_max_length = 1 << 30  # the model's n_positions is the real limit; silence length warnings
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)
    return load_tokenizer(out)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained`` with a clear error for a folder that has none."""
    from transformers import AutoTokenizer

    p = Path(path)
    if not (p / "tokenizer.json").is_file() and not (p / "tokenizer_config.json").is_file():
        raise TrainError(f"{p} is not a tokenizer folder (no tokenizer.json or tokenizer_config.json)")
    try:
        return AutoTokenizer.from_pretrained(str(p))
    except Exception as e:
        raise TrainError(f"cannot load the tokenizer in {p}: {e}") from e
