#!/usr/bin/env python3
"""Side by side in one run: the agents' local backend (LocalModel) on the embedded model with
HF generate and with the lean int4 decoder, 96 greedy tokens, one thread, three rounds
interleaved. Usage: python benchmarks/bench_local_backend.py MODEL_DIR
(MODEL_DIR: e.g. ~/.cache/mgpt/models/smollm2-135m-instruct after `mgpt models pull`)."""
import asyncio, statistics, sys, time, os
from mgpt.llm.local.model import LocalModel
from mgpt.llm.backends.base import ChatMessage
path = sys.argv[1]
msgs = [ChatMessage(role="user", content="Write a Python function that counts the words in a text file, with a docstring.")]
res = {}
models = {d: LocalModel(path, max_new_tokens=96, decoder=d, threads=1) for d in ("hf", "fast-int4")}
for d, m in models.items():
    asyncio.run(m.complete(msgs))  # load + warm
for r in range(3):
    for d, m in models.items():
        t = time.perf_counter(); c = asyncio.run(m.complete(msgs)); s = time.perf_counter() - t
        res.setdefault(d, []).append(c.usage.completion_tokens / s)
for d, v in res.items():
    print(f"{d}: {statistics.median(v):.1f} tok/s (runs {', '.join(f'{x:.1f}' for x in v)}), load {os.getloadavg()[0]:.1f}")
