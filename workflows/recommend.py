"""The recommender team as a workflow: one user's request in, ranked and explained movies out.

:func:`recommend` hires the four roles of :mod:`mgpt.roles.recommend` on one bus with the
store's tools, publishes a :class:`~mgpt.actions.recommend.RecommendRequest` and gathers
what the roles handed on into a :class:`RecommendResult`::

    from mgpt.domains.movielens import open_store
    from mgpt.llm.models import infer_model
    store = open_store()                          # trained on first use (ALS: seconds)
    result = asyncio.run(recommend(RecommendRequest(user_id="196", count=5), store=store,
                                   model=infer_model("local")))
    print(result.to_markdown())

The model may be any mgpt model: the embedded one, a hosted one, a scripted
:class:`~mgpt.llm.backends.testing.TestModel`, or ``replay:`` a recorded transcript
(``record=`` writes one; the tool results are in it too, so a replay asks the store nothing
it did not record).

It is also the SOP ``recommend`` (``mgpt run --sop recommend 196``): the run's workspace
gets the transcript, the run log and ``recommendations.md`` / ``.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from mgpt.actions.recommend import (
    CandidateList, Explanation, Explanations, Ranking, RecommendRequest, UserProfile,
)
from mgpt.agents.budget import Budget
from mgpt.agents.environment import Environment
from mgpt.agents.message import Message, UserRequirement
from mgpt.agents.runlog import Event
from mgpt.agents.team import RunResult, Team
from mgpt.llm.backends.base import Model
from mgpt.llm.backends.replay import EndRecord, RecordingModel, TranscriptHeader
from mgpt.roles.recommend import recommender_roles
from mgpt.workflows.harness import RunOptions, RunSession, prepare_workspace

__all__ = ["RecommendResult", "RecommendRunResult", "Recommended", "build_team", "recommend", "run_recommend"]

#: More than the four roles need (request; profile and candidates; ranking; explanations).
MAX_ROUNDS = 8


@dataclass
class Tally:
    """This run's own model and tool time per role, and its tokens, counted from its events
    (the budget's totals may be shared with other runs: a batch's, a task's)."""

    seconds: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __call__(self, event: Event) -> None:
        if event.kind in ("llm_call", "tool_result") and event.role:
            self.seconds[event.role] = round(self.seconds.get(event.role, 0.0) + float(event.data.get("seconds") or 0), 3)
        if event.kind == "llm_call":
            self.prompt_tokens += int(event.data.get("prompt_tokens") or 0)
            self.completion_tokens += int(event.data.get("completion_tokens") or 0)


@dataclass(frozen=True)
class Recommended:
    """One recommendation as shown: the movie, its places, and why."""

    item_id: str
    title: str
    year: int | None
    genres: list[str]
    #: its place in the ranker's order and in the retriever's (1: first)
    rank: int
    retriever_rank: int
    because: list[str] = field(default_factory=list)
    because_titles: list[str] = field(default_factory=list)
    sentence: str = ""


@dataclass
class RecommendResult:
    """What the team handed on for one request, and how the run went."""

    request: RecommendRequest
    profile: UserProfile | None
    candidates: CandidateList | None
    ranking: Ranking | None
    explanations: Explanations | None
    run: RunResult
    #: this run's seconds per role in model and tool calls, and its tokens
    tally: Tally = field(default_factory=lambda: Tally())

    @property
    def items(self) -> list[Recommended]:
        """The recommendations, best first, each with its explanation where there is one."""
        if self.ranking is None:
            return []
        why: dict[str, Explanation] = {e.item_id: e for e in (self.explanations.items if self.explanations else [])}
        titles = {m.item_id: m.title for m in (self.profile.citable() if self.profile else [])}
        out = []
        for n, c in enumerate(self.ranking.top, 1):
            e = why.get(c.item_id)
            because = e.because if e else []
            out.append(Recommended(c.item_id, c.title, c.year, c.genres, n, c.rank, because,
                                   [titles.get(i, i) for i in because], e.sentence if e else ""))
        return out

    @property
    def ok(self) -> bool:
        return bool(self.items)

    def to_markdown(self) -> str:
        lines = [f"# Recommendations for user {self.request.user_id}", ""]
        if self.profile is not None and self.profile.summary:
            lines += [f"Taste: {self.profile.summary}", ""]
        for r in self.items:
            year = f" ({r.year})" if r.year else ""
            lines.append(f"{r.rank}. **{r.title}**{year} — {', '.join(r.genres)} (retriever's #{r.retriever_rank})")
            if r.sentence:
                lines.append(f"   {r.sentence} (because: {'; '.join(r.because_titles)})")
        notes = [n for n in (self.ranking.note if self.ranking else "", self.explanations.note if self.explanations
                             else "") if n]
        return "\n".join(lines + ([""] + [f"Note: {n}" for n in notes] if notes else []))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "request": self.request.model_dump(), "items": [asdict(r) for r in self.items],
            "profile": self.profile.model_dump() if self.profile else None,
            "candidates": [c.model_dump() for c in self.candidates.items] if self.candidates else [],
            "ranking": self.ranking.model_dump() if self.ranking else None,
            "explanations": self.explanations.model_dump() if self.explanations else None,
            "seconds": self.tally.seconds, "stop_reason": self.run.stop_reason,
            "tokens": {"prompt": self.tally.prompt_tokens, "completion": self.tally.completion_tokens},
        }


def build_team(tools: list[Callable[..., Any]], model: Model, request: RecommendRequest, *,
               env: Environment | None = None, budget: Budget | None = None) -> Team:
    """The four roles (three when the request wants no explanations) on one bus, the store's
    ``tools`` handed out."""
    roles = recommender_roles(tools, explain=request.explain != 0, summary=request.summary)
    return Team(model=model, env=env, budget=budget).hire(*roles)


def payload(messages: list[Message], kind: type) -> Any:
    """The newest payload of type ``kind`` among ``messages``."""
    found = [m.payload for m in messages if isinstance(m.payload, kind)]
    return found[-1] if found else None


async def run_request(team: Team, request: RecommendRequest, max_rounds: int = MAX_ROUNDS) -> RecommendResult:
    """Publish ``request`` on ``team``'s bus, run the team, gather what it handed on."""
    tally = Tally()
    team.env.listen(tally)
    team.env.publish(Message(content=request.to_markdown(), payload=request, sent_from="user",
                             cause_by=UserRequirement))
    run = await team.run(max_rounds=max_rounds)
    messages = run.messages
    return RecommendResult(request, payload(messages, UserProfile), payload(messages, CandidateList),
                           payload(messages, Ranking), payload(messages, Explanations), run, tally)


async def recommend(request: RecommendRequest, *, store: Any, model: Model, record: str | Path | None = None,
                    on_event: Callable[[Event], None] | None = None, budget: Budget | None = None) -> RecommendResult:
    """Run the recommender team for one request on ``store`` (a trained
    :class:`~mgpt.domains.movielens.store.RecommendStore`). An unknown user id raises
    :class:`~mgpt.domains.movielens.errors.UnknownUserError` before any model call.
    ``record`` writes the transcript (model calls and tool results) there."""
    from mgpt.domains.movielens.tools import RecommendTools

    store.user(request.user_id)
    recorder = RecordingModel(model, record, header=TranscriptHeader(idea=request.user_id, model=model.name, meta={
        "sop": "recommend", "request": request.model_dump(), "store": str(store.folder)})) if record else None
    env = Environment()
    if on_event is not None:
        env.listen(on_event)
    team = build_team(RecommendTools(store).as_list(), recorder or model, request, env=env, budget=budget)
    try:
        return await run_request(team, request)
    finally:
        if recorder is not None:
            recorder.close()


# -- the SOP -----------------------------------------------------------------------------------


@dataclass
class RecommendRunResult:
    """An ``mgpt run --sop recommend`` run: the recommendations and the run's records."""

    result: RecommendResult
    workspace: Path
    transcript: Path
    log: Path
    files: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def run(self) -> RunResult:
        return self.result.run

    @property
    def ok(self) -> bool:
        return self.result.ok


async def run_recommend(idea: str | None, *, model: Model, options: RunOptions | None = None, store: Any = None,
                        count: int = 5, candidates: int = 20, explain: int | None = None,
                        summary: bool = False) -> RecommendRunResult:
    """The SOP: ``idea`` is the user id; the store is ``store`` or the default one (trained
    on first use). Writes ``recommendations.md`` and ``recommendations.json`` into the
    workspace beside the transcript and the run log."""
    from mgpt.domains.movielens.store import open_store
    from mgpt.domains.movielens.tools import RecommendTools

    options = replace(options or RunOptions(), sandbox="none")  # no generated code runs here
    session = RunSession.begin(model, options)
    user_id = session.resolve_idea(idea).strip()
    request = RecommendRequest(user_id=user_id, count=count, candidates=candidates, explain=explain, summary=summary)
    store = store or open_store(progress=session.notes.append)
    store.user(user_id)
    session.open(user_id, prepare_workspace(session.root, force=options.force or options.resume),
                 meta={"sop": "recommend", "request": request.model_dump(), "store": str(store.folder)})
    assert session.model is not None and session.env is not None
    team = build_team(RecommendTools(store).as_list(), session.model, request, env=session.env,
                      budget=options.budget)
    try:
        result = await run_request(team, request, max_rounds=min(options.max_rounds, MAX_ROUNDS))
        (session.root / "recommendations.md").write_text(result.to_markdown() + "\n", encoding="utf-8")
        (session.root / "recommendations.json").write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
        session.end(EndRecord(stop_reason=result.run.stop_reason, detail=result.run.detail, rounds=result.run.rounds))
    finally:
        await session.close()
    session.wrap_up()
    return RecommendRunResult(result, session.root, session.transcript, session.log,
                              ["recommendations.md", "recommendations.json"], session.notes)
