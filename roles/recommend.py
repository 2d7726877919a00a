"""The recommender team's four roles, each doing one job (:mod:`mgpt.actions.recommend`).

Profiler (history -> profile; with ``summary``, plus the model's sentence on the user's
taste) and Retriever (the learned retriever, as a tool -> candidates)
work at once on the user's request; the Ranker orders the candidates once it holds both;
the Explainer explains the ranking's top. Every role watches the request, so each knows
what was asked (how many movies, from how many candidates, how many explained).

The Profiler and the Retriever need the store's tools
(:class:`~mgpt.domains.movielens.tools.RecommendTools`); :func:`recommender_roles` hands them
out, each role only the tools its job needs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from mgpt.actions.recommend import (
    BuildProfile, ExplainRecommendations, RankCandidates, RetrieveCandidates, SummarizeProfile,
)
from mgpt.agents.message import UserRequirement
from mgpt.roles.base import Role

__all__ = ["Explainer", "Profiler", "Ranker", "Retriever", "recommender_roles"]


class Profiler(Role):
    name = "Profiler"
    profile = "a film critic who sums up a viewer's taste"
    goal = "a short, true profile of the user from the movies they rated"
    actions = [BuildProfile]
    watch = [UserRequirement]


class Retriever(Role):
    name = "Retriever"
    profile = "the learned candidate retriever"
    goal = "the movies the trained retriever scores highest for the user"
    actions = [RetrieveCandidates]
    watch = [UserRequirement]


class Ranker(Role):
    name = "Ranker"
    profile = "a film recommender"
    goal = "the candidates in the order this user is most likely to watch them"
    actions = [RankCandidates]
    watch = [UserRequirement, BuildProfile, RetrieveCandidates]


class Explainer(Role):
    name = "Explainer"
    profile = "a film recommender who explains each pick by the user's own movies"
    goal = "one true sentence per recommendation, naming the rated movies it rests on"
    actions = [ExplainRecommendations]
    watch = [UserRequirement, BuildProfile, RankCandidates]


def recommender_roles(tools: Sequence[Callable[..., Any]], *, explain: bool = True, summary: bool = False) -> list[Role]:
    """The team, given the store's tools (``RecommendTools(store).as_list()``); without the
    Explainer when ``explain`` is false (retriever + ranker only); with ``summary`` the
    Profiler also asks the model for a sentence on the user's taste (:class:`SummarizeProfile`)."""
    by_name = {getattr(t, "__name__", ""): t for t in tools}
    missing = {"user_history", "user_tastes", "candidates"} - set(by_name)
    if missing:
        raise ValueError(f"the recommender team needs the store's tools {', '.join(sorted(missing))}: "
                         "pass RecommendTools(store).as_list()")
    roles: list[Role] = [
        Profiler(tools=[by_name["user_history"], by_name["user_tastes"]],
                 actions=[SummarizeProfile] if summary else None),
        Retriever(tools=[by_name["candidates"]]),
        Ranker(),
    ]
    return roles + [Explainer()] if explain else roles
