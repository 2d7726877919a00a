"""Screenshots of the docs site as a headless browser draws it, for docs/development.md.

    python3 tools/docs_screenshots.py            # build the site strictly, then shoot
    python3 tools/docs_screenshots.py --site DIR # shoot an already built site

Builds the site with ``mkdocs build --strict`` into a temporary folder, opens the home
page, one concept page and one API page from ``file://`` in headless chromium at
1280x800, and writes ``docs/assets/screenshots/{home,concepts,api}.png``. With Pillow
installed the PNGs are stored with a 256-colour palette (about a third of the size). Look
at them before committing: the tool checks that each page has its heading, not that it
looks right.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "assets" / "screenshots"

#: screenshot name -> (page in the built site, a heading it must hold)
PAGES = {
    "home": ("index.html", "Where to start"),
    "concepts": ("concepts.html", "Roles and actions"),
    "api": ("api/agents.html", "mgpt.agents.message"),
}

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--disable-dev-shm-usage",
)


def find_chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def build_site(dest: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(dest)],
                   cwd=ROOT, env=env, check=True)


def chromium(browser: str, profile: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless chromium with a fresh profile; its stdout is the page's DOM for --dump-dom."""
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout, check=True)


def shoot(site: Path, browser: str, work: Path) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (page, heading) in PAGES.items():
        url = (site / page).as_uri()
        dom = chromium(browser, work / f"profile-{name}-dom", "--virtual-time-budget=5000", "--dump-dom", url).stdout
        if heading not in dom:
            raise SystemExit(f"{page}: the rendered page has no {heading!r}")
        png = OUT / f"{name}.png"
        chromium(browser, work / f"profile-{name}", "--window-size=1280,800", "--virtual-time-budget=5000",
                 f"--screenshot={png}", url)
        _shrink(png)
        written.append(png)
    return written


def _shrink(png: Path) -> None:
    try:
        from PIL import Image
    except ImportError:  # keep the full-colour PNG
        return
    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=256)
    small.save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, help="an already built site (default: build one)")
    args = parser.parse_args()
    browser = find_chromium()
    if browser is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="mgpt-shots-") as tmp:
        site = args.site or Path(tmp) / "site"
        if args.site is None:
            build_site(site)
        for png in shoot(site.resolve(), browser, Path(tmp)):
            print(f"{png.relative_to(ROOT)}  {png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
