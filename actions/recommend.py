"""The recommender team's work: the messages its roles hand on, and the actions that make them.

One request flows through four steps, each a typed message on the bus:

- :class:`RecommendRequest` (the user's ask) ->
- :class:`BuildProfile`: the user's history (the store's ``user_history`` and
  ``user_tastes`` tools) -> a :class:`UserProfile`: latest movies, favourites, genres; its
  variant :class:`SummarizeProfile` adds the model's sentence on the user's taste;
- :class:`RetrieveCandidates`: the learned retriever (the store's ``candidates`` tool, no
  model) -> a :class:`CandidateList`, best first;
- :class:`RankCandidates`: profile + candidates -> a :class:`Ranking`. The model names the
  top ``count`` candidates by id; the answer's schema lists the candidate ids as an enum,
  so a local model cannot name anything else (its grammar forbids it) and a hosted one
  that does is re-asked with the error. Repeated ids are dropped and the places left are
  filled in the retriever's order; the candidates the model did not name follow in the
  retriever's order too, so the ranking is always a re-ordering of the candidates.
- :class:`ExplainRecommendations`: profile + ranking -> :class:`Explanations`, one sentence
  per recommendation naming the rated movies it rests on, cited by id from the profile's
  movies (an enum again).

The tools are called by the actions themselves (the retriever is not a model's guess), through
the role's toolbox, so each call is logged, put on the bus and recorded in the transcript,
and a replay answers it from there.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal, Sequence

from pydantic import BaseModel, Field, create_model

from mgpt.actions.base import Action, ActionContext, ActionError
from mgpt.agents.message import UserRequirement
from mgpt.agents.tools import ToolCall
from mgpt.llm.backends.base import OutputFormat
from mgpt.llm.parsing import extract_json

__all__ = [
    "BuildProfile", "Candidate", "CandidateList", "Explanation", "ExplainRecommendations", "Explanations",
    "GenreShare", "RankCandidates", "RatedMovie", "Ranking", "RecommendRequest", "RetrieveCandidates",
    "SummarizeProfile", "TasteSummary", "UserProfile", "explain_answer_model", "rank_answer_model",
]


# -- the messages --------------------------------------------------------------------------


class RecommendRequest(BaseModel):
    """What the user asks: ``count`` movies for ``user_id``, re-ranked from the retriever's
    top ``candidates``, the first ``explain`` of them explained (None: all; 0: none, and no
    Explainer), and with ``summary`` a model-written sentence on the user's taste in the
    profile."""

    user_id: str
    count: int = Field(5, ge=1, le=50)
    candidates: int = Field(20, ge=1, le=100)
    explain: int | None = Field(None, ge=0)
    summary: bool = False

    def to_markdown(self) -> str:
        return f"Recommend {self.count} movies to user {self.user_id} (from {self.candidates} candidates)."


class RatedMovie(BaseModel):
    """A movie the user rated."""

    item_id: str
    title: str
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    stars: float | None = None

    def line(self) -> str:
        details = "; ".join(p for p in (str(self.year or ""), ", ".join(self.genres)) if p)
        stars = f", {self.stars:g} stars" if self.stars else ""
        return f"[{self.item_id}] {self.title}" + (f" ({details})" if details else "") + stars


class GenreShare(BaseModel):
    genre: str
    #: the share of the user's movies that have this genre (a movie may have several)
    share: float


class UserProfile(BaseModel):
    """What the profiler made of a user's history (and only of it: the store holds back any
    item being measured)."""

    user_id: str
    #: how many movies the user rated
    rated: int
    genres: list[GenreShare]
    #: the latest movies, oldest first
    recent: list[RatedMovie]
    #: the best-rated movies not among the recent ones
    favourites: list[RatedMovie]
    #: the model's sentence on the user's taste
    summary: str = ""

    def citable(self) -> list[RatedMovie]:
        """The movies an explanation may cite: the recent ones, then the favourites."""
        return [*self.recent, *self.favourites]

    def facts(self) -> str:
        """The profile as a prompt shows it."""
        genres = ", ".join(f"{g.genre} {g.share:.0%}" for g in self.genres)
        lines = [f"User {self.user_id} rated {self.rated} movies. Genres they rate most: {genres}."]
        if self.summary:
            lines.append(f"Their taste: {self.summary}")
        lines.append("Latest movies they rated (oldest first):")
        lines += [f"- {m.line()}" for m in self.recent]
        if self.favourites:
            lines.append("Their favourites:")
            lines += [f"- {m.line()}" for m in self.favourites]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        return self.facts()


class Candidate(BaseModel):
    """A movie the retriever proposes, with its score and rank (1: best)."""

    item_id: str
    title: str
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    score: float
    rank: int

    def line(self) -> str:
        details = "; ".join(p for p in (str(self.year or ""), ", ".join(self.genres)) if p)
        return f"[{self.item_id}] {self.title}" + (f" ({details})" if details else "")


class CandidateList(BaseModel):
    """The retriever's candidates for one user, best first."""

    user_id: str
    items: list[Candidate]

    def to_markdown(self) -> str:
        return "\n".join(f"{c.rank}. {c.line()} (score {c.score:.3f})" for c in self.items)


class Ranking(BaseModel):
    """The candidates in the ranker's order: the ``count`` it chose first, then the rest in
    the retriever's order."""

    user_id: str
    items: list[Candidate]
    count: int
    #: the ids the model named, in its order, repeats dropped
    named: list[str] = Field(default_factory=list)
    #: what was repaired: repeats dropped, places filled, or why the retriever's order stands
    note: str = ""

    @property
    def top(self) -> list[Candidate]:
        return self.items[: self.count]

    def to_markdown(self) -> str:
        lines = [f"{n}. {c.line()} (retriever rank {c.rank})" for n, c in enumerate(self.top, 1)]
        return "\n".join(lines + ([f"({self.note})"] if self.note else []))


class Explanation(BaseModel):
    """Why one movie is recommended: the rated movies it rests on, and a sentence."""

    item_id: str
    because: list[str]
    sentence: str


class Explanations(BaseModel):
    user_id: str
    items: list[Explanation]
    #: why there are none, when the model gave no valid answer
    note: str = ""

    def to_markdown(self) -> str:
        return "\n".join(f"- [{e.item_id}] {e.sentence} (because: {', '.join(e.because)})" for e in self.items)


# -- the answers asked of the model ----------------------------------------------------------


class TasteSummary(BaseModel):
    """The profiler's one model answer."""

    summary: str = Field(min_length=1, max_length=160,
                         description="one sentence on what kinds of movies this user likes")


def rank_answer_model(candidate_ids: Sequence[str], count: int) -> type[BaseModel]:
    """The ranker's answer: ``order``, exactly ``count`` ids, each one of ``candidate_ids``."""
    ids = tuple(dict.fromkeys(candidate_ids))
    if not ids:
        raise ActionError("there are no candidates to rank")
    return create_model(
        "RankAnswer",
        order=(list[Literal[ids]], Field(min_length=count, max_length=count,  # type: ignore[valid-type]
                                         description=f"the ids of the {count} best candidates, best first")),
    )


def explain_answer_model(item_ids: Sequence[str], citable_ids: Sequence[str]) -> type[BaseModel]:
    """The explainer's answer: one key per recommended id, in order, each holding
    ``because`` (1-2 ids of ``citable_ids``) and ``sentence``."""
    citable = tuple(dict.fromkeys(citable_ids))
    if not citable:
        raise ActionError("the profile holds no rated movies to cite")
    reason = create_model(
        "Reason",
        because=(list[Literal[citable]], Field(min_length=1, max_length=2,  # type: ignore[valid-type]
                                               description="ids of the rated movies it rests on")),
        sentence=(str, Field(min_length=12, max_length=160, description="one sentence saying why")),
    )
    fields: dict[str, Any] = {f"m{n}": (reason, Field(alias=item_id)) for n, item_id in enumerate(item_ids)}
    return create_model("ExplainAnswer", **fields)


# -- helpers ---------------------------------------------------------------------------------


async def request_of(ctx: ActionContext) -> RecommendRequest:
    """The request the role holds (every role of the team watches the user's requests): the
    newest user message's payload, or its text read as a user id."""
    for message in reversed([*await ctx.memory.find(cause_by=UserRequirement), *ctx.news]):
        if message.cause_by is UserRequirement:
            if isinstance(message.payload, RecommendRequest):
                return message.payload
            if message.content.strip():
                return RecommendRequest(user_id=message.content.strip())
    raise ActionError("no recommendation request reached this role: publish a RecommendRequest")


async def latest(ctx: ActionContext, cause_by: type, kind: type[BaseModel]) -> Any:
    """The newest payload of type ``kind`` the role holds from ``cause_by``, or None."""
    for message in reversed(await ctx.memory.find(cause_by=cause_by)):
        if isinstance(message.payload, kind):
            return message.payload
    return None


async def use_tools(action: Action, ctx: ActionContext, calls: list[ToolCall]) -> list[Any]:
    """Run the role's tools as ``calls`` say (no model chooses them) and return each result's
    JSON. The calls are logged, published and recorded like a model's, so a replay answers
    them from the transcript; a failed call is an :class:`ActionError` with its message."""
    if ctx.tools is None:
        raise ActionError(f"{action.name} needs the tools {', '.join(c.name for c in calls)}: "
                          "give the role RecommendTools(store).as_list()")
    results = await action.llm.run_tools(ctx.tools, calls, action=action.name)
    failed = [r for r in results if r.is_error]
    if failed:
        raise ActionError(f"{action.name}: {'; '.join(r.content for r in failed)}")
    return [json.loads(r.content) for r in results]


def system_prompt(ctx: ActionContext) -> str:
    text = f"You are {ctx.role_name}, {ctx.role_profile}." if ctx.role_profile else f"You are {ctx.role_name}."
    return text + (f" Your goal: {ctx.role_goal}." if ctx.role_goal else "")


# -- the actions -----------------------------------------------------------------------------


class BuildProfile(Action):
    """A user's history -> :class:`UserProfile`: the facts, from the store's tools (no model)."""

    description = "Profile the user from the movies they rated."
    #: how many of the latest movies, and of the favourites, the profile shows
    recent: ClassVar[int] = 10
    favourites: ClassVar[int] = 5

    async def run(self, ctx: ActionContext) -> UserProfile:
        user = (await request_of(ctx)).user_id
        recent, tastes = await use_tools(self, ctx, [
            ToolCall.of("user_history", {"user_id": user, "last": self.recent}, id=f"user_history-{user}"),
            ToolCall.of("user_tastes", {"user_id": user, "favourites": self.favourites + self.recent},
                        id=f"user_tastes-{user}"),
        ])
        shown = {m["item_id"] for m in recent}
        favourites = [m for m in tastes["favourites"] if m["item_id"] not in shown][: self.favourites]
        return UserProfile(user_id=user, rated=tastes["rated"], genres=tastes["genres"],
                           recent=[RatedMovie(**m) for m in recent],
                           favourites=[RatedMovie(**m) for m in favourites])


class SummarizeProfile(BuildProfile):
    """The profile's facts, and the model's one sentence on the user's taste (``--summary``)."""

    step = BuildProfile

    async def run(self, ctx: ActionContext) -> UserProfile:
        profile = await super().run(ctx)
        prompt = (f"{profile.facts()}\n\nIn one sentence, say what kinds of movies this user likes "
                  "(genres, eras, moods), from the movies above.")
        answer = await self.ask_structured(prompt, TasteSummary, system=system_prompt(ctx))
        return profile.model_copy(update={"summary": " ".join(answer.summary.split())})


class RetrieveCandidates(Action):
    """The learned retriever's top candidates for the user (a tool call; no model)."""

    description = "Retrieve the candidate movies the learned retriever scores highest."

    async def run(self, ctx: ActionContext) -> CandidateList:
        request = await request_of(ctx)
        user = request.user_id
        [found] = await use_tools(self, ctx, [
            ToolCall.of("candidates", {"user_id": user, "k": request.candidates}, id=f"candidates-{user}"),
        ])
        return CandidateList(user_id=user, items=[Candidate(**c) for c in found])


def repaired(user_id: str, candidates: list[Candidate], named: Sequence[str], count: int) -> Ranking:
    """The ranking the model's ``named`` ids give: repeats dropped, then the unnamed candidates
    in the retriever's order (so the first ``count`` are always filled)."""
    by_id = {c.item_id: c for c in candidates}
    order = list(dict.fromkeys(i for i in named if i in by_id))
    notes = []
    if len(order) < len(named):
        notes.append(f"{len(named) - len(order)} repeated id(s) dropped")
    rest = [c for c in candidates if c.item_id not in set(order)]
    if len(order) < count and rest:
        notes.append(f"{min(count, len(candidates)) - len(order)} place(s) filled in the retriever's order")
    return Ranking(user_id=user_id, items=[by_id[i] for i in order] + rest,
                   count=min(count, len(candidates)), named=order, note="; ".join(notes))


class RankCandidates(Action):
    """Profile + candidates -> :class:`Ranking` (the model re-orders the candidates only)."""

    description = "Order the candidates for this user."

    async def run(self, ctx: ActionContext) -> Ranking | None:
        profile = await latest(ctx, BuildProfile, UserProfile)
        found = await latest(ctx, RetrieveCandidates, CandidateList)
        if profile is None or found is None:
            return None  # the other half comes next round
        request = await request_of(ctx)
        count = min(request.count, len(found.items))
        if count == 0:
            return Ranking(user_id=profile.user_id, items=[], count=0, note="the retriever found no candidates")
        schema = rank_answer_model([c.item_id for c in found.items], count)
        candidates = "\n".join(f"- {c.line()}" for c in found.items)
        prompt = (f"{profile.facts()}\n\nCandidate movies a recommender found for this user, its best first:\n"
                  f"{candidates}\n\nChoose the {count} candidates this user is most likely to watch next, best "
                  f"first. Reply with one JSON object whose \"order\" lists their {count} ids (the numbers in "
                  "brackets), each id once.")
        output = OutputFormat(kind="json_schema", name="RankAnswer", json_schema=schema.model_json_schema())
        try:
            answer = await self.ask_parsed(prompt, lambda reply: schema.model_validate(extract_json(reply)),
                                           system=system_prompt(ctx), wanted="RankAnswer", output=output,
                                           again="Reply again with only the corrected JSON object.")
        except ActionError as exc:
            kept = repaired(profile.user_id, found.items, [], count)
            return kept.model_copy(update={"note": f"the retriever's order stands: {first_line(exc)}"})
        return repaired(profile.user_id, found.items, list(answer.order), count)


class ExplainRecommendations(Action):
    """Profile + ranking -> :class:`Explanations`: one sentence per recommendation, citing
    the rated movies it rests on."""

    description = "Explain each recommendation by the movies the user rated."

    async def run(self, ctx: ActionContext) -> Explanations | None:
        profile = await latest(ctx, BuildProfile, UserProfile)
        ranking = await latest(ctx, RankCandidates, Ranking)
        if profile is None or ranking is None:
            return None
        request = await request_of(ctx)
        shown = ranking.top[: request.explain if request.explain is not None else ranking.count]
        citable = profile.citable()
        if not shown or not citable:
            return Explanations(user_id=profile.user_id, items=[])
        schema = explain_answer_model([c.item_id for c in shown], [m.item_id for m in citable])
        rated = "\n".join(f"- {m.line()}" for m in citable)
        picks = "\n".join(f"- {c.line()}" for c in shown)
        prompt = (f"User {profile.user_id}'s taste: {profile.summary or 'unknown'}\nMovies they rated:\n{rated}\n\n"
                  f"Movies recommended to them:\n{picks}\n\nFor each recommended movie, write one sentence "
                  "telling the user why they may like it, naming by title the one or two movies they rated that "
                  "it rests on. Reply with one JSON object with one key per recommended movie's id (in the "
                  "order above); each value has \"because\", the ids of the rated movies it rests on, and "
                  "\"sentence\".")
        output = OutputFormat(kind="json_schema", name="ExplainAnswer", json_schema=schema.model_json_schema())
        try:
            answer = await self.ask_parsed(prompt, lambda reply: schema.model_validate(extract_json(reply)),
                                           system=system_prompt(ctx), wanted="ExplainAnswer", output=output,
                                           again="Reply again with only the corrected JSON object.")
        except ActionError as exc:
            return Explanations(user_id=profile.user_id, items=[], note=f"no explanations: {first_line(exc)}")
        reasons = [getattr(answer, f"m{n}") for n in range(len(shown))]
        return Explanations(user_id=profile.user_id, items=[
            Explanation(item_id=c.item_id, because=list(dict.fromkeys(r.because)), sentence=" ".join(r.sentence.split()))
            for c, r in zip(shown, reasons)
        ])


def first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
