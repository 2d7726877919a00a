"""Training data: a text file as memory-mapped token ids, or chat examples with masked labels.

Text (language modelling), as in nanoGPT: the whole file is tokenized once into
``train.bin`` / ``val.bin`` (uint16 ids, uint32 for vocabularies over 65535 tokens) and
a batch is ``batch_size`` random windows of ``block_size + 1`` tokens.

Chat JSONL, one example per line::

    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}

is rendered with the tokenizer's chat template; the labels are -100 (ignored by the
loss) everywhere except the tokens of assistant turns, their closing eos included.

Both kinds of batch come from a seeded ``torch.Generator`` whose state is saved in the
checkpoint, so a resumed run draws exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "ChatBatches", "TextBatches", "check_data_file", "data_format", "encode_chat", "prepare_text",
    "read_chat_jsonl", "read_text",
]

ROLES = ("system", "user", "assistant")


def data_format(path: str | Path, fmt: str = "auto") -> str:
    """``text`` or ``chat``: ``auto`` means chat for ``.jsonl`` files."""
    if fmt != "auto":
        return fmt
    return "chat" if Path(path).suffix == ".jsonl" else "text"


def check_data_file(path: str | Path) -> Path:
    """``path`` as a Path if it names a non-empty file, else TrainError saying which."""
    if not path:
        raise TrainError("no training data: set data.path (a text file or a .jsonl chat file)")
    p = Path(path)
    if not p.is_file():
        raise TrainError(f"data file not found: {p} (relative paths are tried against the config's folder, then the current directory)")
    if p.stat().st_size == 0:
        raise TrainError(f"data file is empty: {p}")
    return p


def read_text(path: str | Path) -> str:
    p = check_data_file(path)
    text = p.read_text(encoding="utf-8")
    if not text.strip():
        raise TrainError(f"data file is empty: {p}")
    return text


# --------------------------------------------------------------------------- text


def _encode_text(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    # Encode in chunks of lines: the Rust tokenizer then works in parallel, and one
    # million-character "word" is much slower to pre-tokenize than many short lines.
    lines = text.splitlines(keepends=True)
    chunks = ["".join(lines[i:i + 2000]) for i in range(0, len(lines), 2000)]
    ids: list[int] = []
    for row in tokenizer(chunks, add_special_tokens=False)["input_ids"]:
        ids.extend(row)
    return ids


def _write_atomic(path: Path, arr: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    arr.tofile(tmp)
    os.replace(tmp, path)


def prepare_text(
    text_path: str | Path, tokenizer: PreTrainedTokenizerBase, data_dir: str | Path, val_fraction: float = 0.1,
) -> dict[str, Any]:
    """Tokenize a text file into ``data_dir/train.bin`` and ``val.bin``; returns their metadata.

    The last ``val_fraction`` of the tokens is the validation split (as in nanoGPT).
    """
    import numpy as np

    ids = _encode_text(tokenizer, read_text(text_path))
    dtype = np.uint16 if len(tokenizer) <= 65535 else np.uint32
    arr = np.asarray(ids, dtype=dtype)
    n_val = int(len(arr) * val_fraction)
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "train.bin", arr[: len(arr) - n_val])
    _write_atomic(out / "val.bin", arr[len(arr) - n_val:])
    meta = {"dtype": np.dtype(dtype).name, "train_tokens": len(arr) - n_val, "val_tokens": n_val,
            "vocab_size": len(tokenizer), "source": str(text_path)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


@dataclass
class _Sampler:
    """Seeded batch sampling whose state goes into the checkpoint."""

    seed: int
    rank: int = 0
    gen: Any = field(init=False)

    def __post_init__(self) -> None:
        import torch

        # Each DDP rank draws different batches; the same rank always draws the same ones.
        self.gen = torch.Generator().manual_seed(self.seed + 1000 * self.rank)

    def eval_generator(self) -> torch.Generator:
        """A fresh generator per evaluation: every eval scores the same batches, so the
        val curve is smooth and evaluating never disturbs the training batch order."""
        import torch

        return torch.Generator().manual_seed(self.seed + 999_983)

    def state_dict(self) -> Any:
        return self.gen.get_state()

    def load_state_dict(self, state: Any) -> None:
        self.gen.set_state(state)


class TextBatches(_Sampler):
    """Random ``(x, y)`` windows of a tokenized text: x, y are (batch, block) int64, y = x shifted by one."""

    def __init__(self, data_dir: str | Path, batch_size: int, block_size: int, seed: int = 1337, rank: int = 0,
                 device: str = "cpu") -> None:
        super().__init__(seed, rank)
        self.dir = Path(data_dir)
        meta = json.loads((self.dir / "meta.json").read_text())
        self.dtype = meta["dtype"]
        self.batch_size, self.block_size, self.device = batch_size, block_size, device
        self.splits = ["train", "val"] if meta["val_tokens"] else ["train"]
        for split in self.splits:
            n = meta[f"{split}_tokens"]
            if n <= block_size:
                hint = "lower data.val_fraction" if split == "val" else "use more data"
                raise TrainError(
                    f"block_size {block_size} is longer than the {split} data ({n} tokens from "
                    f"{meta['source']}): use a smaller block_size or {hint}")

    def get_batch(self, split: str, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        import numpy as np
        import torch

        # A fresh memmap per batch, as in nanoGPT: keeping one open lets its pages pile up.
        data = np.memmap(self.dir / f"{split}.bin", dtype=self.dtype, mode="r")
        T = self.block_size
        ix = torch.randint(len(data) - T, (self.batch_size,), generator=gen or self.gen)
        rows = torch.from_numpy(data[ix.numpy()[:, None] + np.arange(T + 1)].astype(np.int64))  # (B, T+1)
        x, y = rows[:, :-1], rows[:, 1:]
        if self.device != "cpu":
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
        return x, y


# --------------------------------------------------------------------------- chat


def read_chat_jsonl(path: str | Path) -> list[list[dict[str, str]]]:
    """The ``messages`` of every line; a bad line is an error naming its line number."""
    p = check_data_file(path)
    examples = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{p}, line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise TrainError(f"{where}: not valid JSON ({e.msg})") from None
            msgs = obj.get("messages") if isinstance(obj, dict) else None
            if not isinstance(msgs, list) or not msgs:
                raise TrainError(f"{where}: expected an object with a non-empty \"messages\" list")
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                    raise TrainError(f"{where}: message {i} needs a role in {ROLES} and a string content")
            if not any(m["role"] == "assistant" for m in msgs):
                raise TrainError(f"{where}: no assistant message, so nothing to learn from")
            if msgs[0]["role"] == "assistant":
                raise TrainError(f"{where}: starts with an assistant message; put a user or system message first")
            examples.append([{"role": m["role"], "content": m["content"]} for m in msgs])
    if not examples:
        raise TrainError(f"data file is empty: {p}")
    return examples


def _template_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], gen_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and labels that are -100 except on assistant tokens.

    Assistant turn i spans from the end of "messages[:i] + generation prompt" to the end
    of "messages[:i+1]", both rendered by the tokenizer's own chat template, so the mask
    follows whatever template the model uses (ours or another model's).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise TrainError("the tokenizer has no chat_template, so chat data cannot be rendered; "
                         "train one with `mgpt train tokenizer` or use a chat model's folder")
    ids = _template_ids(tokenizer, messages, False)
    labels = [-100] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(_template_ids(tokenizer, messages[:i], True))  # end of the prompt: "...<|assistant|>"
        upto = _template_ids(tokenizer, messages[: i + 1], False)
        if ids[: len(upto)] != upto:
            raise TrainError("the chat template does not render a conversation as a prefix of a longer one; "
                             "assistant tokens cannot be located")
        labels[start: len(upto)] = upto[start:]
    return ids, labels


class ChatBatches(_Sampler):
    """Batches of chat examples: x (batch, len) ids, y (batch, len) next-token labels, -100 where ignored.

    Examples longer than ``block_size + 1`` tokens are cut; a batch is right-padded to its
    longest example. No attention mask is needed: with causal attention a pad at the end
    is never seen by the real tokens before it, and its label is -100.
    """

    def __init__(self, path: str | Path, tokenizer: PreTrainedTokenizerBase, batch_size: int, block_size: int,
                 val_fraction: float = 0.1, seed: int = 1337, rank: int = 0, device: str = "cpu",
                 val_path: str | Path | None = None, keep: str = "start") -> None:
        super().__init__(seed, rank)
        self.batch_size, self.block_size, self.device = batch_size, block_size, device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        examples = self._encode(path, tokenizer, keep)
        if val_path:  # a separate held-out file (distilled runs): every line of `path` trains
            self.data = {"train": examples, "val": self._encode(val_path, tokenizer, keep)}
        else:
            n_val = int(len(examples) * val_fraction) if len(examples) > 1 else 0
            self.data = {"train": examples[: len(examples) - n_val]}
            if n_val:
                self.data["val"] = examples[len(examples) - n_val:]
        self.splits = list(self.data)

    def _encode(self, path: str | Path, tokenizer: PreTrainedTokenizerBase, keep: str) -> list[tuple[list[int], list[int]]]:
        examples = []
        n = self.block_size
        for msgs in read_chat_jsonl(path):
            ids, labels = encode_chat(tokenizer, msgs)
            x, y = ids[:-1], labels[1:]  # y[t] is the token after x[t]
            x, y = (x[-n:], y[-n:]) if keep == "end" else (x[:n], y[:n])
            if any(t != -100 for t in y):  # cut so short that no assistant token is left: nothing to learn
                examples.append((x, y))
        if not examples:
            raise TrainError(f"no example in {path} has an assistant token within block_size {n}"
                             + ("" if keep == "end" else "; raise block_size or set data.keep=\"end\""))
        return examples

    def get_batch(self, split: str, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        rows = self.data[split]
        ix = torch.randint(len(rows), (self.batch_size,), generator=gen or self.gen).tolist()
        T = max(len(rows[i][0]) for i in ix)
        x = torch.full((self.batch_size, T), self.pad_id, dtype=torch.long)
        y = torch.full((self.batch_size, T), -100, dtype=torch.long)
        for b, i in enumerate(ix):
            xs, ys = rows[i]
            x[b, : len(xs)] = torch.tensor(xs)
            y[b, : len(ys)] = torch.tensor(ys)
        return x.to(self.device), y.to(self.device)
