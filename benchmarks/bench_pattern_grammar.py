"""What a pattern string's free text costs per token in xgrammar, written three ways.

    python benchmarks/bench_pattern_grammar.py [--model DIR]

A design's diagram is a JSON string that starts with ``classDiagram`` and may go on over
several lines (escapes). :func:`mgpt.llm.local.constrained.pattern_rule` writes the free text after
the keyword as runs of plain characters between escape pieces. This times, over the same
mermaid text, the token-mask fill plus accept per token for that form, for the obvious
``(char | escape){0,1000}`` (which stalled a whole run), and for an unbounded right-recursive
rule. ``--model`` is a Hugging Face folder whose tokenizer is used (default: the embedded
model in ``$MGPT_HOME``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

PLAIN = '[^\\0-\\x1f\\"\\\\]'
ESCAPE = '"\\\\" [\\"\\\\/bfnrt]'
KEYWORD = 'Regex("classDiagram", json_string=true)'
FORMS = {
    "(char or escape){0,1000}": f'root ::= "\\"" {KEYWORD} ({PLAIN} | {ESCAPE}){{0,1000}} "\\""\n',
    "runs between escapes (mgpt)": None,  # filled from pattern_rule below
    "right-recursive, unbounded": f'root ::= "\\"" {KEYWORD} tail\ntail ::= "\\"" | {PLAIN} tail | {ESCAPE} tail\n',
}
TEXT = (
    "classDiagram\n  class Todo {\n    +str title\n    +bool done\n  }\n  class TodoList {\n"
    "    +add(title) Todo\n    +items() list\n  }\n  TodoList --> Todo"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    home = Path(os.environ.get("MGPT_HOME") or Path.home() / ".cache" / "mgpt")
    parser.add_argument("--model", type=Path, default=home / "models" / "smollm2-135m-instruct")
    args = parser.parse_args()

    import xgrammar as xgr
    from transformers import AutoTokenizer

    from mgpt.llm.local.constrained import JSON_CHAR_RULES, pattern_rule

    FORMS["runs between escapes (mgpt)"] = f'root ::= "\\"" {pattern_rule("^classDiagram")} "\\""\n{JSON_CHAR_RULES}'
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[tokenizer.eos_token_id])
    compiler = xgr.GrammarCompiler(info, max_threads=1)
    ids = tokenizer.encode(json.dumps(TEXT))
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"load average {'%.1f %.1f %.1f' % os.getloadavg()}; {len(ids)} tokens of mermaid text")
    print("| free text written as | compile s | mask + accept ms/token (mean) |\n|---|---:|---:|")
    for name, grammar in FORMS.items():
        started = time.perf_counter()
        compiled = compiler.compile_grammar(grammar)
        compile_s = time.perf_counter() - started
        matcher = xgr.GrammarMatcher(compiled)
        started = time.perf_counter()
        for token in ids:
            matcher.fill_next_token_bitmask(bitmask)
            if not matcher.accept_token(token):
                raise SystemExit(f"{name}: the grammar refused the text")
        per_token = (time.perf_counter() - started) / len(ids) * 1000
        print(f"| {name} | {compile_s:.2f} | {per_token:.2f} |")


if __name__ == "__main__":
    main()
