"""The CLI starts light: `--help` of every command, and a one-value `query`, import no heavy library.

Each case runs in a fresh interpreter and reads `sys.modules` at the end, so what one test imported
cannot hide what another would. (Speed itself is measured by bench/startup.py, not asserted here.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from etl.cli import classify
from tests.fresh_interpreter import PROJECT_ROOT, printed_json

#: Never imported by `--help` of any command: the analytics, report and data libraries.
FORBIDDEN_FOR_HELP = ("ruptures", "scipy", "pandas", "papermill", "plotly", "numpy", "pyarrow", "duckdb",
                      "duckdb_kql", "nbconvert", "nbformat", "jinja2", "azure", "re2", "rich", "psutil")
#: Nor our own modules behind them: settings models, privacy detectors, the ETL, the store, analysis, reports.
FORBIDDEN_ETL_FOR_HELP = ("etl.config", "etl.privacy", "etl.run", "etl.warehouse", "etl.analysis", "etl.reports",
                          "etl.classify", "etl.stage", "etl.collect")
#: Never imported by `query` printing one value.
FORBIDDEN_FOR_QUERY = ("ruptures", "scipy", "pandas", "papermill", "plotly", "numpy", "pyarrow", "nbconvert",
                       "jinja2", "azure", "rich")


REPORT = (
    "import json, sys\n"
    "def loaded(names):\n"
    "    return sorted(n for n in names if any(m == n or m.startswith(n + '.') for m in sys.modules))\n"
)


def test_help_of_the_cli_imports_neither_pydantic_nor_any_heavy_library() -> None:
    script = REPORT + (
        "from typer.testing import CliRunner\n"
        "from etl.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        f"print(json.dumps({{'heavy': loaded({(*FORBIDDEN_FOR_HELP, 'pydantic')!r}),"
        f" 'etl': loaded({FORBIDDEN_ETL_FOR_HELP!r})}}))\n"
    )
    assert printed_json(script) == {"heavy": [], "etl": []}


def test_help_of_every_command_imports_no_heavy_library() -> None:
    script = REPORT + (
        "import typer\n"
        "from typer.testing import CliRunner\n"
        "from etl.cli import app\n"
        "def leaves(command, path=()):\n"
        "    children = getattr(command, 'commands', None)\n"
        "    if children is None or getattr(command, 'invoke_without_command', False):\n"
        "        yield path\n"
        "    for name, child in (children or {}).items():\n"
        "        yield from leaves(child, (*path, name))\n"
        "commands = sorted(leaves(typer.main.get_command(app)))\n"
        "for command in commands:\n"
        "    result = CliRunner().invoke(app, [*command, '--help'])\n"
        "    assert result.exit_code == 0 and 'Example:' in result.output, (command, result.output)\n"
        f"print(json.dumps({{'commands': len(commands), 'heavy': loaded({FORBIDDEN_FOR_HELP!r}),"
        f" 'etl': loaded({FORBIDDEN_ETL_FOR_HELP!r})}}))\n"
    )
    loaded = printed_json(script)
    assert loaded["commands"] >= 19
    assert (loaded["heavy"], loaded["etl"]) == ([], [])


def test_query_of_one_value_imports_no_pandas(write_config: Callable[..., Path]) -> None:
    config = write_config({"sources": [{"kind": "simulator"}],
                           "warehouse": {"kind": "local", "path": "data/warehouse.duckdb"}})
    # `schema apply` runs in a process of its own; the query runs in a fresh one, as a user types it.
    subprocess.run([sys.executable, "-c", "from etl.cli import main; main()", "schema", "apply", "-c", str(config)],
                   capture_output=True, text=True, check=True, cwd=PROJECT_ROOT, timeout=120)
    script = REPORT + (
        "from etl.cli import main\n"
        "sys.argv = ['ci-telemetry', 'query', 'LatestTimelineBuilds | count', '-c', sys.argv[1]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"print(json.dumps({{'heavy': loaded({FORBIDDEN_FOR_QUERY!r})}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, check=True,
                         cwd=PROJECT_ROOT, timeout=120).stdout.splitlines()
    assert out == ["0", json.dumps({"heavy": []})]


def test_etl_on_the_local_store_loads_its_rows_without_importing_pandas(write_config: Callable[..., Path],
                                                                         tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    config = write_config({"sources": [{"kind": "simulator", "days": 2, "builds_per_day": 3}],
                           "warehouse": {"kind": "local", "path": str(store)}})
    script = REPORT + (
        "from etl.cli import main\n"
        "config, store = sys.argv[1:]\n"
        "sys.argv = ['ci-telemetry', 'etl', '-c', config]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "import duckdb\n"
        "records = duckdb.connect(store, read_only=True).execute('select count(*) from TimelineRecords').fetchall()[0]\n"
        "print(json.dumps({'loaded': records[0] > 0, 'pandas': loaded(['pandas'])}))\n"
    )
    assert printed_json(script, str(config), str(store)) == {"loaded": True, "pandas": []}


def test_category_names_spelled_out_for_a_light_start_match_the_rules() -> None:
    from etl.classify.rules import CATEGORIES

    assert classify.CATEGORY_NAMES == CATEGORIES
