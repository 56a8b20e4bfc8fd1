"""The rendered reports in a real browser (headless Debian chromium): no console errors, charts drawn."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Opened:
    """One headless load of a page: the process (its DOM on stdout, its console on stderr) and its screenshot."""

    done: subprocess.CompletedProcess
    shot: Path


@pytest.fixture(scope="module")
def opened(rendered_reports: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Opened]:
    """Each page opened once for all its tests: a Chromium start costs seconds, and headless Chromium dumps
    the DOM and takes the screenshot of the same load."""
    cache: dict[str, Opened] = {}

    def open_page(name: str) -> Opened:
        if name not in cache:
            tmp = tmp_path_factory.mktemp(f"browser-{name}")
            shot = tmp / f"{name}.png"
            done = chromium(tmp / "profile", "--window-size=1280,2000", "--dump-dom", f"--screenshot={shot}",
                            (rendered_reports / f"{name}.html").as_uri())
            cache[name] = Opened(done, shot)
        return cache[name]

    return open_page


@pytest.mark.parametrize("name", NAMES)
def test_page_loads_without_console_errors(opened: Callable[[str], Opened], name: str) -> None:
    done = opened(name).done
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert "</html>" in done.stdout


@pytest.mark.parametrize("name", ["ci_health", "flakiness", "regressions"])
def test_plotly_charts_are_drawn_and_screenshot_saved(opened: Callable[[str], Opened], name: str) -> None:
    page = opened(name)
    assert page.done.stdout.count('class="main-svg"') >= 2  # plotly draws two svg layers per chart it renders
    assert page.shot.exists() and page.shot.stat().st_size > 20_000
    keep = PROJECT_ROOT / "reports" / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(page.shot, keep / page.shot.name)
