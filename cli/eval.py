"""``mgpt generate`` and the ``mgpt eval`` group: thin commands over :mod:`mgpt.llm.local.generate`,
:mod:`mgpt.llm.eval` (perplexity, text metrics, code pass@k, retrieval) and
:mod:`mgpt.workflows.company_eval`.

``mgpt eval`` is a group: ``perplexity`` (a checkpoint on a text file), ``text`` (BLEU,
ROUGE, METEOR of generations), ``all`` (both at once, the old ``mgpt eval`` options),
``code`` (pass@k on the task bank, candidates run in the sandbox), ``company`` (whole
company runs on a list of ideas) and ``retrieval`` (an embedder on held-out pairs).

Nothing heavy is imported here at module level, so ``mgpt --help`` stays fast; each
command imports the library code it calls (and that code torch, transformers and the
metric libraries) when it runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from mgpt.agents.errors import MgptError

__all__ = ["code_command", "company_command", "eval_command", "generate_command", "perplexity_command", "register",
           "retrieval_command", "text_command"]

# -- options shared by several commands ------------------------------------------------------

CheckpointDir = Annotated[Path, typer.Option("--model", "-m", help="Checkpoint folder (written by save_pretrained).")]
TextFile = Annotated[Path, typer.Option("--text", help="UTF-8 text file to measure the model's perplexity on.")]
BlockSize = Annotated[Optional[int], typer.Option(
    "--block-size", min=2, help="Perplexity window length in tokens (default: the model's maximum positions).")]
Stride = Annotated[Optional[int], typer.Option(
    "--stride", min=1, help="New tokens scored per window, below the block size (default: half the block).")]
Predictions = Annotated[Path, typer.Option(
    "--predictions", "-p",
    help="Generations, one per line; or .jsonl with a 'prediction' field (and 'reference', then --references is "
         "optional).")]
References = Annotated[Optional[Path], typer.Option(
    "--references", "-r", help="References, one per line in the same order; or .jsonl with a 'reference' field.")]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Also write the results to this JSON file.")]
MeteorWordnet = Annotated[bool, typer.Option(
    "--meteor-wordnet/--no-meteor-wordnet",
    help="Match WordNet synonyms in METEOR when WordNet is installed (off: exact and stem matches only, and no "
         "WordNet loading time).")]
Device = Annotated[Optional[str], typer.Option(
    "--device", help="Torch device such as cpu or cuda:0 (default: CUDA when available, else CPU).")]
ModelSpec = Annotated[str, typer.Option(
    "--model", "-m", help="Model spec: openai:<name>, hf:<dir>, replay:<file>, test.")]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL.")]
ApiKeyFile = Annotated[Optional[Path], typer.Option("--api-key-file", help="Read the API key from this file.")]
Workers = Annotated[Optional[int], typer.Option(
    "--workers", min=1, help="Run the tasks on the task runner, this many at once, each in its own process "
    "(default: one after another in this process; with --ray: the cluster's CPUs).")]
Ray = Annotated[Optional[str], typer.Option(
    "--ray", help="Run the tasks on a Ray cluster: auto or HOST:PORT (pip install 'mgpt[cluster]'); "
    "see docs/scale.md.")]


def _runner(workers: Optional[int], ray: Optional[str], out: Path):
    """The task runner's options when --workers or --ray asks for it, else None (one process)."""
    if workers is None and ray is None:
        return None
    from mgpt.agents.runner import RunnerOptions

    return RunnerOptions(out=out, workers=workers, ray=ray)


def _fail(message: str) -> None:
    """Print ``message`` on stderr and exit with status 2 (bad input), no traceback."""
    from rich.markup import escape

    # Escaped: paths and library messages may hold brackets that rich would read as markup.
    _console(stderr=True).print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=2)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _quiet_transformers() -> None:
    # Loading bars and warnings on every run drown the streamed text and the tables.
    try:
        from transformers.utils import logging
    except ImportError:  # the command's own import says which extra to install
        return

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _table(title: str, rows: list[tuple[str, str]], columns: tuple[str, str] = ("metric", "value")) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    table.add_column(columns[0])
    table.add_column(columns[1], justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _wrote(path: Path) -> None:
    from rich.markup import escape

    _console(stderr=True).print(f"[dim]Wrote {escape(str(path))}[/]")


# -- mgpt generate ---------------------------------------------------------------------------


def generate_command(
    prompt: Annotated[str, typer.Argument(help="The text to continue (or, with --chat, the user's message).")],
    model: CheckpointDir,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=1, help="Most tokens to generate.")] = 128,
    temperature: Annotated[float, typer.Option(
        "--temperature", "-t", min=0.0,
        help="0 decodes greedily; above 0 samples (1.0 = the model's own distribution).")] = 0.0,
    top_k: Annotated[Optional[int], typer.Option(
        "--top-k", min=0, help="Sample only from the k most likely tokens (0 or unset: off).")] = None,
    top_p: Annotated[Optional[float], typer.Option(
        "--top-p", min=0.0, max=1.0,
        help="Sample from the smallest set of tokens whose probability reaches p (unset: off).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for sampling, so a run can be repeated.")] = None,
    chat: Annotated[bool, typer.Option(
        "--chat", help="Wrap the prompt as a user message in the tokenizer's chat template (if it has one).")] = False,
    device: Device = None,
) -> None:
    """Generate text with a local checkpoint, streaming it to the terminal."""
    from rich.markup import escape

    if top_p is not None and top_p == 0:
        _fail("--top-p must be above 0 (1.0 keeps every token).")
    err = _console(stderr=True)
    try:
        from mgpt.llm.local.generate import check_checkpoint, generate_text, load_model
        from mgpt.llm.local.sampling import SamplingParams

        check_checkpoint(model)  # before the slow imports
        _quiet_transformers()
        loaded = load_model(model, device=device)
        if chat and not loaded.has_chat_template:
            err.print(f"[yellow]Note:[/] {escape(str(model))} has no chat template; using the prompt as plain text.")

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
    err.print(f"[dim]{result.prompt_tokens} prompt + {result.completion_tokens} new tokens, "
              f"finish reason: {result.finish_reason}, on {loaded.device}[/]")


# -- mgpt eval perplexity / text / all -------------------------------------------------------


def _perplexity(model: Path, text: Path, block_size: Optional[int], stride: Optional[int],
                device: Optional[str]) -> dict[str, Any]:
    """Measure, print the table, return the results' JSON part."""
    from mgpt.llm.eval.perplexity import perplexity_of_file, read_text_file
    from mgpt.llm.local.generate import check_checkpoint

    # Check the inputs before paying for imports and model loading.
    check_checkpoint(model)
    read_text_file(text)
    _quiet_transformers()
    ppl = perplexity_of_file(model, text, block_size=block_size, stride=stride, device=device)
    _console().print(_table(f"Perplexity of {model} on {text}", [
        ("tokens", str(ppl.tokens)),
        ("mean NLL (nats)", f"{ppl.nll:.4f}"),
        ("perplexity", f"{ppl.perplexity:.3f}"),
        ("block size / stride", f"{ppl.block_size} / {ppl.stride}"),
        ("windows", str(ppl.windows)),
    ]))
    return {"model": str(model), "text": str(text), **ppl.to_dict()}


def _text_metrics(predictions: Path, references: Optional[Path], wordnet: bool) -> dict[str, Any]:
    """Score, print the table (and a note when METEOR ran without WordNet), return the JSON part."""
    from rich.markup import escape

    from mgpt.llm.eval.metrics import compute_text_metrics, read_predictions

    preds, refs = read_predictions(predictions, references)
    scores = compute_text_metrics(preds, refs, wordnet=wordnet)
    _console().print(_table(f"{scores.count} generations vs references", [
        ("BLEU (0-100)", f"{scores.bleu:.2f}"),
        ("ROUGE-1 F1", f"{scores.rouge1:.4f}"),
        ("ROUGE-2 F1", f"{scores.rouge2:.4f}"),
        ("ROUGE-L F1", f"{scores.rougeL:.4f}"),
        ("METEOR" + ("" if scores.meteor_wordnet else " (no WordNet)"), f"{scores.meteor:.4f}"),
    ]))
    if not scores.meteor_wordnet:
        _console(stderr=True).print(
            f"[yellow]Note:[/] METEOR used exact and stem matches only: {escape(scores.meteor_note)}.")
    return {"predictions": str(predictions), "references": str(references or predictions), **scores.to_dict()}


def _write_json(results: dict[str, Any], json_out: Optional[Path]) -> None:
    if json_out is None:
        return
    try:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(f"Could not write {json_out}: {exc.strerror}.")
    _wrote(json_out)


def _check_eval_options(model: Optional[Path], text: Optional[Path], block_size: Optional[int],
                        stride: Optional[int], predictions: Optional[Path], references: Optional[Path]) -> None:
    if text is not None and model is None:
        _fail("--text needs --model: the checkpoint whose perplexity to measure.")
    if model is not None and text is None:
        _fail("--model needs --text: the text file to measure perplexity on.")
    if (block_size is not None or stride is not None) and text is None:
        _fail("--block-size and --stride apply to perplexity: give --model and --text too.")
    if references is not None and predictions is None:
        _fail("--references needs --predictions: the generations to score.")
    if text is None and predictions is None:
        _fail("Nothing to evaluate: give --model and --text for perplexity, and/or --predictions and --references "
              "for BLEU/ROUGE/METEOR.")


def eval_command(
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Checkpoint folder, for perplexity on --text.")] = None,
    text: Annotated[Optional[Path], typer.Option(
        "--text", help="UTF-8 text file to measure the model's perplexity on (needs --model).")] = None,
    block_size: BlockSize = None,
    stride: Stride = None,
    predictions: Annotated[Optional[Path], typer.Option(
        "--predictions", "-p",
        help="Generations, one per line; or .jsonl with a 'prediction' field (and 'reference', then --references "
             "is optional).")] = None,
    references: References = None,
    json_out: JsonOut = None,
    meteor_wordnet: MeteorWordnet = True,
    device: Device = None,
) -> None:
    """Perplexity and text metrics in one run (the options of the old single `mgpt eval`).

    Perplexity: --model DIR --text FILE.

    Generation quality: --predictions FILE --references FILE gives BLEU (sacrebleu, 0-100), ROUGE-1/2/L F1 (rouge_score, 0-1) and METEOR (nltk, 0-1).

    METEOR uses WordNet synonyms when WordNet is installed, else exact and stem matches only; the results say which (meteor_wordnet).
    """
    _check_eval_options(model, text, block_size, stride, predictions, references)
    results: dict[str, Any] = {}
    try:
        if text is not None and model is not None:
            results["perplexity"] = _perplexity(model, text, block_size, stride, device)
        if predictions is not None:
            results["text_metrics"] = _text_metrics(predictions, references, meteor_wordnet)
    except MgptError as exc:
        _fail(str(exc))
        return
    _write_json(results, json_out)


def perplexity_command(model: CheckpointDir, text: TextFile, block_size: BlockSize = None, stride: Stride = None,
                       json_out: JsonOut = None, device: Device = None) -> None:
    """Perplexity of a local checkpoint on a text file (sliding windows)."""
    eval_command(model=model, text=text, block_size=block_size, stride=stride, predictions=None,
                 references=None, json_out=json_out, meteor_wordnet=True, device=device)


def text_command(predictions: Predictions, references: References = None, json_out: JsonOut = None,
                 meteor_wordnet: MeteorWordnet = True) -> None:
    """BLEU (sacrebleu, 0-100), ROUGE-1/2/L F1 and METEOR (0-1) of generations against references."""
    eval_command(model=None, text=None, block_size=None, stride=None, predictions=predictions,
                 references=references, json_out=json_out, meteor_wordnet=meteor_wordnet, device=None)


# -- mgpt eval code / company / retrieval ----------------------------------------------------


def code_command(
    model: ModelSpec,
    split: Annotated[str, typer.Option("--split", help="Task bank split: test, train or all.")] = "test",
    family: Annotated[List[str], typer.Option("--family", help="Only these task families (repeatable).")] = [],  # noqa: B006
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N tasks of the split.")] = None,
    n: Annotated[int, typer.Option("-n", "--samples", min=1, help="Answers sampled per task.")] = 1,
    k: Annotated[List[int], typer.Option(
        "--k", help="pass@k to report (repeatable; default 1, and n when n > 1).")] = [],  # noqa: B006
    temperature: Annotated[Optional[float], typer.Option(
        "--temperature", "-t", min=0.0,
        help="Sampling temperature for backends that take one (hf:, openai:); use > 0 with -n > 1.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0, help="Seconds one candidate's tests may run.")] = 20.0,
    base_url: BaseUrl = None,
    api_key_file: ApiKeyFile = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", min=1, help="Most tokens per answer.")] = None,
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results.")] = Path("eval-code.json"),
    workers: Workers = None,
    ray: Ray = None,
) -> None:
    """pass@1 and pass@k on the code task bank: each answer's code block runs against the
    task's hidden tests in the sandbox."""
    import shutil
    import tempfile

    from rich.markup import escape

    from mgpt.llm.eval.code_sandbox import run_code_eval

    # On the runner, each task's answers are recorded in a scratch folder, removed when the
    # eval finishes (kept, and named in the error, when it does not).
    runs = Path(tempfile.mkdtemp(prefix="mgpt-eval-code-")) / "runs" if workers or ray else None

    err = _console(stderr=True)
    ks = sorted(set(k or ([1, n] if n > 1 else [1])))

    def progress(task: Any, i: int, sample: Any) -> None:
        if i == n:
            err.print(f"[dim]{escape(task.id)}: {'pass' if sample.passed else 'fail'} ({i}/{n})[/]")

    try:
        result = run_code_eval(model, split=split, families=family or None, limit=limit, n=n, ks=ks,
                               temperature=temperature, timeout=timeout, json_out=json_out, on_sample=progress,
                               base_url=base_url, api_key_file=api_key_file, max_tokens=max_tokens,
                               runner=_runner(workers, ray, runs) if runs else None)
    except (MgptError, ValueError) as exc:
        _fail(str(exc))
        return
    if runs is not None:
        shutil.rmtree(runs.parent, ignore_errors=True)
    rows = [("model", result.model), ("split", f"{result.split} ({len(result.tasks)} tasks)"),
            ("samples per task", str(result.n))]
    rows += [(name, f"{value:.3f}") for name, value in result.pass_at.items()]
    rows += [("tokens", f"{result.prompt_tokens} prompt + {result.completion_tokens} completion"),
             ("time", f"{result.seconds:.1f} s")]
    out = _console()
    out.print(_table("Code task bank", rows))
    out.print(_table("pass@1 by family", [(f, f"{v['pass@1']:.3f} ({int(v['tasks'])} tasks)")
                                          for f, v in result.by_family.items()], columns=("family", "pass@1")))
    _wrote(json_out)


def _read_lines(path: Path) -> list[str]:
    from mgpt.llm.eval.errors import EvalInputError

    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _read_ideas(path: Path) -> list[str]:
    """One idea per line; # comments and blank lines skipped."""
    from mgpt.llm.eval.errors import EvalInputError

    ideas = [line.strip() for line in _read_lines(path) if line.strip() and not line.lstrip().startswith("#")]
    if not ideas:
        raise EvalInputError(f"{path} holds no ideas: write one idea per line")
    return ideas


def company_command(
    ideas: Annotated[Path, typer.Argument(help="Text file with one idea per line (# comments and blank lines skipped).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec: openai:<name>, hf:<dir>, replay:<file>.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the runs' workspaces (one per idea).")],
    max_rounds: Annotated[int, typer.Option("--max-rounds", min=1, help="Stop each run after this many rounds.")] = 12,
    fix_rounds: Annotated[int, typer.Option("--fix-rounds", min=0, help="Fix rounds QA may ask for per run.")] = 2,
    base_url: BaseUrl = None,
    api_key_file: ApiKeyFile = None,
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results.")] = Path("eval-company.json"),
    workers: Workers = None,
    ray: Ray = None,
) -> None:
    """Run the whole company on a list of ideas: share of projects whose tests pass, share
    of structured answers that parse on the first try, tokens and time."""
    from rich.markup import escape

    from mgpt.workflows.company_eval import run_company_eval

    err = _console(stderr=True)

    def progress(item: Any) -> None:
        state = "tests pass" if item.tests_passed else (f"error: {item.error}" if item.error else "tests fail")
        err.print(f"[dim]{escape(item.idea[:60])}: {escape(state)} ({item.seconds:.1f} s)[/]")

    try:
        api_key = None if api_key_file is None else (_read_lines(api_key_file) or [""])[0].strip() or None
        result = run_company_eval(model, _read_ideas(ideas), out, max_rounds=max_rounds, fix_rounds=fix_rounds,
                                  json_out=json_out, on_idea=progress, base_url=base_url, api_key=api_key,
                                  runner=_runner(workers, ray, out), api_key_file=api_key_file)
    except MgptError as exc:
        _fail(str(exc))
        return
    first = result.first_try_parse_share
    data = result.to_dict()
    _console().print(_table("Company", [
        ("model", result.model), ("ideas", str(len(result.ideas))),
        ("projects whose tests pass", f"{result.tests_pass_share:.3f}"),
        ("structured answers parsed first try", "n/a" if first is None else f"{first:.3f}"),
        ("tokens", f"{data['prompt_tokens']} prompt + {data['completion_tokens']} completion"),
        ("time", f"{result.seconds:.1f} s"),
    ]))
    _wrote(json_out)


def _embedder_base(model: Optional[Path], base: Optional[Path]) -> Optional[Path]:
    """The base to compare with: ``base``, else the one the embedder records; 'none' skips it."""
    from mgpt.llm.local.embedder import EMBED_CONFIG

    if base is None and model is not None and (model / EMBED_CONFIG).is_file():
        recorded = json.loads((model / EMBED_CONFIG).read_text(encoding="utf-8")).get("base")
        base = Path(recorded) if recorded and Path(recorded).is_dir() else None
    return None if base is not None and str(base) == "none" else base


def retrieval_command(
    model: Annotated[Optional[Path], typer.Option(
        "--model", "-m", help="Embedder folder written by `mgpt train embed`.")] = None,
    base: Annotated[Optional[Path], typer.Option(
        "--base", help="Untrained base to compare (default: the one the embedder records; 'none' to skip).")] = None,
    pairs: Annotated[Optional[Path], typer.Option(
        "--pairs", help="Held-out pairs JSONL (default: MODEL/heldout_pairs.jsonl).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results here as JSON.")] = None,
) -> None:
    """Retrieval recall@1, recall@10 and MRR on held-out pairs: trained embedder, its base, BM25."""
    from dataclasses import asdict

    from mgpt.llm.eval.errors import EvalInputError
    from mgpt.llm.eval.retrieval import compare, read_retrieval_pairs

    _quiet_transformers()  # no loading bars between the table's rows
    try:
        if model is None and pairs is None:
            raise EvalInputError("give --model DIR (an embedder) or --pairs FILE (BM25 only)")
        pairs_path = pairs or (model / "heldout_pairs.jsonl")  # type: ignore[operator]
        held = read_retrieval_pairs(pairs_path)
        if not held:
            raise EvalInputError(f"{pairs_path} holds no pairs")
        results = compare(held, model, _embedder_base(model, base))
    except MgptError as e:
        _fail(str(e))
        return
    typer.echo(f"{'ranker':8} {'kind':10} {'recall@1':>8} {'recall@10':>9} {'MRR':>7} {'queries':>8}")
    for name, by_kind in results.items():
        for kind, s in by_kind.items():
            typer.echo(f"{name:8} {kind:10} {s.row()}")
    if json_out is not None:
        json_out.write_text(json.dumps({n: {k: asdict(s) for k, s in r.items()} for n, r in results.items()},
                                       indent=2), encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add ``generate`` and the ``eval`` group to the top-level ``mgpt`` app."""
    app.command("generate")(generate_command)
    group = typer.Typer(help="Evaluate models: perplexity, text metrics, code pass@k, whole company runs, "
                             "retrieval.", no_args_is_help=True)
    group.command("perplexity")(perplexity_command)
    group.command("text")(text_command)
    group.command("all")(eval_command)
    group.command("code")(code_command)
    group.command("company")(company_command)
    group.command("retrieval")(retrieval_command)
    app.add_typer(group, name="eval")
