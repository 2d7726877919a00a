"""Checking an explanation against what the user really rated.

An explanation cites history items by id (``because``) and says why in a sentence. Two
things can be wrong with it, and :func:`check_citation` measures both:

- it cites a movie the user never rated (``rated`` is false): a model inventing support;
- its sentence names a catalogue movie the user never rated, other than the one being
  recommended (``unrated_named``): the same invention, in the free text.

``named`` says whether the sentence names at least one cited movie by its title (the
explanation says what it rests on, as asked). Titles are found as whole words,
case-insensitively, in either form ("The Usual Suspects", "Usual Suspects, The"), without
a trailing parenthesis ("Shanghai Triad (Yao a yao...)" -> "Shanghai Triad"). For the scan
for unrated movies only titles of two or more words, or one word of 6+ letters, count: a
one-word title such as "Heat" or "Ghost" is too often an ordinary word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .data import Movie

__all__ = ["Citation", "TitleIndex", "check_citation"]


def normalize(text: str) -> str:
    """Lower case, letters and digits only, single spaces, padded with one space each side
    (so a whole-word test is a substring test)."""
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def title_forms(movie: Movie) -> set[str]:
    """The normalized forms a sentence may name ``movie`` by."""
    forms = set()
    for title in (movie.title, movie.name):
        for variant in (title, title.split(" (")[0]):
            form = normalize(variant)
            if form.strip():
                forms.add(form)
    return forms


def distinctive(form: str) -> bool:
    """Whether a title form is unlikely to be an ordinary word in a sentence."""
    words = form.split()
    return len(words) >= 2 or (len(words) == 1 and len(words[0]) >= 6)


class TitleIndex:
    """Every catalogue title's forms, to find the movies a sentence names."""

    def __init__(self, movies: Mapping[str, Movie]):
        self.movies = movies
        self.forms = {item_id: title_forms(movie) for item_id, movie in movies.items()}
        self.distinctive = [(item_id, form) for item_id, forms in self.forms.items() for form in forms
                            if distinctive(form)]

    def names(self, sentence: str, item_id: str) -> bool:
        """Whether ``sentence`` names the movie ``item_id``."""
        text = normalize(sentence)
        return any(form in text for form in self.forms.get(item_id, ()))

    def named(self, sentence: str) -> set[str]:
        """The ids of the movies (with distinctive titles) that ``sentence`` names."""
        text = normalize(sentence)
        return {item_id for item_id, form in self.distinctive if form in text}


@dataclass(frozen=True)
class Citation:
    """One explanation, checked."""

    item_id: str
    #: the history items it cites
    because: tuple[str, ...]
    #: it cites at least one item, and every cited item is a movie the user rated
    rated: bool
    #: the sentence names at least one of the cited movies by title
    named: bool
    #: movies the sentence names that the user never rated (the recommended one aside)
    unrated_named: tuple[str, ...]


def check_citation(item_id: str, because: Sequence[str], sentence: str, rated: Iterable[str],
                   index: TitleIndex) -> Citation:
    """Check the explanation of recommending ``item_id`` to a user who rated ``rated``."""
    rated = set(rated)
    cited = tuple(because)
    unrated = sorted(index.named(sentence) - rated - {item_id})
    return Citation(
        item_id=item_id,
        because=cited,
        rated=bool(cited) and all(c in rated for c in cited),
        named=any(index.names(sentence, c) for c in cited),
        unrated_named=tuple(unrated),
    )
