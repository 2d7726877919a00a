"""MCP servers as tool sources: real servers from PyPI over stdio, one over streamable
HTTP, and a broken one of ours. Every failure ends as a tool error and the run goes on."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="MCP needs the [mcp] extra")

from mgpt.actions.base import UseTools  # noqa: E402
from mgpt.agents.mcp import MCPServer  # noqa: E402
from mgpt.agents.message import UserRequirement  # noqa: E402
from mgpt.agents.team import Team  # noqa: E402
from mgpt.agents.tools import ToolCall, Toolbox  # noqa: E402
from mgpt.llm.backends.testing import TestModel  # noqa: E402
from mgpt.roles.base import Role  # noqa: E402

HERE = Path(__file__).parent
BROKEN = str(HERE / "mcp_broken_server.py")


def broken(*flags: str, **options) -> MCPServer:
    return MCPServer.stdio(sys.executable, BROKEN, *flags, name="broken", **options)


def time_server() -> MCPServer:
    pytest.importorskip("mcp_server_time")
    return MCPServer.stdio(sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC", name="time")


async def calls(box: Toolbox, *planned: ToolCall):
    try:
        return await box.run(list(planned))
    finally:
        await box.aclose()


@pytest.mark.slow
def test_the_time_server_from_pypi_answers_and_its_errors_are_results():
    box = Toolbox([time_server()])
    names = [t.name for t in asyncio.run(_tools_then_close(box))]
    assert {"get_current_time", "convert_time"} <= set(names)
    ok, bad_zone, missing = asyncio.run(calls(
        Toolbox([time_server()]),
        ToolCall.of("get_current_time", {"timezone": "Europe/Paris"}),
        ToolCall.of("get_current_time", {"timezone": "Mars/Base"}),
        ToolCall.of("get_current_time", {}),
    ))
    assert not ok.is_error and json.loads(ok.content)["timezone"] == "Europe/Paris"
    assert bad_zone.is_error and "Mars/Base" in bad_zone.content
    assert missing.is_error and "timezone" in missing.content  # checked against the schema before the call


async def _tools_then_close(box: Toolbox):
    try:
        return await box.tools()
    finally:
        await box.aclose()


@pytest.mark.slow
def test_the_git_server_from_pypi_reads_a_repository(tmp_path):
    pytest.importorskip("mcp_server_git")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("hello\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "first commit"], check=True)
    server = MCPServer.stdio(sys.executable, "-m", "mcp_server_git", "--repository", str(repo), name="git")
    (log,) = asyncio.run(calls(Toolbox([server]), ToolCall.of("git_log", {"repo_path": str(repo)})))
    assert not log.is_error and "first commit" in log.content


@pytest.mark.slow
def test_a_server_killed_mid_call_gives_an_error_and_the_run_goes_on():
    started = time.perf_counter()
    results = asyncio.run(calls(
        Toolbox([broken(timeout=20)]),
        ToolCall.of("echo", {"text": "before"}),
    ))
    assert results[0].content == "echo: before"
    box = Toolbox([broken(timeout=20, max_restarts=1)])
    died, after, died_again, gone = asyncio.run(_one_by_one(
        box, ToolCall.of("die"), ToolCall.of("echo", {"text": "after"}), ToolCall.of("die"), ToolCall.of("echo")))
    assert died.is_error and "broken" in died.content
    assert after.content == "echo: after"  # the next call started the server again
    assert died_again.is_error
    assert gone.is_error and "not running" in gone.content  # restarts are bounded
    assert time.perf_counter() - started < 15  # failed at once, not at the 20 s deadline


async def _one_by_one(box: Toolbox, *planned: ToolCall):
    try:
        return [(await box.run([call]))[0] for call in planned]
    finally:
        await box.aclose()


@pytest.mark.slow
def test_garbage_from_a_server_fails_that_call_and_the_server_keeps_serving():
    box = Toolbox([broken(timeout=20)])
    started = time.perf_counter()
    garbage, echo = asyncio.run(_one_by_one(box, ToolCall.of("garbage"), ToolCall.of("echo", {"text": "ok"})))
    assert garbage.is_error and "malformed JSON-RPC" in garbage.content
    assert time.perf_counter() - started < 15
    assert echo.content == "echo: ok"


@pytest.mark.slow
def test_a_hanging_call_ends_at_its_deadline():
    started = time.perf_counter()
    (hung,) = asyncio.run(calls(Toolbox([broken(timeout=1.0)]), ToolCall.of("hang")))
    assert hung.is_error and "did not answer hang within" in hung.content
    assert time.perf_counter() - started < 10


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--die-at-start", "--garbage-at-start"])
def test_a_server_that_cannot_start_leaves_the_role_its_other_tools(flag):
    def local() -> str:
        """A tool of the role's own."""
        return "still here"

    box = Toolbox([local, broken(flag, startup_timeout=3.0)])
    started = time.perf_counter()
    tools = asyncio.run(_tools_then_close(box))
    assert [t.name for t in tools] == ["local"]
    assert box.source_errors and "broken" in box.source_errors[0]
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_a_stdio_server_gets_no_mgpt_secrets_unless_given(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-servers-0123456789")
    server = broken(env={"SHOP_TOKEN": "shop-token-0123456789"})
    (env,) = asyncio.run(calls(Toolbox([server]), ToolCall.of("env")))
    names = env.content.split()
    assert "OPENAI_API_KEY" not in names and "SHOP_TOKEN" in names and "PATH" in names


@pytest.mark.slow
def test_a_role_takes_a_server_in_one_line_and_the_team_stops_it():
    server = time_server()
    role = Role(name="Clock", actions=[UseTools], watch=[UserRequirement], tools=[server])
    model = TestModel([[ToolCall.of("get_current_time", {"timezone": "Asia/Tokyo"})], "It is evening in Tokyo."])
    result = asyncio.run(Team(model=model).hire(role).run("what time is it in Tokyo?"))
    assert result.messages[-1].content == "It is evening in Tokyo."
    tool_turn = model.requests[1][1][-1]
    assert tool_turn.role == "tool" and "Asia/Tokyo" in tool_turn.content
    assert not server.running  # closed when the run ended


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_server_over_streamable_http():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "mcp_http_server.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        server = MCPServer.http(f"http://127.0.0.1:{port}/mcp", name="shop")
        (stock,) = asyncio.run(calls(Toolbox([server]), ToolCall.of("stock", {"item": "pens"})))
        assert not stock.is_error and stock.content == "pens: 12 left"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
