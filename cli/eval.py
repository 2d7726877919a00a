"""``mgpt generate`` and the ``mgpt eval`` group: thin commands over :mod:`mgpt.llm.local.generate`,
:mod:`mgpt.llm.eval.perplexity`, :mod:`mgpt.llm.eval.metrics` and :mod:`mgpt.llm.eval.code`.

``mgpt eval`` is a group: ``perplexity`` (a checkpoint on a text file), ``text`` (BLEU,
ROUGE, METEOR of generations), ``all`` (both at once, the old ``mgpt eval`` options), and
``code`` (pass@k on the task bank). ``code`` runs candidates in the sandbox, which lives a
layer above ``llm``; so its runner is passed in by the top-level CLI (``register(app,
code_eval=...)``) and this module never imports ``mgpt.actions`` or ``mgpt.workflows``.

Nothing heavy is imported here at module level, so ``mgpt --help`` stays fast; the
commands import torch, transformers and the metric libraries when they run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from mgpt.agents.errors import MgptError

__all__ = ["eval_command", "generate_command", "perplexity_command", "register", "text_command"]


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
        from mgpt.llm.local.generate import check_checkpoint, generate_text, load_model
        from mgpt.llm.local.sampling import SamplingParams

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

        sampling = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, seed=seed)
        sampling = sampling.with_options(top_k=top_k, top_p=top_p)  # None: off
        result = generate_text(loaded, prompt, sampling, chat=chat, on_text=write)
    except (MgptError, ValueError) as exc:
        _fail(str(exc))
        return
    sys.stdout.write("\n")
    err.print(
        f"[dim]{result.prompt_tokens} prompt + {result.completion_tokens} new tokens, "
        f"finish reason: {result.finish_reason}, on {loaded.device}[/]"
    )


def _table(title: str, rows: list[tuple[str, str]], columns: tuple[str, str] = ("metric", "value")) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    table.add_column(columns[0])
    table.add_column(columns[1], justify="right")
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
    """Perplexity and text metrics in one run (the options of the old single `mgpt eval`).

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
            from mgpt.llm.eval.perplexity import perplexity_of_file

            # Check the inputs before paying for imports and model loading.
            from mgpt.llm.local.generate import check_checkpoint
            from mgpt.llm.eval.perplexity import read_text_file

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
            from mgpt.llm.eval.metrics import compute_text_metrics, read_pairs

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


def perplexity_command(
    model: Path = typer.Option(..., "--model", "-m", help="Checkpoint folder (written by save_pretrained)."),
    text: Path = typer.Option(..., "--text", help="UTF-8 text file to measure the model's perplexity on."),
    block_size: Optional[int] = typer.Option(
        None, "--block-size", min=2, help="Window length in tokens (default: the model's maximum positions)."
    ),
    stride: Optional[int] = typer.Option(
        None, "--stride", min=1, help="New tokens scored per window, below the block size (default: half the block)."
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    device: Optional[str] = typer.Option(
        None, "--device", help="Torch device (default: CUDA when available, else CPU)."
    ),
) -> None:
    """Perplexity of a local checkpoint on a text file (sliding windows)."""
    eval_command(model=model, text=text, block_size=block_size, stride=stride, predictions=None,
                 references=None, json_out=json_out, meteor_wordnet=True, device=device)


def text_command(
    predictions: Path = typer.Option(
        ...,
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
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    meteor_wordnet: bool = typer.Option(
        True,
        "--meteor-wordnet/--no-meteor-wordnet",
        help="Match WordNet synonyms in METEOR when WordNet is installed (off: exact and stem matches only).",
    ),
) -> None:
    """BLEU (sacrebleu, 0-100), ROUGE-1/2/L F1 and METEOR (0-1) of generations against references."""
    eval_command(model=None, text=None, block_size=None, stride=None, predictions=predictions,
                 references=references, json_out=json_out, meteor_wordnet=meteor_wordnet, device=None)


def _code_command(runner: Callable[..., Any]) -> Callable[..., None]:
    """``mgpt eval code`` calling ``runner`` (:func:`mgpt.llm.eval.code_sandbox.run_code_eval`'s
    signature, with ``model`` a spec string resolved by the runner)."""

    def code_command(
        model: str = typer.Option(..., "--model", "-m", help="Model spec: openai:<name>, hf:<dir>, replay:<file>, test."),
        split: str = typer.Option("test", "--split", help="Task bank split: test, train or all."),
        family: List[str] = typer.Option([], "--family", help="Only these task families (repeatable)."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N tasks of the split."),
        n: int = typer.Option(1, "-n", "--samples", min=1, help="Answers sampled per task."),
        k: List[int] = typer.Option([], "--k", help="pass@k to report (repeatable; default 1, and n when n > 1)."),
        temperature: Optional[float] = typer.Option(
            None, "--temperature", "-t", min=0.0,
            help="Sampling temperature for backends that take one (hf:, openai:); use > 0 with -n > 1."),
        timeout: float = typer.Option(20.0, "--timeout", min=1.0, help="Seconds one candidate's tests may run."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
        api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Read the API key from this file."),
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Most tokens per answer."),
        json_out: Path = typer.Option(Path("eval-code.json"), "--json", help="Where to write the results."),
    ) -> None:
        """pass@1 and pass@k on the code task bank: each answer's code block runs against the
        task's hidden tests in the sandbox."""
        from rich.console import Console
        from rich.markup import escape

        out = Console(highlight=False)
        err = Console(stderr=True, highlight=False)
        ks = sorted(set(k or ([1, n] if n > 1 else [1])))

        def progress(task: Any, i: int, sample: Any) -> None:
            if i == n:
                err.print(f"[dim]{escape(task.id)}: {'pass' if sample.passed else 'fail'} ({i}/{n})[/]")

        try:
            result = runner(model=model, split=split, families=family or None, limit=limit, n=n, ks=ks,
                            temperature=temperature, timeout=timeout, json_out=json_out, on_sample=progress,
                            base_url=base_url, api_key_file=api_key_file, max_tokens=max_tokens)
        except (MgptError, ValueError) as exc:
            _fail(str(exc))
            return
        rows = [("model", result.model), ("split", f"{result.split} ({len(result.tasks)} tasks)"),
                ("samples per task", str(result.n))]
        rows += [(name, f"{value:.3f}") for name, value in result.pass_at.items()]
        rows += [("tokens", f"{result.prompt_tokens} prompt + {result.completion_tokens} completion"),
                 ("time", f"{result.seconds:.1f} s")]
        out.print(_table("Code task bank", rows))
        fam = _table("pass@1 by family", [(f, f"{v['pass@1']:.3f} ({int(v['tasks'])} tasks)")
                                          for f, v in result.by_family.items()], columns=("family", "pass@1"))
        out.print(fam)
        err.print(f"[dim]Wrote {escape(str(json_out))}[/]")

    return code_command


def _company_command(runner: Callable[..., Any]) -> Callable[..., None]:
    """``mgpt eval company`` calling ``runner`` (:func:`mgpt.workflows.company_eval.run_company_eval`)."""

    def company_command(
        ideas: Path = typer.Argument(..., help="Text file with one idea per line (# comments and blank lines skipped)."),
        model: str = typer.Option(..., "--model", "-m", help="Model spec: openai:<name>, hf:<dir>, replay:<file>."),
        out: Path = typer.Option(..., "--out", "-o", help="New folder for the runs' workspaces (one per idea)."),
        max_rounds: int = typer.Option(12, "--max-rounds", min=1, help="Stop each run after this many rounds."),
        fix_rounds: int = typer.Option(2, "--fix-rounds", min=0, help="Fix rounds QA may ask for per run."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
        api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Read the API key from this file."),
        json_out: Path = typer.Option(Path("eval-company.json"), "--json", help="Where to write the results."),
    ) -> None:
        """Run the whole company on a list of ideas: share of projects whose tests pass, share
        of structured answers that parse on the first try, tokens and time."""
        from rich.console import Console
        from rich.markup import escape

        out_console = Console(highlight=False)
        err = Console(stderr=True, highlight=False)

        def progress(item: Any) -> None:
            state = "tests pass" if item.tests_passed else (f"error: {item.error}" if item.error else "tests fail")
            err.print(f"[dim]{escape(item.idea[:60])}: {escape(state)} ({item.seconds:.1f} s)[/]")

        try:
            from mgpt.llm.eval.errors import EvalInputError

            idea_list = [line.strip() for line in _read_lines(ideas) if line.strip() and not line.lstrip().startswith("#")]
            if not idea_list:
                raise EvalInputError(f"{ideas} holds no ideas: write one idea per line")
            api_key = _read_key(api_key_file)
            result = runner(model=model, ideas=idea_list, out_dir=out, max_rounds=max_rounds, fix_rounds=fix_rounds,
                            json_out=json_out, on_idea=progress, base_url=base_url, api_key=api_key)
        except MgptError as exc:
            _fail(str(exc))
            return
        first = result.first_try_parse_share
        data = result.to_dict()
        out_console.print(_table("Company", [
            ("model", result.model), ("ideas", str(len(result.ideas))),
            ("projects whose tests pass", f"{result.tests_pass_share:.3f}"),
            ("structured answers parsed first try", "n/a" if first is None else f"{first:.3f}"),
            ("tokens", f"{data['prompt_tokens']} prompt + {data['completion_tokens']} completion"),
            ("time", f"{result.seconds:.1f} s"),
        ]))
        err.print(f"[dim]Wrote {escape(str(json_out))}[/]")

    return company_command


def _service_command(runner: Callable[..., Any]) -> Callable[..., None]:
    """``mgpt eval service`` calling ``runner`` (:func:`mgpt.workflows.service_eval.run_service_eval`)."""

    def service_command(
        model: Optional[str] = typer.Option(None, "--model", "-m", help="The support team's model: openai:<name>, local, hf:<dir>... (not with --replay)."),
        out: Path = typer.Option(..., "--out", "-o", help="New folder for the conversations (workspaces, transcripts, reports), results.json and index.html."),
        domain: str = typer.Option("retail", "--domain", help="The τ²-bench domain (retail)."),
        split: str = typer.Option("test", "--split", help="Task split: test (40), train (74) or base (all 114)."),
        task: List[str] = typer.Option([], "--task", help="Only this task id (repeatable)."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N tasks."),
        trials: int = typer.Option(1, "--trials", "-k", min=1, help="Conversations per task: pass^k for k up to this."),
        workers: int = typer.Option(1, "--workers", min=1, help="Conversations run at once."),
        max_turns: int = typer.Option(10, "--max-turns", min=1, help="Messages the customer may send before a conversation is stopped."),
        checker: bool = typer.Option(True, "--checker/--no-checker", help="A policy checker reviews each state-changing call (off: the support agent alone)."),
        max_tool_steps: Optional[int] = typer.Option(None, "--max-tool-steps", min=1, help="Tool calls the agent may make in one turn before it must answer (default 12)."),
        customer_model: Optional[str] = typer.Option(None, "--customer-model", help="The simulated customer's model (default: the team's)."),
        replay: Optional[Path] = typer.Option(None, "--replay", help="The --out folder of an earlier eval: replay every conversation from its transcripts, offline, and grade it again."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
        api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Read the API key from this file (or set MGPT_API_KEY / OPENAI_API_KEY)."),
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Most tokens per model call."),
        threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads per local model."),
    ) -> None:
        """Customer service on τ²-bench: the support team against a simulated customer on each
        task, graded by the store's end state and what the agent said; pass^1 and pass^k."""
        from rich.console import Console
        from rich.markup import escape

        out_console = Console(highlight=False)
        err = Console(stderr=True, highlight=False)

        def progress(item: Any, done: int, total: int) -> None:
            why = "" if item.passed else (" (store not as expected)" if not item.state_matches else " (info not said)")
            err.print(f"[dim][{done}/{total}] task {escape(item.task_id)} trial {item.trial}: "
                      f"{'pass' if item.passed else 'fail'}{why}, ended by {escape(item.ended)} after "
                      f"{item.turns} customer turn(s), {item.tool_calls} tool call(s), {item.seconds:.1f} s[/]")

        try:
            from mgpt.llm.eval.errors import EvalInputError

            if (model is None) == (replay is None):
                raise EvalInputError("give --model (the team's model) or --replay (an earlier eval's --out folder)")
            options = dict(model=model or f"replay:{replay}", out=out, domain=domain, split=split, task_ids=task or None,
                           limit=limit, trials=trials, workers=workers, max_turns=max_turns, checker=checker,
                           max_tool_steps=max_tool_steps, customer_model=customer_model, replay=replay, base_url=base_url,
                           api_key=_read_key(api_key_file), max_tokens=max_tokens, threads=threads)
            result = runner(options, on_done=progress)
        except MgptError as exc:
            _fail(str(exc))
            return
        totals = result.totals()
        rows = [("team", f"{result.options['team']} on {result.options['model']}"),
                ("customer", str(result.options["customer_model"])),
                ("tasks", f"{totals['tasks']} ({result.options['split']}) x {result.options['trials']} trial(s)")]
        rows += [(f"pass^{k}", f"{v:.3f}") for k, v in result.pass_hat().items()]
        rows += [("store as expected", f"{totals['state_matches']}/{totals['count']}"),
                 ("state-changing calls", f"{totals['writes_done']} made of {totals['writes_asked']} asked, "
                                          f"{totals['writes_declined']} declined by the checker"),
                 ("ended by", ", ".join(f"{k} {v}" for k, v in totals["ended"].items())),
                 ("tokens", f"{totals['prompt_tokens']} prompt + {totals['completion_tokens']} completion"),
                 ("time", f"{result.seconds:.1f} s ({totals['seconds_per_conversation']} s a conversation)")]
        out_console.print(_table("Customer service", rows))
        err.print(f"[dim]Wrote {escape(str(out))}/results.json and index.html (each conversation's report beside it)[/]")

    return service_command


def _read_lines(path: Path) -> list[str]:
    from mgpt.llm.eval.errors import EvalInputError

    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _read_key(path: Optional[Path]) -> Optional[str]:
    return None if path is None else (_read_lines(path) or [""])[0].strip() or None


def register(
    app: typer.Typer,
    *,
    code_eval: Optional[Callable[..., Any]] = None,
    company_eval: Optional[Callable[..., Any]] = None,
    service_eval: Optional[Callable[..., Any]] = None,
) -> None:
    """Add ``generate`` and the ``eval`` group to the top-level ``mgpt`` app.

    ``code_eval`` runs ``mgpt eval code`` and ``company_eval`` runs ``mgpt eval company``
    (the top-level CLI passes :func:`mgpt.llm.eval.code_sandbox.run_code_eval` and
    :func:`mgpt.workflows.company_eval.run_company_eval` behind lazy imports); without
    them the group has no such command; ``service_eval`` likewise runs ``mgpt eval service``
    (:func:`mgpt.workflows.service_eval.run_service_eval`, given a dict of its options).
    """
    app.command("generate")(generate_command)
    group = typer.Typer(help="Evaluate models: perplexity, text metrics, code pass@k, whole company runs, customer service.", no_args_is_help=True)
    group.command("perplexity")(perplexity_command)
    group.command("text")(text_command)
    group.command("all")(eval_command)
    if code_eval is not None:
        group.command("code")(_code_command(code_eval))
    if company_eval is not None:
        group.command("company")(_company_command(company_eval))
    if service_eval is not None:
        group.command("service")(_service_command(service_eval))
    from mgpt.llm.eval.retrieval import retrieval_command

    group.command("retrieval")(retrieval_command)
    app.add_typer(group, name="eval")
