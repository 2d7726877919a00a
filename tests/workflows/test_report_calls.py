"""The report's timeline draws the calls an action made at once as overlapping bars."""

from datetime import datetime, timedelta, timezone

from mgpt.agents.runlog import Event, RunLog
from mgpt.workflows import report as rpt


def _log(ws, events):
    log = RunLog(ws / ".mgpt/run.jsonl")
    for e in events:
        log.write(e)
    log.close()


def test_overlapping_calls_are_drawn_inside_their_action(tmp_path):
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def at(s):
        return t0 + timedelta(seconds=s)

    def call(turn, start, end, ttft):
        return Event(kind="llm_call", role="Engineer", detail="WriteCode", at=at(end), data={
            "turn": turn, "prompt_tokens": 5, "completion_tokens": 50, "cost": 0.0,
            "seconds": end - start, "ttft": ttft})

    _log(tmp_path, [
        Event(kind="round", detail="round 1", data={"roles": ["Engineer"]}, at=at(0)),
        Event(kind="action_start", role="Engineer", detail="WriteCode", at=at(0)),
        call(1, 0.0, 2.0, 0.5), call(2, 0.1, 3.0, 0.4), call(3, 2.1, 4.0, 0.3),
        Event(kind="action_end", role="Engineer", detail="WriteCode", at=at(4)),
        Event(kind="stop", detail="done", data={"reason": "idle"}, at=at(4.1)),
    ])
    run = rpt.load_run(tmp_path)
    [span] = run.spans
    assert span.most_at_once() == 2 and len(span.call_times) == 3
    page = rpt.render(run)
    assert page.count('class="call"') == 3 and page.count('class="wait"') == 3
    assert "WriteCode turn 2: 2.90 s, first token after 0.40 s" in page
    assert "3 (2 at once)" in page
    # An older log (no ttft) still draws its calls, without the wait.
    assert rpt.render(run).count("<svg") >= 1
