"""The rendered reports in a real browser (headless Debian chromium): no console errors, charts drawn."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from etl.config import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make browser` or apt-get install chromium)"),
]
NAMES = ["index", "ci_health", "flakiness", "regressions"]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def reports(rendered_reports: Path) -> Path:
    return rendered_reports


@pytest.mark.parametrize("name", NAMES)
def test_page_loads_without_console_errors(reports: Path, name: str, tmp_path: Path) -> None:
    done = chromium(tmp_path / "profile", "--dump-dom", (reports / f"{name}.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert "</html>" in done.stdout


@pytest.mark.parametrize("name", ["ci_health", "flakiness", "regressions"])
def test_plotly_charts_are_drawn_and_screenshot_saved(reports: Path, name: str, tmp_path: Path) -> None:
    dom = chromium(tmp_path / "profile", "--dump-dom", (reports / f"{name}.html").as_uri()).stdout
    assert dom.count('class="main-svg"') >= 2  # plotly draws two svg layers per chart it renders
    shot = tmp_path / f"{name}.png"
    chromium(tmp_path / "profile2", "--window-size=1280,2000", f"--screenshot={shot}", (reports / f"{name}.html").as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000
    keep = PROJECT_ROOT / "reports" / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / shot.name)
