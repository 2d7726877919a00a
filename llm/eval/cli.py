"""``mgpt generate`` and ``mgpt eval``: thin commands over :mod:`mgpt.llm.generate`,
:mod:`mgpt.llm.eval.perplexity` and :mod:`mgpt.llm.eval.metrics`.

Nothing heavy is imported here at module level, so ``mgpt --help`` stays fast; the
commands import torch, transformers and the metric libraries when they run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from mgpt.agents.errors import MgptError

__all__ = ["eval_command", "generate_command", "register"]


def _fail(message: str) -> None:
    """Print ``message`` on stderr and exit with status 2 (bad input), no traceback."""
    from rich.console import Console
    from rich.markup import escape

    # Escaped: paths and library messages may hold brackets that rich would read as markup.
    Console(stderr=True, highlight=False).print(
        f"[bold red]Error:[/] {escape(message)}", soft_wrap=True
    )
    raise typer.Exit(code=2)


def _quiet_transformers() -> None:
    # Loading bars and warnings on every run drown the streamed text.
    try:
        from transformers.utils import logging
    except ImportError:  # load_model says which extra to install
        return

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def generate_command(
    prompt: str = typer.Argument(
        ..., help="The text to continue (or, with --chat, the user's message)."
    ),
    model: Path = typer.Option(
        ...,
        "--model",
        "-m",
        help="Checkpoint folder written by save_pretrained (model + tokenizer).",
    ),
    max_new_tokens: int = typer.Option(
        128, "--max-new-tokens", "-n", min=1, help="Most tokens to generate."
    ),
    temperature: float = typer.Option(
        0.0,
        "--temperature",
        "-t",
        min=0.0,
        help="0 decodes greedily; above 0 samples (1.0 = the model's own distribution).",
    ),
    top_k: Optional[int] = typer.Option(
        None, "--top-k", min=0, help="Sample only from the k most likely tokens (0 or unset: off)."
    ),
    top_p: Optional[float] = typer.Option(
        None,
        "--top-p",
        min=0.0,
        max=1.0,
        help="Sample from the smallest set of tokens whose probability reaches p (unset: off).",
    ),
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Seed for sampling, so a run can be repeated."
    ),
    chat: bool = typer.Option(
        False,
        "--chat",
        help="Wrap the prompt as a user message in the tokenizer's chat template (if it has one).",
    ),
    device: Optional[str] = typer.Option(
        None,
        "--device",
        help="Torch device such as cpu or cuda:0 (default: CUDA when available, else CPU).",
    ),
) -> None:
    """Generate text with a local checkpoint, streaming it to the terminal."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, highlight=False)
    if top_p is not None and top_p == 0:
        _fail("--top-p must be above 0 (1.0 keeps every token).")
    try:
        from mgpt.llm.generate import check_checkpoint, generate_text, load_model

        check_checkpoint(model)  # before the slow imports
        _quiet_transformers()
        loaded = load_model(model, device=device)
        if chat and not loaded.has_chat_template:
            err.print(
                f"[yellow]Note:[/] {escape(str(model))} has no chat template; using the prompt as plain text."
            )

        def write(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        result = generate_text(
            loaded,
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            chat=chat,
            on_text=write,
        )
    except (MgptError, ValueError) as exc:
        _fail(str(exc))
        return
    sys.stdout.write("\n")
    err.print(
        f"[dim]{result.prompt_tokens} prompt + {result.completion_tokens} new tokens, "
        f"finish reason: {result.finish_reason}, on {loaded.device}[/]"
    )


def _table(title: str, rows: list[tuple[str, str]]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def eval_command(
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", help="Checkpoint folder, for perplexity on --text."
    ),
    text: Optional[Path] = typer.Option(
        None, "--text", help="UTF-8 text file to measure the model's perplexity on (needs --model)."
    ),
    block_size: Optional[int] = typer.Option(
        None,
        "--block-size",
        min=2,
        help="Perplexity window length in tokens (default: the model's maximum positions).",
    ),
    stride: Optional[int] = typer.Option(
        None,
        "--stride",
        min=1,
        help="New tokens scored per window, below the block size (default: half the block).",
    ),
    predictions: Optional[Path] = typer.Option(
        None,
        "--predictions",
        "-p",
        help="Generations, one per line; or .jsonl with a 'prediction' field (and 'reference', then --references is optional).",
    ),
    references: Optional[Path] = typer.Option(
        None,
        "--references",
        "-r",
        help="References, one per line in the same order; or .jsonl with a 'reference' field.",
    ),
    json_out: Optional[Path] = typer.Option(
        None, "--json", help="Also write the results to this JSON file."
    ),
    meteor_wordnet: bool = typer.Option(
        True,
        "--meteor-wordnet/--no-meteor-wordnet",
        help="Match WordNet synonyms in METEOR when WordNet is installed (off: exact and stem matches only, and no WordNet loading time).",
    ),
    device: Optional[str] = typer.Option(
        None,
        "--device",
        help="Torch device for perplexity (default: CUDA when available, else CPU).",
    ),
) -> None:
    """Evaluate a model and/or its generations; always prints a table, --json saves it.

    Perplexity: --model DIR --text FILE.

    Generation quality: --predictions FILE --references FILE gives BLEU (sacrebleu, 0-100), ROUGE-1/2/L F1 (rouge_score, 0-1) and METEOR (nltk, 0-1).

    METEOR uses WordNet synonyms when WordNet is installed, else exact and stem matches only; the results say which (meteor_wordnet).
    """
    from rich.console import Console
    from rich.markup import escape

    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if text is not None and model is None:
        _fail("--text needs --model: the checkpoint whose perplexity to measure.")
    if model is not None and text is None:
        _fail("--model needs --text: the text file to measure perplexity on.")
    if (block_size is not None or stride is not None) and text is None:
        _fail("--block-size and --stride apply to perplexity: give --model and --text too.")
    if references is not None and predictions is None:
        _fail("--references needs --predictions: the generations to score.")
    if text is None and predictions is None:
        _fail(
            "Nothing to evaluate: give --model and --text for perplexity, and/or --predictions and --references for BLEU/ROUGE/METEOR."
        )

    results: dict[str, Any] = {}
    try:
        if text is not None:
            from .perplexity import perplexity_of_file

            # Check the inputs before paying for imports and model loading.
            from ..generate import check_checkpoint
            from .perplexity import read_text_file

            check_checkpoint(model)
            read_text_file(text)
            _quiet_transformers()
            ppl = perplexity_of_file(
                model, text, block_size=block_size, stride=stride, device=device
            )
            results["perplexity"] = {"model": str(model), "text": str(text), **ppl.to_dict()}
            out.print(
                _table(
                    f"Perplexity of {model} on {text}",
                    [
                        ("tokens", str(ppl.tokens)),
                        ("mean NLL (nats)", f"{ppl.nll:.4f}"),
                        ("perplexity", f"{ppl.perplexity:.3f}"),
                        ("block size / stride", f"{ppl.block_size} / {ppl.stride}"),
                        ("windows", str(ppl.windows)),
                    ],
                )
            )
        if predictions is not None:
            from .metrics import compute_text_metrics, read_pairs

            preds, refs = read_pairs(predictions, references)
            scores = compute_text_metrics(preds, refs, wordnet=meteor_wordnet)
            results["text_metrics"] = {
                "predictions": str(predictions),
                "references": str(references) if references else str(predictions),
                **scores.to_dict(),
            }
            out.print(
                _table(
                    f"{scores.count} generations vs references",
                    [
                        ("BLEU (0-100)", f"{scores.bleu:.2f}"),
                        ("ROUGE-1 F1", f"{scores.rouge1:.4f}"),
                        ("ROUGE-2 F1", f"{scores.rouge2:.4f}"),
                        ("ROUGE-L F1", f"{scores.rougeL:.4f}"),
                        (
                            "METEOR" + ("" if scores.meteor_wordnet else " (no WordNet)"),
                            f"{scores.meteor:.4f}",
                        ),
                    ],
                )
            )
            if not scores.meteor_wordnet:
                err.print(
                    f"[yellow]Note:[/] METEOR used exact and stem matches only: {escape(scores.meteor_note)}."
                )
    except MgptError as exc:
        _fail(str(exc))
        return

    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            _fail(f"Could not write {json_out}: {exc.strerror}.")
        err.print(f"[dim]Wrote {escape(str(json_out))}[/]")


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``eval`` to the top-level ``mgpt`` app."""
    app.command("generate")(generate_command)
    app.command("eval")(eval_command)
    # Retrieval evaluation (issue 11), kept apart for the merge: when `mgpt eval` becomes a
    # group this line becomes eval_app.command("retrieval")(retrieval_command).
    from .retrieval import retrieval_command

    app.command("eval-retrieval")(retrieval_command)
