"""The wheel is the product: it carries its data, installs light for `collect`, and ships no test fake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from etl import resources

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Libraries only the [etl] and [reports] extras install; the CLI's start-up and `collect` must not need them.
HEAVY = ("duckdb", "duckdb_kql", "pandas", "numpy", "pyarrow", "scipy", "ruptures", "re2", "papermill",
         "nbconvert", "nbformat", "plotly", "azure", "jinja2")


def _env_without_checkout() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


#: What the sdist carries (MANIFEST.in and the package): the wheel is built from a copy of just these, so a
#: stale build/ directory or untracked files of the checkout cannot leak into it.
SDIST = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "etl", *resources.SHIPPED_FOLDERS)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from this checkout's sources, with the pinned setuptools already in the environment."""
    src = tmp_path_factory.mktemp("src")
    for name in SDIST:
        if (PROJECT_ROOT / name).is_dir():
            shutil.copytree(PROJECT_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(PROJECT_ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=120)
    (path,) = out.glob("ci_telemetry-*.whl")
    return path


def test_checkout_reads_the_top_level_folders_where_the_layout_has_them():
    assert resources.is_checkout() is True
    assert resources.folder("kql") == PROJECT_ROOT / "kql"
    assert resources.folder("config") == PROJECT_ROOT / "config"
    assert resources.folder("notebooks") == PROJECT_ROOT / "notebooks"


def test_unknown_shipped_folder_is_a_key_error_naming_the_known_ones():
    with pytest.raises(KeyError, match="unknown shipped folder 'bench'; known: kql, config, notebooks"):
        resources.folder("bench")


def test_cli_help_and_collect_import_no_analytics_library():
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from etl.cli import app\n"
        "runner = CliRunner()\n"
        "assert runner.invoke(app, ['--help']).exit_code == 0\n"
        "assert runner.invoke(app, ['collect', '--help']).exit_code == 0\n"
        "assert runner.invoke(app, ['collect', '-o', sys.argv[1], '--', sys.executable, '-c', 'pass']).exit_code == 0\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, os.devnull], capture_output=True, text=True, check=True,
                         cwd=PROJECT_ROOT, timeout=60)
    assert out.stdout.strip() == "[]"


def test_help_texts_spelled_out_for_a_light_start_match_the_analysis_constants():
    from typer.testing import CliRunner

    from etl.analysis.alerts import RESOLUTIONS
    from etl.analysis.detectors import DEFAULT_TECHNIQUE, TECHNIQUES
    from etl.classify.rebuild import RECORD_TRIAGE_INDEX
    from etl.cli import alerts, app, detect

    assert " | ".join(RESOLUTIONS) == alerts.RESOLUTIONS_HELP
    assert tuple(sorted(TECHNIQUES)) == detect.TECHNIQUE_NAMES
    assert detect.DEFAULT_TECHNIQUE == DEFAULT_TECHNIQUE
    triage_help = CliRunner().invoke(app, ["classify", "triage", "--help"], terminal_width=200).output
    assert f"Issue index; {RECORD_TRIAGE_INDEX} overrides the record itself." in triage_help


def test_base_install_requires_no_analytics_library():
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    base = {dep.split(">")[0].split("<")[0].split("=")[0].lower() for dep in project["dependencies"]}
    assert base == {"pydantic", "pyyaml", "requests", "urllib3", "typer", "rich", "psutil"}
    assert set(project["optional-dependencies"]) == {"etl", "reports", "all", "dev"}
    assert project["optional-dependencies"]["all"] == ["ci-telemetry[etl,reports]"]


@pytest.mark.slow
def test_wheel_carries_the_data_folders_and_no_test_fake(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in resources.SHIPPED_FOLDERS:
        expected = {f"etl/_data/{p.relative_to(PROJECT_ROOT).as_posix()}"
                    for p in (PROJECT_ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert expected <= names, f"{folder}: missing {sorted(expected - names)[:3]}"
    assert "etl/reports/templates/offline/index.html.j2" in names
    assert not [n for n in names if "fake" in n or n.startswith("tests/")]


@pytest.mark.slow
def test_installed_wheel_applies_the_schema_loads_and_reports_from_any_directory(wheel, tmp_path):
    # A fresh venv holding only the wheel; its dependencies are borrowed from this environment's site-packages
    # (a .pth line, so no editable finder of the checkout is activated), which keeps the test offline and fast.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _env_without_checkout()
    # pip resolves the [all] extra against what is installed: a missing or mis-pinned dependency fails here.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                    "-c", str(PROJECT_ROOT / "constraints.txt"), f"{wheel}[all]"],
                   check=True, capture_output=True, env=env, timeout=120)
    # nbconvert's HTML templates are data files of the borrowed environment, not of the fresh venv.
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    work = tmp_path / "work"
    work.mkdir()
    (work / "ci.yaml").write_text(
        "sources:\n  - {kind: simulator, name: simulated, seed: 7, days: 4, builds_per_day: 3}\n"
        "warehouse: {kind: local, path: data/warehouse.duckdb}\n"
        "reports: {out_dir: reports, days: 4}\n"
    )
    cli = str(venv / "bin" / "ci-telemetry")
    where = subprocess.run([str(python), "-c", "import etl; print(etl.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == f"{site}/etl/__init__.py"

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([cli, *args, "--config", "ci.yaml"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
        return done

    tables = len(list((PROJECT_ROOT / "kql" / "tables").glob("*.kql")))
    assert run("schema", "apply").stdout.strip().endswith(f"{tables} change(s) applied")
    run("etl", "--summary-file", "etl.md")
    assert (work / "data" / "warehouse.duckdb").is_file()
    assert "| simulated | Engineering |" in (work / "etl.md").read_text()
    index = run("report").stdout.strip()
    assert index == str(work / "reports" / "index.html")
    run_log = json.loads((work / "reports" / "run.json").read_text())
    assert sorted(r["name"] for r in run_log["reports"]) == ["ci_health", "flakiness", "regressions"]
    assert [r["error"] for r in run_log["reports"]] == ["", "", ""]
