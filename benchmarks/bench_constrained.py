"""Per-token cost of grammar-constrained decoding on this CPU, library by library.

    python benchmarks/bench_constrained.py [--libs xgrammar,llguidance,lmfe,mgpt,mgpt-closing]
                                           [--steps 300] [--model-steps 200] [--no-model]

Part 1 (libraries): the PRD's JSON schema, bounded as mgpt bounds it
(:func:`mgpt.llm.local.constrained.bounded_schema`), compiled for a 49,152-token byte-level BPE
tokenizer (SmolLM2's vocabulary size, trained here on Tiny Shakespeare plus JSON text: no
hub download). Each library then decodes --steps tokens driven by seeded random logits:
per token it computes the allowed-token mask, applies it to the logits, picks the best
token and advances. Prints compile seconds and the mask+advance cost per token (median,
mean) — the overhead a constraint adds to each forward pass. ``mgpt`` is mgpt's own
:class:`~mgpt.llm.local.constrained.Matcher` (xgrammar underneath); ``mgpt-closing`` the same in
the last tokens of a budget, where it also picks the token that closes the answer.

Part 2 (end to end, unless --no-model): a random-weight model of SmolLM2-135M's shape
(Llama, 30 layers, hidden 576) generates --model-steps tokens with mgpt's
``generate_text``, unconstrained and under the PRD schema (mgpt's chosen library), side by
side in one process, and prints tokens/s for both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

SHAKESPEARE = Path("/work/shared/data/tinyshakespeare.txt")
VOCAB = 49152


def _json_corpus(n: int = 3000) -> list[str]:
    import random

    rng = random.Random(0)
    words = "the user wants a word counter that reads files and prints counts per line goal story".split()
    out = []
    for i in range(n):
        doc = {
            "project_name": "_".join(rng.sample(words, 2)),
            "summary": " ".join(rng.choices(words, k=12)),
            "goals": [" ".join(rng.choices(words, k=5)) for _ in range(3)],
            "requirements": [{"id": f"R{i % 9}", "text": " ".join(rng.choices(words, k=8)), "priority": "P1"}],
        }
        out.append(json.dumps(doc, indent=None if i % 2 else 2))
    return out


def _python_corpus(limit: int) -> list[str]:
    """The standard library's own sources: code-like text so the vocabulary fills up."""
    import sysconfig

    out, size = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        out.extend(text.splitlines())
        size += len(text)
        if size > limit:
            break
    return out


def build_tokenizer(folder: Path, vocab: int = VOCAB):
    """A byte-level BPE tokenizer of ``vocab`` tokens, cached in ``folder``."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    text = SHAKESPEARE.read_text(encoding="utf-8") if SHAKESPEARE.is_file() else ""
    if vocab < VOCAB:  # a quick run (the smoke test): a smaller corpus does
        text = text[: vocab * 200]
    lines = text.splitlines() + _json_corpus(min(3000, vocab)) + _python_corpus(min(12_000_000, vocab * 250))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(lines, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.save_pretrained(folder)
    return tok


def prd_schema() -> dict:
    from mgpt.actions.documents import PRD
    from mgpt.llm.local.constrained import bounded_schema

    return bounded_schema(PRD.model_json_schema())


# -- one adapter per library: compile(tokenizer, schema) -> step(logits) -> token | None ---------


def lib_xgrammar(tokenizer, schema, vocab_size):
    import torch
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    compiled = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(schema), any_whitespace=False)
    matcher = xgr.GrammarMatcher(compiled)
    bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def step(logits):
        if matcher.is_terminated():
            return None
        matcher.fill_next_token_bitmask(bitmask)
        xgr.apply_token_bitmask_inplace(logits, bitmask)
        token = int(torch.argmax(logits))
        assert matcher.accept_token(token)
        return token

    return step


def lib_llguidance(tokenizer, schema, vocab_size):
    import llguidance
    import llguidance.hf
    import llguidance.torch as llt
    import torch

    lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
    grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
    matcher = llguidance.LLMatcher(lltok, grammar)
    bitmask = llt.allocate_token_bitmask(1, vocab_size)
    if matcher.is_error():
        raise RuntimeError(matcher.get_error())

    def step(logits):
        if matcher.is_stopped():
            return None
        llt.fill_next_token_bitmask(matcher, bitmask, 0)
        llt.apply_token_bitmask_inplace(logits, bitmask)
        token = int(torch.argmax(logits))
        assert matcher.consume_token(token), matcher.get_error()
        return token

    return step


def lib_lmfe(tokenizer, schema, vocab_size):
    import torch
    from lmformatenforcer import JsonSchemaParser
    from lmformatenforcer.tokenenforcer import TokenEnforcer, TokenEnforcerTokenizerData

    # Its transformers integration does not import under transformers 5; this is what it builds.
    regular = []
    for token_id in range(vocab_size):
        if token_id in tokenizer.all_special_ids:
            continue
        decoded = tokenizer.decode([token_id])
        after_zero = tokenizer.decode([0, token_id])[len(tokenizer.decode([0])):]
        regular.append((token_id, decoded, after_zero.startswith(" ")))
    data = TokenEnforcerTokenizerData(
        regular, lambda ids: tokenizer.decode(ids), tokenizer.eos_token_id, False, vocab_size
    )
    enforcer = TokenEnforcer(data, JsonSchemaParser(schema))
    ids: list[int] = []

    def step(logits):
        allowed = enforcer.get_allowed_tokens(ids)
        allowed = allowed.allowed_tokens if hasattr(allowed, "allowed_tokens") else allowed
        if not allowed:
            return None
        mask = torch.full_like(logits, float("-inf"))
        mask[..., allowed] = 0
        token = int(torch.argmax(logits + mask))
        if token == tokenizer.eos_token_id:
            return None
        ids.append(token)
        return token

    return step


def _lib_mgpt(tokenizer, schema, vocab_size, closing: bool):
    """mgpt's own Matcher (xgrammar underneath, plus its mask unpacking and control-char
    ban); ``closing`` runs it as in the last tokens of a budget, forcing the answer shut."""
    import torch

    from mgpt.llm.local.constrained import compile_schema

    grammar = compile_schema(tokenizer, schema, vocab_size=vocab_size)
    grammar.min_tokens  # computed once per grammar; not a per-token cost
    matcher = grammar.matcher()

    def step(logits):
        if matcher.is_finished():
            return None
        matcher.mask_logits(logits, remaining=1 if closing else None)
        token = int(torch.argmax(logits))
        matcher.advance(token)
        return token

    return step


LIBS = {
    "xgrammar": lib_xgrammar,
    "llguidance": lib_llguidance,
    "lmfe": lib_lmfe,
    "mgpt": lambda t, s, v: _lib_mgpt(t, s, v, closing=False),
    "mgpt-closing": lambda t, s, v: _lib_mgpt(t, s, v, closing=True),
}


def bench_library(name, tokenizer, schema, steps):
    import torch

    vocab_size = len(tokenizer)
    started = time.perf_counter()
    step = LIBS[name](tokenizer, schema, vocab_size)
    compile_s = time.perf_counter() - started
    gen = torch.Generator().manual_seed(0)
    times, tokens = [], []
    for _ in range(steps):
        logits = torch.randn(1, vocab_size, generator=gen)
        t0 = time.perf_counter()
        token = step(logits)
        times.append(time.perf_counter() - t0)
        if token is None or token == tokenizer.eos_token_id:
            break
        tokens.append(token)
    return {
        "library": name,
        "compile_s": round(compile_s, 3),
        "tokens": len(tokens),
        "ms_median": round(statistics.median(times) * 1000, 3),
        "ms_mean": round(statistics.fmean(times) * 1000, 3),
        "text_head": tokenizer.decode(tokens)[:60],
    }


def bench_model(tokenizer_dir: Path, steps: int, repeat: int = 2) -> list[dict]:
    """Unconstrained vs PRD-constrained generate_text on a SmolLM2-135M-shaped random model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mgpt.actions.documents import PRD
    from mgpt.llm.backends.base import OutputFormat
    from mgpt.llm.local.generate import generate_text, load_model, output_grammar

    folder = tokenizer_dir.parent / "smol-shaped"
    if not (folder / "config.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
            num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
            tie_word_embeddings=True, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
        )
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(folder)
        tok.save_pretrained(folder)
    loaded = load_model(folder, device="cpu")
    prompt = "Write the PRD for a command-line word counter as JSON."
    prd = OutputFormat.from_model(PRD)
    # Compile the grammar (and measure its shortest answer) once, outside the timing: a
    # LocalModel does this on its first structured call and reuses it afterwards.
    t0 = time.perf_counter()
    output_grammar(loaded, prd)
    print(json.dumps({"grammar_compile_s": round(time.perf_counter() - t0, 2)}))
    rows = []
    for _ in range(repeat):  # alternate, so a change in the machine's load hits both sides
        for label, output in (("unconstrained", None), ("PRD schema", prd)):
            t0 = time.perf_counter()
            out = generate_text(loaded, prompt, max_new_tokens=steps, output=output, seed=0)
            seconds = time.perf_counter() - t0
            rows.append({"decode": label, "tokens": out.completion_tokens, "seconds": round(seconds, 2),
                         "ms_per_token": round(1000 * seconds / out.completion_tokens, 1),
                         "tok_per_s": round(out.completion_tokens / seconds, 2), "finish": out.finish_reason})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libs", default="xgrammar,llguidance,lmfe,mgpt,mgpt-closing")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--model-steps", type=int, default=200)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--vocab", type=int, default=VOCAB, help="tokenizer size (smaller: a quick smoke run)")
    parser.add_argument("--repeat", type=int, default=2, help="end-to-end runs of each side, alternating")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mgpt-bench-constrained")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    tok_dir = args.work / f"tokenizer-{args.vocab}"
    t0 = time.perf_counter()
    tokenizer = build_tokenizer(tok_dir, args.vocab)
    print(f"tokenizer: {len(tokenizer)} tokens ({time.perf_counter() - t0:.1f}s to build/load); torch threads 1; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    schema = prd_schema()
    for name in args.libs.split(","):
        try:
            row = bench_library(name, tokenizer, schema, args.steps)
        except ImportError as exc:
            print(f"{name}: not installed ({exc})")
            continue
        print(json.dumps(row))
    if not args.no_model:
        bench_model(tok_dir, args.model_steps, args.repeat)


if __name__ == "__main__":
    main()
