"""Search over a corpus's passages, through mgpt's retrieval memory.

Each passage is one message of a :class:`~mgpt.memory.retrieval.RetrievalMemory` (its text
indexed, the :class:`~.corpus.Passage` its payload), so the researcher ranks by BM25 or,
given an embedder, as the memory's ranking says (dense or hybrid)::

    index = await SourceIndex.build(corpus.passages())
    for passage in await index.search("sort a list by a key", 3): ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mgpt.agents.message import Message
from mgpt.memory.retrieval import Embed, RetrievalMemory

from mgpt.domains.pydocs.corpus import Passage

__all__ = ["SourceIndex"]


class SourceIndex:
    """Passages a researcher can search (``await index.search(query, k)``)."""

    def __init__(self, memory: RetrievalMemory, size: int):
        self.memory = memory
        #: how many passages it holds
        self.size = size

    @classmethod
    async def build(cls, passages: Sequence[Passage], *, embed: Embed | None = None, ranking: str | None = None,
                    store: str | Path | None = None) -> "SourceIndex":
        """An index of ``passages``. ``store`` keeps it (and an embedder's vectors) in a folder
        for the next run; a store built by another embedder is re-embedded."""
        memory = RetrievalMemory(store, embed=embed, ranking=ranking)
        if len(await memory.get()) != len(passages):
            await memory.clear()
            await memory.extend([Message(id=f"p{i}", content=p.text, payload=p, sent_from=p.page)
                                 for i, p in enumerate(passages)])
        return cls(memory, len(passages))

    async def search(self, query: str, k: int = 3) -> list[Passage]:
        """The ``k`` passages most relevant to ``query``, best first."""
        return [m.payload for m, _ in await self.memory.search(query, k)]  # type: ignore[misc]
