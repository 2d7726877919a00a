"""``mgpt chat``: commands, multi-line input, one-shot mode, with scripted models."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mgpt.cli import app
from mgpt.llm.serve import chat
from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, StreamChunk
from mgpt.llm.errors import ModelUnavailableError
from mgpt.llm.backends.testing import FunctionModel, TestModel

runner = CliRunner()


class Echo(Model):
    """Streams back what it was asked, word by word, and records every request."""

    name = "echo"

    def __init__(self):
        self.requests: list[list[ChatMessage]] = []
        self.closed = False

    async def complete(self, messages, *, context: CallContext | None = None) -> Completion:
        self.requests.append(list(messages))
        return Completion(text=f"you said: {messages[-1].content}", model=self.name)

    async def stream(self, messages, *, context=None):
        completion = await self.complete(messages)
        for word in completion.text.split(" "):
            yield StreamChunk(delta=word + " ")
        yield StreamChunk(completion=completion)

    async def aclose(self):
        self.closed = True


@pytest.fixture
def echo(monkeypatch):
    model = Echo()
    specs = []

    def make_model(spec, **kw):
        specs.append(spec)
        return model

    monkeypatch.setattr(chat, "make_model", make_model)
    model.specs = specs
    return model


def test_one_shot_prints_the_answer(echo):
    result = runner.invoke(app, ["chat", "-m", "scripted", "what is 2+2?"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "you said: what is 2+2? \n"
    assert echo.specs == ["scripted"] and echo.closed


def test_one_shot_reads_stdin_with_dash(echo):
    result = runner.invoke(app, ["chat", "-m", "scripted", "--system", "be brief", "-"], input="line one\nline two\n")
    assert result.exit_code == 0, result.output
    (request,) = echo.requests
    assert [m.role for m in request] == ["system", "user"]
    assert request[0].content == "be brief" and request[1].content == "line one\nline two\n"


def test_one_shot_with_the_test_spec_and_a_scripted_model(monkeypatch):
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: TestModel(["four"]))
    result = runner.invoke(app, ["chat", "-m", "test", "2+2?"])
    assert result.exit_code == 0 and result.stdout == "four\n"


def test_interactive_conversation_keeps_history(echo, tmp_path):
    script = "\n".join(["hello", "/system answer in French", "how are you", f"/save {tmp_path / 'c.json'}", "/exit"])
    result = runner.invoke(app, ["chat", "-m", "scripted"], input=script + "\n")
    assert result.exit_code == 0, result.output
    assert "you said: hello" in result.output and "you said: how are you" in result.output
    second = echo.requests[1]
    assert [(m.role, m.content) for m in second] == [
        ("system", "answer in French"),
        ("user", "hello"),
        ("assistant", "you said: hello"),  # the final completion's text is what is kept
        ("user", "how are you"),
    ]
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["model"] == "echo"
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert echo.closed


def test_reset_forgets_turns_but_keeps_the_system_prompt(echo):
    script = "/system be kind\nfirst\n/reset\nsecond\n/exit\n"
    result = runner.invoke(app, ["chat", "-m", "scripted"], input=script)
    assert result.exit_code == 0
    assert [(m.role, m.content) for m in echo.requests[1]] == [("system", "be kind"), ("user", "second")]
    assert "conversation cleared" in result.output


def test_multi_line_input_backslash_and_paste_block(echo):
    script = 'first line \\\nsecond line\n"""\npasted\n\nblock /not a command\n"""\n//literal slash\n'
    result = runner.invoke(app, ["chat", "-m", "scripted"], input=script)  # ends at end of input
    assert result.exit_code == 0, result.output
    asked = [r[-1].content for r in echo.requests]
    assert asked == ["first line \nsecond line", "pasted\n\nblock /not a command", "/literal slash"]


def test_help_history_and_unknown_commands(echo):
    result = runner.invoke(app, ["chat", "-m", "scripted"], input="/help\nhi\n/history\n/bogus\n/system\n/quit\n")
    assert result.exit_code == 0
    out = result.output
    assert "/save FILE" in out and '"""' in out
    assert "1 user: hi" in out and "1 assistant: you said: hi" in out
    assert "unknown command /bogus" in out
    assert "system prompt: (none)" in out
    assert echo.requests and len(echo.requests) == 1


def test_a_model_error_keeps_the_session_going(monkeypatch):
    calls = []

    def answer(messages, context):
        calls.append([m.content for m in messages])
        if len(calls) == 1:
            raise ModelUnavailableError("the server is down; try later")
        return "back again"

    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: FunctionModel(answer))
    result = runner.invoke(app, ["chat", "-m", "scripted"], input="first\nsecond\n/exit\n")
    assert result.exit_code == 0
    assert "error:" in result.output and "the server is down" in result.output
    assert "back again" in result.output
    assert calls[1] == ["second"]  # the failed turn was not kept


def test_one_shot_error_exits_2(monkeypatch):
    monkeypatch.setattr(chat, "make_model", lambda spec, **kw: TestModel([]))
    result = runner.invoke(app, ["chat", "-m", "scripted", "hello"])
    assert result.exit_code == 2 and "no scripted answer" in result.output


def test_no_model_configured_is_a_clear_error():
    result = runner.invoke(app, ["chat", "hello"])
    assert result.exit_code == 2 and "no model configured" in result.output


def test_save_to_a_bad_path_keeps_the_session(echo, tmp_path):
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["chat", "-m", "scripted"], input=f"hi\n/save {tmp_path / 'file' / 'x.json'}\nagain\n")
    assert result.exit_code == 0 and "cannot save" in result.output
    assert len(echo.requests) == 2


def test_read_message_is_bounded_by_its_input():
    lines = iter(["a \\", "b \\"])

    def read(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    assert chat.read_message(read) == "a \nb \n"
    assert chat.read_message(read) is None


def test_ctrl_c_during_an_answer_drops_the_turn(monkeypatch):
    """An interrupt while the answer streams: the turn is dropped, the stream closed, and
    the next question is asked without it."""
    import asyncio

    from rich.console import Console

    closed = []

    class Slow(Model):
        name = "slow"

        async def complete(self, messages, *, context=None):
            return Completion(text="fine")

        async def stream(self, messages, *, context=None):
            if messages[-1].content == "interrupt me":
                try:
                    yield StreamChunk(delta="partial")
                    await asyncio.sleep(30)
                finally:
                    closed.append(True)
            else:
                yield StreamChunk(delta=f"{len(messages)} messages")
                yield StreamChunk(completion=Completion(text=f"{len(messages)} messages"))

    session = chat.ChatSession(Slow())
    lines = iter(["interrupt me", "next", "/exit"])
    deltas = []

    def read_line(prompt):
        return next(lines)

    real_delta = chat._Display.delta

    def delta(self, piece):
        real_delta(self, piece)
        deltas.append(piece)
        if piece == "partial":
            raise KeyboardInterrupt

    monkeypatch.setattr(chat._Display, "delta", delta)
    console = Console(file=__import__("io").StringIO(), width=100)
    assert chat.chat_loop(session, console=console, read_line=read_line) == 1
    assert closed == [True]
    assert deltas == ["partial", "1 messages"]
    assert "interrupted" in console.file.getvalue()
    assert [m.content for m in session.turns] == ["next", "1 messages"]
