"""Golden app: word frequencies and text statistics on the command line.

The task list comes back in a ```json fence with a trailing comma after its last task, a
slip real models make; the lenient parser repairs it, so it validates on the first try.
"""

IDEA = (
    "a word statistics tool: read text from a file or stdin and print the most common words "
    "with their counts, plus line, word and character totals"
)

# A bare JSON object, no fence and no prose.
PRD = r'''{
  "project_name": "word_stats",
  "summary": "A command-line tool that reads text from a file or standard input and reports the most frequent words and simple totals.",
  "goals": [
    "Show the N most common words in a text with their counts",
    "Report line, word, character and unique-word totals",
    "Work on files and on piped input alike"
  ],
  "user_stories": [
    "As a writer, I want to see my most repeated words so that I can vary my vocabulary",
    "As a student, I want a word count of my essay so that I know whether it meets the limit",
    "As a shell user, I want to pipe text into the tool so that I can use it in pipelines"
  ],
  "requirements": [
    {"id": "R1", "text": "Words are case-insensitive runs of letters, digits and inner apostrophes; punctuation is ignored", "priority": "P0"},
    {"id": "R2", "text": "--top N prints the N most frequent words, most frequent first, ties in alphabetical order (default 10)", "priority": "P0"},
    {"id": "R3", "text": "Read from the file given as an argument, or from stdin when the argument is '-' or omitted", "priority": "P0"},
    {"id": "R4", "text": "--summary prints lines, words, characters, unique words and average word length", "priority": "P1"},
    {"id": "R5", "text": "--ignore-stopwords leaves out common English words such as 'the' and 'and'", "priority": "P2"},
    {"id": "R6", "text": "A missing file or a --top below 1 prints an error and exits with status 1", "priority": "P0"}
  ],
  "acceptance_criteria": [
    "'The cat and the hat' counts 'the' twice",
    "Ties are ordered alphabetically",
    "--top 2 prints exactly two words",
    "Text piped on stdin is counted the same as a file",
    "--summary on 'a b\\nc' reports 2 lines, 3 words and 5 characters",
    "A missing file exits with status 1 and an error on stderr"
  ],
  "anything_unclear": "Hyphenated words are split into their parts for now."
}'''

DESIGN = r'''Here's a simple design: the counting logic lives in one pure module so it can be tested without touching files, and the command line only handles input and output.

```json
{
  "implementation_approach": "word_stats/stats.py holds pure functions: tokenize() lowercases the text and finds words with a regular expression, count_words() builds a collections.Counter (optionally without stop words), top_words() sorts by count descending then word ascending, and analyze() returns a TextStats dataclass of totals. word_stats/__main__.py parses arguments with argparse, reads the file or sys.stdin, and prints the results. No third-party packages.",
  "files": [
    {"path": "word_stats/__init__.py", "purpose": "package marker re-exporting the public functions"},
    {"path": "word_stats/stats.py", "purpose": "tokenizing, counting, ranking and totals"},
    {"path": "word_stats/__main__.py", "purpose": "argparse command line reading a file or stdin"}
  ],
  "class_diagram": "classDiagram\n    class TextStats {\n        +int lines\n        +int words\n        +int characters\n        +int unique_words\n        +float average_word_length\n    }\n    class stats {\n        +STOP_WORDS frozenset~str~\n        +tokenize(text) list~str~\n        +count_words(text, ignore_stopwords) Counter\n        +top_words(counts, n) list~tuple~\n        +analyze(text) TextStats\n    }\n    stats ..> TextStats",
  "sequence_diagram": "sequenceDiagram\n    participant U as User\n    participant M as main\n    participant S as stats\n    U->>M: word_stats essay.txt --top 5\n    M->>M: read file or stdin\n    M->>S: count_words(text)\n    S-->>M: Counter\n    M->>S: top_words(counts, 5)\n    S-->>M: [(word, count)]\n    M-->>U: ranked list",
  "anything_unclear": ""
}
```

Let me know if you'd like the stop-word list to be configurable.'''

# Fenced JSON with a trailing comma after the last task (repaired by the lenient parser).
TASKS = r'''```json
{
  "tasks": [
    {
      "path": "word_stats/stats.py",
      "description": "STOP_WORDS frozenset; tokenize(text) returning lowercase words matched by [a-z0-9]+(?:'[a-z0-9]+)*; count_words(text, ignore_stopwords=False) -> Counter; top_words(counts, n) sorted by (-count, word) and raising ValueError when n < 1; TextStats dataclass and analyze(text) computing lines, words, characters, unique_words and average_word_length (0.0 for no words)",
      "depends_on": []
    },
    {
      "path": "word_stats/__init__.py",
      "description": "re-export tokenize, count_words, top_words, analyze and TextStats",
      "depends_on": ["word_stats/stats.py"]
    },
    {
      "path": "word_stats/__main__.py",
      "description": "main(argv=None) -> int: positional path (default '-'), --top N (default 10), --summary, --ignore-stopwords; read stdin for '-'; print 'count word' lines; on a missing file or --top < 1 print 'error: ...' to stderr and return 1",
      "depends_on": ["word_stats/stats.py"]
    },
  ]
}
```'''

STATS = r'''```python
"""Word counting and simple text statistics."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")

STOP_WORDS = frozenset(
    """a an and are as at be but by for from has have he her his i in is it its of on or
    she so that the their them they this to was we were what when which who will with you
    your""".split()
)


@dataclass(frozen=True)
class TextStats:
    """Totals for one text."""

    lines: int
    words: int
    characters: int
    unique_words: int
    average_word_length: float


def tokenize(text: str) -> list[str]:
    """Lowercase words in order; punctuation is dropped, inner apostrophes are kept."""
    return _WORD.findall(text.lower())


def count_words(text: str, ignore_stopwords: bool = False) -> Counter:
    """How often each word occurs in ``text``."""
    words = tokenize(text)
    if ignore_stopwords:
        words = [w for w in words if w not in STOP_WORDS]
    return Counter(words)


def top_words(counts: Counter, n: int = 10) -> list[tuple[str, int]]:
    """The ``n`` most frequent words, most frequent first, ties alphabetically."""
    if n < 1:
        raise ValueError("n must be at least 1")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]


def analyze(text: str) -> TextStats:
    """Line, word, character and unique-word totals plus the average word length."""
    words = tokenize(text)
    average = sum(len(w) for w in words) / len(words) if words else 0.0
    return TextStats(
        lines=len(text.splitlines()),
        words=len(words),
        characters=len(text),
        unique_words=len(set(words)),
        average_word_length=round(average, 2),
    )
```'''

INIT = r'''```python
"""Word frequencies and text statistics."""

from word_stats.stats import TextStats, analyze, count_words, tokenize, top_words

__all__ = ["TextStats", "analyze", "count_words", "tokenize", "top_words"]
```'''

MAIN = r'''Here is `word_stats/__main__.py`. It reads the whole input at once, which is fine for documents of ordinary size.

```python
"""Command line: python -m word_stats [PATH] [--top N] [--summary] [--ignore-stopwords]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from word_stats.stats import analyze, count_words, top_words


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="word_stats", description="Count the words in a text.")
    parser.add_argument("path", nargs="?", default="-", help="file to read, or - for stdin (default)")
    parser.add_argument("--top", type=int, default=10, help="how many words to show (default 10)")
    parser.add_argument("--summary", action="store_true", help="also print totals")
    parser.add_argument("--ignore-stopwords", action="store_true", help="leave out common English words")
    return parser


def read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.top < 1:
        print("error: --top must be at least 1", file=sys.stderr)
        return 1
    try:
        text = read_text(args.path)
    except OSError as exc:
        print(f"error: cannot read {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    counts = count_words(text, ignore_stopwords=args.ignore_stopwords)
    for word, count in top_words(counts, args.top):
        print(f"{count:>7} {word}")

    if args.summary:
        stats = analyze(text)
        print(f"lines: {stats.lines}")
        print(f"words: {stats.words}")
        print(f"characters: {stats.characters}")
        print(f"unique words: {stats.unique_words}")
        print(f"average word length: {stats.average_word_length:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
```'''

TEST_STATS = r'''```python
from collections import Counter

import pytest

from word_stats.stats import analyze, count_words, tokenize, top_words


def test_tokenize_ignores_case_and_punctuation():
    assert tokenize("Hello, world! HELLO... don't stop.") == ["hello", "world", "hello", "don't", "stop"]


def test_count_words_counts_repeats():
    counts = count_words("The cat and the hat")
    assert counts["the"] == 2
    assert counts["cat"] == 1


def test_count_words_can_ignore_stopwords():
    counts = count_words("The cat and the hat", ignore_stopwords=True)
    assert "the" not in counts
    assert "and" not in counts
    assert counts == Counter({"cat": 1, "hat": 1})


def test_top_words_orders_by_count_then_alphabetically():
    counts = Counter({"pear": 2, "apple": 2, "zebra": 5, "fig": 1})
    assert top_words(counts, 3) == [("zebra", 5), ("apple", 2), ("pear", 2)]


def test_top_words_rejects_n_below_one():
    with pytest.raises(ValueError):
        top_words(Counter({"a": 1}), 0)


def test_analyze_totals():
    stats = analyze("a b\nc")
    assert (stats.lines, stats.words, stats.characters, stats.unique_words) == (2, 3, 5, 3)
    assert stats.average_word_length == 1.0


def test_analyze_empty_text():
    stats = analyze("")
    assert stats.words == 0
    assert stats.average_word_length == 0.0
```'''

TEST_CLI = r'''Here are the tests for the command line; they use `capsys` for output and `monkeypatch` to feed stdin.

```python
import io

from word_stats.__main__ import main


def test_top_from_file(tmp_path, capsys):
    path = tmp_path / "text.txt"
    path.write_text("b a b c b a", encoding="utf-8")
    assert main([str(path), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [["3", "b"], ["2", "a"]]


def test_stdin_matches_file(tmp_path, capsys, monkeypatch):
    text = "One fish, two fish. Red fish, blue fish!"
    path = tmp_path / "fish.txt"
    path.write_text(text, encoding="utf-8")
    assert main([str(path)]) == 0
    from_file = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["-"]) == 0
    assert capsys.readouterr().out == from_file
    assert from_file.splitlines()[0].split() == ["4", "fish"]


def test_summary(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("a b\nc", encoding="utf-8")
    assert main([str(path), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "lines: 2" in out
    assert "words: 3" in out
    assert "characters: 5" in out


def test_missing_file_fails(tmp_path, capsys):
    assert main([str(tmp_path / "nope.txt")]) == 1
    assert "error" in capsys.readouterr().err


def test_top_below_one_fails(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("words here", encoding="utf-8")
    assert main([str(path), "--top", "0"]) == 1
    assert "--top" in capsys.readouterr().err
```'''

ANSWERS = {
    ("ProductManager", "WritePRD"): [PRD],
    ("Architect", "WriteDesign"): [DESIGN],
    ("ProjectManager", "WriteTasks"): [TASKS],
    ("Engineer", "WriteCode"): [STATS, INIT, MAIN],
    ("QaEngineer", "WriteTests"): [TEST_STATS, TEST_CLI],
}
