"""Fetch the pinned mermaid release from the npm registry into mgpt's package data.

The run report (``mgpt report``) inlines ``mermaid.min.js`` so the HTML draws its diagrams
offline, with no server, no CDN and no Node at run time. The file is committed at
``workflows/assets/mermaid.min.js``; this script is how it got there and how it is
upgraded: it downloads the npm tarball of the pinned version, checks the tarball against
the registry's sha512 integrity string (pinned below, so a changed upload is refused),
extracts ``package/dist/mermaid.min.js`` (and its MIT licence) and writes it with a small JSON note of where it
came from (version, tarball URL, integrity, the sha256 of the extracted file, which the
test suite checks offline).

    python3 tools/fetch_mermaid.py            # (re)write the asset from the pinned tarball
    python3 tools/fetch_mermaid.py --check    # verify the committed asset, no network

To upgrade: ``npm view mermaid@11 version dist.tarball dist.integrity``, put the three
values below, run the script, commit both files.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "11.17.2"
TARBALL = f"https://registry.npmjs.org/mermaid/-/mermaid-{VERSION}.tgz"
INTEGRITY = "sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
MEMBER = "package/dist/mermaid.min.js"
LICENSE_MEMBER = "package/LICENSE"

ASSETS = Path(__file__).resolve().parent.parent / "workflows" / "assets"
TARGET = ASSETS / "mermaid.min.js"
NOTE = ASSETS / "mermaid.json"
LICENSE = ASSETS / "mermaid.LICENSE"
MAX_BYTES = 64 * 1024 * 1024  # the tarball is a few MB; refuse anything absurd


def integrity_of(data: bytes) -> str:
    """npm's Subresource-Integrity form: ``sha512-<base64 digest>``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(url: str, timeout: float = 60.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = response.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SystemExit(f"error: {url} is larger than {MAX_BYTES} bytes; refusing it")
    return data


def extract(tarball: bytes, name: str) -> bytes:
    """One regular file's bytes (read in memory: nothing in the tarball touches the disk)."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.getmember(name)
        if not member.isfile():
            raise SystemExit(f"error: {name} in the tarball is not a regular file")
        f = tar.extractfile(member)
        assert f is not None
        return f.read()


def fetch() -> None:
    tarball = download(TARBALL)
    got = integrity_of(tarball)
    if got != INTEGRITY:
        raise SystemExit(f"error: {TARBALL} does not match the pinned integrity\n  pinned {INTEGRITY}\n  got    {got}")
    js = extract(tarball, MEMBER)
    ASSETS.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(js)
    LICENSE.write_bytes(extract(tarball, LICENSE_MEMBER))
    note = {
        "package": "mermaid",
        "version": VERSION,
        "tarball": TARBALL,
        "integrity": INTEGRITY,
        "file": MEMBER,
        "sha256": hashlib.sha256(js).hexdigest(),
        "license": "MIT",
    }
    NOTE.write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {TARGET} ({len(js)} bytes, mermaid {VERSION}, sha256 {note['sha256']})")


def check() -> None:
    note = json.loads(NOTE.read_text(encoding="utf-8"))
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    if note.get("version") != VERSION or note.get("integrity") != INTEGRITY:
        raise SystemExit(f"error: {NOTE} is for mermaid {note.get('version')}, the script pins {VERSION}; run without --check")
    if digest != note.get("sha256"):
        raise SystemExit(f"error: {TARGET} does not match {NOTE} (sha256 {digest}); run without --check to restore it")
    print(f"ok: {TARGET} is mermaid {VERSION} (sha256 {digest})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed asset; no network")
    args = parser.parse_args(argv)
    check() if args.check else fetch()


if __name__ == "__main__":
    sys.exit(main())
