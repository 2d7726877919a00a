"""Text generation with a local Hugging Face causal LM.

Load a checkpoint folder once with :func:`load_model`, then call :func:`generate_text`
as often as you like; :func:`generate` does both for a one-off prompt::

    loaded = load_model("runs/tiny")
    out = generate_text(loaded, "Once upon a time", SamplingParams(max_tokens=40), on_text=print)
    out.text, out.prompt_tokens, out.completion_tokens, out.finish_reason

How to decode is a :class:`~mgpt.llm.local.sampling.SamplingParams`: greedy when
``temperature`` is 0, otherwise sampled with that temperature and optional top-k / top-p;
``seed`` makes sampling reproducible. Its fields may also be passed as keyword arguments
(``max_new_tokens=40``), as before it existed. Text is streamed to
``on_text`` piece by piece as tokens are produced, and the pieces join to ``text``.
``output`` (an :class:`~mgpt.llm.backends.base.OutputFormat`) decodes under that format's grammar
(:mod:`mgpt.llm.local.constrained`), so the answer is a complete JSON document or code block.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from mgpt.llm.errors import ModelConfigError
from mgpt.llm.local.sampling import SamplingParams

__all__ = [
    "DECODERS",
    "GENERATE_DEFAULTS",
    "Generation",
    "LoadedModel",
    "ModelLoadError",
    "PromptTooLongError",
    "SamplingParams",
    "check_checkpoint",
    "cpu_load",
    "encode_prompt",
    "eos_token_ids",
    "generate",
    "generate_text",
    "load_model",
    "logits_width",
    "output_grammar",
    "pick_device",
    "pick_dtype",
    "pick_threads",
    "prompt_text",
    "quantized_decoder",
    "trained_here",
    "use_fast_decoder",
]

#: A plain prompt, or chat messages as ``{"role", "content"}`` dicts or objects with
#: ``role`` and ``content`` attributes (such as :class:`mgpt.llm.backends.base.ChatMessage`).
PromptOrMessages = Union[str, Sequence[Any]]

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


class PromptTooLongError(ModelConfigError, ValueError):
    """The prompt does not fit the model's context: a model with a longer context (or a
    shorter prompt) is the fix. An MgptError, so the CLI reports it in one line."""


class ModelLoadError(ModelConfigError):
    """A folder is not a loadable Hugging Face causal-LM checkpoint, or the libraries to
    load it are missing. The message names what is missing."""


def _require_workshop() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(
            f"Local models need the model workshop's libraries ({exc.name} is missing): "
            "pip install 'mgpt[train]'."
        ) from None


def check_checkpoint(model_dir: str | Path) -> Path:
    """Return ``model_dir`` as a Path if it looks like a checkpoint written by
    ``save_pretrained`` (config, weights and tokenizer), else raise
    :class:`ModelLoadError` naming every missing piece."""
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise ModelLoadError(f"Model folder {path} does not exist.")
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file; --model wants the checkpoint folder that holds it.")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / name).is_file() for name in _WEIGHT_FILES) and not any(path.glob("*.safetensors")):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json or tokenizer_config.json)")
    if missing:
        raise ModelLoadError(
            f"{path} is not a Hugging Face checkpoint: it lacks {'; '.join(missing)}. "
            "Point --model at a folder written by save_pretrained, with the tokenizer saved "
            "next to the model (the trainer's output folder is one)."
        )
    return path


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str):
    """bfloat16 on a CUDA device that supports it (half the memory, tensor cores), else
    float32: CPUs run float32 fastest, and bf16 would round the weights for nothing."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def pick_threads(threads: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """How many intra-op threads torch should use: ``threads``, else ``$MGPT_THREADS``, else
    the cores this process may use minus the ones other processes keep busy (1-minute load
    average), at least 1. Oversubscribing cores makes every process slower: two torch
    processes of 2 threads each on a 2-core machine stalled a run for 25 minutes."""
    import os

    env = os.environ if env is None else env
    if threads is None and env.get("MGPT_THREADS"):
        try:
            threads = int(env["MGPT_THREADS"])
        except ValueError:
            raise ModelConfigError(f"MGPT_THREADS={env['MGPT_THREADS']!r} is not a whole number of threads") from None
    if threads is not None:
        if threads < 1:
            raise ModelConfigError(f"threads must be at least 1, not {threads}")
        return threads
    cores, busy = cpu_load()
    return max(1, min(cores, round(cores - busy)))


def cpu_load() -> tuple[int, float]:
    """The cores this process may use, and how many of them other processes keep busy (the
    1-minute load average; 0 where there is none)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        busy = 0.0
    return cores, busy


@dataclass
class LoadedModel:
    """A model and its tokenizer, loaded once and ready for repeated calls."""

    model: Any
    tokenizer: Any
    device: str
    path: Path
    #: A :class:`~mgpt.llm.local.fastllama.FastLlama` that decodes instead of HF ``generate``
    #: (see :func:`use_fast_decoder`); None: HF ``generate``.
    fast: Any = None

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def max_positions(self) -> int | None:
        """The longest sequence the model takes, if its config says."""
        config = self.model.config
        if hasattr(config, "get_text_config"):
            config = config.get_text_config()
        for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None


@dataclass
class Generation:
    """One generated answer with its token accounting."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    #: ``"stop"`` when the model ended with an end-of-sequence token, ``"length"`` when
    #: it ran into ``max_new_tokens``.
    finish_reason: str
    #: Whether the tokenizer's chat template formatted the prompt.
    chat_template_used: bool = False


def load_model(
    model_dir: str | Path, *, device: str | None = None, dtype: Any = None, threads: int | None = None
) -> LoadedModel:
    """Load the causal LM and tokenizer in ``model_dir`` onto ``device`` (default: CUDA
    when available, else CPU), in eval mode, in ``dtype`` (default: as saved;
    :func:`pick_dtype` gives bfloat16 on CUDA). Sets torch's intra-op threads
    (process-wide) to :func:`pick_threads` of ``threads``."""
    _require_workshop()
    path = check_checkpoint(model_dir)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(pick_threads(threads))

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"Could not load the checkpoint in {path}: {exc}") from None
    device = pick_device(device)
    try:
        model.to(device=device, dtype=dtype)
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise ModelLoadError(f"Cannot put the model on device {device!r}: {exc}") from None
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, path=path)


# -- the prompt -------------------------------------------------------------------------------


def _as_messages(messages: Sequence[Any]) -> list[dict[str, str]]:
    out = []
    for message in messages:
        if isinstance(message, Mapping):
            out.append({"role": str(message["role"]), "content": str(message["content"])})
        else:
            out.append({"role": str(message.role), "content": str(message.content)})
    return out


def prompt_text(loaded: LoadedModel, prompt: PromptOrMessages, chat: bool | None = None) -> tuple[str, bool]:
    """The text to feed the model, and whether the chat template made it.

    Messages use the chat template when the tokenizer has one (``chat=False`` forces
    plain text); a string uses it only with ``chat=True``. Without a template, messages
    become ``role: content`` lines ending in ``assistant:``, which a base model can
    continue.
    """
    if isinstance(prompt, str):
        if not chat:
            return prompt, False
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = _as_messages(prompt)
    if chat is not False and loaded.has_chat_template:
        text = loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, True
    if isinstance(prompt, str):
        return prompt, False
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines + ["assistant:"]), False


def eos_token_ids(loaded: LoadedModel) -> list[int]:
    """The token ids that end an answer: the generation config's end-of-sequence ids,
    else the tokenizer's; empty if neither has one."""
    eos = loaded.model.generation_config.eos_token_id
    if eos is None:
        eos = loaded.tokenizer.eos_token_id
    if eos is None:
        return []
    return list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]


def encode_prompt(loaded: LoadedModel, prompt: PromptOrMessages, chat: bool | None = None) -> tuple[list[int], bool]:
    """The prompt's token ids as :func:`generate_text` feeds them, and whether the chat
    template made them (see :func:`prompt_text`). An empty prompt becomes the
    beginning-of-text token (BOS, else the first end-of-sequence id), as in training;
    ValueError if the tokenizer has neither."""
    text, templated = prompt_text(loaded, prompt, chat)
    # A chat template already writes the special tokens (BOS...) it wants.
    ids = list(loaded.tokenizer(text, add_special_tokens=not templated)["input_ids"])
    if not ids:
        bos = loaded.tokenizer.bos_token_id
        start = bos if bos is not None else (eos_token_ids(loaded) or [None])[0]
        if start is None:
            raise ValueError("The prompt is empty and the tokenizer has no BOS/EOS token to start from.")
        ids = [int(start)]
    return ids, templated


def answer_budget(loaded: LoadedModel, prompt_len: int, max_tokens: int) -> int:
    """``max_tokens`` cut to the context left after the prompt (learned position tables
    end at the model's length: generation stops there, finish_reason "length");
    PromptTooLongError when the prompt alone fills the context."""
    limit = loaded.max_positions
    if limit is None:
        return max_tokens
    if prompt_len >= limit:
        raise PromptTooLongError(
            f"The prompt is {prompt_len} tokens but the model reads at most {limit}; "
            "shorten it, or use a model with a longer context."
        )
    return min(max_tokens, limit - prompt_len)


# -- generation -------------------------------------------------------------------------------


class _CallbackStreamer:
    """A transformers streamer that hands decoded text to a callback as it grows.

    It decodes all generated tokens so far and passes on the new suffix, holding back
    a possibly incomplete UTF-8 character at the end. The pieces join to :attr:`text`.
    HF ``generate`` first passes the prompt ids, which are skipped; ``skip_prompt=False``
    for a caller that feeds new tokens only.
    """

    def __init__(self, tokenizer: Any, on_text: Callable[[str], Any] | None, *, skip_prompt: bool = True):
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.ids: list[int] = []
        self.text = ""
        self._prompt_seen = not skip_prompt

    def _emit(self, final: bool) -> None:
        decoded = self.tokenizer.decode(self.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if not final:
            # Trailing replacement characters may be the first bytes of a character
            # the next token completes; hold them back until then.
            decoded = decoded.rstrip("\ufffd")
        # A tokenizer may rewrite earlier text as tokens arrive; what is streamed cannot
        # be taken back, so only ever add the part past what was already sent.
        if decoded.startswith(self.text) and len(decoded) > len(self.text):
            piece = decoded[len(self.text) :]
            self.text = decoded
            if self.on_text is not None:
                self.on_text(piece)

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first passes the prompt ids
            self._prompt_seen = True
            return
        self.ids.extend(int(token) for token in value.reshape(-1).tolist())
        self._emit(final=False)

    def end(self) -> None:
        self._emit(final=True)


#: What :func:`generate_text` decodes with when it is given no :class:`SamplingParams`:
#: greedy, at most 128 new tokens.
GENERATE_DEFAULTS = SamplingParams(max_tokens=128)


def _generate_params(params: SamplingParams | None, options: dict[str, Any]) -> SamplingParams:
    """``params`` (default :data:`GENERATE_DEFAULTS`) with the older keyword ``options``
    applied, checked; ValueError for what this decoder does not do."""
    params = (params or GENERATE_DEFAULTS).with_options(**options)
    params.check()
    unsupported = params.unsupported("stop", "ignore_eos", "constraint")
    if unsupported:
        raise ValueError(
            f"generate_text does not take {', '.join(unsupported)}: the serving engine "
            "(mgpt.llm.serve.engine.Engine) does; for a structured answer pass output=."
        )
    return params


def _seed_torch(seed: int | None) -> None:
    """Seed torch's global generators (HF ``generate`` samples from them)."""
    if seed is None:
        return
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def generate_text(
    loaded: LoadedModel,
    prompt: PromptOrMessages,
    params: SamplingParams | None = None,
    *,
    chat: bool | None = None,
    on_text: Callable[[str], Any] | None = None,
    output: Any = None,
    **options: Any,
) -> Generation:
    """Continue ``prompt`` (a string, or chat messages) with the loaded model.

    ``params`` (:class:`~mgpt.llm.local.sampling.SamplingParams`, default
    :data:`GENERATE_DEFAULTS`) says how: ``temperature`` 0 decodes greedily; above 0 it
    samples, keeping the ``top_k`` most likely tokens and the smallest set with
    probability ``top_p``; ``seed`` seeds torch first so sampling repeats. Its fields may
    also be given as keyword ``options`` (``max_new_tokens=40, temperature=0.7``), which
    override ``params``. ``chat`` picks the chat template: see :func:`prompt_text`.
    ``on_text`` receives the text piece by piece as it is generated. Generation also
    stops at the model's context length; an empty prompt starts from the BOS (or EOS)
    token. Bad option values raise ValueError. ``output`` (an
    :class:`~mgpt.llm.backends.base.OutputFormat`) holds the answer to that shape: see
    :func:`_constrained_options`.
    """
    params = _generate_params(params, options)
    import torch

    ids, templated = encode_prompt(loaded, prompt, chat)
    input_ids = torch.tensor([ids], device=loaded.device)  # [1, prompt_len]
    params = params.with_options(max_tokens=answer_budget(loaded, len(ids), params.max_tokens))
    eos_ids = eos_token_ids(loaded)
    # The grammar is compiled (or a too-small budget refused) before any token is drawn.
    if loaded.fast is not None:
        matcher = output_matcher(loaded, output, params.max_tokens) if output is not None else None
        _seed_torch(params.seed)
        gen = _generate_fast(loaded, input_ids, params, eos_ids, matcher, on_text)
    else:
        options = _hf_options(loaded, params, eos_ids)
        if output is not None:
            options.update(_constrained_options(loaded, output, len(ids), params.max_tokens))
        _seed_torch(params.seed)
        gen = _generate_hf(loaded, input_ids, options, eos_ids, on_text)
    gen.chat_template_used = templated
    return gen


def _generate_hf(
    loaded: LoadedModel, input_ids: Any, options: dict[str, Any], eos_ids: list[int],
    on_text: Callable[[str], Any] | None,
) -> Generation:
    """:func:`generate_text` on HF ``generate`` with its keyword ``options``."""
    import torch

    streamer = _CallbackStreamer(loaded.tokenizer, on_text)
    with torch.no_grad():
        out = loaded.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer, **options
        )
    prompt_len = int(input_ids.shape[1])
    new_ids = out[0, prompt_len:].tolist()
    return Generation(
        text=streamer.text,
        prompt_tokens=prompt_len,
        completion_tokens=len(new_ids),
        finish_reason="stop" if new_ids and new_ids[-1] in eos_ids else "length",
    )


def _hf_options(loaded: LoadedModel, params: SamplingParams, eos_ids: list[int]) -> dict[str, Any]:
    """HF ``generate`` keyword arguments for ``params``."""
    options: dict[str, Any] = {"max_new_tokens": params.max_tokens}
    if params.temperature == 0:
        options["do_sample"] = False
    else:
        # Pass every knob explicitly: a checkpoint's generation_config.json may carry
        # its own top_k/top_p, and unset here must mean off.
        options.update(do_sample=True, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p)
    if eos_ids:
        options["eos_token_id"] = eos_ids
    pad = loaded.tokenizer.pad_token_id
    options["pad_token_id"] = pad if pad is not None else (eos_ids[0] if eos_ids else 0)
    return options


def generate(
    model_dir: str | Path,
    prompt: PromptOrMessages,
    params: SamplingParams | None = None,
    *,
    chat: bool | None = None,
    on_text: Callable[[str], Any] | None = None,
    device: str | None = None,
    **options: Any,
) -> str:
    """Load ``model_dir`` and return its continuation of ``prompt``; see
    :func:`generate_text` for ``params`` and the keyword ``options``. Loads the model on
    every call: keep a :func:`load_model` result for repeated prompts."""
    params = _generate_params(params, options)  # bad options fail before the model loads
    loaded = load_model(model_dir, device=device)
    return generate_text(loaded, prompt, params, chat=chat, on_text=on_text).text


# -- the lean decoder (see mgpt.llm.local.fastllama) ---------------------------------------------


#: Decoders for local models: HF ``generate`` (exact, any architecture) or mgpt's lean
#: Llama-family decoder, in full precision or with int8/int4 weights (mgpt.llm.local.fastllama).
DECODERS = ("hf", "fast", "fast-int8", "fast-int4")


def trained_here(path: str | Path) -> bool:
    """Whether ``path`` is a model mgpt's trainer wrote: its out_dir holds ``metrics.jsonl``
    (for a LoRA run, the ``merged`` folder's parent does)."""
    p = Path(path)
    return any((d / "metrics.jsonl").is_file() for d in (p, p.parent if p.name == "merged" else p))


def quantized_decoder(path: str | Path) -> str:
    """The lean decoder to use when none is asked for: ``fast-int4`` for a downloaded model
    (the embedded one's weights come from a 4-bit GGUF, so int4 costs it 0.3% perplexity),
    ``fast-int8`` for one this trainer wrote. A fine-tune moves each weight by much less
    than an int4 step, so int4 puts most of it back on the base's values: a short
    fine-tune of the embedded model kept 29% of its gain in answer log-likelihood under
    int4 and all of it under int8 (benchmarks/bench_finetune_quant.py, docs/benchmarks.md)."""
    return "fast-int8" if trained_here(path) else "fast-int4"


def use_fast_decoder(loaded: LoadedModel, decoder: str, *, threads: int | None = None) -> bool:
    """Decode ``loaded`` with the lean decoder ``decoder`` names (``fast``, ``fast-int8``,
    ``fast-int4``); ``hf`` keeps HF ``generate``. An architecture the lean decoder does not
    cover (it takes Llama, Mistral and Qwen2 models) keeps HF ``generate``: returns False."""
    from mgpt.llm.local.fastllama import FastLlama, FastLlamaError

    if decoder not in DECODERS:
        raise ModelConfigError(f"unknown decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
    if decoder == "hf":
        loaded.fast = None
        return False
    quant = {"fast": None, "fast-int8": "int8", "fast-int4": "int4"}[decoder]
    if quant is not None and loaded.device != "cpu":
        quant = None  # the int8/int4 kernels are CPU ones; a GPU decodes bf16 weights
    try:
        loaded.fast = FastLlama.from_model(loaded.model, quant=quant, threads=threads, device=loaded.device)
    except FastLlamaError:
        loaded.fast = None
    return loaded.fast is not None


def _generate_fast(
    loaded: LoadedModel, input_ids: Any, params: SamplingParams, eos_ids: list[int], matcher: Any,
    on_text: Callable[[str], Any] | None,
) -> Generation:
    """:func:`generate_text` on the lean decoder: the same prompt, stop tokens, streaming
    and grammar (``matcher`` masks each step's logits and advances on each token)."""
    import torch

    hook = None
    produced: list[int] = []
    if matcher is not None:
        def hook(logits: Any) -> Any:
            return matcher.mask_logits(logits, remaining=params.max_tokens - len(produced))

    streamer = _CallbackStreamer(loaded.tokenizer, on_text, skip_prompt=False)

    def on_token(token: int) -> None:
        produced.append(token)
        if matcher is not None and token not in eos_ids:
            matcher.advance(token)
        streamer.put(torch.tensor([token]))

    gen = loaded.fast.generate(
        input_ids, max_new_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
        top_k=params.top_k, eos_ids=eos_ids, logits_hook=hook, on_token=on_token, seed=params.seed,
    )
    streamer.end()
    return Generation(
        text=streamer.text,
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=len(gen.tokens),
        finish_reason=gen.finish_reason,
    )


# -- constrained decoding (see mgpt.llm.local.constrained) -------------------------------------------


def logits_width(loaded: LoadedModel) -> int:
    """How many logits the model produces per position (its embedding may be padded past
    the tokenizer's size)."""
    head = loaded.model.get_output_embeddings()
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return len(loaded.tokenizer)


def output_grammar(loaded: LoadedModel, output: Any) -> Any:
    """The compiled grammar (:class:`~mgpt.llm.local.constrained.CompiledGrammar`) that
    holds ``loaded``'s answers to ``output``'s format (an
    :class:`~mgpt.llm.backends.base.OutputFormat`); compiled once per format and tokenizer."""
    from mgpt.llm.local.constrained import compile_output

    eos_ids = eos_token_ids(loaded)
    return compile_output(loaded.tokenizer, output, vocab_size=logits_width(loaded), stop_token_ids=eos_ids or None)


def output_matcher(loaded: LoadedModel, output: Any, max_new_tokens: int) -> Any:
    """A fresh :class:`~mgpt.llm.local.constrained.Matcher` for ``output``'s grammar, or
    ConstraintError when ``max_new_tokens`` cannot hold even its shortest answer."""
    from mgpt.llm.local.constrained import ConstraintError

    grammar = output_grammar(loaded, output)
    if max_new_tokens < grammar.min_tokens:
        raise ConstraintError(
            f"the shortest answer in the format {grammar.label} takes {grammar.min_tokens} tokens "
            f"but only {max_new_tokens} may be generated; raise max_new_tokens or shorten the prompt."
        )
    return grammar.matcher()


def _constrained_options(loaded: LoadedModel, output: Any, prompt_len: int, max_new_tokens: int) -> dict[str, Any]:
    """``generate`` options that hold the answer to ``output``'s grammar.

    A logits processor feeds each picked token to a :class:`~mgpt.llm.local.constrained.Matcher`
    and masks the next logits (on their own device) before temperature, top-k and top-p
    see them; in the last ``reserve`` tokens of the budget it forces the answer closed.
    """
    from transformers import LogitsProcessor, LogitsProcessorList

    matcher = output_matcher(loaded, output, max_new_tokens)

    class _Constrain(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            produced = int(input_ids.shape[1]) - prompt_len
            if produced > len(matcher.tokens):  # the token generate picked last step
                matcher.advance(int(input_ids[0, -1]))
            return matcher.mask_logits(scores, remaining=max_new_tokens - produced)

    return {"logits_processor": LogitsProcessorList([_Constrain()])}
