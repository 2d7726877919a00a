"""Run configuration for the trainer: plain pydantic data, loaded from TOML or YAML.

Every section forbids unknown keys, so a misspelt key is an error that names it
(``unknown config key 'optim.lrr'``) instead of a setting that is silently ignored.
Command-line overrides use dotted keys, ``--set optim.lr=3e-4 --set max_iters=100``;
the value is read as a TOML literal (``3e-4``, ``true``, ``[0.9, 0.99]``, ``"text"``)
and falls back to the raw string.

Relative paths (``data.path``, ``tokenizer.path``, ``init_from``) are resolved first
against the folder of the config file, then against the current directory; the first
that exists wins. ``out_dir`` is relative to the current directory, as in nanoGPT.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mgpt.llm.train.errors import TrainError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DataConfig", "EmbedConfig", "LoraConfig", "MetaConfig", "ModelConfig", "OptimConfig", "ReinforceConfig", "RunConfig",
    "ScheduleConfig",
    "TokenizerConfig", "load_config", "parse_overrides", "shipped_config",
]

CONFIG_DIR = Path(__file__).parent / "configs"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    """Architecture of a model trained from scratch (ignored when fine-tuning a folder)."""

    family: Literal["gpt2", "llama", "gpt_neox"] = "gpt2"
    """gpt2 (learned positions, LayerNorm, GELU), llama (rotary positions, RMSNorm, SwiGLU, no
    biases) or gpt_neox (Pythia's architecture, built here as GPT-2's blocks with rotary
    positions on whole heads and sequential residuals)."""
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_kv_head: int | None = None
    """llama only: key/value heads for grouped-query attention (default: n_head)."""
    intermediate_size: int | None = None
    """MLP width (default 4 * n_embd for every family)."""
    n_positions: int | None = None
    """Longest sequence the model accepts (default: the run's block_size)."""
    dropout: float = 0.0


class DataConfig(_Section):
    """Where the training text or chat examples come from."""

    path: str = ""
    """A plain-text file (language modelling) or a ``.jsonl`` file of chat examples."""
    format: Literal["auto", "text", "chat"] = "auto"
    """``auto``: ``.jsonl`` files are chat, anything else is text."""
    val_fraction: float = 0.1
    """Share of the data held out for validation (the end of a text file, the last chat
    examples); unused when ``val_path`` is set."""
    val_path: str | None = None
    """Chat only: a ``.jsonl`` file of validation examples (e.g. the held-out runs that
    ``mgpt train distil`` writes), so validation never shares a source with training."""
    keep: Literal["start", "end"] = "start"
    """Chat only: which part of an example longer than ``block_size`` to train on. ``end``
    keeps the answer and the end of a long prompt (distilled agent calls have prompts of
    thousands of tokens); ``start`` keeps the beginning."""


class TokenizerConfig(_Section):
    """Which tokenizer to train on the data, or the folder of an existing one."""

    kind: Literal["char", "bytebpe"] = "char"
    vocab_size: int = 512
    """bytebpe only: the target vocabulary size (special tokens included)."""
    path: str | None = None
    """Folder of an existing tokenizer (``AutoTokenizer.from_pretrained``); skips training."""


class OptimConfig(_Section):
    """AdamW; weight decay applies to matrices only (not biases, norms)."""

    lr: float = 6e-4
    min_lr: float = 6e-5
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 turns clipping off."""


class ScheduleConfig(_Section):
    """Linear warmup, then cosine decay to ``optim.min_lr`` at ``lr_decay_iters``."""

    warmup_iters: int = 100
    lr_decay_iters: int | None = None
    """Default: max_iters."""
    decay_lr: bool = True


class LoraConfig(_Section):
    """LoRA adapter settings (used by ``mgpt train lora`` only)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] | None = None
    """Default: peft's choice for the model family (gpt2: c_attn; llama: q_proj, v_proj)."""


class EmbedConfig(_Section):
    """Contrastive embedding training (used by ``mgpt train embed`` only)."""

    temperature: float = 0.05
    """InfoNCE temperature: logits are cosine similarities divided by this."""
    hard_negatives: bool = True
    """Add one hard negative per pair (another function of the same module) to the batch."""
    sources: list[Literal["stdlib", "golden"]] = ["stdlib", "golden"]
    """Where training pairs come from: the Python standard library's sources (docstring <->
    body, name <-> docstring) and/or the golden transcripts (requirement <-> code, error <-> fix)."""
    max_modules: int | None = 120
    """Stdlib modules to mine (sorted by name, then sampled with the seed); None: all."""
    max_length: int = 96
    """Tokens per text; longer texts are cut."""
    normalize: bool | None = None
    """Feed the model lower-cased words with identifiers split (``read_file`` -> ``read file
    read_file``). Default: on for a model built from scratch here, off for a pretrained
    folder (init_from), whose tokenizer already knows code. Recorded in the saved folder;
    load_embedder applies it."""
    val_fraction: float = 0.2
    """Share of source modules held out for evaluation (split by module, never by pair)."""
    lora: bool = False
    """With init_from: train LoRA adapters (settings in [lora]) instead of all weights; the
    saved model has them merged."""


class MetaConfig(_Section):
    """Reptile meta-learning over task families (used by ``mgpt train meta`` only)."""

    inner_lr: float = 0.01
    """SGD learning rate of the k adaptation steps on one task."""
    outer_lr: float = 0.5
    """Reptile step size: init += outer_lr * (mean adapted weights - init)."""
    inner_steps: int = 5
    """k: adaptation steps per task in meta-training."""
    tasks_per_batch: int = 4
    """Tasks (families) adapted per meta-update."""
    train_families: int = 24
    """Synthetic task families to meta-train on; as many more (other seeds) are held out."""
    eval_families: int = 8
    eval_steps: list[int] = [0, 1, 5, 20]
    """Adaptation steps after which held-out loss is reported."""
    seq_len: int = 8
    """Characters per task example (input and output each)."""
    lora: bool = False
    """Meta-learn LoRA adapters on a fixed base instead of the full weights."""


class ReinforceConfig(_Section):
    """Learning from test results (``mgpt train rft``, ``dpo``, ``grpo``): sample answers to the
    code task bank, run them against the hidden tests, train on what passed."""

    k: int = Field(4, ge=1)
    """Answers sampled per task (rft, dpo); the group size of grpo."""
    iterations: int = Field(1, ge=1)
    """rft: sample -> check -> fine-tune rounds, each starting from the previous round's model."""
    temperature: float = Field(0.8, gt=0)
    max_new_tokens: int = Field(200, ge=1)
    lr: float = Field(1e-5, gt=0)
    """Learning rate of each fine-tune (constant after a short warmup); replaces optim.lr."""
    steps: int = Field(20, ge=1)
    """Optimizer steps per rft iteration, of a dpo run, or of a grpo run."""
    lora: bool = False
    """Train a LoRA adapter (settings in [lora]) instead of all weights; the model of each
    round is the base with the adapter merged in."""
    tasks: int | None = Field(None, ge=1)
    """Use only the first this many tasks of the split (default: all)."""
    families: list[str] | None = None
    """Task families to use (default: all the split has)."""
    beta: float = Field(0.1, gt=0)
    """dpo: how far from the reference the policy may move (the DPO temperature)."""
    clip: float = Field(0.2, gt=0)
    """grpo: the PPO clip range of the probability ratio."""
    kl_coef: float = Field(0.04, ge=0)
    """grpo: weight of the KL penalty to the reference model."""
    timeout: float = Field(20.0, gt=0)
    """Seconds one candidate may run against its tests in the sandbox."""


class RunConfig(_Section):
    """Everything one training run needs. Passed in; nothing is read at import time."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    lora: LoraConfig = LoraConfig()
    embed: EmbedConfig = EmbedConfig()
    meta: MetaConfig = MetaConfig()
    reinforce: ReinforceConfig = ReinforceConfig()

    init_from: str | None = None
    """An HF model folder to fine-tune (sft, lora); pretraining starts from scratch."""
    out_dir: str = "out"
    batch_size: int = 12
    block_size: int = 64
    grad_accum: int = 1
    """Micro-batches per optimizer step (per process under DDP)."""
    max_iters: int = 2000
    eval_interval: int = 250
    """Evaluate, save a checkpoint and redraw loss.png every this many iterations."""
    eval_iters: int = 20
    log_interval: int = 10
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """``auto``: bf16 autocast on a CUDA GPU that supports it, fp32 elsewhere."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    seed: int = 1337
    threads: int | None = None
    """torch.set_num_threads for CPU runs (default: torch's choice)."""

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        for name in ("batch_size", "block_size", "grad_accum", "eval_interval", "eval_iters", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_iters < 0:
            raise ValueError("max_iters must be >= 0")
        if self.model.n_embd % self.model.n_head:
            raise ValueError(f"model.n_embd ({self.model.n_embd}) must be divisible by model.n_head ({self.model.n_head})")
        if self.model.n_kv_head is not None and self.model.family != "llama":
            raise ValueError(f"model.n_kv_head is for the llama family only (family is {self.model.family!r})")
        if self.embed.temperature <= 0:
            raise ValueError("embed.temperature must be > 0")
        for name in ("inner_steps", "tasks_per_batch", "train_families", "eval_families", "seq_len"):
            if getattr(self.meta, name) < 1:
                raise ValueError(f"meta.{name} must be at least 1")
        if any(s < 0 for s in self.meta.eval_steps):
            raise ValueError("meta.eval_steps must be >= 0")
        if not 0.0 <= self.data.val_fraction < 1.0:
            raise ValueError("data.val_fraction must be in [0, 1)")
        return self

    @property
    def lr_decay_iters(self) -> int:
        return self.schedule.lr_decay_iters if self.schedule.lr_decay_iters is not None else self.max_iters

    @property
    def tokens_per_iter(self) -> int:
        """Tokens per optimizer step in one process (multiply by the world size under DDP)."""
        return self.batch_size * self.block_size * self.grad_accum


def _parse_value(text: str) -> Any:
    """A TOML literal (``3e-4``, ``true``, ``[0.9, 0.99]``) or, failing that, the string itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["optim.lr=3e-4", "max_iters=100"]`` -> ``{"optim.lr": 3e-4, "max_iters": 100}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TrainError(f"bad override {item!r}: expected key=value, e.g. --set optim.lr=3e-4")
        out[key] = _parse_value(value.strip())
    return out


def _known_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _known_keys(ann, prefix + name + ".")
    return keys


def _apply_override(raw: dict[str, Any], key: str, value: Any) -> None:
    if key not in _known_keys(RunConfig):
        raise TrainError(f"unknown config key {key!r} (from --set {key}=...)")
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise TrainError(f"config key {'.'.join(parents[:i + 1])!r} is a value, not a section")
    node[leaf] = value


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown config key {key!r}")
        elif key:
            lines.append(f"bad value for config key {key!r}: {e['msg']} (got {e.get('input')!r})")
        else:
            lines.append(e["msg"].removeprefix("Value error, "))
    return f"invalid config {source}: " + "; ".join(lines)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TrainError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml  # only YAML users pay for the import

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as e:  # both parsers raise their own types; the message is what matters
        raise TrainError(f"cannot parse config {path}: {e}") from e
    if not isinstance(data, dict):
        raise TrainError(f"config {path} must be a table/mapping at the top level")
    return data


def _resolve(path: str | None, base: Path | None) -> str | None:
    """Config-file folder first, then the current directory; unchanged if neither exists."""
    if not path:
        return path
    p = Path(path).expanduser()
    if p.is_absolute():
        return str(p)
    for root in ([base] if base else []) + [Path.cwd()]:
        if (root / p).exists():
            return str((root / p).resolve())
    return path


def shipped_config(name: str) -> Path | None:
    """The config shipped with mgpt called ``name`` (``tiny`` or ``tiny.toml``), if any."""
    p = CONFIG_DIR / (name if name.endswith(".toml") else name + ".toml")
    return p if p.is_file() else None


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> RunConfig:
    """Read a TOML/YAML run config (or a shipped one by name), apply overrides, validate.

    Raises :class:`TrainError` naming any unknown key or bad value.
    """
    raw: dict[str, Any] = {}
    base: Path | None = None
    source = "(defaults)"
    if path is not None:
        p = Path(path)
        if not p.is_file() and (shipped := shipped_config(str(path))) is not None:
            p = shipped
        raw = _read_file(p)
        base = p.resolve().parent
        source = str(p)
    items = parse_overrides(overrides) if isinstance(overrides, (list, tuple)) else dict(overrides or {})
    for key, value in items.items():
        _apply_override(raw, key, value)
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as e:
        raise TrainError(_format_errors(e, source)) from None
    cfg.data.path = _resolve(cfg.data.path, base) or ""
    cfg.data.val_path = _resolve(cfg.data.val_path, base)
    cfg.tokenizer.path = _resolve(cfg.tokenizer.path, base)
    cfg.init_from = _resolve(cfg.init_from, base)
    return cfg
