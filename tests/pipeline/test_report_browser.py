"""The report in a real browser: headless Chromium loads it, every section shows, no errors.

The page checks itself on load (``render.CHECK_JS``: sections present and laid out, images
decoded, no script or load error) and writes the verdict into ``#render-check``; Chromium's
``--dump-dom`` returns the DOM after that script ran. A screenshot is saved next to the test's
output (``pytest --basetemp`` keeps it) for a human look. Skips when Chromium is absent; CI
installs it with ``apt-get install -y chromium``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from wsi_ssl.pipeline.report.render import Section, figure, page

if TYPE_CHECKING:
    from conftest import TinyRuns

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install -y chromium)")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def chromium(html: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium call with a fresh profile dir."""
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, html.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def render_check(html: Path, profile: Path) -> tuple[str, str]:
    """``(status, text)`` of ``#render-check`` after the page loaded in Chromium."""
    out = chromium(html, profile, "--dump-dom", "--virtual-time-budget=5000")
    m = re.search(r'<span id="render-check" data-status="(\w+)">([^<]*)</span>', out.stdout)
    assert m, f"no render check in Chromium's DOM; stderr: {out.stderr[-2000:]}"
    return m.group(1), m.group(2)


def test_report_loads_in_chromium_and_shows_every_section(tiny_runs: TinyRuns, tmp_path: Path) -> None:
    from wsi_ssl.pipeline.report import SECTION_IDS

    report = tiny_runs.root / "report.html"
    status, text = render_check(report, tmp_path / "profile-dom")
    assert status == "ok", text
    assert f"{len(SECTION_IDS)}/{len(SECTION_IDS)} sections" in text
    shot = tiny_runs.root / "report_screenshot.png"
    done = chromium(report, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1400,6000")
    assert shot.is_file() and shot.stat().st_size > 50_000, done.stderr[-2000:]
    print(f"screenshot: {shot}")


def test_render_check_catches_a_broken_image(tmp_path: Path) -> None:
    """The check is not a rubber stamp: a corrupt image and a section gone from the page fail it."""
    broken = figure("data:image/png;base64,iVBORw0KGgoAAAAbroken", "corrupt png")
    html = page("t", "s", [Section("one", "One", broken), Section("two", "Two", "text")], "f")
    html = html.replace('<section id="two">', '<section id="renamed">')
    path = tmp_path / "bad.html"
    path.write_text(html)
    status, text = render_check(path, tmp_path / "profile")
    assert status == "error"
    assert "0/1 images" in text and "missing sections: two" in text
