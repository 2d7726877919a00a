"""The run report: what it reads from a run, that run text is inert in it, and that a real
browser draws it (the browser tests skip, saying why, where chromium is not installed)."""

import hashlib
import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.actions.coding import unified_diff
from mgpt.cli import app
from mgpt.workflows import report as rpt
from testpaths import GOLDEN

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


@pytest.fixture(scope="module")
def bug_run(tmp_path_factory):
    """A real workspace: the golden run whose first test run fails and one fix repairs it."""
    ws = tmp_path_factory.mktemp("report") / "ws"
    result = CliRunner().invoke(app, ["run", "--replay", str(GOLDEN / "bank_ledger_bug.jsonl"), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    return ws, result.output


def _events(ws: Path) -> list[dict]:
    return [json.loads(line) for line in (ws / ".mgpt/run.jsonl").read_text().splitlines() if line.strip()]


def _own_scripts_removed(page: str) -> str:
    """The page without the report's own two (nonce-carrying) script elements."""
    nonce = re.search(r"script-src 'nonce-([^']+)'", page).group(1)
    own = re.findall(rf'<script nonce="{re.escape(nonce)}">.*?</script>', page, re.DOTALL)
    assert len(own) == 2
    for block in own:
        page = page.replace(block, "")
    return page


# -- a real run ------------------------------------------------------------------------------


def test_mgpt_run_writes_the_report_and_prints_its_path(bug_run):
    ws, output = bug_run
    assert (ws / ".mgpt/report.html").is_file()
    assert re.search(r"report\s+│\s+\S*report\.html", output) or "report.html" in output


def test_totals_match_the_log(bug_run):
    ws, _ = bug_run
    run = rpt.load_run(ws)
    calls = [e for e in _events(ws) if e["kind"] == "llm_call"]
    totals = run.totals()
    assert totals["calls"] == len(calls) == 11
    assert totals["prompt_tokens"] == sum(e["data"]["prompt_tokens"] for e in calls)
    assert totals["completion_tokens"] == sum(e["data"]["completion_tokens"] for e in calls)
    # A replay is priced as the model it recorded.
    assert totals["cost_known"] and totals["cost"] == pytest.approx(sum(e["data"].get("cost") or 0.0 for e in calls))
    assert totals["cost"] > 0
    assert totals["rounds"] == 7 and totals["fixes"] == 1
    assert totals["files"] == len([p for p in ws.rglob("*") if p.is_file() and ".mgpt" not in p.parts and ".git" not in p.parts
                                   and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts])
    assert totals["tests"]["passed"] == 11 and totals["tests"]["final"]
    # Per action: the engineer's WriteCode made four calls, the QA runs none.
    code = next(s for s in run.spans if s.action == "WriteCode")
    assert code.calls == 4 and code.round == 4 and code.end is not None
    assert [s.calls for s in run.spans if s.action == "RunTests"] == [0, 0]
    assert run.idea.startswith("a bank account ledger") and run.stop_reason == "idle"


def test_test_runs_and_the_fix_diff(bug_run):
    ws, _ = bug_run
    run = rpt.load_run(ws)
    assert [(t.payload["failed"], t.payload["exit_code"]) for t in run.tests] == [(1, 1), (0, 0)]
    [fix] = run.fixes
    assert fix.source == "log" and fix.files == ["bank_ledger/ledger.py"] and fix.round == 6
    diff = fix.diffs["bank_ledger/ledger.py"]
    assert "-        if amount >= balance:\n+        if amount > balance:\n" in diff
    # The diff's new side is the file as it is now.
    final = (ws / "bank_ledger/ledger.py").read_text()
    assert all(line[1:] in final for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    page = (ws / ".mgpt/report.html").read_text()
    assert '<span class="del">-        if amount &gt;= balance:</span>' in page
    assert '<span class="add">+        if amount &gt; balance:</span>' in page
    assert "test run 1" in page and "FAILED" in page and "PASSED" in page


def test_report_shows_every_section(bug_run):
    ws, _ = bug_run
    page = (ws / ".mgpt/report.html").read_text()
    for anchor in ("totals", "timeline", "tests", "fixes", "documents", "messages"):
        assert f'id="{anchor}"' in page
    assert page.count('<details class="msg"') == 9
    assert page.count('<pre class="mermaid">') == 2
    assert page.count("<rect x=") >= 8  # one bar per action (lane stripes have no x)
    assert "<h1>PRD: bank_ledger</h1>" in page


def test_diffs_are_rebuilt_from_the_transcript_for_older_logs(bug_run, tmp_path):
    ws, _ = bug_run
    old = tmp_path / "old"
    shutil.copytree(ws / ".mgpt", old / ".mgpt", ignore=shutil.ignore_patterns("pytest-tmp"))
    lines = []
    for event in _events(ws):  # the log as it was written before fixes recorded their diffs
        payload = event["data"].get("message", {}).get("payload") or {}
        payload.get("data", {}).pop("diffs", None)
        lines.append(json.dumps(event))
    (old / ".mgpt/run.jsonl").write_text("\n".join(lines) + "\n")
    [fix] = rpt.load_run(old).fixes
    assert fix.source == "transcript" and "rebuilt from the transcript" in fix.note
    assert fix.diffs == rpt.load_run(ws).fixes[0].diffs


def test_the_bundled_mermaid_is_the_pinned_one():
    note = json.loads((rpt.ASSETS / "mermaid.json").read_text())
    assert hashlib.sha256((rpt.ASSETS / "mermaid.min.js").read_bytes()).hexdigest() == note["sha256"]
    assert note["version"].startswith("11.") and note["integrity"].startswith("sha512-")
    js = rpt._mermaid_js()
    assert not re.search(r"</script|<!--", js, re.IGNORECASE)


# -- hand-made logs: hostile text, missing pieces --------------------------------------------


def _event(kind, at, role="", detail="", **data):
    return {"kind": kind, "role": role, "detail": detail, "data": data, "at": at.isoformat()}


def _message(at, sender, content, cause, to=(), payload=None):
    message = {"id": "x", "content": content, "payload": payload, "sent_from": sender, "send_to": [],
               "cause_by": cause, "created_at": at.isoformat()}
    return _event("message", at, sender, content[:40], message=message, to=list(to))


def _workspace(root: Path, events: list[dict], docs: dict[str, str] | None = None) -> Path:
    (root / ".mgpt").mkdir(parents=True)
    (root / ".mgpt/run.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for name, text in (docs or {}).items():
        (root / "docs").mkdir(exist_ok=True)
        (root / "docs" / name).write_text(text)
    return root


def _hostile_workspace(root: Path) -> Path:
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    s = timedelta(seconds=1)
    prd = (
        f"# PRD {HOSTILE}\n\n{HOSTILE}\n\n<div onclick=x>raw html block</div>\n\n"
        "[a link](javascript:alert(1)) and [out](http://evil.example/x) and <http://evil.example/auto>\n\n"
        "![tracker](http://evil.example/pixel.png)\n\n[ref]: http://evil.example/ref\n"
    )
    design = (
        "# Design\n\n```mermaid\nclassDiagram\n    class Evil {\n      +run() str\n    }\n"
        '    note for Evil "<img src=x onerror=document.title=1>"\n```\n\n'
        '```mermaid\nsequenceDiagram\n    participant A as <script>document.title="pwned"</script>\n'
        "    A->>A: </pre><script>document.title='pwned'</script>\n```\n"
    )
    events = [
        _message(t, "user", f"an idea {HOSTILE}", "mgpt.agents.message:UserRequirement"),
        _event("round", t, detail="round 1", roles=["ProductManager"]),
        _event("action_start", t, "ProductManager", "WritePRD"),
        _event("llm_call", t + s, "ProductManager", "WritePRD", turn=1, model="m", prompt_tokens=100,
               completion_tokens=50, cost=None),
        _event("action_end", t + 2 * s, "ProductManager", "WritePRD"),
        _message(t + 2 * s, "Product<b>Manager</b>", prd, "mgpt.actions.planning:WritePRD", to=["<i>x</i>"]),
        _event("round", t + 2 * s, detail="round 2", roles=["Engineer"]),
        _event("action_start", t + 2 * s, "Engineer", "FixBug"),
        _event("llm_call", t + 3 * s, "Engineer", "FixBug", turn=1, model="m", prompt_tokens=10,
               completion_tokens=5, cost=0.25),
        _event("action_end", t + 4 * s, "Engineer", "FixBug"),
        _message(t + 4 * s, "Engineer", "Wrote x.py", "mgpt.actions.coding:FixBug",
                 payload={"type": "mgpt.actions.documents:CodeBundle",
                          "data": {"files": ["x<script>.py"],
                                   "diffs": {"x<script>.py": unified_diff("x<script>.py", "a = 1\n", f"a = '{HOSTILE}'\n")}}}),
        _event("error", t + 5 * s, "Engineer", f"crashed {HOSTILE}"),
        _event("stop", t + 5 * s, detail=f"done {HOSTILE}", reason="idle", rounds=2),
    ]
    return _workspace(root, events, {"prd.md": prd, "design.md": design})


def test_run_text_is_escaped_everywhere(tmp_path):
    ws = _hostile_workspace(tmp_path / "ws")
    page = rpt.render(rpt.load_run(ws))
    rest = _own_scripts_removed(page)
    assert "<script" not in rest.lower()
    assert "<img" not in rest.lower()
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", rest, re.IGNORECASE)  # no tag with an event handler
    assert "<div onclick" not in rest and "<b>Manager" not in rest and "<i>x</i>" not in rest
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in rest
    # Nothing points out of the file: no src at all, and links only to the page's own anchors.
    assert not re.search(r"<[a-z][^>]*\s(src|srcset|data|action)\s*=", rest, re.IGNORECASE)
    assert set(re.findall(r'href="([^"#][^"]*)"', rest)) == set()
    assert "javascript:alert" not in re.sub(r"\[a link\]\(javascript:alert\(1\)\)", "", rest)
    # Link and image syntax stays literal text; the escaped diagram source is mermaid's input.
    assert "[out](http://evil.example/x)" in rest and "![tracker](http://evil.example/pixel.png)" in rest
    assert rest.count('<pre class="mermaid">') == 2 and "&lt;/pre&gt;&lt;script&gt;" in rest


def test_content_security_policy_forbids_fetching(tmp_path):
    page = rpt.render(rpt.load_run(_hostile_workspace(tmp_path / "ws")))
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp and "unsafe-inline'" not in csp.split("style-src")[0]


def test_unknown_prices_errors_and_notices_are_shown(tmp_path):
    run = rpt.load_run(_hostile_workspace(tmp_path / "ws"))
    totals = run.totals()
    assert totals["calls"] == 2 and totals["prompt_tokens"] == 110 and totals["completion_tokens"] == 55
    assert totals["cost"] == 0.25 and not totals["cost_known"]
    page = rpt.render(run)
    assert "≥ $0.2500 (unknown price)" in page
    assert "<code>error</code>" in page and "crashed &lt;script&gt;" in page
    assert run.fixes[0].source == "log"


def test_missing_documents_transcript_and_a_torn_line(tmp_path):
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ws = _workspace(tmp_path / "ws", [
        _message(t, "user", "a tiny idea", "mgpt.agents.message:UserRequirement"),
        _event("round", t, detail="round 1", roles=["ProductManager"]),
        _event("action_start", t, "ProductManager", "WritePRD"),
    ])
    with (ws / ".mgpt/run.jsonl").open("a") as f:
        f.write('{"kind": "llm_call", "role": "Produ')  # the run died mid-write
    out = rpt.write_report(ws)
    assert out == ws / ".mgpt/report.html"
    page = out.read_text()
    assert "a tiny idea" in page
    for rel in ("docs/prd.md", "docs/design.md", "docs/tasks.md"):
        assert f"{rel} was not written" in page
    assert "did not finish" in page and "no stop event" in page
    assert "1 unreadable line(s) of the run log were skipped" in page
    assert "The tests never ran." in page and "No fix rounds" in page


def test_cli_report_writes_where_asked(tmp_path):
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ws = _workspace(tmp_path / "ws", [_message(t, "user", "idea", "mgpt.agents.message:UserRequirement")])
    target = tmp_path / "out" / "r.html"
    result = CliRunner().invoke(app, ["report", str(ws), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(target) and target.read_text().startswith("<!DOCTYPE html>")
    assert not (ws / ".mgpt/report.html").exists()


@pytest.mark.parametrize("make", ["empty", "missing", "file"])
def test_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path, make):
    target = tmp_path / "ws"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("not a folder")
    result = CliRunner().invoke(app, ["report", str(target)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "mgpt run" in lines[0]
    assert "Traceback" not in result.output


def test_unified_diff_of_new_files_and_missing_newlines():
    assert unified_diff("p.py", None, "x = 1\n").startswith("--- /dev/null\n+++ b/p.py\n")
    diff = unified_diff("p.py", "a\nb", "a\nc")
    assert "-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n" in diff
    assert unified_diff("p.py", "same\n", "same\n") == ""


# -- in a real browser -----------------------------------------------------------------------

CHROMIUM = rpt.find_browser()
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)"
)


def _browse(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and every console line (errors, warnings, CSP refusals)."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("golden", sorted(p.stem for p in GOLDEN.glob("*.jsonl")))
def test_browser_draws_every_diagram_without_console_errors(golden, tmp_path):
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", "--replay", str(GOLDEN / f"{golden}.jsonl"), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    dom, console = _browse(ws / ".mgpt/report.html", tmp_path)
    assert console == []
    blocks = re.findall(r'<pre class="mermaid[^"]*">(.*?)</pre>', dom, re.DOTALL)
    assert len(blocks) == 2 and all(b.lstrip().startswith("<svg") for b in blocks)
    assert 'data-diagrams="2/2"' in dom
    # Drawn as the diagrams they are, with the design's names in them.
    assert 'aria-roledescription="classDiagram"' in blocks[0] and "<g class=\"node" in blocks[0]
    assert 'aria-roledescription="sequence"' in blocks[1]


@needs_browser
@pytest.mark.slow
def test_browser_runs_no_script_from_the_run(tmp_path):
    ws = _hostile_workspace(tmp_path / "ws")
    out = rpt.write_report(ws)
    # Defence in depth: a script that escaped escaping would still be refused by the policy.
    page = out.read_text().replace("</main>", '<script>document.title="pwned"</script></main>')
    out.write_text(page)
    dom, console = _browse(out, tmp_path)
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom).group(1)
    assert any("Content Security Policy" in line for line in console)
    assert re.search(r'data-diagrams="\d/2"', dom)  # the drawing script itself ran


@needs_browser
@pytest.mark.slow
def test_browser_shows_a_broken_diagram_as_its_source(tmp_path):
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    design = "# Design\n\n```mermaid\nclassDiagram\n  class A\n```\n\n```mermaid\nsequenceDiagram\n  A->>: ???\n```\n"
    ws = _workspace(tmp_path / "ws", [_message(t, "user", "idea", "mgpt.agents.message:UserRequirement")],
                    {"design.md": design})
    dom, console = _browse(rpt.write_report(ws), tmp_path)
    assert 'data-diagrams="1/2"' in dom
    assert "This diagram could not be drawn" in dom and "A-&gt;&gt;: ???" in dom
    assert len(console) == 1 and "mermaid: diagram 1 not drawn" in console[0]


def test_a_document_linked_to_a_host_file_is_left_out(bug_run, tmp_path):
    """Generated code ran in the workspace: it may have turned docs/prd.md into a link to
    a file of the host's, which the report must not copy into a page people share."""
    ws, _ = bug_run
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy, symlinks=True)
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN PRIVATE KEY----- host-only")
    (copy / "docs" / "prd.md").unlink()
    (copy / "docs" / "prd.md").symlink_to(secret)
    run = rpt.load_run(copy)
    assert run.documents["prd"] is None and run.documents["design"]
