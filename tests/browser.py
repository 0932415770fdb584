"""Headless Chromium (Debian's ``chromium`` package, which ``./test.sh`` installs) for tests that render pages."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def chromium() -> str:
    """The browser's path, or a skip that says why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`; ./test.sh installs it as root)")
    return found


def render(page: Path) -> str:
    """The DOM Chromium builds from ``page`` (after parsing and layout)."""
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    if r.returncode != 0 or "<html" not in r.stdout:
        raise AssertionError(f"chromium could not render {page}: {r.stderr[-2000:]}")
    return r.stdout


class Outline(HTMLParser):
    """Section ids, headings, table counts per section and images of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, int]] = {}
        self.headings: list[str] = []
        self._section: str | None = None
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self._section = str(a["id"])
            self.sections[self._section] = {"table": 0, "img": 0, "tr": 0}
        elif self._section is not None and tag in ("table", "tr", "img"):
            embedded = str(a.get("src", "")).startswith("data:image/png;base64,")
            self.sections[self._section][tag] += 1 if tag != "img" or embedded else 0
        self._heading = tag in ("h1", "h2")

    def handle_data(self, data: str) -> None:
        if self._heading and data.strip():
            self.headings.append(data.strip())
            self._heading = False


def outline(dom: str) -> Outline:
    o = Outline()
    o.feed(dom)
    return o
