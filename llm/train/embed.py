"""Contrastive training of a text embedder: InfoNCE with in-batch negatives (+ hard negatives).

For a batch of B (query, doc) pairs, queries and docs are embedded (mean pooling, unit
length) and ``logits = Q @ [D; H].T / temperature`` (B, B + B_hard): each query's own doc is
the positive, the other docs of the batch and the hard negatives (another function of the
same module: similar words, different meaning) are negatives. The loss is the mean of that
cross-entropy and the docs->queries one (as in CLIP), so both directions learn.

The model is a causal-LM folder (``init_from``; all weights, or LoRA adapters merged at
the end with ``embed.lora``) or, without one, a small model built from ``[model]`` with a
byte-BPE tokenizer trained on the training pairs. The untrained start is saved in
``out_dir/base`` so evaluation can compare against it.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgpt.llm.eval.retrieval import RetrievalPair
from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    import torch

__all__ = ["EmbedResult", "info_nce", "train_device", "train_embed", "training_pairs"]


@dataclass
class EmbedResult:
    out_dir: Path
    base_dir: Path
    iter_num: int
    first_loss: float
    last_loss: float
    train_pairs: int
    heldout_pairs: int
    seconds: float


def info_nce(q: torch.Tensor, d: torch.Tensor, temperature: float, hard: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE: q (B, C) and d (B, C) unit vectors, row i of each a positive pair;
    ``hard`` (H, C) extra negatives for the queries."""
    import torch
    import torch.nn.functional as F

    docs = d if hard is None or len(hard) == 0 else torch.cat([d, hard])
    logits = q @ docs.T / temperature  # (B, B + H)
    target = torch.arange(len(q), device=q.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(d @ q.T / temperature, target))


def training_pairs(cfg: RunConfig) -> list[RetrievalPair]:
    """Mined pairs for ``cfg.embed.sources`` (stdlib sampled by seed; golden transcripts of the repo)."""
    from mgpt.llm.errors import MgptError
    from mgpt.llm.eval.retrieval import read_retrieval_pairs
    from mgpt.llm.train.pairs import mine_stdlib_pairs, mine_transcript_pairs

    if cfg.data.path:  # a pairs file given explicitly wins
        try:
            return read_retrieval_pairs(cfg.data.path)
        except MgptError as e:
            raise TrainError(str(e)) from None
    pairs: list[RetrievalPair] = []
    if "stdlib" in cfg.embed.sources:
        pairs += mine_stdlib_pairs(max_modules=cfg.embed.max_modules, seed=cfg.seed)
    if "golden" in cfg.embed.sources:
        golden = sorted((Path(__file__).resolve().parents[2] / "tests" / "golden").glob("*.jsonl"))
        pairs += mine_transcript_pairs(golden)
    if not pairs:
        raise TrainError("no training pairs: set embed.sources (stdlib, golden) or data.path to a pairs JSONL")
    return pairs


def _hard_negative_index(pairs: list[RetrievalPair]) -> dict[tuple[str, str], list[int]]:
    index: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(pairs):
        index.setdefault((p.source, p.kind), []).append(i)
    return index


def _build(cfg: RunConfig, train: list[RetrievalPair], out_dir: Path, normalize: bool) -> tuple[Any, Any, Path]:
    """Model, tokenizer and the folder of the untrained start."""
    from mgpt.llm.local.embedder import EMBED_CONFIG

    from mgpt.llm.train.pretrain import build_model, quiet_hf
    from mgpt.llm.train.sft import load_model_folder
    from mgpt.llm.train.tokenizer import train_tokenizer

    if cfg.init_from:
        model, tok = load_model_folder(cfg.init_from)
        n_pos = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
        if n_pos is not None and cfg.embed.max_length > n_pos:
            raise TrainError(f"embed.max_length {cfg.embed.max_length} is longer than the model's {n_pos} positions; "
                             "lower embed.max_length")
        return model, tok, Path(cfg.init_from)
    corpus = out_dir / "data" / "corpus.txt"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("\n".join(t for p in train for t in (p.query, p.doc)), encoding="utf-8")
    base_dir = out_dir / "base"
    tok = train_tokenizer(corpus, base_dir, kind="bytebpe", vocab_size=max(cfg.tokenizer.vocab_size, 300))
    small = cfg.model_copy(update={"block_size": cfg.embed.max_length})
    model = build_model(small, tok)
    with quiet_hf():
        model.save_pretrained(base_dir)
    (base_dir / EMBED_CONFIG).write_text(json.dumps({
        "pooling": "mean", "max_length": cfg.embed.max_length, "normalize": normalize, "untrained": True,
    }, indent=2), encoding="utf-8")
    return model, tok, base_dir


def train_device(cfg: RunConfig) -> str:
    """Where ``cfg`` trains: ``cuda`` when asked for or (``auto``) when a GPU is visible,
    else ``cpu``; TrainError when ``cuda`` is asked for and there is none."""
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainError("device is cuda but torch sees no CUDA GPU: set device = \"cpu\" or \"auto\"")
    return "cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu"


def _split(cfg: RunConfig, pairs: list[RetrievalPair], out_dir: Path,
           normalize: bool) -> tuple[list[RetrievalPair], list[RetrievalPair]]:
    """Train and held-out pairs (split by source), both written to ``out_dir``; the training
    ones normalized when the embedder normalizes its input."""
    from mgpt.llm.eval.retrieval import write_retrieval_pairs
    from mgpt.llm.local.embedder import normalize_text
    from mgpt.llm.train.pairs import split_by_source

    train, held = split_by_source(pairs, cfg.embed.val_fraction, cfg.seed)
    if len(train) < 2:
        raise TrainError(f"only {len(train)} training pairs after the split: mine more (embed.max_modules) "
                         "or lower embed.val_fraction")
    # Held-out pairs are written raw: the saved embedder normalizes at encode time itself.
    write_retrieval_pairs(train, out_dir / "train_pairs.jsonl")
    write_retrieval_pairs(held, out_dir / "heldout_pairs.jsonl")
    if normalize:
        train = [RetrievalPair(normalize_text(p.query), normalize_text(p.doc), p.kind, p.source) for p in train]
    return train, held


def _batch(train: list[RetrievalPair], by_group: dict[tuple[str, str], list[int]], size: int, hard: bool,
           rng: random.Random) -> tuple[list[str], list[str]]:
    """``size`` random queries and their docs, then (with ``hard``) one other doc of the same
    source and kind per query: similar words, another meaning."""
    idx = rng.sample(range(len(train)), size)
    docs = [train[i].doc for i in idx]
    if hard:
        for i in idx:
            group = [j for j in by_group[(train[i].source, train[i].kind)] if j != i]
            if group:
                docs.append(train[rng.choice(group)].doc)
    return [train[i].query for i in idx], docs


def _contrastive_loop(model: Any, tok: Any, train: list[RetrievalPair], cfg: RunConfig, metrics_path: Path,
                      progress: bool) -> tuple[float, float]:
    """``cfg.max_iters`` AdamW steps on the InfoNCE loss; the first and the last loss."""
    import torch

    from mgpt.llm.local.embedder import encode
    from mgpt.llm.train.pretrain import get_lr

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
    rng = random.Random(cfg.seed)
    by_group = _hard_negative_index(train)
    bsz = min(cfg.batch_size, len(train))
    first = last = float("nan")
    model.train()
    with metrics_path.open("w", encoding="utf-8") as metrics:
        for it in range(cfg.max_iters):
            lr = get_lr(it, cfg)  # the configured lr throughout when schedule.decay_lr is off
            for g in opt.param_groups:
                g["lr"] = lr
            queries, docs = _batch(train, by_group, bsz, cfg.embed.hard_negatives, rng)
            q = encode(model, tok, queries, cfg.embed.max_length)  # (B, C)
            d = encode(model, tok, docs, cfg.embed.max_length)  # (B + hard, C)
            loss = info_nce(q, d[:bsz], cfg.embed.temperature, d[bsz:])
            if not math.isfinite(loss.item()):
                raise TrainError(f"the loss became {loss.item()} at iteration {it}: lower optim.lr "
                                 "or raise embed.temperature")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            opt.step()
            last = loss.item()
            first = last if it == 0 else first
            if it % cfg.log_interval == 0 or it == cfg.max_iters - 1:
                metrics.write(json.dumps({"iter": it, "loss": last, "lr": lr}) + "\n")
                if progress:
                    print(f"iter {it}: loss {last:.4f}, lr {lr:.2e}", flush=True)
    return first, last


def _save(model: Any, tok: Any, cfg: RunConfig, out_dir: Path, base_dir: Path, normalize: bool) -> None:
    """The embedder as a standard HF folder plus ``embed_config.json`` (LoRA merged first)."""
    from mgpt.llm.local.embedder import EMBED_CONFIG
    from mgpt.llm.train.pretrain import quiet_hf

    lora = bool(cfg.init_from and cfg.embed.lora)
    if lora:
        model = model.merge_and_unload()  # a standard folder: load_embedder needs no peft
    model.eval()
    with quiet_hf():
        model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    (out_dir / EMBED_CONFIG).write_text(json.dumps({
        "pooling": "mean", "max_length": cfg.embed.max_length, "normalize": normalize,
        "base": str(Path(base_dir).resolve()), "temperature": cfg.embed.temperature, "lora": lora,
        "iters": cfg.max_iters, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2), encoding="utf-8")


def train_embed(cfg: RunConfig, *, progress: bool = True, pairs: list[RetrievalPair] | None = None) -> EmbedResult:
    """Train an embedder on mined (or given) pairs; save it, the held-out pairs and metrics in ``cfg.out_dir``."""
    import torch

    from mgpt.llm.local.embedder import prepare_tokenizer
    from mgpt.llm.train.lora import add_lora

    if cfg.embed.lora and not cfg.init_from:
        raise TrainError("embed.lora trains adapters on a model folder: pass --model DIR (or set init_from)")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    normalize = cfg.embed.normalize if cfg.embed.normalize is not None else not cfg.init_from
    train, held = _split(cfg, pairs if pairs is not None else training_pairs(cfg), out_dir, normalize)
    model, tok, base_dir = _build(cfg, train, out_dir, normalize)
    prepare_tokenizer(tok)
    model.to(train_device(cfg))
    if cfg.init_from and cfg.embed.lora:
        model = add_lora(model, cfg)
    t0 = time.perf_counter()
    first, last = _contrastive_loop(model, tok, train, cfg, out_dir / "metrics.jsonl", progress)
    _save(model, tok, cfg, out_dir, base_dir, normalize)
    return EmbedResult(out_dir, Path(base_dir), cfg.max_iters, first, last, len(train), len(held),
                       time.perf_counter() - t0)
