"""The Python documentation as a corpus (Debian's ``python3.11-doc``, read where it is
installed): pages and passages (:mod:`.corpus`), the HOWTOs with their API names and the
leak guard (:mod:`.howtos`), and a search over the passages (:mod:`.search`)."""

from mgpt.domains.pydocs.corpus import DEBIAN_SOURCES, Corpus, CorpusError, Page, Passage, load_corpus
from mgpt.domains.pydocs.rst import rst_to_text

__all__ = ["DEBIAN_SOURCES", "Corpus", "CorpusError", "Page", "Passage", "load_corpus", "rst_to_text"]
