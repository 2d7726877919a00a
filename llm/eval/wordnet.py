"""Find WordNet for METEOR without downloading anything.

nltk's METEOR matches synonyms through WordNet, which nltk normally fetches with
``nltk.download("wordnet")``. We never download, so we look in this order:

1. nltk's own data path (``NLTK_DATA``, ``~/nltk_data``, ...): a user who already has
   ``corpora/wordnet`` keeps using it.
2. A folder we build once from the Debian/Ubuntu ``wordnet-base`` and
   ``wordnet-sense-index`` packages (WordNet 3.0, the same version nltk ships). Their
   dict files live in ``/usr/share/wordnet`` (or ``$MGPT_WORDNET_DIR``, ``$WNSEARCHDIR``,
   ``$WNHOME/dict``); we copy them into ``<cache>/corpora/wordnet/`` and write the
   ``lexnames`` table that Debian leaves out. ``<cache>`` is ``$MGPT_NLTK_DATA`` or
   ``~/.cache/mgpt/nltk_data``.

When neither exists, :func:`load_wordnet` returns a stand-in whose ``synsets()`` is
empty, so METEOR still runs with exact and stem matching only; the result says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LEXNAMES",
    "WordNetSource",
    "NoWordNet",
    "build_nltk_wordnet",
    "find_debian_wordnet",
    "load_wordnet",
]

#: The 45 lexicographer files of WordNet 3.0 (``man 5 lexnames``): number, name and
#: syntactic category (1 noun, 2 verb, 3 adjective, 4 adverb). nltk reads this file to
#: name each synset's lexicographer file; Debian's packages do not install it.
LEXNAMES: tuple[tuple[int, str, int], ...] = (
    (0, "adj.all", 3),
    (1, "adj.pert", 3),
    (2, "adv.all", 4),
    (3, "noun.Tops", 1),
    (4, "noun.act", 1),
    (5, "noun.animal", 1),
    (6, "noun.artifact", 1),
    (7, "noun.attribute", 1),
    (8, "noun.body", 1),
    (9, "noun.cognition", 1),
    (10, "noun.communication", 1),
    (11, "noun.event", 1),
    (12, "noun.feeling", 1),
    (13, "noun.food", 1),
    (14, "noun.group", 1),
    (15, "noun.location", 1),
    (16, "noun.motive", 1),
    (17, "noun.object", 1),
    (18, "noun.person", 1),
    (19, "noun.phenomenon", 1),
    (20, "noun.plant", 1),
    (21, "noun.possession", 1),
    (22, "noun.process", 1),
    (23, "noun.quantity", 1),
    (24, "noun.relation", 1),
    (25, "noun.shape", 1),
    (26, "noun.state", 1),
    (27, "noun.substance", 1),
    (28, "noun.time", 1),
    (29, "verb.body", 2),
    (30, "verb.change", 2),
    (31, "verb.cognition", 2),
    (32, "verb.communication", 2),
    (33, "verb.competition", 2),
    (34, "verb.consumption", 2),
    (35, "verb.contact", 2),
    (36, "verb.creation", 2),
    (37, "verb.emotion", 2),
    (38, "verb.motion", 2),
    (39, "verb.perception", 2),
    (40, "verb.possession", 2),
    (41, "verb.social", 2),
    (42, "verb.stative", 2),
    (43, "verb.weather", 2),
    (44, "adj.ppl", 3),
)

# The dict files nltk's WordNetCorpusReader opens (its ``_FILES``), less ``lexnames``.
_DICT_FILES = (
    "cntlist.rev",
    "index.sense",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)

#: Where Debian and Ubuntu install WordNet 3.0's dict files.
DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")


@dataclass(frozen=True)
class WordNetSource:
    """The WordNet METEOR will use.

    ``reader`` is an nltk ``WordNetCorpusReader`` or a :class:`NoWordNet`; ``available``
    is False for the stand-in; ``location`` says where it was found (or why not).
    """

    reader: Any
    available: bool
    location: str


class NoWordNet:
    """A WordNet stand-in without synonyms: nltk's METEOR then matches exact words and
    Porter stems only (its synonym stage looks up ``wordnet.synsets(word)``)."""

    def synsets(self, *args: Any, **kwargs: Any) -> list:
        return []


def _lexnames_text() -> str:
    return "".join(f"{number:02d}\t{name}\t{category}\n" for number, name, category in LEXNAMES)


def _default_cache_dir() -> Path:
    env = os.environ.get("MGPT_NLTK_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mgpt" / "nltk_data"


def find_debian_wordnet(candidates: list[Path] | None = None) -> Path | None:
    """Return the first folder holding WordNet's dict files (``data.noun``,
    ``index.sense``, ...), or None.

    Without ``candidates``: ``$MGPT_WORDNET_DIR``, ``$WNSEARCHDIR``, ``$WNHOME/dict``,
    then ``/usr/share/wordnet``.
    """
    if candidates is None:
        candidates = []
        for var in ("MGPT_WORDNET_DIR", "WNSEARCHDIR"):
            if os.environ.get(var):
                candidates.append(Path(os.environ[var]))
        if os.environ.get("WNHOME"):
            candidates.append(Path(os.environ["WNHOME"]) / "dict")
        candidates.append(DEBIAN_WORDNET_DIR)
    for folder in candidates:
        folder = Path(folder).expanduser()
        if all((folder / name).is_file() for name in _DICT_FILES):
            return folder
    return None


def build_nltk_wordnet(source: Path, nltk_data: Path | None = None) -> Path:
    """Make ``<nltk_data>/corpora/wordnet/`` from WordNet dict files in ``source``.

    The dict files are copied (about 37 MB, once): nltk refuses symlinks and hard links
    out of its data folder, and files that other accounts may write. The ``lexnames``
    table is written from :data:`LEXNAMES`. Safe to call again: existing entries are
    kept. Returns the ``nltk_data`` root, ready for ``nltk.data.path``.
    """
    import shutil

    root = Path(nltk_data) if nltk_data is not None else _default_cache_dir()
    target = root / "corpora" / "wordnet"
    created = [folder for folder in (root, target.parent, target) if not folder.exists()]
    target.mkdir(parents=True, exist_ok=True)
    for folder in {*created, target.parent, target}:
        folder.chmod(0o755)  # nltk will not read from folders others may write
    source = Path(source).resolve()
    missing = [name for name in _DICT_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{source} is not a WordNet dict folder: it lacks {', '.join(missing)}. "
            "Install the Debian packages wordnet-base and wordnet-sense-index."
        )
    for name in _DICT_FILES:
        link = target / name
        if link.is_symlink():  # nltk rejects symlinks out of its root; replace them
            link.unlink()
        if link.exists():
            continue
        # Copy then rename, so a concurrent reader never sees half a file.
        tmp = target / f".{name}.{os.getpid()}"
        shutil.copyfile(source / name, tmp)
        tmp.chmod(0o644)
        tmp.replace(link)
    lexnames = target / "lexnames"
    if not lexnames.exists():
        tmp = target / f".lexnames.{os.getpid()}"
        tmp.write_text(_lexnames_text(), encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(lexnames)
    return root


def _open_reader(root: Any) -> Any:
    """An English-only nltk WordNet reader on ``root`` (a path inside nltk's data path)."""
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            # nltk builds a WordNet-3.0 offset map for the Open Multilingual Wordnet by
            # reading index.sense twice (seconds); METEOR here is English only.
            return None

    with warnings.catch_warnings():
        # Without the Open Multilingual Wordnet nltk warns that other languages are
        # unavailable; that is expected here.
        warnings.simplefilter("ignore")
        return EnglishWordNet(root, None)


def _nltk_own_wordnet() -> Any | None:
    """nltk's ``corpora/wordnet`` from its usual data path, as a path pointer."""
    import nltk

    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            return nltk.data.find(resource)
        except LookupError:
            continue
    return None


# Loaded readers by WordNet folder: loading takes seconds, so once per process.
_READERS: dict[str, Any] = {}


def _reader(key: str, root: Any) -> Any:
    if key not in _READERS:
        _READERS[key] = _open_reader(root)
    return _READERS[key]


def _find_and_load(use_nltk_data: bool, source: Path | None, nltk_data: Path | None) -> WordNetSource:
    import nltk

    if use_nltk_data:
        pointer = _nltk_own_wordnet()
        if pointer is not None:
            key = os.path.realpath(pointer.path) if hasattr(pointer, "path") else repr(pointer)
            return WordNetSource(_reader(key, pointer), True, f"nltk data: {key}")
    folder = find_debian_wordnet([source] if source is not None else None)
    if folder is None:
        return WordNetSource(
            NoWordNet(),
            False,
            "WordNet not found (install the Debian packages wordnet-base and "
            "wordnet-sense-index, or set MGPT_WORDNET_DIR to a WordNet 3.0 dict folder)",
        )
    root = build_nltk_wordnet(folder, nltk_data)
    # nltk only reads corpora under its data path; this also lets plain
    # ``nltk.corpus.wordnet`` find the folder.
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    wordnet_dir = str(root / "corpora" / "wordnet")
    return WordNetSource(
        _reader(os.path.realpath(wordnet_dir), wordnet_dir), True, f"built from {folder} in {root}"
    )


def load_wordnet(
    *,
    enabled: bool = True,
    source: Path | None = None,
    nltk_data: Path | None = None,
    use_nltk_data: bool = True,
) -> WordNetSource:
    """Find WordNet as the module docstring describes, load it once, and return it.

    ``enabled=False`` returns the :class:`NoWordNet` stand-in straight away (METEOR with
    exact and stem matching only). ``source`` is a WordNet dict folder to use instead of
    the default search; ``nltk_data`` is where to build the nltk folder;
    ``use_nltk_data=False`` skips nltk's own data path. Loading takes a few seconds the
    first time in a process.
    """
    if not enabled:
        return WordNetSource(NoWordNet(), False, "WordNet switched off")
    return _find_and_load(
        use_nltk_data,
        Path(source) if source is not None else None,
        Path(nltk_data) if nltk_data is not None else None,
    )
