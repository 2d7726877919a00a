"""``mgpt write`` (the writers' room on a brief) and ``mgpt eval write`` (its benchmark on the
Python HOWTOs). Both parse flags and call the library: :mod:`mgpt.cli.run` runs the room as
``mgpt run --sop write`` does, :mod:`mgpt.workflows.write_eval` the benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

__all__ = ["register"]

#: Not imported from the workflow: ``mgpt --help`` must not load it.
DEBIAN_DOCS = Path("/usr/share/doc/python3.11/html/_sources")


def write_command(
    brief: str = typer.Argument(..., help="What to write, in one line: 'a HOWTO on sorting in Python'."),
    sources: Path = typer.Option(DEBIAN_DOCS / "library", "--sources", help="Folder of documentation to "
                                 "research and cite (.rst.txt, .rst, .md, .txt). Default: the library reference of "
                                 "Debian's python3.11-doc (apt-get install python3.11-doc)."),
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="Folder the document is written "
                                             "into. Default: a new folder named after the brief."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec, as for mgpt run. Default: "
                                        "$MGPT_MODEL, the config file, else the embedded local model."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Read the API key from this file "
                                                "(or set MGPT_API_KEY / OPENAI_API_KEY)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Config file (TOML)."),
    sections: int = typer.Option(4, "--sections", min=1, max=8, help="The most sections the outline may have "
                                 "(one writer each, writing concurrently)."),
    fix_rounds: int = typer.Option(2, "--fix-rounds", min=0, help="How many times a section with a failing "
                                   "example goes back to its writer."),
    revision_rounds: int = typer.Option(1, "--revision-rounds", min=0, help="How many times the editor may send "
                                        "sections back for revision."),
    no_run: bool = typer.Option(False, "--no-run-examples", help="Do not run the examples (the room without "
                                "execution)."),
    embedder: Optional[Path] = typer.Option(None, "--embedder", help="Embedder folder (mgpt train embed) to rank "
                                            "sources with, fused with BM25; default BM25."),
    max_rounds: int = typer.Option(30, "--max-rounds", min=1, help="Stop after this many rounds."),
    budget: Optional[float] = typer.Option(None, "--budget", min=0, help="Spend at most this many USD."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0, help="Use at most this many tokens."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also write the transcript of model calls here."),
    replay: Optional[Path] = typer.Option(None, "--replay", help="Answer model calls from this recorded transcript."),
    force: bool = typer.Option(False, "--force", help="Write into a workspace that is not empty."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --workspace."),
    sandbox: Optional[str] = typer.Option(None, "--sandbox", help="How examples run: bwrap (isolated, default) "
                                          "or none (unisolated)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads for a local model."),
) -> None:
    """Write a Markdown document on BRIEF with the writers' room: an outline, sources retrieved
    from --sources and cited by quotation, a writer per section, every code example run in the
    sandbox, an editor's review. Writes document.md, docs/ (outline, sources, checks) and the
    HTML report into the workspace."""
    from mgpt.cli.run import RunRequest, execute

    request = RunRequest(
        idea=brief, workspace=workspace, sop="write", model=model, base_url=base_url, api_key_file=api_key_file,
        config=config, max_rounds=max_rounds, budget=budget, max_tokens=max_tokens, fix_rounds=fix_rounds,
        record=record, replay=replay, force=force, resume=resume, sandbox=sandbox, threads=threads,
        embedder=embedder, sop_options={"sources": sources, "sections": sections,
                                        "revision_rounds": revision_rounds, "run_examples": not no_run},
    )
    raise typer.Exit(execute(request))


def eval_write_command(
    model: str = typer.Option("local", "--model", "-m", help="Model spec: local (the embedded model), "
                              "hf:/path, openai:<name> (with --base-url for a server)..."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    sources: Path = typer.Option(DEBIAN_DOCS, "--sources", help="The documentation's sources: a folder holding "
                                 "howto/ (the tasks) and library/ (what the writers research)."),
    split: str = typer.Option("report", "--split", help="Which HOWTOs: report (the held-out ones), tune, or all."),
    tasks: List[str] = typer.Option([], "--task", help="Only these HOWTOs (e.g. --task enum); repeatable."),
    rows: str = typer.Option("single,room-no-exec,room", "--rows", help="Which rows, comma-separated: single "
                             "(one call), room-no-exec, room."),
    out: Path = typer.Option(Path("runs/eval_write"), "--out", "-o", help="Folder for the runs and results.json."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", min=16, help="Completion tokens one call may use."),
    sections: int = typer.Option(3, "--sections", min=1, max=8, help="The most sections an outline may have."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads for a local model."),
) -> None:
    """The writing benchmark: one task per Python HOWTO (its title is the brief; the library
    reference, less the HOWTO and the pages quoting it, the sources), scored against the real
    HOWTO (ROUGE-L, METEOR, API names covered) and by our checks (examples that run,
    citations that match) for one call, the room without execution and the full room."""
    from mgpt.agents.errors import MgptError
    from mgpt.workflows.write_eval import ROWS, WriteEvalOptions, format_table, run_write_eval

    chosen = [r.strip() for r in rows.split(",") if r.strip()]
    try:
        if split not in ("report", "tune", "all") or any(r not in ROWS for r in chosen):
            raise MgptError(f"--split is report, tune or all; --rows are among {', '.join(ROWS)}")
        result = run_write_eval(WriteEvalOptions(
            model=model, base_url=base_url, sources=sources, split=split, tasks=list(tasks), rows=chosen,
            out=out, max_new_tokens=max_new_tokens, sections=sections, threads=threads,
            progress=lambda line: typer.echo(line, err=True)))
    except MgptError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    typer.echo(format_table(result))
    typer.echo(f"results: {out / 'results.json'}")


def register(app: typer.Typer) -> None:
    """Add ``write`` to ``mgpt`` and ``write`` to its ``eval`` group (registered before this)."""
    app.command("write")(write_command)
    group = next((g.typer_instance for g in app.registered_groups if g.name == "eval"), None)
    if group is None:
        raise RuntimeError("register the eval group before mgpt.cli.write")
    group.command("write")(eval_write_command)
