"""A document's checks: which blocks are examples, how they run, which citations hold."""

from __future__ import annotations

from mgpt.actions.document_checks import check_citations, extract_examples, find_citations, run_examples

DOC = '''Intro "a quote from the source" [1] and a bare mark [2].

```python
print(sorted([3, 1, 2]))
```

```
>>> sorted("bca")
['a', 'b', 'c']
```

```pycon
>>> 1 + 1
3
```

```bash
echo not python
```

```python
import sys; sys.exit("it broke")
```

Inline `x[1]` is code, not a citation. A short "two words" [1], and "a quote of nothing" [9].
'''

SOURCES = {1: "Here is   a Quote from the `source`, in full.", 2: "Other text."}


def test_examples_are_python_blocks_and_interactive_sessions():
    examples = extract_examples(DOC)
    assert [e.doctest for e in examples] == [False, True, True, False]
    assert "echo" not in "".join(e.code for e in examples)
    # Only comments show nothing; a block cut at the end of an answer is still an example.
    cut = "```python\n# just a comment\n```\n\nText.\n\n```python\nprint(1)\nprint(2"
    assert [e.code for e in extract_examples(cut)] == ["print(1)\nprint(2\n"]


def test_examples_run_in_the_sandbox_and_doctests_compare_their_output(tmp_path):
    runs = run_examples(DOC, tmp_path, section=2)
    assert [r.ok for r in runs] == [True, True, False, False]
    assert [r.path for r in runs] == ["examples/s2_1.py", "examples/s2_2.txt", "examples/s2_3.txt", "examples/s2_4.py"]
    assert "Expected:\n    3\nGot:\n    2" in runs[2].output and "it broke" in runs[3].output
    assert str(tmp_path) not in runs[3].output


def test_citations_are_checked_against_their_sources():
    assert find_citations(DOC) == [(1, "a quote from the source"), (2, ""), (1, "two words"),
                                   (9, "a quote of nothing")]
    checks = check_citations(DOC, SOURCES, section=3)
    assert [c.ok for c in checks] == [True, False, False, False] and checks[0].section == 3
    assert [c.problem.split(":")[0] for c in checks[1:]] == [
        "it quotes nothing", "the quotation has fewer than 3 words", "there is no source [9]"]
    wrong = check_citations('"the source in full" [1]', SOURCES)
    assert not wrong[0].ok and wrong[0].problem == "source [1] does not contain these words"
