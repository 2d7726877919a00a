"""The SOPs ``mgpt run --sop NAME`` can run, by name.

An SOP is a team and the order of its work: the software company is ``software`` (the
default). A package adds its own without touching mgpt, through an entry point in the
group ``mgpt.sops`` that points at an :class:`Sop`::

    # pyproject.toml of your package
    [project.entry-points."mgpt.sops"]
    research = "my_package.research:SOP"

    # my_package/research.py
    from mgpt.workflows.sops import Sop

    async def run_research(idea, *, model, options):     # options: a RunOptions
        ...                                               # returns a result with .ok

    SOP = Sop(name="research", summary="Research a question and write a brief.",
              roles=("Researcher", "Writer"), run=run_research)

then ``mgpt run --sop research "why is the sky blue"``. From Python,
:func:`register_sop` does the same.

An SOP's ``run`` is ``async (idea, *, model, options: RunOptions, **sop_options) ->
result``. The result needs what ``mgpt run`` reports: ``ok`` (the run did what it was
asked: the CLI exits 0), ``run`` (the :class:`~mgpt.agents.team.RunResult`), ``workspace``,
``files``, ``transcript``, ``log`` and ``notes``; :class:`~mgpt.workflows.software_company.CompanyResult`
is the example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from mgpt.agents.errors import MgptError

#: The SOP a run gets when none is named.
DEFAULT_SOP = "software"


class UnknownSop(MgptError):
    """No SOP has that name."""


@dataclass(frozen=True)
class Sop:
    """A named SOP: what it does, who works in it (shown while it runs), and how it runs."""

    name: str
    summary: str
    roles: tuple[str, ...]
    run: Callable[..., Awaitable[Any]]
    #: the options of its own that ``mgpt run`` passes as keyword arguments (the flags it
    #: understands besides the run's): e.g. the software company's fix_rounds
    options: tuple[str, ...] = ()


async def _run_software(idea: str | None, *, model, options, **company: Any):
    from mgpt.workflows.software_company import run_company

    return await run_company(idea, model=model, options=options, **company)


async def _run_recommend(idea: str | None, *, model, options, **settings: Any):
    from mgpt.workflows.recommend import run_recommend

    return await run_recommend(idea, model=model, options=options, **settings)


async def _run_service(idea: str | None, *, model, options, **service: Any):
    from mgpt.workflows.service import run_service

    return await run_service(idea, model=model, options=options, **service)


async def _run_write(idea: str | None, *, model, options, **room: Any):
    from mgpt.workflows.writing import run_writers_room

    return await run_writers_room(idea, model=model, options=options, **room)


_REGISTRY: dict[str, Sop] = {
    "software": Sop(
        name="software",
        summary="The software company: PRD, design, tasks, code and passing tests.",
        roles=("ProductManager", "Architect", "ProjectManager", "Engineer", "QaEngineer"),
        run=_run_software,
        options=("fix_rounds", "context_budget", "recall", "embed", "incremental", "parallel"),
    ),
    "recommend": Sop(
        name="recommend",
        summary="The recommender team on MovieLens-100K: the idea is a user id; a profile, the learned "
                "retriever's candidates, a ranking and one explanation per movie.",
        roles=("Profiler", "Retriever", "Ranker", "Explainer"),
        run=_run_recommend,
    ),
    "service": Sop(
        name="service",
        summary="Customer service: the support team with a simulated customer on τ²-bench's retail store "
                "(idea: 'task N' or the customer's scenario).",
        roles=("SupportAgent", "PolicyChecker", "Customer"),
        run=_run_service,
    ),
    "write": Sop(
        name="write",
        summary="The writers' room: an outline, sources from a documentation corpus, sections whose "
                "examples run and whose citations quote their sources, an editor's review.",
        roles=("Planner", "Researcher", "Writer 1", "Writer 2", "Writer 3", "Writer 4", "Tester", "Editor"),
        run=_run_write,
        options=("fix_rounds", "embed", "sources", "sections", "sources_per_section", "revision_rounds",
                 "run_examples", "example_timeout"),
    ),
}


def register_sop(sop: Sop) -> None:
    """Make ``sop`` runnable by its name (replaces an SOP of the same name)."""
    if not sop.name or not sop.name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"an SOP name is a word (letters, digits, - and _), not {sop.name!r}")
    _REGISTRY[sop.name] = sop


def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group="mgpt.sops")}


def get_sop(name: str) -> Sop:
    """The SOP named ``name``: built in, registered, or declared by an installed package."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    point = _plugins().get(name)
    if point is None:
        raise UnknownSop(f"no SOP named {name!r}; the SOPs here: {', '.join(available_sops())}")
    try:
        sop = point.load()
    except Exception as exc:  # a broken plugin is its author's to fix: say which
        raise UnknownSop(f"the SOP plugin {point.value!r} ({name!r}) failed to load: {exc}") from None
    if not isinstance(sop, Sop):
        raise UnknownSop(f"the entry point {point.value!r} for SOP {name!r} is not an mgpt Sop")
    return sop


def available_sops() -> list[str]:
    """The names of every SOP that can run here."""
    return sorted({*_REGISTRY, *_plugins()})
