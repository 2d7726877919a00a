"""The run report: one self-contained HTML file that tells what happened in a run.

:func:`write_report` reads a workspace's records — ``.mgpt/run.jsonl`` (every event),
``.mgpt/transcript.jsonl`` (the idea; old fix diffs) and ``docs/`` (PRD, design, tasks) —
and writes ``.mgpt/report.html``: the idea, a timeline of rounds and actions per role, every
message, the documents rendered with their mermaid diagrams drawn, the test results of
every round, the diff of every fix, and the totals.

The file opens offline from disk: the styles and the pinned mermaid library
(``assets/mermaid.min.js``, see ``tools/fetch_mermaid.py``) are inlined, and a
Content-Security-Policy forbids fetching anything. Everything taken from the run is
escaped — model text is hostile — and the policy lets only this module's own two scripts
run (they carry a fresh nonce), so even a missed escape could not run a script.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mgpt.actions.coding import unified_diff
from mgpt.llm.parsing import extract_files
from mgpt.sandbox.workspace import UnsafePathError, Workspace
from mgpt.agents.errors import MgptError
from mgpt.agents.runlog import Event

ASSETS = Path(__file__).resolve().parent / "assets"
REPORT_NAME = "report.html"
#: Roles in the order the software company runs them; others follow in order of appearance.
ROLE_ORDER = ["ProductManager", "Architect", "ProjectManager", "Engineer", "QaEngineer"]
DOCUMENTS = [("prd", "PRD", "docs/prd.md"), ("design", "Design", "docs/design.md"), ("tasks", "Tasks", "docs/tasks.md")]
#: Payloads shown as test runs: the company's tests, and the writers' room's example runs.
TEST_PAYLOADS = ("TestReport", "ExampleReport")


class NotARun(MgptError):
    """The folder holds no mgpt run log, so there is nothing to report."""


def default_path(workspace: str | Path) -> Path:
    """Where a workspace's report goes unless told otherwise."""
    return Path(workspace) / ".mgpt" / REPORT_NAME


# -- reading the run -------------------------------------------------------------------------


@dataclass
class Span:
    """One action a role took: when, in which round, and what its model calls cost."""

    role: str
    action: str
    round: int
    start: datetime
    end: datetime | None = None
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    turns: list[int] = field(default_factory=list)
    #: Each model call as it ran: (start, end, turn, seconds to the first token or None).
    #: Calls made together overlap.
    call_times: list[tuple[datetime, datetime, int, float | None]] = field(default_factory=list)
    #: The tool calls the action made, by call id: ``name(arguments)`` and whether it failed.
    tools: dict[str, tuple[str, bool]] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def most_at_once(self) -> int:
        """The most of this action's calls that were in flight together."""
        edges = sorted([(s, 1) for s, _, _, _ in self.call_times] + [(e, -1) for _, e, _, _ in self.call_times])
        most = now = 0
        for _, step in edges:
            now += step
            most = max(most, now)
        return most


@dataclass
class Round:
    number: int
    start: datetime
    roles: list[str]
    end: datetime | None = None


@dataclass
class Posted:
    """A message as the log recorded it (kept as plain data: nothing is imported or resolved)."""

    index: int
    round: int
    at: datetime
    sender: str
    receivers: list[str]
    cause: str
    content: str
    payload_type: str
    payload: dict[str, Any]


@dataclass
class Fix:
    round: int
    files: list[str]
    diffs: dict[str, str]
    #: Where the diffs came from: "log" (recorded by FixBug) or "transcript" (rebuilt for
    #: logs written before fixes recorded their diffs).
    source: str
    note: str = ""


@dataclass
class Run:
    """Everything the report shows, read from one workspace."""

    workspace: Path
    idea: str
    model: str
    events: list[Event]
    rounds: list[Round]
    spans: list[Span]
    messages: list[Posted]
    tests: list[Posted]
    fixes: list[Fix]
    documents: dict[str, str | None]
    #: (key, title, file) of the documents shown: the SOP's, from the transcript header
    #: (``meta["documents"]``), else the software company's
    document_list: list[tuple[str, str, str]]
    files: list[str]
    stop_reason: str
    stop_detail: str
    notices: list[Event]
    skipped_lines: int
    #: The transcript header's ``meta`` (what the SOP noted about the run).
    meta: dict[str, Any] = field(default_factory=dict)
    #: A judge's verdict on the run (its ``verdict`` event), e.g. a graded support conversation.
    verdict: dict[str, Any] | None = None

    @property
    def start(self) -> datetime | None:
        return self.events[0].at if self.events else None

    @property
    def end(self) -> datetime | None:
        return self.events[-1].at if self.events else None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds() if self.events else 0.0

    def roles(self) -> list[str]:
        seen = [s.role for s in self.spans]
        extra = [r for r in dict.fromkeys(seen) if r not in ROLE_ORDER]
        return [r for r in ROLE_ORDER if r in seen] + extra

    def totals(self) -> dict[str, Any]:
        calls = [e for e in self.events if e.kind == "llm_call"]
        costs = [e.data.get("cost") for e in calls]
        final = self.tests[-1].payload if self.tests else None
        return {
            "calls": len(calls),
            "prompt_tokens": sum(int(e.data.get("prompt_tokens") or 0) for e in calls),
            "completion_tokens": sum(int(e.data.get("completion_tokens") or 0) for e in calls),
            "cost": sum(float(c) for c in costs if c is not None),
            "cost_known": all(c is not None for c in costs),
            "seconds": self.seconds,
            "rounds": len(self.rounds),
            "messages": len(self.messages),
            "files": len(self.files),
            "tests": final,
            "fixes": len(self.fixes),
        }


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a JSONL file, and how many lines could not be read (a run that
    crashed may leave a torn last line; the report shows the rest)."""
    rows: list[dict[str, Any]] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                bad += 1
    return rows, bad


def _short(type_name: str) -> str:
    """``mgpt.actions.coding:FixBug`` -> ``FixBug``."""
    return str(type_name or "").rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def load_run(workspace: str | Path) -> Run:
    """Read a workspace's run log, transcript and documents. :class:`NotARun` when the
    folder has no run log."""
    root = Path(workspace)
    events, bad = _read_events(root)
    header, calls = _read_transcript(root / ".mgpt" / "transcript.jsonl")
    timeline = _Timeline()
    for event in events:
        timeline.add(event)
    if timeline.rounds:
        timeline.rounds[-1].end = events[-1].at
    messages = timeline.messages
    idea = str(header.get("idea") or next((m.content for m in messages if m.sender == "user"), ""))
    models = [str(e.data.get("model")) for e in events if e.kind == "llm_call" and e.data.get("model")]
    meta = header.get("meta") if isinstance(header.get("meta"), dict) else {}
    listed = [tuple(map(str, d)) for d in meta.get("documents") or [] if isinstance(d, list) and len(d) == 3]
    listed = listed or list(DOCUMENTS)
    return Run(
        workspace=root.resolve(),
        idea=idea,
        model=str(header.get("model") or (models[0] if models else "")),
        events=events,
        rounds=timeline.rounds,
        spans=timeline.spans,
        messages=messages,
        tests=[m for m in messages if m.payload_type in TEST_PAYLOADS],
        fixes=_read_fixes(timeline.spans, messages, calls),
        documents=_read_documents(root, listed),
        document_list=listed,
        files=Workspace(root).files(),
        stop_reason=timeline.stop_reason,
        stop_detail=timeline.stop_detail,
        notices=timeline.notices,
        skipped_lines=bad,
        meta=header.get("meta") if isinstance(header.get("meta"), dict) else {},
        verdict=timeline.verdict,
    )


def _read_events(root: Path) -> tuple[list[Event], int]:
    """The run log's events, and how many lines could not be read."""
    log = root / ".mgpt" / "run.jsonl"
    if not root.is_dir():
        raise NotARun(f"{root} is not a folder; give the workspace of an mgpt run (mgpt run ... -w WS)")
    if not log.is_file():
        raise NotARun(
            f"{root} is not an mgpt run: it has no .mgpt/run.jsonl (make one with: mgpt run IDEA -w {root})"
        )
    rows, bad = _read_jsonl(log)
    events: list[Event] = []
    for row in rows:
        try:
            events.append(Event.model_validate(row))
        except ValueError:
            bad += 1
    return events, bad


def _read_transcript(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The transcript's header and its call records (both empty without a transcript)."""
    if not path.is_file():
        return {}, []
    records, _ = _read_jsonl(path)
    header = next((r for r in records if r.get("type") == "header"), {})
    return header, [r for r in records if r.get("type") == "call"]


@dataclass
class _Timeline:
    """The run log read in order: rounds, each role's actions (spans) with what their
    model calls cost, the messages posted, and how the run stopped."""

    rounds: list[Round] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    messages: list[Posted] = field(default_factory=list)
    #: Bounds hit, errors, and kinds this report does not know yet.
    notices: list[Event] = field(default_factory=list)
    stop_reason: str = ""
    stop_detail: str = ""
    verdict: dict[str, Any] | None = None
    #: Each role's action in progress.
    open_spans: dict[str, Span] = field(default_factory=dict)

    @property
    def current_round(self) -> int:
        return self.rounds[-1].number if self.rounds else 0

    def add(self, event: Event) -> None:
        if event.kind == "round":
            if self.rounds:
                self.rounds[-1].end = event.at
            self.rounds.append(Round(len(self.rounds) + 1, event.at, [str(r) for r in event.data.get("roles", [])]))
        elif event.kind == "action_start":
            span = Span(event.role, event.detail, self.current_round, event.at)
            self.spans.append(span)
            self.open_spans[event.role] = span
        elif event.kind == "action_end":
            span = self.open_spans.pop(event.role, None)
            if span is not None:
                span.end = event.at
        elif event.kind == "llm_call":
            span = self.open_spans.get(event.role)
            if span is not None:
                _count_call(span, event)
        elif event.kind in ("tool_call", "tool_result"):
            span = self.open_spans.get(event.role)
            if span is not None:
                _count_tool(span, event)
        elif event.kind == "message":
            self.messages.append(_posted(event, len(self.messages) + 1, self.current_round))
        elif event.kind == "stop":
            self.stop_reason, self.stop_detail = str(event.data.get("reason", "")), event.detail
        elif event.kind == "verdict":
            self.verdict = dict(event.data)
        else:
            self.notices.append(event)


def _count_call(span: Span, event: Event) -> None:
    """Add one model call (an ``llm_call`` event) to the action it was made in."""
    span.calls += 1
    span.prompt_tokens += int(event.data.get("prompt_tokens") or 0)
    span.completion_tokens += int(event.data.get("completion_tokens") or 0)
    if event.data.get("cost") is None:
        span.cost_known = False
    else:
        span.cost += float(event.data["cost"])
    if isinstance(event.data.get("turn"), int):
        span.turns.append(event.data["turn"])
    seconds = event.data.get("seconds")
    if isinstance(seconds, (int, float)):  # the event is written when the answer is in
        ttft = event.data.get("ttft")
        start = event.at - timedelta(seconds=float(seconds))
        span.call_times.append((start, event.at, int(event.data.get("turn") or 0),
                                float(ttft) if isinstance(ttft, (int, float)) else None))


def _count_tool(span: Span, event: Event) -> None:
    """Note a tool call (``tool_call``) or whether it failed (``tool_result``), by call id."""
    key = str(event.data.get("id", ""))
    if event.kind == "tool_call":
        span.tools[key] = (event.detail, False)
    elif key in span.tools:
        span.tools[key] = (span.tools[key][0], bool(event.data.get("error")))


def _posted(event: Event, index: int, round_no: int) -> Posted:
    """A ``message`` event as plain data."""
    m = event.data.get("message") if isinstance(event.data.get("message"), dict) else {}
    payload = m.get("payload") if isinstance(m.get("payload"), dict) else {}
    return Posted(
        index=index,
        round=round_no,
        at=event.at,
        sender=str(m.get("sent_from") or event.role or "user"),
        receivers=[str(r) for r in event.data.get("to", [])],
        cause=_short(m.get("cause_by", "")),
        content=str(m.get("content", "")),
        payload_type=_short(payload.get("type", "")),
        payload=payload.get("data") if isinstance(payload.get("data"), dict) else {},
    )


def _read_fixes(spans: list[Span], messages: list[Posted], calls: list[dict[str, Any]]) -> list[Fix]:
    """Each fix round's files and diffs, the n-th FixBug message matched to the n-th FixBug action."""
    fix_spans = [s for s in spans if s.action == "FixBug"]
    fixes = []
    for i, m in enumerate(p for p in messages if p.cause == "FixBug"):
        fixes.append(_fix(m, fix_spans[i] if i < len(fix_spans) else None, calls))
    return fixes


def _read_documents(root: Path, listed: list[tuple[str, str, str]]) -> dict[str, str | None]:
    """The run's documents (the PRD, design and task list) as markdown (None where missing)."""
    documents: dict[str, str | None] = {}
    workspace = Workspace(root)
    for key, _, rel in listed:
        try:  # generated code ran here: a document may be a link to a file of the host's
            documents[key] = workspace.read(rel) if workspace.exists(rel) else None
        except (OSError, UnsafePathError):
            documents[key] = None
    return documents


def _fix(message: Posted, span: Span | None, calls: list[dict[str, Any]]) -> Fix:
    files = [str(f) for f in message.payload.get("files", [])]
    diffs = message.payload.get("diffs")
    if isinstance(diffs, dict) and diffs:
        return Fix(message.round, files, {str(k): str(v) for k, v in diffs.items()}, "log")
    return Fix(message.round, files, *_diffs_from_transcript(files, span, calls))


def _diffs_from_transcript(
    files: list[str], span: Span | None, calls: list[dict[str, Any]]
) -> tuple[dict[str, str], str, str]:
    """Rebuild a fix's diffs for a log written before FixBug recorded them: the files
    before come from the fix prompt (it shows the files involved), the files after from
    the model's accepted answer (the last call of that action)."""
    if span is None or not span.turns:
        return {}, "transcript", "this fix's model calls are not in the log; its diff cannot be shown"
    mine = {
        c.get("turn"): c for c in calls if c.get("role") == span.role and c.get("action") == "FixBug"
    }
    first, last = mine.get(span.turns[0]), mine.get(span.turns[-1])
    if first is None or last is None:
        return {}, "transcript", "the transcript lacks this fix's model calls; its diff cannot be shown"
    prompt = "\n".join(str(m.get("content", "")) for m in first.get("request", []) if m.get("role") == "user")
    try:
        after = dict(extract_files(str((last.get("response") or {}).get("text", ""))))
    except ValueError:
        return {}, "transcript", "the fix's answer in the transcript could not be read"
    diffs, unseen = {}, []
    for path in files:
        if path not in after:
            continue
        m = re.search(rf"^## {re.escape(path)}\n```[\w-]*\n(.*?)```", prompt, re.DOTALL | re.MULTILINE)
        if m is None:
            unseen.append(path)
        diffs[path] = unified_diff(path, m.group(1) if m else None, after[path])
    note = "rebuilt from the transcript (this log predates recorded fix diffs)"
    if unseen:
        note += f"; {', '.join(unseen)} was not shown to the model, so it is diffed against an empty file"
    return diffs, "transcript", note


# -- rendering -------------------------------------------------------------------------------


def esc(value: Any) -> str:
    """Text from the run, made inert in HTML (quotes too: it may land in an attribute)."""
    return html.escape(str(value), quote=True)


def _markdown(text: str, *, diagrams: bool) -> str:
    """Markdown from the run as safe HTML.

    markdown-it-py (a CommonMark parser that rich already depends on) with raw HTML off,
    so ``<script>`` is shown as text, and with links and images off, so model text can
    neither fetch anything nor point elsewhere: ``[x](url)`` stays literal text. Fenced
    ``mermaid`` blocks become diagrams when ``diagrams`` is set, code otherwise.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").disable(["image", "link", "autolink", "html_inline", "html_block"])

    def fence(renderer, tokens, idx, options, env):
        token = tokens[idx]
        lang = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
        if diagrams and lang == "mermaid":
            return f'<div class="diagram"><pre class="mermaid">{esc(token.content)}</pre></div>\n'
        cls = f' class="language-{esc(lang)}"' if lang else ""
        return f"<pre><code{cls}>{esc(token.content)}</code></pre>\n"

    md.add_render_rule("fence", fence)
    return md.render(text)


def _money(cost: float, known: bool) -> str:
    return f"${cost:.4f}" if known else f"≥ ${cost:.4f} (unknown price)"


def _secs(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value / 60:.1f} min"


def _offset(run: Run, at: datetime | None) -> float:
    return (at - run.start).total_seconds() if at is not None and run.start is not None else 0.0


_PALETTE = {
    "WritePRD": "#6366f1", "WriteDesign": "#0ea5e9", "WriteTasks": "#14b8a6", "WriteCode": "#22c55e",
    "WriteTests": "#eab308", "RunTests": "#f97316", "FixBug": "#ef4444",
}


def _color(action: str) -> str:
    if action in _PALETTE:
        return _PALETTE[action]
    hue = sum(ord(c) for c in action) * 47 % 360
    return f"hsl({hue},55%,50%)"


def _timeline_svg(run: Run) -> str:
    """Bars per role lane. Every round gets a column of the same width (a model call can
    take a minute and a replayed one a millisecond; equal columns keep both readable);
    within its column an action sits where it ran in time."""
    roles = run.roles()
    if not run.rounds or not roles:
        return '<p class="muted">No rounds ran.</p>'
    label_w, col_w, lane_h, top = 130, max(60, min(160, 960 // len(run.rounds))), 30, 34
    width = label_w + col_w * len(run.rounds) + 10
    height = top + lane_h * len(roles) + 24
    out = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-label="timeline of rounds and actions" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, role in enumerate(roles):
        y = top + i * lane_h
        if i % 2 == 0:
            out.append(f'<rect x="0" y="{y}" width="{width}" height="{lane_h}" class="lane"/>')
        out.append(f'<text x="6" y="{y + lane_h / 2 + 4}" class="role">{esc(role)}</text>')
    for r in run.rounds:
        x = label_w + (r.number - 1) * col_w
        dur = _offset(run, r.end) - _offset(run, r.start)
        out.append(f'<line x1="{x}" y1="{top - 20}" x2="{x}" y2="{height - 20}" class="grid"/>')
        out.append(f'<text x="{x + 4}" y="{top - 8}" class="round">R{r.number}</text>')
        out.append(f'<text x="{x + 4}" y="{height - 6}" class="dur">{esc(_secs(dur))}</text>')
        length = max(dur, 1e-9)
        lane_end: dict[str, float] = {}  # a short action must not hide under the next one
        right = x + col_w - 4
        for span in (s for s in run.spans if s.round == r.number):
            lane = roles.index(span.role)
            a = max(0.0, min((_offset(run, span.start) - _offset(run, r.start)) / length, 1.0))
            b = max(0.0, min((_offset(run, span.end or r.end) - _offset(run, r.start)) / length, 1.0))
            x0 = max(x + 3 + a * (col_w - 10), lane_end.get(span.role, 0.0) + 2)
            x1 = max(x + 3 + b * (col_w - 10), x0 + 7.0)
            x0 = min(x0, right - 7.0)
            w = min(x1, right) - x0
            lane_end[span.role] = x0 + w
            y = top + lane * lane_h + 6
            secs = _offset(run, span.end or r.end) - _offset(run, span.start)
            tip = f"{span.role}: {span.action}, round {span.round}, {secs:.2f} s, {span.calls} calls, {span.tokens} tokens"
            out.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{lane_h - 12}" rx="3" '
                f'fill="{_color(span.action)}"><title>{esc(tip)}</title></rect>'
            )
            out += _call_bars(run, span, r, (x, col_w, length), (x0, w, y, lane_h - 12))
    x = label_w + len(run.rounds) * col_w
    out.append(f'<line x1="{x}" y1="{top - 20}" x2="{x}" y2="{height - 20}" class="grid"/>')
    out.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{_color(a)}"></i>{esc(a)}</span>'
        for a in dict.fromkeys(s.action for s in run.spans)
    )
    return "".join(out) + f'<div class="legend">{legend}</div>'


def _call_bars(run: Run, span: Span, r: Round, column: tuple[float, float, float],
               bar: tuple[float, float, float, float]) -> list[str]:
    """An action's model calls as thin bars inside its bar, one row per call in flight at
    once, so calls that overlapped are seen overlapping (a darker stretch: waiting for the
    first token)."""
    if len(span.call_times) < 2:
        return []
    x, col_w, length = column
    x0, w, y, height = bar
    rows: list[float] = []  # where each row's last call ends
    placed = []
    for start, end, turn, ttft in sorted(span.call_times):
        row = next((i for i, free in enumerate(rows) if free <= start.timestamp()), len(rows))
        rows[row:row + 1] = [end.timestamp()]
        placed.append((row, start, end, turn, ttft))
    h = max(1.5, (height - 2) / len(rows))

    def at(when: datetime) -> float:
        frac = max(0.0, min((_offset(run, when) - _offset(run, r.start)) / length, 1.0))
        return min(max(x + 3 + frac * (col_w - 10), x0), x0 + w)

    out = []
    for row, start, end, turn, ttft in placed:
        a, b = at(start), max(at(end), at(start) + 1.0)
        top = y + 1 + row * h
        tip = f"{span.action} turn {turn}: {(end - start).total_seconds():.2f} s" + (
            f", first token after {ttft:.2f} s" if ttft is not None else "")
        out.append(f'<rect x="{a:.1f}" y="{top:.1f}" width="{b - a:.1f}" height="{max(h - 1, 1):.1f}" '
                   f'class="call"><title>{esc(tip)}</title></rect>')
        if ttft is not None and ttft > 0:
            wait = min(at(start + timedelta(seconds=ttft)), b) - a
            out.append(f'<rect x="{a:.1f}" y="{top:.1f}" width="{max(wait, 0):.1f}" height="{max(h - 1, 1):.1f}" '
                       'class="wait"/>')
    return out


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """A table from cells that are already HTML (callers escape)."""
    th = "".join(f'<th{" class=num" if i in numeric else ""}>{h}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _timeline(run: Run) -> str:
    rows = []
    for s in run.spans:
        start, end = _offset(run, s.start), _offset(run, s.end) if s.end else None
        rows.append([
            str(s.round),
            esc(s.role),
            f'<span class="dot" style="background:{_color(s.action)}"></span>{esc(s.action)}' + _tool_list(s),
            f"{start:.2f}",
            f"{end:.2f}" if end is not None else "<em>did not finish</em>",
            f"{(end - start):.2f}" if end is not None else "",
            str(s.calls) + (f" ({s.most_at_once()} at once)" if s.most_at_once() > 1 else ""),
            f"{s.prompt_tokens} + {s.completion_tokens}",
            esc(_money(s.cost, s.cost_known)) if s.calls else "",
        ])
    table = _table(
        ["round", "role", "action", "start (s)", "end (s)", "took (s)", "calls", "tokens (prompt + completion)", "cost"],
        rows, numeric={0, 3, 4, 5, 6, 7, 8},
    )
    return _timeline_svg(run) + table


def _tool_list(span: Span) -> str:
    """The action's tool calls, under its name in the timeline (failed ones marked)."""
    if not span.tools:
        return ""
    items = "".join(
        f'<li class="{"tool-error" if failed else "tool"}"><code>{esc(call)}</code>{" (error)" if failed else ""}</li>'
        for call, failed in span.tools.values()
    )
    return f'<ul class="tools">{items}</ul>'


def _roles_table(run: Run) -> str:
    rows = []
    for role in run.roles():
        mine = [s for s in run.spans if s.role == role]
        busy = sum(_offset(run, s.end) - _offset(run, s.start) for s in mine if s.end)
        rows.append([
            esc(role), str(len(mine)), str(sum(s.calls for s in mine)),
            str(sum(s.tokens for s in mine)),
            esc(_money(sum(s.cost for s in mine), all(s.cost_known for s in mine))), f"{busy:.2f}",
        ])
    return _table(["role", "actions", "calls", "tokens", "cost", "busy (s)"], rows, numeric={1, 2, 3, 4, 5})


def _totals(run: Run) -> str:
    t = run.totals()
    final = t["tests"]
    if final:
        status = "passed" if final.get("exit_code") == 0 and not final.get("timed_out") else "failed"
        tests = (
            f'<span class="{status}">{esc(final.get("passed", 0))} passed</span><small>{esc(final.get("failed", 0))} failed, '
            f'{esc(final.get("errors", 0))} errors' + (f', {_after_fixes(t["fixes"])}' if t["fixes"] else "") + "</small>"
        )
    else:
        tests = '<span class="muted">not run</span>'
    cards = [
        ("model calls", str(t["calls"])),
        ("tokens", f'{t["prompt_tokens"] + t["completion_tokens"]:,}<small>{t["prompt_tokens"]:,} prompt + {t["completion_tokens"]:,} completion</small>'),
        ("cost", esc(_money(t["cost"], t["cost_known"]))),
        ("time", f'{esc(_secs(t["seconds"]))}<small>{t["rounds"]} rounds, {t["messages"]} messages</small>'),
        ("files", f'{t["files"]}<small>in the workspace now</small>'),
        ("tests", tests),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in cards
    ) + "</div>"


def _messages(run: Run) -> str:
    if not run.messages:
        return '<p class="muted">No messages were logged.</p>'
    out = []
    for m in run.messages:
        to = ", ".join(m.receivers) or "nobody"
        brief = " ".join(m.content.split())
        brief = brief if len(brief) <= 110 else brief[:109] + "…"
        out.append(
            f'<details class="msg"><summary><span class="idx">#{m.index}</span> <span class="badge">{f"R{m.round}" if m.round else "start"}</span> '
            f'<b>{esc(m.sender)}</b> → {esc(to)} <span class="cause">{esc(m.cause)}</span> '
            f'<span class="brief">{esc(brief)}</span></summary>'
            f'<div class="body"><p class="meta">sender <b>{esc(m.sender)}</b> · receivers <b>{esc(to)}</b> · '
            f'cause <code>{esc(m.cause)}</code>'
            + (f" · payload <code>{esc(m.payload_type)}</code>" if m.payload_type else "")
            + f" · {esc(m.at.strftime('%H:%M:%S.%f')[:-3])}</p>"
            f'<div class="md">{_markdown(m.content, diagrams=False)}</div></div></details>'
        )
    return "".join(out)


def _conversation(run: Run) -> str:
    """A conversation run (its transcript's meta says ``conversation``): the judge's verdict,
    then every message in order, tool calls and reviews included, open to read."""
    out = []
    if run.verdict is not None:
        passed = run.verdict.get("passed")
        label = "PASSED" if passed else "FAILED" if passed is not None else "verdict"
        rest = ", ".join(f"{esc(k)}: {esc(v)}" for k, v in run.verdict.items() if k != "passed")
        out.append(f'<p class="verdict {"passed" if passed else "failed"}"><b>{label}</b> <small>{rest}</small></p>')
    for m in run.messages:
        out.append(
            f'<div class="turn"><span class="badge">{f"R{m.round}" if m.round else "start"}</span> '
            f'<b>{esc(m.sender)}</b> <span class="cause">{esc(m.cause)}</span>'
            f'<div class="md">{_markdown(m.content, diagrams=False)}</div></div>'
        )
    return "".join(out) or '<p class="muted">Nothing was said.</p>'


def _documents(run: Run) -> str:
    out = []
    for key, title, rel in run.document_list:
        text = run.documents.get(key)
        body = (
            f'<div class="md">{_markdown(text, diagrams=True)}</div>'
            if text is not None
            else f'<p class="missing">{esc(rel)} was not written (the run stopped before this step).</p>'
        )
        out.append(
            f'<details class="doc" id="doc-{key}" open><summary><b>{title}</b> <code>{esc(rel)}</code></summary>'
            f'<div class="body">{body}</div></details>'
        )
    return "".join(out)


def _tests(run: Run) -> str:
    if not run.tests:
        return '<p class="muted">The tests never ran.</p>'
    out = []
    for i, m in enumerate(run.tests, 1):
        r = m.payload
        ok = r.get("exit_code") == 0 and not r.get("timed_out")
        label = "PASSED" if ok else "FAILED"
        extra = ", timed out" if r.get("timed_out") else ""
        out.append(
            f'<details class="test {"ok" if ok else "bad"}"{"" if ok else " open"}><summary>'
            f'<span class="badge">R{m.round}</span> test run {i} ({_after_fixes(int(r.get("fix_round", 0) or 0))}): '
            f'<b>{label}</b> — {int(r.get("passed", 0) or 0)} passed, {int(r.get("failed", 0) or 0)} failed, '
            f'{int(r.get("errors", 0) or 0)} errors (exit code {esc(r.get("exit_code"))}{extra})'
            + (" · final" if r.get("final") else "")
            + f'</summary><pre class="out">{esc(r.get("output", ""))}</pre></details>'
        )
    return "".join(out)


def _after_fixes(n: int) -> str:
    return "before any fix" if n == 0 else f"after {n} fix round{'s' if n > 1 else ''}"


def _diff_html(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        cls = (
            "h" if line.startswith(("+++", "---")) else "at" if line.startswith("@@")
            else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx"
        )
        lines.append(f'<span class="{cls}">{esc(line)}</span>')
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


def _fixes(run: Run) -> str:
    if not run.fixes:
        return '<p class="muted">No fix rounds: the engineer changed nothing after the first test run.</p>'
    out = []
    for i, fix in enumerate(run.fixes, 1):
        note = f'<p class="note">{esc(fix.note)}</p>' if fix.note else ""
        parts = []
        for path in fix.files:
            diff = fix.diffs.get(path)
            if diff is None:
                body = '<p class="muted">no diff recorded</p>'
            elif not diff:
                body = '<p class="muted">unchanged (the model returned the same file)</p>'
            else:
                body = _diff_html(diff)
            added = sum(1 for l in (diff or "").splitlines() if l.startswith("+") and not l.startswith("+++"))
            removed = sum(1 for l in (diff or "").splitlines() if l.startswith("-") and not l.startswith("---"))
            parts.append(
                f'<details class="file" open><summary><code>{esc(path)}</code> '
                f'<span class="add">+{added}</span> <span class="del">−{removed}</span></summary>{body}</details>'
            )
        out.append(
            f'<div class="fix"><h3>Fix {i} <span class="badge">R{fix.round}</span> '
            f'<span class="muted">{len(fix.files)} file(s)</span></h3>{note}{"".join(parts)}</div>'
        )
    return "".join(out)


def _notices(run: Run) -> str:
    items = [
        f"<li><code>{esc(e.kind)}</code> {esc(e.role)} {esc(e.detail)}</li>" for e in run.notices
    ]
    if run.skipped_lines:
        items.append(f"<li>{run.skipped_lines} unreadable line(s) of the run log were skipped</li>")
    return f'<ul class="notices">{"".join(items)}</ul>' if items else ""


def _mermaid_js() -> str:
    """The pinned mermaid bundle, made safe to sit inside a ``<script>`` element: the HTML
    parser must not see ``</script`` or ``<!--`` in it (``\\x3C`` is ``<`` in every JS
    string or regex where these occur)."""
    path = ASSETS / "mermaid.min.js"
    if not path.is_file():
        raise MgptError(
            f"the mermaid library is missing from the package ({path}); reinstall mgpt, or in a "
            "checkout run: python3 tools/fetch_mermaid.py"
        )
    js = path.read_text(encoding="utf-8")
    return re.sub(r"<(?=/?script|!--)", r"\\x3C", js, flags=re.IGNORECASE)


# Draws each diagram on its own, so one the model got wrong shows its source and the error
# instead of stopping the others. Mermaid's "strict" level escapes labels and turns off
# click handlers; a diagram's %%{init}%% directive cannot change it.
_DRAW = """
mermaid.initialize({startOnLoad: false, securityLevel: 'strict', theme: 'neutral',
  fontFamily: 'ui-sans-serif, system-ui, sans-serif'});
(async () => {
  const blocks = Array.from(document.querySelectorAll('pre.mermaid'));
  let drawn = 0;
  for (const [i, pre] of blocks.entries()) {
    const source = pre.textContent;
    try {
      const { svg } = await mermaid.render('mermaid-diagram-' + i, source);
      pre.innerHTML = svg;
      pre.classList.add('drawn');
      drawn += 1;
    } catch (err) {
      pre.classList.add('failed');
      const note = document.createElement('p');
      note.className = 'diagram-error';
      note.textContent = 'This diagram could not be drawn: ' + (err && err.message ? err.message : err);
      pre.after(note);
      console.warn('mermaid: diagram ' + i + ' not drawn');
    }
  }
  document.body.dataset.diagrams = drawn + '/' + blocks.length;
})();
"""

_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--accent:#4f46e5}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 ui-sans-serif,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:linear-gradient(135deg,#312e81,#4f46e5);color:#fff;padding:22px 32px 18px}
header h1{margin:0 0 4px;font-size:20px;font-weight:600;letter-spacing:.2px}
header .idea{font-size:17px;margin:6px 0 8px;max-width:1100px}
header .meta{color:#e0e7ff;font-size:12.5px}
header .meta code{color:#fff}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:8px 32px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:var(--accent);text-decoration:none;font-weight:500}
main{padding:8px 32px 40px;max-width:1280px;margin:0 auto}
section.part{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:18px 0}
h2{font-size:17px;margin:0 0 12px}
h3{font-size:15px;margin:14px 0 8px}
.muted,small{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:10px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fcfcfd}
.card .k{font-size:11.5px;text-transform:uppercase;letter-spacing:.6px;color:var(--muted)}
.card .v{font-size:18px;font-weight:600;margin-top:2px}
.card small{display:block;font-size:11.5px;font-weight:400}
.passed{color:#15803d}.failed{color:#b91c1c}
table{border-collapse:collapse;width:100%;margin:10px 0;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.timeline{width:100%;height:auto;display:block}
ul.tools{margin:.2em 0 0 1em;padding:0;font-size:12px}li.tool-error code{color:#b91c1c}
.timeline .lane{fill:#f8fafc}.timeline .role{font-size:12px;fill:#374151;font-weight:600}
.timeline .grid{stroke:#cbd5e1;stroke-dasharray:3 3}.timeline .round{font-size:11px;fill:#4b5563;font-weight:600}
.timeline .dur{font-size:10px;fill:#6b7280}
.timeline .call{fill:#ffffff;fill-opacity:.55}.timeline .wait{fill:#1f2937;fill-opacity:.35}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;margin:4px 0 6px}
.legend i,.dot{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
details{border:1px solid var(--line);border-radius:8px;margin:6px 0;background:#fff}
details>summary{cursor:pointer;padding:7px 10px;list-style-position:inside;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
details[open]>summary{border-bottom:1px solid var(--line)}
details .body{padding:6px 14px}
.msg .brief{color:var(--muted);margin-left:6px}
.idx{color:var(--muted);font-variant-numeric:tabular-nums}
.badge{display:inline-block;background:#eef2ff;color:#3730a3;border-radius:10px;padding:0 7px;font-size:11.5px;font-weight:600}
.cause{background:#f1f5f9;border-radius:4px;padding:0 5px;font-size:12px;font-family:ui-monospace,monospace}
.meta{color:var(--muted);font-size:12.5px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#0f172a;color:#e2e8f0;padding:10px 12px;border-radius:6px;overflow:auto;font-size:12.5px;line-height:1.45}
pre code{color:inherit}
.md h1{font-size:17px}.md h2{font-size:15px;margin-top:14px}
.diagram pre.mermaid{background:#fff;color:var(--fg);border:1px solid var(--line);text-align:center}
.diagram pre.mermaid.failed{background:#fff7ed;text-align:left}
.diagram-error{color:#b91c1c}
.missing{color:#b45309;background:#fffbeb;padding:8px 10px;border-radius:6px}
.test.ok summary b{color:#15803d}.test.bad summary b{color:#b91c1c}
pre.out{margin:0;border-radius:0 0 8px 8px;max-height:300px}
pre.diff{background:#fff;color:var(--fg);border:0;margin:0;border-radius:0 0 8px 8px}
pre.diff span{display:inline-block;min-width:100%}
pre.diff .add{background:#dcfce7;color:#14532d}
pre.diff .del{background:#fee2e2;color:#7f1d1d}
pre.diff .at{color:#6d28d9;background:#f5f3ff}
pre.diff .h{color:#6b7280;font-weight:600}
.diagram svg{max-height:560px}
summary .add{color:#15803d}summary .del{color:#b91c1c}
.note{color:#92400e;font-size:12.5px}
.notices li code{background:#fef3c7;padding:0 4px;border-radius:3px}
footer{color:var(--muted);font-size:12px;padding:0 32px 24px}
.turn{border-left:3px solid #e5e7eb;padding:2px 10px;margin:6px 0}
.verdict.passed b{color:#15803d}.verdict.failed b{color:#b91c1c}
"""


def render(run: Run) -> str:
    """The report of ``run`` as one HTML document."""
    nonce = secrets.token_urlsafe(18)
    # Nothing may be fetched (default-src 'none'); only scripts carrying the nonce run.
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:; base-uri 'none'; form-action 'none'"
    )
    stop = f"{run.stop_reason}: {run.stop_detail}" if run.stop_reason else "the log has no stop event (the run did not finish)"
    started = run.start.strftime("%Y-%m-%d %H:%M:%S UTC") if run.start else "unknown"
    name = run.workspace.name
    conversation = bool(run.meta.get("conversation"))
    parts = [
        ("totals", "Totals", _totals(run) + _roles_table(run) + _notices(run)),
        *([("conversation", "Conversation", _conversation(run))] if conversation else []),
        ("timeline", "Timeline", _timeline(run)),
        # A conversation runs no tests and writes no documents: those parts would only say so.
        *([] if conversation else [("tests", "Test runs", _tests(run)), ("fixes", "Fixes", _fixes(run)),
                                   ("documents", "Documents", _documents(run))]),
        ("messages", f"Messages ({len(run.messages)})", _messages(run)),
    ]
    nav = "".join(f'<a href="#{key}">{title.split(" (")[0]}</a>' for key, title, _ in parts)
    body = "".join(f'<section class="part" id="{key}"><h2>{title}</h2>{html_}</section>' for key, title, html_ in parts)
    from mgpt import __version__

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mgpt run report: {esc(name)}</title>
<style>{_CSS}</style>
</head><body>
<header><h1>mgpt run report</h1>
<div class="idea" id="idea">{esc(run.idea) or '<span class="muted">(no idea recorded)</span>'}</div>
<div class="meta">workspace <code>{esc(run.workspace)}</code> · model <code>{esc(run.model or "unknown")}</code> · started {esc(started)} · stopped {esc(stop)}</div>
</header>
<nav>{nav}</nav>
<main>{body}</main>
<footer>Written by mgpt {esc(__version__)} from {esc(run.workspace)}/.mgpt/run.jsonl. Self-contained: works offline; diagrams drawn by the bundled mermaid.</footer>
<script nonce="{nonce}">{_mermaid_js()}</script>
<script nonce="{nonce}">{_DRAW}</script>
</body></html>
"""


#: Browsers that check a report headless (the report tests; `mgpt doctor` looks for one).
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    """A headless-capable Chromium on PATH, or None."""
    import shutil

    return next((found for found in map(shutil.which, BROWSERS) if found), None)


def write_report(workspace: str | Path, output: str | Path | None = None) -> Path:
    """Write the report of the run in ``workspace``; returns its path."""
    run = load_run(workspace)
    path = Path(output) if output is not None else default_path(workspace)
    text = render(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
