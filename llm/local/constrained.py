"""Constrained decoding: a local model's answer held to a JSON schema or a code shape.

Small models break formats: they loop inside a string, stop before the closing brace, or
copy the format example back. Here the model still picks every token, but the tokens that
would leave the shape are masked out before it picks, so the answer always parses.

The API is independent of Hugging Face ``generate`` so that any decode loop (a batched
server included) can use it, one :class:`Matcher` per sequence::

    grammar = compile_schema(tokenizer, PRD.model_json_schema())   # or compile_output(...)
    matcher = grammar.matcher()
    while not matcher.is_finished():
        logits = next_token_logits()                     # [vocab] or [1, vocab], any device
        matcher.mask_logits(logits, remaining=budget_left)   # in place: -inf where forbidden
        token = pick(logits)                             # greedy or sampled, as usual
        matcher.advance(token)

A :class:`Grammar` is compiled once per (tokenizer, format) and cached; it is read-only and
shared by any number of matchers. In a batch, give each row its own matcher and call
``matcher.mask_logits(logits[i], remaining=...)`` per row (a row view is masked in place);
``allowed_mask(device)`` gives the bare bool mask instead, and ``can_stop()`` says whether
the text so far is already a complete answer. ``remaining`` (tokens left in the budget) lets the matcher
close the answer in time: once the budget gets within :attr:`Matcher.reserve` tokens of the
shortest way to finish, it forces the tokens that close open strings, lists, objects and
fences (the model's own choice breaks ties), so a model that would ramble until
``max_new_tokens`` still ends with a complete document.

JSON schemas are bounded before compiling (:func:`bounded_schema`): string fields get a
``maxLength`` and arrays a ``maxItems`` unless the schema already sets one, because a small
model otherwise fills one string until the budget runs out. Whitespace between JSON tokens
is not allowed (compact separators), which saves tokens and rules out whitespace loops.

A string's ``pattern`` keeps its JSON Schema meaning (a regex *search* in the decoded value,
as pydantic and every validator read it), so a schema can carry a validator's check to the
grammar: ``"^classDiagram"`` means "starts with classDiagram, then anything", escapes such as
``\\n`` included. xgrammar alone would full-match the pattern and allow no escape in the
string, which makes a multi-line value that starts with a keyword impossible to express
(:func:`pattern_rule` and :func:`json_schema_grammar` do the translation).

The grammar engine is xgrammar, chosen by measurement on our CPU against llguidance and
lm-format-enforcer (docs/benchmarks.md, "Constrained decoding"). It is imported only here,
inside the functions that need it; install it with ``pip install 'mgpt[local]'``, or on a
CPU-only machine ``pip install --no-deps xgrammar apache-tvm-ffi`` (its triton dependency is
only for GPUs and weighs a gigabyte).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import weakref
from typing import Any, Callable

from mgpt.llm.backends.base import OutputFormat
from mgpt.llm.errors import ModelConfigError

__all__ = [
    "ConstraintError",
    "Grammar",
    "JSON_CHAR_RULES",
    "Matcher",
    "MatcherConstraint",
    "MAX_ITEMS",
    "MAX_STRING",
    "bounded_schema",
    "compile_output",
    "compile_schema",
    "format_grammar",
    "json_schema_grammar",
    "pattern_rule",
]

#: Default bounds added by :func:`bounded_schema`: long enough for a mermaid diagram or a
#: paragraph, short enough that a looping string ends in seconds, not at the token budget.
MAX_STRING = 1000
MAX_ITEMS = 16

#: A ``## path`` line that may end here (it has an extension).
_PATH_END = re.compile(r"\.[A-Za-z][A-Za-z0-9]*$")

#: Extra tokens kept in hand beyond twice the shortest complete answer before closing starts.
_RESERVE_MARGIN = 16
#: The model's best tokens also considered when closing (besides the structural ones).
_CLOSING_TOP_K = 64
#: Bound on the closing walk that measures the shortest answer.
_MAX_SIM_STEPS = 4096


class ConstraintError(ModelConfigError):
    """Constrained decoding cannot run: the grammar library is missing, a schema does not
    compile, or the token budget is too small for the shortest valid answer."""


def _require_xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError:
        raise ConstraintError(
            "Constrained decoding needs xgrammar: pip install 'mgpt[local]' (CPU-only: "
            "pip install --no-deps xgrammar apache-tvm-ffi)."
        ) from None
    return xgrammar


def bounded_schema(schema: dict[str, Any], *, max_string: int = MAX_STRING, max_items: int = MAX_ITEMS) -> dict[str, Any]:
    """A copy of ``schema`` where every free string has a ``maxLength`` and every array a
    ``maxItems`` (bounds already there are kept), and every object with properties
    forbids extra keys. Strings held by ``enum``, ``const``, ``pattern`` or ``format`` are
    bounded by those already."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "string" and not any(k in node for k in ("maxLength", "enum", "const", "pattern", "format")):
                node["maxLength"] = max_string
            if kind == "array" and "maxItems" not in node:
                node["maxItems"] = max_items
            if kind == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def format_grammar(output: OutputFormat) -> str:
    """The EBNF grammar (xgrammar's dialect) of a code-shaped :class:`OutputFormat`.

    ``code_block``: ``` ```lang ``, lines, ```` ``` ````, nothing else. ``files``: up to 16
    times a ``## path`` line (a relative path with an extension that starts with a letter
    or ``_``, so that :func:`mgpt.llm.parsing.extract_files` reads it as a path:
    ``1.1.1.x`` is not one; or one of ``output.paths`` when given) and such a block.
    """
    lang = json.dumps(output.language)  # a quoted EBNF string literal
    # A body line is anything that does not start with ``` (which would close the fence).
    common = (
        'line ::= ([^`\\n] [^\\n]* | "`" ([^`\\n] [^\\n]*)? | "``" ([^`\\n] [^\\n]*)?)? "\\n"\n'
        f'block ::= "```" {lang} "\\n" line* "```"\n'
    )
    if output.kind == "code_block":
        return "root ::= block\n" + common
    if output.kind == "files":
        path = '[A-Za-z_] [A-Za-z0-9_./-]{0,100} "." [A-Za-z] [A-Za-z0-9]{0,7}'
        if output.paths:
            if any(not p or any(c in p for c in "\r\n") for p in output.paths):
                raise ValueError("a files format's paths must be non-empty single lines")
            path = " | ".join(json.dumps(p, ensure_ascii=False) for p in sorted(set(output.paths)))
        return (
            'root ::= file ("\\n" file){0,15}\n'
            'file ::= "## " path "\\n" block "\\n"\n'
            f"path ::= {path}\n" + common
        )
    raise ValueError(f"no grammar for output kind {output.kind!r}")


# -- string patterns with JSON Schema's meaning ----------------------------------------------

_PLAIN_RUN = 80
_PLAIN = '[^\\0-\\x1f\\"\\\\]'
#: Free JSON string text after a pattern's match: a run of plain characters (anything but
#: the quote, the backslash and control characters), then pieces that each start with a short
#: escape (``\\n``, ``\\"``...; no ``\\uXXXX``, which could write a lone surrogate that
#: strict JSON parsers refuse) followed by another run. Written this way, not as a repeated
#: one-character rule, because xgrammar fills the token mask of ``(char | escape){0,1000}``
#: in about a second per token on this CPU, and of this shape in a fraction of a millisecond.
#: The rules go after a grammar that uses :func:`pattern_rule`.
JSON_CHAR_RULES = f'mgpt_jpiece ::= "\\\\" [\\"\\\\/bfnrt] {_PLAIN}{{0,{_PLAIN_RUN}}}\n'
#: Keywords beside which a pattern is left to xgrammar (its full-match reading is stricter
#: than JSON Schema's search, so it stays sound, just narrower).
_PATTERN_KEEP = frozenset(("minLength", "maxLength", "format", "enum", "const"))


def _pattern_parts(pattern: str) -> tuple[bool, str, bool, bool] | None:
    """``(anchored at the start, body, anchored at the end, top-level alternation)``, or
    None when an anchor sits anywhere but the two ends (or brackets do not balance)."""
    start = pattern.startswith("^")
    end = False
    body_end = len(pattern)
    depth, in_class, alternation = 0, False, False
    i = 1 if start else 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # a ] first in a class is literal
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            alternation = True
        elif ch == "^":
            return None
        elif ch == "$":
            if i != len(pattern) - 1 or depth:
                return None
            end, body_end = True, i
        i += 1
    if in_class or depth:
        return None
    if alternation and (start or end):
        return None  # ^a|b: the anchor binds to one branch only
    return start, pattern[1 if start else 0 : body_end], end, alternation


def pattern_rule(pattern: str, max_length: int = MAX_STRING) -> str | None:
    """The EBNF (xgrammar's dialect) of a JSON string's content, between the quotes, whose
    decoded value matches ``pattern`` in JSON Schema's sense: a regex *search*.

    The matched part is xgrammar's ``Regex(..., json_string=true)``, which writes only
    characters that need no escape, so the decoded text holds exactly what the regex
    matched; an unanchored end is followed by about ``max_length`` free JSON characters,
    escapes (``\\n``) included, in runs of at most 80 between escapes. So
    ``^classDiagram`` is a string that starts with classDiagram and may go on over several
    lines. The match always starts the string (an
    unanchored start is read as anchored): narrower than a search, so still sound, and it
    keeps the shortest answer short (free text before the match would give the budget's
    closing walk nothing to aim at). None when the pattern puts an anchor anywhere but at
    its ends: the caller then leaves it to xgrammar's full match (narrower, still sound).
    """
    parts = _pattern_parts(pattern)
    if parts is None:
        return None
    start, body, end, alternation = parts
    # About max_length characters: runs of up to _PLAIN_RUN between escapes (a diagram's lines).
    free = f"{_PLAIN}{{0,{_PLAIN_RUN}}} mgpt_jpiece{{0,{max(1, max_length // _PLAIN_RUN)}}}"
    if not body:
        return '""' if end else free
    if alternation:
        body = f"(?:{body})"
    pieces = [f"Regex({json.dumps(body, ensure_ascii=False)}, json_string=true)"]
    if not end:
        pieces.append(free)
    return "(" + " ".join(pieces) + ")"


def json_schema_grammar(schema: dict[str, Any], *, max_string: int = MAX_STRING) -> str | None:
    """The EBNF grammar of ``schema`` (compact JSON) with every string ``pattern`` read as
    JSON Schema reads it (:func:`pattern_rule`); None when there is no pattern to translate
    (then xgrammar compiles the schema directly, to the same grammar).

    xgrammar writes the grammar of everything else; each translatable pattern is swapped
    for a placeholder first, and its rule put in place of the placeholder's in that text.
    """
    xgr = _require_xgrammar()
    schema = copy.deepcopy(schema)
    rules: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if node.get("type") == "string" and isinstance(pattern, str) and not _PATTERN_KEEP & node.keys():
                rule = pattern_rule(pattern, max_string)
                if rule is not None:
                    key = f"mgptpattern{len(rules)}"
                    rules[key] = rule
                    node["pattern"] = key
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    if not rules:
        return None
    text = str(
        xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=True)
    )
    for key, rule in rules.items():
        placeholder = f'Regex("{key}", json_string=true)'
        if placeholder not in text:
            raise ConstraintError(
                f"xgrammar wrote the pattern placeholder {key} in a form mgpt does not know; "
                "pin xgrammar to the version in pyproject.toml"
            )
        text = text.replace(placeholder, rule)
    return text + "\n" + JSON_CHAR_RULES


# -- progress: how far an answer is from being closed -----------------------------------------
#
# Used only when the budget is nearly spent: among the allowed tokens, pick the one after
# which the answer is closest to done. Scores are tuples, lower is better: (distance after
# the token, minus its structural characters, minus its length).


class _JsonProgress:
    """Tracks open strings, objects and arrays in JSON text."""

    structural = frozenset('"{}[],:')

    def __init__(self) -> None:
        self.state: tuple[str, bool, bool] = ("", False, False)  # (open brackets, in string, escape)
        self.seen: set[str] = set()  # characters written in the open string

    @staticmethod
    def _feed(state: tuple[str, bool, bool], text: str) -> tuple[str, bool, bool]:
        stack, in_string, escape = state
        for ch in text:
            if in_string:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "{[":
                stack += ch
            elif ch in "}]":
                stack = stack[:-1]
        return stack, in_string, escape

    def advance(self, text: str) -> None:
        for ch in text:
            in_string = self.state[1]
            self.state = self._feed(self.state, ch)
            if not in_string and self.state[1]:
                self.seen = set()  # a string opens: nothing written in it yet
            elif self.state[1]:
                self.seen.add(ch)

    def distance(self, text: str) -> int:
        stack, in_string, escape = self._feed(self.state, text)
        return len(stack) + in_string + escape

    def repeats(self, text: str) -> bool:
        """Whether ``text`` writes, inside the open string, a character the string already
        holds. Closing prefers new characters: a pattern such as ``[a-z]+\\.py`` then runs
        through its alphabet to the part that ends it instead of repeating one letter."""
        if not self.state[1]:
            return False
        seen = set(self.seen)
        state = self.state
        for ch in text:
            state = self._feed(state, ch)
            if not state[1]:
                return False
            if ch in seen:
                return True
            seen.add(ch)
        return False


class _FenceProgress:
    """Tracks fenced blocks: inside a block the distance is what the closing ``` needs;
    outside, what the ``## path`` line still needs before it can end."""

    structural = frozenset("\n`.")

    def __init__(self) -> None:
        self.state: tuple[bool, str] = (False, "")  # (inside a block, current line so far)

    @staticmethod
    def _feed(state: tuple[bool, str], text: str) -> tuple[bool, str]:
        inside, line = state
        for ch in text:
            if ch == "\n":
                if line.startswith("```"):
                    inside = not inside
                line = ""
            elif len(line) < 200:
                line += ch
        return inside, line

    def advance(self, text: str) -> None:
        self.state = self._feed(self.state, text)

    def distance(self, text: str) -> int:
        inside, line = self._feed(self.state, text)
        if inside:
            if line.startswith("```"):
                return 0
            return 3 - len(line) if "```".startswith(line) else 4
        if not line:
            return 0
        if line.startswith("```"):
            return 8  # an opening fence: its block is still to come
        if _PATH_END.search(line):
            return 1
        return 2 if line.endswith(".") else 3


# -- compiled grammars and per-sequence matchers ---------------------------------------------


class _Vocab:
    """What the grammar engine needs to know about one tokenizer (built once, cached)."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: tuple[int, ...]):
        xgr = _require_xgrammar()
        self.vocab_size = vocab_size
        self.stop_token_ids = stop_token_ids
        self.info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_token_ids)
        )
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1)
        # Each token's text, for the closing policy (bytes: a token may be half a character).
        self.texts = [b.decode("utf-8", errors="ignore") for b in self.info.decoded_vocab]
        self.texts += [""] * (vocab_size - len(self.texts))
        self.ids_by_text: dict[str, list[int]] = {}
        for token_id, text in enumerate(self.texts):
            if text:
                self.ids_by_text.setdefault(text, []).append(token_id)
        self.grammars: dict[str, Grammar] = {}
        self._structural: dict[frozenset, Any] = {}
        self.lock = threading.Lock()

    def closing_mask(self, chars: frozenset) -> Any:
        """Bool [vocab]: the tokens the closing policy looks at beyond the model's top ones:
        those of at most 2 characters, and those made only of ``chars`` and spaces."""
        import torch

        if chars not in self._structural:
            flags = [0 < len(t) <= 2 or (t.strip() != "" and all(c in chars or c == " " for c in t)) for t in self.texts]
            for stop in self.stop_token_ids:
                if stop < len(flags):
                    flags[stop] = True
            self._structural[chars] = torch.tensor(flags, dtype=torch.bool)
        return self._structural[chars]


_VOCABS: "weakref.WeakKeyDictionary[Any, dict[tuple, _Vocab]]" = weakref.WeakKeyDictionary()
_VOCABS_LOCK = threading.Lock()


def _vocab(tokenizer: Any, vocab_size: int | None, stop_token_ids: list[int] | None) -> _Vocab:
    size = vocab_size or len(tokenizer)
    if stop_token_ids is None:
        eos = getattr(tokenizer, "eos_token_id", None)
        stop_token_ids = [] if eos is None else [eos]
    if not stop_token_ids:
        raise ConstraintError(
            "Constrained decoding needs an end-of-sequence token to stop on, and this tokenizer has none."
        )
    key = (size, tuple(int(t) for t in stop_token_ids))
    with _VOCABS_LOCK:
        try:
            per_tokenizer = _VOCABS.setdefault(tokenizer, {})
        except TypeError:  # not weak-referenceable: no cache
            per_tokenizer = {}
        if key not in per_tokenizer:
            per_tokenizer[key] = _Vocab(tokenizer, size, key[1])
        return per_tokenizer[key]


class Grammar:
    """A compiled format for one tokenizer. Read-only; share it across sequences."""

    def __init__(
        self, compiled: Any, vocab: _Vocab, progress: Callable[[], Any], label: str, *, ban_controls: bool = False
    ):
        self.compiled = compiled
        self.vocab = vocab
        self.label = label
        self._progress = progress
        self._min_tokens: int | None = None
        self._ban_controls = ban_controls
        self._banned: dict[str, Any] = {}

    def banned(self, device: Any) -> Any:
        """Bool [vocab] of tokens forbidden on top of the grammar, or None.

        For JSON: tokens holding a control character. xgrammar lets raw control
        characters into strings, which JSON (and ``json.loads``) forbids; compact JSON
        has no whitespace outside strings, so no valid answer needs such a token.
        """
        if not self._ban_controls:
            return None
        key = str(device)
        if key not in self._banned:
            import torch

            flags = [any(ord(c) < 0x20 for c in text) for text in self.vocab.texts]
            self._banned[key] = torch.tensor(flags, dtype=torch.bool).to(device)
        return self._banned[key]

    @property
    def vocab_size(self) -> int:
        return self.vocab.vocab_size

    def matcher(self) -> "Matcher":
        """A fresh matcher: one per sequence being decoded."""
        return Matcher(self)

    @property
    def min_tokens(self) -> int:
        """Tokens in the shortest answer the closing policy finds (computed once)."""
        if self._min_tokens is None:
            matcher = self.matcher()
            steps = 0
            while not matcher.is_finished():
                if steps >= _MAX_SIM_STEPS:
                    raise ConstraintError(f"the format {self.label} has no answer shorter than {_MAX_SIM_STEPS} tokens")
                token = matcher._closing_token(matcher._allowed_cpu(), None)
                matcher.advance(token)
                steps += 1
            self._min_tokens = steps
        return self._min_tokens

    @property
    def reserve(self) -> int:
        """Tokens left in the budget at which the matcher starts closing the answer."""
        return 2 * self.min_tokens + _RESERVE_MARGIN


class Matcher:
    """Where one sequence stands in a :class:`Grammar`.

    :meth:`allowed_mask` / :meth:`mask_logits` say which tokens may come next,
    :meth:`advance` takes the token that was picked, :meth:`is_finished` says whether a
    stop token has been taken (the answer is complete). Not thread-safe: one per sequence.
    """

    def __init__(self, grammar: Grammar):
        xgr = _require_xgrammar()
        self.grammar = grammar
        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(grammar.compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, grammar.vocab_size)
        self._progress = grammar._progress()
        self._filled = False  # whether _bitmask holds the mask for the current position
        self.tokens: list[int] = []

    # -- the decode-loop API -------------------------------------------------------------

    def allowed_mask(self, device: Any = None) -> Any:
        """Bool tensor [vocab] on ``device`` (default CPU): True for the tokens that may come next."""
        self._fill()
        allowed = _unpack(self._bitmask, self.grammar.vocab_size, device or "cpu")
        banned = self.grammar.banned(allowed.device)
        return allowed if banned is None else allowed & ~banned

    def mask_logits(self, logits: Any, *, remaining: int | None = None) -> Any:
        """Set forbidden tokens' logits to -inf, in place, on the logits' own device.

        ``logits`` is [vocab] or [1, vocab] (a wider last dimension, from a padded
        embedding, is fine: the extra ids are forbidden). With ``remaining`` (tokens left
        in the budget, this one included) at or below :attr:`reserve`, every token but
        the one that best closes the answer is masked too. Returns ``logits``.
        """
        row = logits if logits.dim() == 2 else logits.unsqueeze(0)  # views: edits land in logits
        size = self.grammar.vocab_size
        if row.shape[-1] < size:
            raise ConstraintError(
                f"logits have {row.shape[-1]} entries but the grammar was compiled for {size} tokens"
            )
        allowed = self.allowed_mask(row.device)
        if remaining is not None and remaining <= self.reserve:
            token = self._closing_token(allowed.cpu(), row[0, :size])
            row.fill_(float("-inf"))
            row[:, token] = 0.0
            return logits
        row[:, :size].masked_fill_(~allowed[:size], float("-inf"))
        row[:, size:] = float("-inf")
        return logits

    def advance(self, token_id: int) -> None:
        """Take the token the model picked; a token the grammar forbids is a ConstraintError."""
        token_id = int(token_id)
        texts = self.grammar.vocab.texts
        if not 0 <= token_id < len(texts) or not self._matcher.accept_token(token_id):
            shown = texts[token_id] if 0 <= token_id < len(texts) else "out of range"
            raise ConstraintError(
                f"token {token_id} ({shown!r}) does not fit the "
                f"format {self.grammar.label}; was the mask applied before picking?"
            )
        self._filled = False
        self.tokens.append(token_id)
        self._progress.advance(texts[token_id])

    def is_finished(self) -> bool:
        """A stop token was taken: the answer is complete and nothing may follow."""
        return self._matcher.is_terminated()

    def can_stop(self) -> bool:
        """The text so far is a complete answer (a stop token is allowed next)."""
        return self._matcher.is_completed()

    @property
    def reserve(self) -> int:
        return self.grammar.reserve

    # -- internals ------------------------------------------------------------------------

    def _fill(self) -> None:
        if not self._filled:
            self._matcher.fill_next_token_bitmask(self._bitmask)
            self._filled = True

    def _allowed_cpu(self) -> Any:
        return self.allowed_mask("cpu")

    def _closing_token(self, allowed: Any, logits: Any) -> int:
        """The allowed token after which the answer is closest to complete.

        A stop token wins outright. Where the grammar forces the next characters (a key
        name, a fence), the allowed token covering most of them. Otherwise the candidates
        (allowed short or purely structural tokens, plus the model's top allowed tokens)
        are ranked by the distance left after them, then (in a JSON string) not repeating a
        character the string holds, then fewer content characters, then shorter, then the
        model's preference.
        """
        import torch

        vocab = self.grammar.vocab
        texts = vocab.texts
        for stop in vocab.stop_token_ids:
            if stop < allowed.shape[0] and allowed[stop]:
                return stop
        forced = self._matcher.find_jump_forward_string()
        candidates = allowed & vocab.closing_mask(self._progress.structural)
        rank: dict[int, int] = {}
        if logits is not None:
            scores = logits.detach().float().cpu().masked_fill(~allowed, float("-inf"))
            k = min(_CLOSING_TOP_K, int(allowed.sum()))
            if k:
                top = torch.topk(scores, k).indices.tolist()
                rank = {t: i for i, t in enumerate(top)}
                candidates[top] = True
                candidates &= allowed
        for end in range(min(len(forced), 48), 0, -1):  # the longest allowed prefix of it
            for t in vocab.ids_by_text.get(forced[:end], ()):
                if allowed[t]:
                    return t
        ids = candidates.nonzero().flatten().tolist() or allowed.nonzero().flatten().tolist()
        if not ids:
            raise ConstraintError(f"no token can continue the format {self.grammar.label}")
        structural = self._progress.structural
        progress = self._progress

        def score(t: int) -> tuple:
            text = texts[t]
            content = sum(c not in structural for c in text)
            repeats = progress.repeats(text) if isinstance(progress, _JsonProgress) else False
            return (progress.distance(text), repeats, content, len(text), rank.get(t, len(rank)), t)

        return min(ids, key=score)


_SHIFTS: dict[str, Any] = {}


def _unpack(bitmask: Any, vocab_size: int, device: Any) -> Any:
    """xgrammar's packed int32 bitmask [1, ceil(V/32)] as a bool tensor [V] on ``device``.

    Plain numpy/torch, so it works wherever the logits live (xgrammar's own GPU kernels
    need triton or a compiler, which a CPU install does not have): on the CPU numpy unpacks
    the bits (about 30 us for 49k tokens); elsewhere the packed words (4 bytes per 32
    tokens) travel to the device and are unpacked there.
    """
    import torch

    if torch.device(device).type == "cpu":
        import numpy as np

        bits = np.unpackbits(bitmask[0].numpy().view(np.uint8), bitorder="little")[:vocab_size]
        return torch.from_numpy(bits).bool()
    key = str(device)
    if key not in _SHIFTS:
        _SHIFTS[key] = torch.arange(32, dtype=torch.int32, device=device)
    words = bitmask[0].to(device, non_blocking=True)
    return ((words.unsqueeze(-1) >> _SHIFTS[key]) & 1).flatten()[:vocab_size].bool()


# -- compiling ------------------------------------------------------------------------------


class MatcherConstraint:
    """One request's grammar matcher as the engine's constraint hook.

    Called with the tokens so far it returns the allowed-token mask; the engine prefers
    :meth:`mask_logits`, which also closes the answer (strings, objects) before the token
    budget runs out, so a small model's JSON still parses at ``max_tokens``.
    """

    def __init__(self, matcher: Any):
        self.matcher = matcher

    def _catch_up(self, generated: list[int]) -> None:
        for token in generated[len(self.matcher.tokens) :]:  # the tokens picked since the last call
            self.matcher.advance(token)

    def __call__(self, generated: list[int]) -> Any:
        self._catch_up(generated)
        return self.matcher.allowed_mask()

    def mask_logits(self, row: Any, generated: list[int], remaining: int) -> None:
        self._catch_up(generated)
        self.matcher.mask_logits(row, remaining=remaining)


def compile_output(
    tokenizer: Any,
    output: OutputFormat,
    *,
    vocab_size: int | None = None,
    stop_token_ids: list[int] | None = None,
) -> Grammar:
    """The :class:`Grammar` of ``output`` for ``tokenizer`` (a Hugging Face tokenizer).

    ``vocab_size`` is the model's logits width when it differs from ``len(tokenizer)``;
    ``stop_token_ids`` the ids that end an answer (default: the tokenizer's EOS). Cached
    per tokenizer and format: compiling the same format again is free.
    """
    vocab = _vocab(tokenizer, vocab_size, stop_token_ids)
    if output.kind == "json_schema":
        if not output.json_schema:
            raise ConstraintError("a json_schema output format needs its json_schema")
        bounded = bounded_schema(output.json_schema)
        source = json.dumps(bounded)
        progress: Callable[[], Any] = _JsonProgress
    else:
        source = format_grammar(output)
        progress = _FenceProgress
    key = f"{output.kind}\n{source}"
    with vocab.lock:
        grammar = vocab.grammars.get(key)
        if grammar is None:
            try:
                if output.kind == "json_schema":
                    ebnf = json_schema_grammar(bounded)
                    if ebnf is None:
                        compiled = vocab.compiler.compile_json_schema(
                            source, any_whitespace=False, separators=(",", ":"), strict_mode=True
                        )
                    else:
                        compiled = vocab.compiler.compile_grammar(ebnf)
                else:
                    compiled = vocab.compiler.compile_grammar(source)
            except ConstraintError:
                raise
            except Exception as exc:  # xgrammar raises RuntimeError/ValueError subclasses
                raise ConstraintError(f"could not compile the format {output.label()}: {exc}") from None
            grammar = vocab.grammars[key] = Grammar(
                compiled, vocab, progress, output.label(), ban_controls=output.kind == "json_schema"
            )
    return grammar


def compile_schema(
    tokenizer: Any,
    json_schema: dict[str, Any],
    *,
    vocab_size: int | None = None,
    stop_token_ids: list[int] | None = None,
) -> Grammar:
    """:func:`compile_output` for a plain JSON schema dict."""
    output = OutputFormat(kind="json_schema", name=str(json_schema.get("title", "answer")), json_schema=json_schema)
    return compile_output(tokenizer, output, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
