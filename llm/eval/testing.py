"""A tiny, randomly initialised checkpoint for tests, built offline in a second.

:func:`make_tiny_checkpoint` writes a one-layer GPT-2 and a byte-level BPE tokenizer
trained on a few sentences into a folder that ``AutoModelForCausalLM`` and
``AutoTokenizer`` load like any ``save_pretrained`` output. Its text is gibberish; it is
for testing the plumbing (generation, perplexity, backends), never quality.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TINY_CHAT_TEMPLATE", "make_tiny_checkpoint"]

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A model workshop trains, evaluates and serves small language models.",
    "Roles turn a one-line idea into working software, one message at a time.",
    "Perplexity is the exponential of the mean negative log-likelihood per token.",
    "user: hello there\nassistant: hi, how can I help?",
]

#: A minimal chat template: ``<|role|>content`` per message, then ``<|assistant|>``.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

EOS = "<|endoftext|>"


def make_tiny_checkpoint(
    folder: str | Path,
    *,
    chat_template: bool = False,
    n_positions: int = 64,
    seed: int = 0,
) -> Path:
    """Write a tiny GPT-2 checkpoint with its tokenizer into ``folder`` and return it.

    ``chat_template=True`` gives the tokenizer :data:`TINY_CHAT_TEMPLATE`;
    ``n_positions`` is the model's context length; ``seed`` fixes the random weights.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, GPT2Config, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    # Byte-level BPE: every string encodes and decodes back exactly.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=EOS)
    if chat_template:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)

    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=16,
        n_positions=n_positions,
        vocab_size=len(tokenizer),
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    return folder
