"""``mgpt train ...``: thin typer commands over the trainer's library functions.

Imports only typer and pathlib at the top: ``mgpt --help`` loads this module, and torch,
transformers and numpy are imported by the commands that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, TypeVar

import typer

app = typer.Typer(help="Train tokenizers and models.", no_args_is_help=True)

T = TypeVar("T")

CONFIG_HELP = ("Run config, TOML or YAML, or the name of a shipped one (tiny, shakespeare_char, shakespeare_char_llama, "
               "shakespeare_char_neox, sft_tiny, reinforce). Relative data paths in it are tried against its folder, then the "
               "current directory.")
SET_HELP = ("Override a config key, repeatable: --set optim.lr=3e-4 --set max_iters=100. "
            "Values are TOML literals (3e-4, true, [0.9, 0.99], \"text\"); an unknown key is an error.")
RESUME_HELP = "Continue from OUT/ckpt/state.pt (same config); the loss curve continues exactly."
OUT_HELP = "Output folder (overrides out_dir in the config)."
QUIET_HELP = "No progress output."


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


#: The workshop's third-party packages (the [train] extra): missing, a command says so.
WORKSHOP_MODULES = ("torch", "transformers", "tokenizers", "safetensors", "peft", "numpy", "sacrebleu",
                    "rouge_score", "nltk", "matplotlib", "yaml")


def _guard(fn: Callable[[], T]) -> T:
    """Run a command; our own errors, a missing workshop package and out-of-memory become a
    message and exit code 2."""
    from mgpt.llm.train.errors import TrainError

    try:
        return fn()
    except TrainError as e:
        _fail(str(e))
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in WORKSHOP_MODULES:
            raise
        _fail(f"the model workshop needs {top}, which is not installed: run bash tools/install.sh "
              "(or pip install -e '.[train]' -c constraints.txt)")
    except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
        if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
            _fail("out of memory: lower batch_size or block_size (use grad_accum to keep the tokens per step), "
                  "or use a smaller model; checkpoints already written are intact. "
                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        raise
    raise AssertionError("unreachable")


def _config(config: str, sets: List[str], out: Optional[Path], model: Optional[Path] = None):
    """The run config with --set, --out and --model applied; parse errors are TrainErrors for _guard."""
    from mgpt.llm.train.config import load_config, parse_overrides

    overrides = parse_overrides(sets)
    if out is not None:
        overrides["out_dir"] = str(out)
    if model is not None:
        overrides["init_from"] = str(model)
    return load_config(config, overrides)


TRANSCRIPTS_HELP = ("Distil these recorded runs first (files, folders or a quoted glob such as "
                    "'runs/**/transcript.jsonl'; repeatable): one chat example per model call, validation on "
                    "held-out runs. The examples go to OUT/distil/ and become data.path and data.val_path.")


def _with_transcripts(cfg, transcripts: List[str], val_fraction: float):
    """``cfg`` training on the distilled ``transcripts`` (written under its out_dir)."""
    if not transcripts:
        return cfg
    from mgpt.llm.train.distil import distil

    result = distil(transcripts, Path(cfg.out_dir) / "distil", val_fraction=val_fraction)
    _report_distil(result)
    cfg.data.path, cfg.data.val_path, cfg.data.format = result.train_path, result.val_path, "chat"
    return cfg


def _report_distil(result) -> None:
    typer.echo(f"distilled {result.train_examples} training examples from {len(result.train_runs)} run(s) and "
               f"{result.val_examples} validation examples from {len(result.val_runs)} held-out run(s) "
               f"({result.duplicates} duplicates dropped) -> {Path(result.train_path).parent}")


def _report(result) -> None:
    val = f", val loss {result.val_loss:.4f}" if result.val_loss is not None else ""
    typer.echo(f"done: iter {result.iter_num}{val}, {result.ms_per_iter:.1f} ms/iter, "
               f"{result.tokens_per_s:,.0f} tokens/s -> {result.out_dir}")


@app.command()
def tokenizer(
    corpus: List[Path] = typer.Argument(..., help="Text files to learn from (.jsonl files are read as chat data)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to save the tokenizer in (AutoTokenizer loads it)."),
    kind: str = typer.Option("char", help="char: one token per character; bytebpe: GPT-2 style byte-level BPE."),
    vocab_size: int = typer.Option(512, help="bytebpe only: vocabulary size, special tokens included."),
) -> None:
    """Train a tokenizer with bos/eos/pad and chat role tokens and a chat template."""
    if kind not in ("char", "bytebpe"):
        _fail(f"unknown tokenizer kind {kind!r}: use char or bytebpe")

    def run():
        from mgpt.llm.train.tokenizer import train_tokenizer

        return train_tokenizer(list(corpus), out, kind=kind, vocab_size=vocab_size)  # type: ignore[arg-type]

    tok = _guard(run)
    typer.echo(f"saved a {kind} tokenizer of {len(tok)} tokens to {out}")


@app.command()
def pretrain(
    config: str = typer.Argument(..., help=CONFIG_HELP),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=OUT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Pretrain a GPT-2, Llama or GPT-NeoX model from scratch on a text file.

    Also runs under torchrun: torchrun --nproc_per_node=2 -m mgpt train pretrain tiny
    """

    def run():
        from mgpt.llm.train.pretrain import pretrain as _pretrain

        return _pretrain(_config(config, sets, out), resume=resume, progress=not quiet)

    _report(_guard(run))


@app.command()
def sft(
    config: str = typer.Argument(..., help=CONFIG_HELP),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="HF model folder to fine-tune (overrides init_from)."),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=OUT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    transcripts: List[str] = typer.Option([], "--transcripts", "-t", help=TRANSCRIPTS_HELP),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="With --transcripts: share of runs held out."),
) -> None:
    """Fine-tune a model folder on chat JSONL (or on recorded runs, --transcripts); the loss
    counts assistant tokens only."""

    def run():
        from mgpt.llm.train.sft import sft as _sft

        cfg = _with_transcripts(_config(config, sets, out, model), transcripts, val_fraction)
        return _sft(cfg, resume=resume, progress=not quiet)

    _report(_guard(run))


@app.command()
def lora(
    config: str = typer.Argument(..., help=CONFIG_HELP),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="HF base model folder (overrides init_from)."),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP + " LoRA settings: lora.r, lora.alpha, ..."),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Adapter folder (overrides out_dir in the config)."),
    merge: Optional[Path] = typer.Option(None, "--merge", help="Also save base + adapter merged, as a standard HF folder, here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    transcripts: List[str] = typer.Option([], "--transcripts", "-t", help=TRANSCRIPTS_HELP),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="With --transcripts: share of runs held out."),
) -> None:
    """Train a LoRA adapter (only adapter weights change); optionally merge it into the base."""

    def run():
        from mgpt.llm.train.lora import train_lora

        cfg = _with_transcripts(_config(config, sets, out, model), transcripts, val_fraction)
        return train_lora(cfg, resume=resume, progress=not quiet, merge_to=merge)

    _report(_guard(run))
    if merge is not None:
        typer.echo(f"merged model -> {merge}")


@app.command()
def merge(
    adapter: Path = typer.Argument(..., help="LoRA adapter folder written by `mgpt train lora`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged model (standard HF folder)."),
    base: Optional[Path] = typer.Option(None, "--base", help="Base model folder (default: the one recorded in the adapter)."),
) -> None:
    """Merge a LoRA adapter into its base model and save the result."""
    from mgpt.llm.train.lora import merge_lora

    _guard(lambda: merge_lora(adapter, out, base))
    typer.echo(f"merged model -> {out}")


@app.command()
def distil(
    transcripts: List[str] = typer.Argument(..., help="Recorded runs: files, folders or quoted globs ('runs/**/transcript.jsonl')."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for train.jsonl, val.jsonl and distil.json."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Share of runs (whole transcript files) held out for validation."),
    role: List[str] = typer.Option([], "--role", help="Keep only this role's calls (repeatable), e.g. --role Engineer."),
) -> None:
    """Turn recorded runs into chat JSONL for sft/lora: one example per model call, tagged
    with role and action, deduplicated, split into train and validation by run."""
    from mgpt.llm.train.distil import distil as _distil

    result = _guard(lambda: _distil(transcripts, out, val_fraction=val_fraction, roles=role or None))
    _report_distil(result)
    for name, count in result.by_action.items():
        typer.echo(f"  {name}: {count}")


# -- issue 11: contrastive embeddings and meta-learning ------------------------------------


@app.command()
def embed(
    config: str = typer.Argument("embed_tiny", help=CONFIG_HELP + " Default: embed_tiny."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="HF causal-LM folder to start from "
                                         "(default: a small model built from [model])."),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP + " Embedding settings: embed.temperature, ..."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=OUT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Train a text embedder contrastively (InfoNCE, in-batch and hard negatives) on mined pairs."""

    def run():
        from mgpt.llm.train.embed import train_embed

        return train_embed(_config(config, sets, out, model), progress=not quiet)

    r = _guard(run)
    typer.echo(f"done: {r.iter_num} iters, loss {r.first_loss:.3f} -> {r.last_loss:.3f}, {r.train_pairs} train / "
               f"{r.heldout_pairs} held-out pairs, {r.seconds:.0f} s -> {r.out_dir} "
               f"(evaluate: mgpt eval retrieval --model {r.out_dir})")


@app.command()
def meta(
    config: str = typer.Argument("meta_tiny", help=CONFIG_HELP + " Default: meta_tiny."),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP + " Meta settings: meta.inner_lr, meta.outer_lr, meta.inner_steps (k), meta.tasks_per_batch, ..."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=OUT_HELP),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Evaluate over this many seeds (train and baselines each)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Reptile: meta-learn an initialization that adapts to a new task family in k steps; compare
    it on held-out families with the plain base and a base fine-tuned on all training families."""

    def run():
        from mgpt.llm.train.meta import format_curves, run_meta

        return format_curves(run_meta(_config(config, sets, out), seeds=seeds, progress=not quiet))

    typer.echo(_guard(run))


# --------------------------------------------------------------------------- learning from test results

SPLIT_HELP = "Task bank split to learn from: train (default) keeps the test split held out for `mgpt eval code`."


def _reinforce(method: str, cfg, **options):
    """rft, dpo or grpo on the task bank, answers checked in the sandbox."""
    from mgpt.llm.train.reinforce import run_reinforce

    return run_reinforce(method, cfg, **options)


@app.command()
def rft(
    config: str = typer.Argument(..., help=CONFIG_HELP),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="HF model folder to start from (overrides init_from)."),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP + " Keys: reinforce.k, reinforce.iterations, "
                                   "reinforce.temperature, reinforce.max_new_tokens, reinforce.lr, reinforce.steps, "
                                   "reinforce.lora, reinforce.tasks, reinforce.families."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=OUT_HELP),
    split: str = typer.Option("train", "--split", help=SPLIT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Rejection-sampling fine-tuning (expert iteration): sample k answers per task, keep those
    that pass the hidden tests, fine-tune on them; repeat for reinforce.iterations rounds."""
    result = _guard(lambda: _reinforce("rft", _config(config, sets, out, model), split=split, progress=not quiet))
    for it in result.iterations:
        loss = (f", loss on kept {it.loss_before:.4f} -> {it.loss_after:.4f}"
                if it.loss_before is not None and it.loss_after is not None else "")
        typer.echo(f"iteration {it.iteration}: pass rate {it.pass_rate:.1%} ({it.passed}/{it.samples}), "
                   f"{it.kept} kept{loss}")
    if result.stopped:
        typer.echo(f"stopped: {result.stopped}")
    typer.echo(f"done: model -> {result.model_dir} (summary in {result.out_dir / 'rft.json'})")


@app.command()
def dpo(
    config: str = typer.Argument(..., help=CONFIG_HELP),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="HF model folder to train (overrides init_from)."),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP + " Keys: reinforce.beta, reinforce.lr, "
                                   "reinforce.steps, reinforce.k, reinforce.lora, ..."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=OUT_HELP),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="JSONL of {messages, chosen, rejected}; default: "
                                         "sample reinforce.k answers per task and pair passing with failing ones."),
    split: str = typer.Option("train", "--split", help=SPLIT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Direct Preference Optimization on (passing, failing) answers to the same task; the
    reference is a frozen copy of the model (or, with reinforce.lora, the adapter switched off)."""
    result = _guard(lambda: _reinforce("dpo", _config(config, sets, out, model), pairs=pairs, split=split,
                                   progress=not quiet))
    typer.echo(f"done: {result.pairs} pair(s), {result.steps} steps, DPO loss {result.first_loss:.4f} -> "
               f"{result.last_loss:.4f} -> {result.model_dir}")


@app.command()
def grpo(
    config: str = typer.Argument(..., help=CONFIG_HELP),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="HF model folder to train (overrides init_from)."),
    sets: List[str] = typer.Option([], "--set", "-s", help=SET_HELP + " Keys: reinforce.k (group size), "
                                   "reinforce.steps, reinforce.clip, reinforce.kl_coef, reinforce.lr, ..."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=OUT_HELP),
    split: str = typer.Option("train", "--split", help=SPLIT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """GRPO: groups of k answers per task, rewards from the hidden tests, group-normalised
    advantages, clipped policy loss with a KL penalty to the starting model."""
    result = _guard(lambda: _reinforce("grpo", _config(config, sets, out, model), split=split, progress=not quiet))
    typer.echo(f"done: {result.steps} steps, mean reward {result.first_rewards:.2f} (first quarter) -> "
               f"{result.last_rewards:.2f} (last quarter) -> {result.model_dir}")
