"""The live view shows each call in flight and the tokens that have reached it."""

from io import StringIO

from rich.console import Console

from mgpt.agents.runlog import Event
from mgpt.cli.live import RunView


def _table_text(view: RunView) -> str:
    out = Console(file=StringIO(), width=200, force_terminal=False)
    out.print(view.live.renderable)
    return out.file.getvalue()


def test_calls_in_flight_show_their_tokens_until_they_finish():
    console = Console(file=StringIO(), width=200, force_terminal=True)
    view = RunView(console, ["Engineer"])
    with view:
        view(Event(kind="action_start", role="Engineer", detail="WriteCode"))
        for turn, pieces in ((1, 0), (2, 0), (1, 37), (2, 12)):
            view(Event(kind="llm_progress", role="Engineer", detail="WriteCode", data={"turn": turn, "pieces": pieces}))
        shown = _table_text(view)
        assert "working: WriteCode · #1 37 tok, #2 12 tok" in shown
        view(Event(kind="llm_call", role="Engineer", detail="WriteCode",
                   data={"turn": 1, "prompt_tokens": 10, "completion_tokens": 40, "cost": 0.0}))
        shown = _table_text(view)
        assert "#2 12 tok" in shown and "#1 37" not in shown
        view(Event(kind="action_end", role="Engineer", detail="WriteCode"))
        assert "tok" not in _table_text(view).split("done: WriteCode")[1].split("\n")[0]


def test_off_a_terminal_progress_prints_nothing():
    out = StringIO()
    view = RunView(Console(file=out, force_terminal=False), ["Engineer"])
    with view:
        view(Event(kind="llm_progress", role="Engineer", detail="WriteCode", data={"turn": 1, "pieces": 5}))
    assert out.getvalue() == ""
