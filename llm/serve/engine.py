"""A continuous-batching decode engine for one local Hugging Face causal LM.

``mgpt serve`` answers many clients with one model. Running their requests one after
another leaves the hardware idle between small matrix products; running them together
makes every forward pass serve all of them. The engine does that:

* **Continuous batching.** One worker thread owns the model. Each loop it admits waiting
  requests (prefilling their prompts together), then runs one decode step for every running
  sequence at once, in a single forward pass. A request joins between two steps and
  leaves the moment it finishes; nobody waits for the slowest sequence of a "batch".
* **An explicit KV cache.** The running batch keeps one ``DynamicCache`` whose tensors are
  ``[batch, kv_heads, width, head_dim]``. Sequences of different lengths are left-padded
  to the common width; the 2-D attention mask marks padding with 0 and the position ids
  are each sequence's own, so a padded sequence computes exactly what it would alone.
  When a sequence leaves, its row is dropped and padding columns no row needs any more
  are trimmed.
* **A prefix cache.** Prompts often share a long start (a role's system prompt). The
  keys and values of recent prompts are kept (LRU, bounded in tokens); a new prompt
  reuses the longest common prefix with any of them and prefills only the rest. Keys
  and values at position *i* of a causal model depend only on tokens up to *i*, so a
  cropped entry is exactly the prefix's cache.

Decoding is greedy at temperature 0, else sampled (temperature, top-k, top-p, a
per-request seed). Each request has its own ``max_tokens``, stop strings, and an optional
*constraint*: a callable that gets the tokens generated so far and returns a boolean mask
of allowed next tokens (or ``None`` for no restriction) — the hook structured output
plugs into.

**Two forward paths.** With ``fast`` (a :class:`~mgpt.llm.local.fastllama.FastLlama`, for
Llama-family models on the CPU) the engine runs mgpt's lean decoder instead of the HF
model: each running request owns one row of a preallocated KV cache (rows 0..B-1, kept
packed as requests leave), prompts admitted together are prefilled into their rows in
one pass (matmuls over all their tokens, attention per prompt after its cached prefix,
which is copied in), and a decode step runs all rows in one pass whose quantized
matmuls take the B rows together, so the weights are read once per step for everyone. Without it (other architectures, CUDA) the HF model runs as above.

Everything here is torch-only except the tokenizer (for stop strings and streamed text).
The engine is used from other threads through :meth:`Engine.submit` (callbacks from the
worker thread) or :meth:`Engine.generate` (blocking, for scripts and tests).
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

# SamplingParams and Constraint live with the other decoders' options; they stay
# importable from here, where the engine's users have always found them.
from mgpt.llm.local.sampling import Constraint, SamplingParams, pick_token

log = logging.getLogger(__name__)

__all__ = [
    "Constraint", "Engine", "EngineEvent", "EngineStats", "Request", "Result", "SamplingParams", "free_cores", "wait_idle",
]

def free_cores() -> int:
    """CPU cores this process may use that are not already busy (at least 1); the same
    rule as :func:`mgpt.llm.local.generate.pick_threads` without ``$MGPT_THREADS``."""
    from mgpt.llm.local.generate import pick_threads

    return pick_threads(env={})


@dataclass
class EngineEvent:
    """What the worker reports about one request: new text, and at the end the totals.

    ``finish_reason`` is ``"stop"`` (end-of-sequence token or a stop string), ``"length"``
    (max_tokens or the context ran out), ``"cancelled"`` or ``"error"`` (``error`` says why).
    """

    delta: str = ""
    finished: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Prompt tokens taken from the prefix cache instead of computed.
    cached_tokens: int = 0
    error: str | None = None


@dataclass
class Result:
    """A finished request, as :meth:`Engine.generate` returns it."""

    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    error: str | None = None


@dataclass
class EngineStats:
    """Counters for logs, tests and the benchmark."""

    requests: int = 0
    decode_steps: int = 0
    #: Sum over decode steps of the batch size: decode tokens computed.
    decode_tokens: int = 0
    max_batch_seen: int = 0
    prefill_tokens: int = 0
    prefix_hits: int = 0
    prefix_tokens_reused: int = 0


@dataclass(eq=False)
class Request:
    """One submitted request; :meth:`cancel` may be called from any thread."""

    id: int
    prompt_ids: list[int]
    params: SamplingParams
    on_event: Callable[[EngineEvent], Any]
    generated: list[int] = field(default_factory=list)
    cancelled: bool = False
    # -- worker-thread state --
    length: int = 0  # tokens of this sequence in the cache (= position of the next token)
    last_token: int = 0
    text: str = ""  # decoded text so far (stop strings cut off)
    sent: int = 0  # characters of ``text`` already reported
    cached_tokens: int = 0
    generator: Any = None
    #: Why it finished (the finish_reason), or None while it runs.
    done_reason: str | None = None
    #: Set when this request's constraint failed; it then ends with finish_reason "error".
    error: str | None = None

    def cancel(self) -> None:
        self.cancelled = True


class _PrefixCache:
    """Keys and values of recent prompts, LRU, at most ``max_tokens`` tokens in all.

    Each entry is ``ids`` (a 1-D tensor) and its keys/values in the forward path's
    format: on the HF path, per layer, ``(keys, values)`` of shape ``[1, kv_heads,
    len(ids), head_dim]`` (never written in place: the cache grows by concatenation, so
    entries can share storage with live sequences); on the lean path one ``(keys,
    values)`` pair of shape ``[layers, kv_heads, len(ids), head_dim]``, a copy of the row.
    """

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self._entries: OrderedDict[int, tuple[Any, list[tuple[Any, Any]]]] = OrderedDict()
        self._tokens = 0
        self._ids = itertools.count()

    def lookup(self, ids) -> tuple[int, list[tuple[Any, Any]] | None]:
        """The longest common prefix of ``ids`` with any entry: ``(length, layers)``."""
        best, best_key = 0, None
        for key, (entry_ids, _) in self._entries.items():
            n = min(len(entry_ids), len(ids))
            if n <= best:
                continue
            differ = (entry_ids[:n] != ids[:n]).nonzero()
            common = int(differ[0, 0]) if len(differ) else n
            if common > best:
                best, best_key = common, key
        if best_key is None:
            return 0, None
        self._entries.move_to_end(best_key)
        return best, self._entries[best_key][1]

    def store(self, ids, layers: list[tuple[Any, Any]]) -> None:
        if self.max_tokens <= 0 or len(ids) > self.max_tokens:
            return
        for key, (entry_ids, _) in list(self._entries.items()):
            # An entry that is a prefix of the new prompt is covered by it.
            if len(entry_ids) <= len(ids) and bool((entry_ids == ids[: len(entry_ids)]).all()):
                self._drop(key)
        self._entries[next(self._ids)] = (ids, layers)
        self._tokens += len(ids)
        while self._tokens > self.max_tokens:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: int) -> None:
        entry_ids, _ = self._entries.pop(key)
        self._tokens -= len(entry_ids)

    def clear(self) -> None:
        self._entries.clear()
        self._tokens = 0


class Engine:
    """Continuous batching over one causal LM; see the module docstring.

    Args:
        model: a transformers causal LM in eval mode.
        tokenizer: its tokenizer (decodes streamed text and finds stop strings).
        eos_ids: token ids that end an answer.
        max_batch: most sequences decoded together.
        context: the model's context length (prompt + answer), or None for no limit.
        prefix_cache_tokens: tokens of prompt keys/values kept for reuse (0 switches the
            prefix cache off).
        max_prefill_tokens: most tokens in one batched prefill (padded ones too on the HF path).
        fast: a :class:`~mgpt.llm.local.fastllama.FastLlama` packed from ``model``: decode with
            it (see the module docstring); None runs ``model`` itself.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        eos_ids: Sequence[int] = (),
        max_batch: int = 16,
        context: int | None = None,
        prefix_cache_tokens: int = 8192,
        max_prefill_tokens: int = 8192,
        fast: Any = None,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.model = model
        self.tokenizer = tokenizer
        self.eos_ids = frozenset(int(i) for i in eos_ids)
        self.max_batch = max_batch
        self.max_prefill_tokens = max_prefill_tokens
        self.context = context
        self.device = next(model.parameters()).device
        #: The lean decoder's batch (rows of its KV cache), or None: the HF path.
        self._fast = None
        if fast is not None:
            self._fast = fast.batch(max_batch)
            self.device = fast.device
            self.context = min(context or fast.max_positions, fast.max_positions)
        self.stats = EngineStats()
        self._prefix = _PrefixCache(prefix_cache_tokens)
        self._pending: deque[Request] = deque()
        self._wake = threading.Condition()
        self._ids = itertools.count(1)
        self._stopping = False
        self._thread: threading.Thread | None = None
        # The running batch: rows of the cache and mask, in the order of ``_rows``.
        self._rows: list[Request] = []
        self._cache: Any = None
        self._mask: Any = None  # [batch, width] long, 1 = a real token
        # transformers 5 names the cache argument ``cache``; 4.x named it ``past_key_values``.
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._keep_arg = "logits_to_keep" in params

    # -- public API (any thread) ----------------------------------------------------------

    def start(self) -> "Engine":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mgpt-engine", daemon=True)
            self._thread.start()
        return self

    def submit(
        self, prompt_ids: Sequence[int], params: SamplingParams, on_event: Callable[[EngineEvent], Any]
    ) -> Request:
        """Queue a request; ``on_event`` is called from the worker thread with text as it
        comes and once with ``finished=True``. Returns the handle (``cancel()``)."""
        request = self._request(prompt_ids, params, on_event)
        with self._wake:
            if self._stopping:
                raise RuntimeError("the engine is shutting down")
            self._pending.append(request)
            self._wake.notify()
        self.start()
        return request

    def _request(self, prompt_ids: Sequence[int], params: SamplingParams, on_event: Callable[[EngineEvent], Any]) -> Request:
        params.check()
        if not prompt_ids:
            raise ValueError("the prompt has no tokens")
        if self.context is not None and len(prompt_ids) >= self.context:
            raise ValueError(
                f"the prompt is {len(prompt_ids)} tokens but the model reads at most {self.context}"
            )
        return Request(next(self._ids), [int(t) for t in prompt_ids], params, on_event)

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams | Sequence[SamplingParams]) -> list[Result]:
        """Submit every prompt at once, wait for all, and return their results in order."""
        plist = list(params) if isinstance(params, (list, tuple)) else [params] * len(prompts)
        done = threading.Event()
        results: list[Result | None] = [None] * len(prompts)
        texts: list[list[str]] = [[] for _ in prompts]
        requests: list[Request] = []
        remaining = [len(prompts)]
        lock = threading.Lock()

        def callback(i: int) -> Callable[[EngineEvent], None]:
            def on_event(event: EngineEvent) -> None:
                texts[i].append(event.delta)
                if event.finished:
                    results[i] = Result(
                        text="".join(texts[i]),
                        token_ids=list(requests[i].generated),
                        finish_reason=event.finish_reason or "",
                        prompt_tokens=event.prompt_tokens,
                        completion_tokens=event.completion_tokens,
                        cached_tokens=event.cached_tokens,
                        error=event.error,
                    )
                    with lock:
                        remaining[0] -= 1
                        if remaining[0] == 0:
                            done.set()

            return on_event

        if not prompts:
            return []
        with self._wake:  # submit all before the worker looks: they prefill in one admission round
            if self._stopping:
                raise RuntimeError("the engine is shutting down")
            for i, (prompt, p) in enumerate(zip(prompts, plist)):
                requests.append(self._request(prompt, p, callback(i)))
            self._pending.extend(requests)
            self._wake.notify()
        self.start()
        done.wait()
        return [r for r in results if r is not None]

    def stop(self, *, cancel: bool = True, timeout: float = 30.0) -> None:
        """Stop the worker. With ``cancel`` the running and waiting requests end at once
        (``finish_reason="cancelled"``); else they are finished first. Waits at most
        ``timeout`` seconds for the worker; the thread is a daemon either way."""
        with self._wake:
            self._stopping = True
            if cancel:
                for request in list(self._pending) + list(self._rows):
                    request.cancelled = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> int:
        return len(self._rows)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    # -- the worker loop --------------------------------------------------------------------

    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                with self._wake:
                    while not self._pending and not self._rows and not self._stopping:
                        self._wake.wait(timeout=1.0)
                    if self._stopping and not self._pending and not self._rows:
                        return
                    admit = []
                    while self._pending and len(self._rows) + len(admit) < self.max_batch:
                        admit.append(self._pending.popleft())
                try:
                    if admit:
                        self._admit(admit)
                    if self._rows:
                        self._step()
                except Exception as exc:  # a bug or out-of-memory: fail these, keep serving
                    log.exception("engine step failed")
                    for request in self._rows + [r for r in admit if r.done_reason is None and r not in self._rows]:
                        self._finish(request, "error", error=f"{type(exc).__name__}: {exc}")
                    self._rows, self._cache, self._mask = [], None, None

    def _forward(self, input_ids, attention_mask, position_ids, cache):
        kwargs = {self._cache_arg: cache, "use_cache": True}
        if self._keep_arg:
            kwargs["logits_to_keep"] = 1
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
        new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits[:, -1, :], new_cache

    @staticmethod
    def _layers(cache) -> list[tuple[Any, Any]]:
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _admit(self, requests: list[Request]) -> None:
        """Prefill newly admitted prompts together (each reusing its longest cached
        prefix), pick their first tokens, and add them to the running batch.

        Row *i* of the prefill batch is laid out as ``[pad | prefix_i | pad | suffix_i]``:
        the prefix comes from the prefix cache (keys/values only), the suffix is computed
        now. Padding is masked out and positions are each row's own, so every row computes
        what it would alone. Groups are cut so that no prefill exceeds
        ``max_prefill_tokens`` padded tokens (one prompt always goes, however long).
        """
        import torch

        live = []
        for r in requests:
            if r.cancelled:
                self._finish(r, "cancelled")
            else:
                live.append(r)
        plans = []
        for r in live:
            self.stats.requests += 1
            ids = torch.tensor(r.prompt_ids, device=self.device)
            reuse, layers = self._prefix.lookup(ids)
            reuse = min(reuse, len(ids) - 1)  # at least one token must run to give the next logits
            if reuse <= 0 or layers is None:
                reuse, layers = 0, None
            else:
                self.stats.prefix_hits += 1
                self.stats.prefix_tokens_reused += reuse
            r.cached_tokens = reuse
            plans.append((r, ids, reuse, layers))
        if self._fast is not None:
            group, tokens = [], 0
            for plan in plans:  # groups of at most max_prefill_tokens new tokens (one prompt always goes)
                new = len(plan[1]) - plan[2]
                if group and tokens + new > self.max_prefill_tokens:
                    self._prefill_fast(group)
                    group, tokens = [], 0
                group.append(plan)
                tokens += new
            if group:
                self._prefill_fast(group)
            return
        group: list = []
        for plan in plans:
            widths = [max(p[2] for p in group + [plan]), max(len(p[1]) - p[2] for p in group + [plan])]
            if group and (len(group) + 1) * sum(widths) > self.max_prefill_tokens:
                self._prefill(group)
                group = []
            group.append(plan)
        if group:
            self._prefill(group)

    def _prefill(self, plans: list) -> None:
        import torch
        from transformers import DynamicCache

        dev = self.device
        prefix_w = max(reuse for _, _, reuse, _ in plans)
        suffix_w = max(len(ids) - reuse for _, ids, reuse, _ in plans)
        input_ids = torch.zeros(len(plans), suffix_w, dtype=torch.long, device=dev)
        positions = torch.zeros(len(plans), suffix_w, dtype=torch.long, device=dev)
        mask = torch.zeros(len(plans), prefix_w + suffix_w, dtype=torch.long, device=dev)
        for i, (_, ids, reuse, _) in enumerate(plans):
            m = len(ids) - reuse
            input_ids[i, suffix_w - m :] = ids[reuse:]
            positions[i] = torch.arange(reuse + m - suffix_w, reuse + m, device=dev).clamp(min=0)
            mask[i, prefix_w - reuse : prefix_w] = 1
            mask[i, prefix_w + suffix_w - m :] = 1
        if prefix_w:
            prefix = []
            for layer in range(len(next(p[3] for p in plans if p[3] is not None))):
                ks, vs = [], []
                for _, ids, reuse, layers in plans:
                    if reuse:
                        k, v = layers[layer][0][:, :, :reuse], layers[layer][1][:, :, :reuse]
                    else:  # no cached prefix: an empty one, padded below
                        k0, v0 = next(p[3] for p in plans if p[3] is not None)[layer]
                        k, v = k0[:, :, :0], v0[:, :, :0]
                    ks.append(_left_pad(k, prefix_w - reuse))
                    vs.append(_left_pad(v, prefix_w - reuse))
                prefix.append((torch.cat(ks, dim=0), torch.cat(vs, dim=0)))
            cache = DynamicCache(ddp_cache_data=prefix)
        else:
            cache = DynamicCache()
        logits, cache = self._forward(input_ids, mask, positions, cache)
        self.stats.prefill_tokens += sum(len(ids) - reuse for _, ids, reuse, _ in plans)
        layers = self._layers(cache)
        keep = mask.bool()
        for i, (r, ids, _, _) in enumerate(plans):
            if len(plans) == 1:
                own = layers
            else:  # this row's real positions only
                own = [(k[i : i + 1, :, keep[i]], v[i : i + 1, :, keep[i]]) for k, v in layers]
            self._prefix.store(ids, own)
            r.length = len(ids)
            self._seed(r)
        tokens = self._pick(logits, [p[0] for p in plans])
        rows = [i for i, (p, token) in enumerate(zip(plans, tokens)) if self._accept(p[0], token)]
        if not rows:
            return
        index = torch.tensor(rows, device=dev)
        sub_mask = mask.index_select(0, index)
        first = int(sub_mask.any(dim=0).nonzero()[0, 0])
        self._join(
            [plans[i][0] for i in rows],
            [(k.index_select(0, index)[:, :, first:], v.index_select(0, index)[:, :, first:]) for k, v in layers],
            sub_mask[:, first:],
        )

    def _seed(self, r: Request) -> None:
        """Give a sampled request its own generator (seeded if it asked)."""
        import torch

        if r.params.temperature > 0:
            r.generator = torch.Generator(device=self.device)
            if r.params.seed is not None:
                r.generator.manual_seed(r.params.seed)
            else:
                r.generator.seed()

    def _prefill_fast(self, plans: list) -> None:
        """Prefill prompts into the next free rows of the lean decoder's cache in one
        pass (each after its cached prefix, copied in), pick their first tokens, and add
        them to the running batch. A request that ends on its first token gives its row
        back: the rows after it move up, so the running rows stay 0..B-1."""
        base = len(self._rows)
        rows = list(range(base, base + len(plans)))
        logits = self._fast.prefill_many(
            rows, [ids for _, ids, _, _ in plans], [reuse for _, _, reuse, _ in plans], [p for _, _, _, p in plans]
        )
        for row, (r, ids, reuse, _) in zip(rows, plans):
            self.stats.prefill_tokens += len(ids) - reuse
            if 0 < len(ids) <= self._prefix.max_tokens:
                self._prefix.store(ids, self._fast.keys_values(row, len(ids)))
            r.length = len(ids)
            self._seed(r)
        tokens = self._pick(logits, [p[0] for p in plans])
        for row, (r, *_), token in zip(rows, plans, tokens):
            if self._accept(r, token):
                self._fast.move(row, len(self._rows), r.length)  # rows ascend: nothing is overwritten early
                self._rows.append(r)

    def _join(self, requests: list[Request], layers: list[tuple[Any, Any]], new_mask) -> None:
        """Add prefilled rows to the running batch, left-padding whichever side is
        shorter so all rows share one width."""
        import torch
        from transformers import DynamicCache

        if not self._rows:
            self._cache = DynamicCache(ddp_cache_data=layers)
            self._mask = new_mask
            self._rows = list(requests)
            return
        t = new_mask.shape[1]
        width = self._mask.shape[1]
        full = max(width, t)
        merged = []
        for (k_old, v_old), (k_new, v_new) in zip(self._layers(self._cache), layers):
            merged.append(
                (
                    torch.cat([_left_pad(k_old, full - width), _left_pad(k_new, full - t)], dim=0),
                    torch.cat([_left_pad(v_old, full - width), _left_pad(v_new, full - t)], dim=0),
                )
            )
        self._cache = DynamicCache(ddp_cache_data=merged)
        self._mask = torch.cat(
            [_left_pad_mask(self._mask, full - width), _left_pad_mask(new_mask, full - t)], dim=0
        )
        self._rows.extend(requests)

    def _step(self) -> None:
        """One decode step for every running sequence, in one forward pass."""
        import torch

        rows = self._rows
        if self._fast is not None:
            ids = torch.tensor([r.last_token for r in rows], device=self.device)
            positions = torch.tensor([r.length for r in rows], device=self.device)
            logits = self._fast.step(ids, positions)
        else:
            input_ids = torch.tensor([[r.last_token] for r in rows], device=self.device)
            positions = torch.tensor([[r.length] for r in rows], device=self.device)
            mask = torch.cat([self._mask, torch.ones(len(rows), 1, dtype=torch.long, device=self.device)], dim=1)
            logits, self._cache = self._forward(input_ids, mask, positions, self._cache)
            self._mask = mask
        self.stats.decode_steps += 1
        self.stats.decode_tokens += len(rows)
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(rows))
        for r in rows:
            r.length += 1
        tokens = self._pick(logits, rows)
        keep = [i for i, (r, token) in enumerate(zip(rows, tokens)) if self._accept(r, token)]
        if len(keep) < len(rows):
            self._drop_rows(keep)

    def _drop_rows(self, keep: list[int]) -> None:
        """Keep only rows ``keep``, then trim padding columns that no row needs."""
        import torch

        if not keep:
            self._rows, self._cache, self._mask = [], None, None
            if self._fast is not None:
                self._fast.release()  # an outsized cache goes back while idle
            return
        if self._fast is not None:
            # Pack the survivors into rows 0..len(keep)-1. keep is ascending, so row
            # keep[i] >= i is read before anything is written over it.
            for i, k in enumerate(keep):
                self._fast.move(k, i, self._rows[k].length)
            self._rows = [self._rows[i] for i in keep]
            return
        index = torch.tensor(keep, device=self.device)
        self._rows = [self._rows[i] for i in keep]
        self._mask = self._mask.index_select(0, index)
        first = int(self._mask.any(dim=0).nonzero()[0, 0])  # leading all-padding columns
        self._mask = self._mask[:, first:]
        for layer in self._cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, first:]
            layer.values = layer.values.index_select(0, index)[:, :, first:]

    def _pick(self, logits, rows: list[Request]) -> list[int]:
        """The next token of each row: constraint mask, then argmax or a sample."""
        logits = logits.float()
        for i, r in enumerate(rows):
            if r.params.constraint is None:
                continue
            try:
                self._constrain(r, logits[i])
            except Exception as exc:  # this request's constraint failed: end it, not the batch
                log.warning("request %s: constraint failed: %s", r.id, exc)
                r.error = f"constraint: {exc}"
                logits[i] = 0.0  # any token: the request ends before it is used
        tokens = logits.argmax(dim=-1).tolist()  # greedy rows: one batched argmax
        for i, r in enumerate(rows):
            if r.params.temperature > 0 and not r.error:
                tokens[i] = pick_token(logits[i], r.params, r.generator)
        return tokens

    def _constrain(self, r: Request, row) -> None:
        """Mask ``row`` (this request's logits, in place) by its constraint.

        A constraint with ``mask_logits(row, generated, remaining)`` masks the row itself,
        knowing how many tokens the budget has left (so a grammar can close the answer in
        time); a plain one returns the allowed-token mask (or None: anything goes).
        """
        import torch

        constraint = r.params.constraint
        generated = list(r.generated)
        masker = getattr(constraint, "mask_logits", None)
        if masker is not None:
            remaining = r.params.max_tokens - len(generated)
            if self.context is not None:
                remaining = min(remaining, self.context - r.length)
            masker(row, generated, remaining)
        else:
            allowed = constraint(generated)
            if allowed is None:
                return
            allowed = torch.as_tensor(allowed, dtype=torch.bool, device=row.device)
            row[: allowed.shape[0]].masked_fill_(~allowed, float("-inf"))
            row[allowed.shape[0] :] = float("-inf")
        if not bool(torch.isfinite(row).any()):
            raise ValueError("the constraint allows no next token")

    def _accept(self, r: Request, token: int) -> bool:
        """Record ``token`` for ``r``; report new text; False once ``r`` has finished."""
        if r.cancelled:
            self._finish(r, "cancelled")
            return False
        if r.error:
            self._finish(r, "error", error=r.error)
            return False
        p = r.params
        if token in self.eos_ids and not p.ignore_eos:
            self._finish(r, "stop")
            return False
        r.generated.append(token)
        r.last_token = token
        text = self.tokenizer.decode(r.generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        for s in p.stop:
            at = text.find(s, max(0, len(r.text) - len(s)))
            if s and at >= 0:
                r.text = text[:at]
                self._finish(r, "stop")
                return False
        r.text = text
        if len(r.generated) >= p.max_tokens or (self.context is not None and r.length + 1 >= self.context):
            self._finish(r, "length")
            return False
        # Hold back a trailing partial character, and any tail that may begin a stop string.
        end = len(text.rstrip("\ufffd"))
        hold = 0
        for s in p.stop:
            for k in range(min(len(s) - 1, end), hold, -1):
                if text[end - k : end] == s[:k]:
                    hold = k
                    break
        safe = end - hold
        if safe > r.sent:
            self._emit(r, EngineEvent(delta=text[r.sent : safe]))
            r.sent = safe
        return True

    def _finish(self, r: Request, reason: str, *, error: str | None = None) -> None:
        r.done_reason = reason
        rest = r.text[r.sent :] if reason not in ("cancelled", "error") else ""
        r.sent = len(r.text)
        self._emit(
            r,
            EngineEvent(
                delta=rest,
                finished=True,
                finish_reason=reason,
                prompt_tokens=len(r.prompt_ids),
                completion_tokens=len(r.generated),
                cached_tokens=r.cached_tokens,
                error=error,
            ),
        )

    @staticmethod
    def _emit(r: Request, event: EngineEvent) -> None:
        try:
            r.on_event(event)
        except Exception:  # a listener's bug must not stop the other requests
            log.exception("request %s: event callback failed", r.id)
            r.cancelled = True


def _left_pad(t, n: int):
    """``t`` ([batch, heads, len, dim]) with ``n`` zero positions in front."""
    if n == 0:
        return t
    import torch

    pad = torch.zeros(t.shape[0], t.shape[1], n, t.shape[3], dtype=t.dtype, device=t.device)
    return torch.cat([pad, t], dim=2)


def _left_pad_mask(m, n: int):
    if n == 0:
        return m
    import torch

    return torch.cat([torch.zeros(m.shape[0], n, dtype=m.dtype, device=m.device), m], dim=1)


def wait_idle(engine: Engine, timeout: float = 10.0) -> bool:
    """Wait until the engine has nothing running or waiting (for tests); True if so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not engine.running and not engine.waiting:
            return True
        time.sleep(0.01)
    return False
