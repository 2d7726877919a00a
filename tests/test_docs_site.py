"""The docs site builds with ``mkdocs build --strict`` (no broken link, anchor or API
reference), and headless chromium draws its home page, a concept page and an API page
with their headings. Skips, saying why, without the ``[docs]`` extra or chromium."""

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest
from testpaths import ROOT

MISSING = [m for m in ("mkdocs", "material", "mkdocstrings_handlers.python") if importlib.util.find_spec(m.split(".")[0]) is None
           or importlib.util.find_spec(m) is None]
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"the docs tools are not installed ({', '.join(MISSING)}): pip install -e '.[docs]'"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)"),
]

#: page -> (its h1, headings and text it must show)
PAGES = {
    "index.html": ("mgpt", ["Where to start", "How the code is laid out"]),
    "concepts.html": ("Concepts", ["Roles and actions", "Messages", "Memory", "class CritiqueHaiku"]),
    "api/agents.html": ("agents: the kernel", ["mgpt.agents.message", "Message", "Environment", "Team"]),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def served(site):
    """The built site over HTTP on 127.0.0.1 (the search index loads only over HTTP)."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def rendered(url: str, tmp_path) -> tuple[str, list[str]]:
    """The page's DOM after chromium ran its scripts, and the console's lines."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_is_built_and_drawn(site, served, page, tmp_path):
    h1, expected = PAGES[page]
    assert (site / page).is_file(), f"{page} was not built"
    dom, console = rendered(f"{served}/{page}", tmp_path)
    assert console == []
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", dom, re.DOTALL)
    assert heading and text_of(heading.group(1)).strip().rstrip("¶").strip() == h1
    body = text_of(dom)
    for text in expected:
        assert text in body, f"{page} does not show {text!r}"
    # The theme's script ran: it marks the document it has set up.
    assert "js-focus-visible" in dom and "js-focus-visible" not in (site / page).read_text()


def test_reference_and_lab_log_pages_exist(site):
    for page in ("benchmarks.html", "lab-log.html", "api/index.html", "api/llm.html", "development.html"):
        assert (site / page).is_file(), page
    dev = (site / "development.html").read_text()
    for shot in ("home", "concepts", "api"):
        assert f"assets/screenshots/{shot}.png" in dev and (site / "assets" / "screenshots" / f"{shot}.png").is_file()
