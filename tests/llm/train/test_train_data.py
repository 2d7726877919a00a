"""Tokenizers, text and chat data: round trips, assistant-only labels, clear data errors."""

from __future__ import annotations

import json

import pytest

from mgpt.llm.train.errors import TrainError

CORPUS = "".join(f"the {a} fox jumps over the {b} dog.\n" for a in ("quick", "slow", "red") for b in ("lazy", "old")) * 20
CHAT = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "hi"},
    {"role": "user", "content": "who are you"},
    {"role": "assistant", "content": "a fox"},
]


@pytest.fixture(scope="module")
def char_tok(tmp_path_factory):
    from mgpt.llm.train.tokenizer import train_tokenizer

    d = tmp_path_factory.mktemp("data")
    (d / "corpus.txt").write_text(CORPUS + "abcdefghijklmnopqrstuvwxyz ,.?!'")
    return train_tokenizer(d / "corpus.txt", d / "tok", kind="char")


def test_char_tokenizer_round_trip(char_tok, tmp_path):
    from transformers import AutoTokenizer

    char_tok.save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    ids = tok("the quick fox\n", add_special_tokens=False)["input_ids"]
    assert len(ids) == len("the quick fox\n")  # one token per character
    assert tok.decode(ids) == "the quick fox\n"
    assert tok.bos_token == "<|bos|>" and tok.eos_token == "<|eos|>" and tok.pad_token == "<|pad|>"
    for role in ("<|system|>", "<|user|>", "<|assistant|>"):
        assert len(tok(role, add_special_tokens=False)["input_ids"]) == 1
    text = tok.apply_chat_template(CHAT[1:3], tokenize=False, add_generation_prompt=False)
    assert text == "<|bos|><|user|>hello there<|eos|><|assistant|>hi<|eos|>"


def test_bytebpe_tokenizer(tmp_path):
    from mgpt.llm.train.tokenizer import load_tokenizer, train_tokenizer

    (tmp_path / "c.txt").write_text(CORPUS)
    tok = train_tokenizer(tmp_path / "c.txt", tmp_path / "tok", kind="bytebpe", vocab_size=300)
    assert len(tok) <= 300
    again = load_tokenizer(tmp_path / "tok")
    s = "the quick fox, naïve café ☃\n"  # unseen characters still round-trip through bytes
    assert again.decode(again(s, add_special_tokens=False)["input_ids"]) == s
    assert len(again("the quick fox", add_special_tokens=False)["input_ids"]) < len("the quick fox")


def test_encode_chat_labels_only_assistant(char_tok):
    from mgpt.llm.train.data import encode_chat

    ids, labels = encode_chat(char_tok, CHAT)
    full = char_tok.apply_chat_template(CHAT, tokenize=False)
    assert ids == char_tok(full, add_special_tokens=False)["input_ids"]  # the template, consistently
    eos = char_tok.eos_token_id
    kept = [(i, t) for i, (t, lab) in enumerate(zip(ids, labels)) if lab != -100]
    assert all(labels[i] == ids[i] for i, _ in kept)
    # Exactly the assistant contents plus their closing eos are learned.
    assert char_tok.decode([t for _, t in kept], skip_special_tokens=False) == "hi<|eos|>a fox<|eos|>"
    starts = [i for i, t in enumerate(ids) if t == char_tok.convert_tokens_to_ids("<|assistant|>")]
    assert all(labels[s] == -100 for s in starts)  # the role marker itself is the prompt
    assert labels[-1] == eos

    # Other user text of the same length: the same positions count.
    other = [dict(m) for m in CHAT]
    other[1]["content"] = "howdy there"
    ids2, labels2 = encode_chat(char_tok, other)
    assert ids2 != ids
    assert [lab != -100 for lab in labels2] == [lab != -100 for lab in labels]


def test_chat_batches_shift_and_pad(char_tok, tmp_path):
    from mgpt.llm.train.data import ChatBatches

    p = tmp_path / "chat.jsonl"
    p.write_text("\n".join(json.dumps({"messages": CHAT[k % 2:3]}) for k in range(6)) + "\n")
    b = ChatBatches(p, char_tok, batch_size=3, block_size=64, val_fraction=0.0, seed=1)
    x, y = b.get_batch("train")
    assert x.shape == y.shape and x.shape[0] == 3
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        n = sum(1 for t in row_x if t != char_tok.pad_token_id)
        assert all(t == -100 for t in row_y[n:])  # padding is never learned
        assert char_tok.decode([t for t in row_y if t != -100], skip_special_tokens=False) == "hi<|eos|>"


def test_chat_jsonl_errors_name_the_line(tmp_path):
    from mgpt.llm.train.data import read_chat_jsonl

    good = json.dumps({"messages": CHAT[1:3]})
    p = tmp_path / "bad.jsonl"
    p.write_text(good + "\n\n" + "{not json\n")
    with pytest.raises(TrainError, match="line 3"):
        read_chat_jsonl(p)
    p.write_text(good + "\n" + json.dumps({"messages": [{"role": "user", "content": "no answer"}]}) + "\n")
    with pytest.raises(TrainError, match="line 2.*no assistant"):
        read_chat_jsonl(p)
    p.write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(TrainError, match="line 1.*role"):
        read_chat_jsonl(p)
    p.write_text(json.dumps({"messages": CHAT[2:3]}) + "\n")
    with pytest.raises(TrainError, match="line 1.*starts with an assistant"):
        read_chat_jsonl(p)


def test_text_data_errors(char_tok, tmp_path):
    from mgpt.llm.train.data import TextBatches, prepare_text

    with pytest.raises(TrainError, match="not found"):
        prepare_text(tmp_path / "missing.txt", char_tok, tmp_path / "d")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(TrainError, match="empty"):
        prepare_text(tmp_path / "empty.txt", char_tok, tmp_path / "d")
    (tmp_path / "short.txt").write_text("the quick fox jumps over the lazy dog\n")
    prepare_text(tmp_path / "short.txt", char_tok, tmp_path / "d", val_fraction=0.0)
    with pytest.raises(TrainError, match="block_size 64 is longer than the train data"):
        TextBatches(tmp_path / "d", batch_size=2, block_size=64)


def test_text_batches_are_shifted_and_reproducible(char_tok, tmp_path):
    from mgpt.llm.train.data import TextBatches, prepare_text

    (tmp_path / "c.txt").write_text(CORPUS)
    meta = prepare_text(tmp_path / "c.txt", char_tok, tmp_path / "d", val_fraction=0.1)
    assert meta["train_tokens"] + meta["val_tokens"] == len(CORPUS)
    a = TextBatches(tmp_path / "d", batch_size=4, block_size=16, seed=3)
    x, y = a.get_batch("train")
    assert x.shape == (4, 16) and (x[:, 1:] == y[:, :-1]).all()
    state = a.state_dict()
    nxt = a.get_batch("train")[0]
    b = TextBatches(tmp_path / "d", batch_size=4, block_size=16, seed=99)
    b.load_state_dict(state)
    assert (b.get_batch("train")[0] == nxt).all()  # the saved state replays the same batches
