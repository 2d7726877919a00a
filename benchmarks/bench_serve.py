"""Throughput of ``mgpt serve``: concurrent clients batched vs the same clients one at a time.

    python benchmarks/bench_serve.py [--clients 1 4 8] [--max-tokens 32] [--rounds 3] [--threads N]
                                     [--decoder fast-int4 fast-w8a8 hf]
    python benchmarks/bench_serve.py --steps [--step-modes int4 w8a8] [--rounds 3]
    python benchmarks/bench_serve.py --quality HF_DIR --text FILE

Builds a randomly initialised Llama with SmolLM2-135M's shape (30 layers, 576 wide, 9
heads / 3 KV heads, vocabulary 49152; random weights are fine for throughput) with a tiny
byte-level tokenizer, starts ``mgpt serve`` on it in a child process, and for each client
count N sends N chat requests (different prompts, fixed ``max_tokens``, ``ignore_eos`` so
every answer has exactly that length):

* **one at a time**: request after request, each alone on the server;
* **concurrent**: all N at once from N clients (the engine batches them).

With several ``--decoder`` values one server runs per decoder (the same model) and each
round measures them in turn, so they are compared under the same load. It prints the
aggregate decode rate (completion tokens / wall seconds) of both, side by side,
and the speed-up: medians of ``--rounds`` rounds, each round measuring both sides against
the same server, in alternating order (on a shared machine the load drifts). Tokens outside the tiny tokenizer's vocabulary decode to nothing, so the text is
shorter than the token count; the count is what the server reports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SMOLLM2_135M_SHAPE = dict(
    vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
    num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
    max_position_embeddings=8192, rope_theta=100000,
)

PROMPTS = [
    "Write a haiku about the sea.",
    "List three uses of a paperclip.",
    "What is the capital of France, and why?",
    "Explain recursion to a child.",
    "Summarise the plot of Hamlet in two sentences.",
    "Give me a name for a grey cat.",
    "How do I reverse a list in Python?",
    "Why is the sky blue?",
]


def build_model(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mgpt.llm.local.testing import make_tiny_checkpoint

    make_tiny_checkpoint(folder, chat_template=True)
    torch.manual_seed(0)
    config = LlamaConfig(**SMOLLM2_135M_SHAPE, bos_token_id=0, eos_token_id=0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one(client, prompt: str, max_tokens: int) -> int:
    response = await client.chat.completions.create(
        model="bench", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
        extra_body={"ignore_eos": True},
    )
    assert response.usage.completion_tokens == max_tokens, response.usage
    return response.usage.completion_tokens


async def measure(base_url: str, n: int, max_tokens: int, rounds: int, first: int = 0) -> tuple[list[float], list[float]]:
    """Tokens/s one at a time and concurrent for n clients, ``rounds`` times each. The
    order alternates by round (``first`` numbers the first one) so a change in the
    machine's load hits both sides."""
    import openai

    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
    sequential, concurrent = [], []
    async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600) as client:
        await one(client, "warm up", 4)

        async def one_at_a_time() -> None:
            start = time.perf_counter()
            tokens = 0
            for p in prompts:
                tokens += await one(client, p, max_tokens)
            sequential.append(tokens / (time.perf_counter() - start))

        async def together() -> None:
            start = time.perf_counter()
            tokens = sum(await asyncio.gather(*(one(client, p, max_tokens) for p in prompts)))
            concurrent.append(tokens / (time.perf_counter() - start))

        for r in range(first, first + rounds):
            for side in ((one_at_a_time, together) if r % 2 == 0 else (together, one_at_a_time)):
                await side()
    return sequential, concurrent


def start_server(folder: Path, tmp: Path, args, decoder: str | None) -> tuple[subprocess.Popen, int, str]:
    """``mgpt serve`` on ``folder`` in a child process; (process, port, its banner)."""
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "mgpt", "serve", "-m", f"hf:{folder}", "--port", str(port),
               "--served-name", "bench", "--max-batch", str(max(args.clients))]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.device:
        command += ["--device", args.device]
    if decoder:
        command += ["--decoder", decoder]
    log = open(tmp / f"serve-{decoder or 'default'}.log", "w+")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while True:
        if server.poll() is not None:
            log.seek(0)
            sys.exit(f"mgpt serve exited:\n{log.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.terminate()
            sys.exit("mgpt serve did not start in 300 s")
        time.sleep(0.5)
    log.seek(0)
    banner = next((line.strip() for line in log if line.startswith("mgpt serve:")), "")
    return server, port, banner


def steps(args) -> None:
    """In one process, no HTTP: the lean decoder's batched decode step at 1, 4 and 8 rows
    for each quant mode, interleaved round by round (the ceiling on serve's speed-up)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mgpt.llm.local.fastllama import FastLlama

    torch.set_num_threads(args.threads or 1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M_SHAPE)).eval()
    modes = {m: FastLlama.from_model(model, quant=m).batch(8) for m in args.step_modes}
    del model
    rows = (1, 4, 8)
    times: dict[tuple[str, int], list[float]] = {}
    with torch.inference_mode():
        gen = torch.Generator().manual_seed(0)
        for batch in modes.values():
            for row in range(8):  # 40-47 token prompts, as the chat prompts here
                batch.prefill(row, torch.randint(0, 49152, (40 + row,), generator=gen))
        for _ in range(args.rounds):
            for b in rows:
                ids, pos = torch.randint(0, 49152, (b,), generator=gen), torch.arange(40, 40 + b)
                for mode, batch in modes.items():
                    batch.step(ids, pos)  # warm
                    for _ in range(6):
                        start = time.perf_counter()
                        batch.step(ids, pos)
                        times.setdefault((mode, b), []).append(time.perf_counter() - start)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"torch threads {torch.get_num_threads()}; medians of {args.rounds} x 6 steps")
    print("| quant | " + " | ".join(f"{b} row{'s' * (b > 1)}: ms/step (tok/s, vs 1 row)" for b in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for mode in modes:
        one = statistics.median(times[(mode, 1)])
        cells = []
        for b in rows:
            t = statistics.median(times[(mode, b)])
            cells.append(f"{t * 1e3:.1f} ({b / t:.0f}, {b * one / t:.2f}x)")
        print(f"| {mode} | " + " | ".join(cells) + " |")
    print(f"load after: {os.getloadavg()[0]:.1f}")


def quality(args) -> None:
    """Perplexity and top-1 agreement with fp32 of each quant mode on a real checkpoint."""
    import torch
    from transformers import AutoTokenizer

    from mgpt.llm.eval.perplexity import perplexity_and_agreement
    from mgpt.llm.local.fastllama import FastLlama

    torch.set_num_threads(args.threads or 1)
    tokenizer = AutoTokenizer.from_pretrained(args.quality)
    ids = tokenizer(Path(args.text).read_text(encoding="utf-8")[:200_000])["input_ids"]
    size, count = 384, 6
    windows = [ids[s: s + size] for s in (i * (len(ids) - size - 1) // (count - 1) for i in range(count))]
    reference = []  # filled by the first (fp32) model's argmaxes
    for mode in [None] + [m for m in args.step_modes if m]:
        fast = FastLlama.from_pretrained(args.quality, quant=mode)
        ppl, agreement = perplexity_and_agreement(fast.logits, windows, reference)
        print(f"{mode or 'fp32':6s} perplexity {ppl:7.3f}  top-1 agreement with fp32 {agreement:.3f}", flush=True)
    print(f"({count} windows of {size} tokens of {Path(args.text).name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="server torch threads (default: free cores)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--decoder", nargs="+", default=[None],
                        help="serve's --decoder; several start one server each, measured round by round in turn")
    parser.add_argument("--steps", action="store_true", help="time the batched decode step in-process instead")
    parser.add_argument("--step-modes", nargs="+", default=["int4", "w8a8"], help="quant modes for --steps/--quality")
    parser.add_argument("--quality", metavar="HF_DIR", default=None,
                        help="score --step-modes on this real checkpoint (perplexity on --text) instead")
    parser.add_argument("--text", default=None, help="text for --quality (e.g. tinyshakespeare.txt)")
    args = parser.parse_args()
    if args.steps:
        return steps(args)
    if args.quality:
        if not args.text:
            sys.exit("--quality needs --text FILE to score")
        return quality(args)

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model(Path(tmp) / "smollm2-135m-shape")
        servers = []
        try:
            for decoder in args.decoder:  # all up before measuring; only one works at a time
                servers.append(start_server(folder, Path(tmp), args, decoder))
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
                  f"Python {platform.python_version()}")
            for _, _, banner in servers:
                print(banner)
            print(f"model: random Llama, SmolLM2-135M shape; {args.max_tokens} tokens per answer (EOS ignored)")
            print(f"medians of {args.rounds} rounds (each round: both sides, order alternating; "
                  "servers in turn within a round)")
            print(f"{'decoder':>10} | {'clients':>7} | {'one at a time':>15} | {'concurrent':>15} | speed-up | "
                  "rounds' speed-ups")
            for n in args.clients:
                results: dict[int, tuple[list[float], list[float]]] = {i: ([], []) for i in range(len(servers))}
                for r in range(args.rounds):
                    for i, (_, port, _) in enumerate(servers):
                        seq, con = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", n, args.max_tokens, 1, r))
                        results[i][0].extend(seq)
                        results[i][1].extend(con)
                for i, decoder in enumerate(args.decoder):
                    seq, con = results[i]
                    s, c = statistics.median(seq), statistics.median(con)
                    each = ", ".join(f"{b / a:.2f}x" for a, b in zip(seq, con))
                    print(f"{decoder or 'default':>10} | {n:>7} | {s:>9.1f} tok/s | {c:>9.1f} tok/s | {c / s:7.2f}x | "
                          f"{each}", flush=True)
            print(f"load after: {os.getloadavg()[0]:.1f}")
        finally:
            for server, _, _ in servers:
                server.terminate()
            for server, _, _ in servers:
                server.wait(60)


if __name__ == "__main__":
    main()
