"""Every KQL text the project would send to Azure Data Explorer, checked by Microsoft's own parser.

Kusto.Language (npm `@kusto/language-service-next`, pinned by package-lock.json, installed by
`make kqlcheck`) parses and analyzes, with the database's symbols declared:
- the script `ci-telemetry schema apply --dry-run --to FILE` writes, replayed command by command on an
  empty database (each command sees only what the commands before it created);
- every stored function, every `kql/queries` file, the inline KQL of `etl/` and the notebooks, and the
  KQL examples of README.md, docs/ and the commands' help, against the database that script leaves and
  against the local store's (same tables, its views as plain functions).
One node process checks them all. Each diagnostic is printed with its code, file, line and snippet.

The rest checks what the parser accepts and the service refuses: policy values without units,
mappings that do not match their table, a view keyed differently from its table's `// key:` line.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.schema import KQL_DIR, function_files, load_tables, ordered_functions, view_name
from etl.warehouse.kusto import SCRIPT_HEADER

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tools" / "kqlcheck" / "check.mjs"
PARSER_PACKAGE = ROOT / "node_modules" / "@kusto" / "language-service-next" / "package.json"
#: What the Makefile says when node is missing; the test fails with it rather than skipping.
INSTALL_HINT = ("Microsoft's KQL parser is not installed: run `make kqlcheck` "
                "(needs Node.js 18+ and npm: apt-get install nodejs npm)")

#: Warehouse.query and KustoWarehouse.command take KQL; `execute` is DuckDB SQL and is not collected.
QUERY_CALLS = {"query", "query_rows", "command"}
EXAMPLE_PATTERNS = (
    re.compile(r'ci-telemetry query "((?:[^"\\]|\\.)+)"'),
    re.compile(r'execute_query\(\s*"\w+",\s*"((?:[^"\\]|\\.)+)"'),
)
FENCE = re.compile(r"```(?:kusto|kql)\n(.*?)```", re.S)


# -- what is checked -------------------------------------------------------


def script_commands(path: Path) -> list[str]:
    """The commands of a `.execute database script` file, in order (Kusto splits on blank lines)."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith(SCRIPT_HEADER + "\n"), f"{path}: not a `.execute database script` body"
    return [c.strip() for c in text[len(SCRIPT_HEADER) + 1:].split("\n\n") if c.strip()]


def _constant_strings(tree: ast.AST) -> dict[str, str]:
    """Module-level NAME = "text" assignments (implicitly concatenated literals included)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value.value
    return out


def inline_kql(source: str) -> list[tuple[int, str]]:
    """(line, text) of each literal (or module constant) handed to `.query(...)`, `.query_rows(...)` / `.command(...)`.

    An f-string is skipped: its text is only known at run time (entity names the code quotes itself).
    """
    tree = ast.parse(source)
    constants = _constant_strings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_CALLS):
            continue
        if not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            text = first.value
        elif isinstance(first, ast.Name) and first.id in constants:
            text = constants[first.id]
        else:
            continue
        # `.command("name")` is also typer's decorator; a management command starts with a dot.
        if node.func.attr in ("query", "query_rows") or text.lstrip().startswith("."):
            found.append((node.lineno, text))
    return found


def python_texts() -> list[dict[str, str]]:
    texts = []
    for path in sorted((ROOT / "etl").rglob("*.py")):
        for line, text in inline_kql(path.read_text(encoding="utf-8")):
            texts.append({"file": f"{path.relative_to(ROOT)}:{line}", "text": text})
    return texts


def notebook_texts() -> list[dict[str, str]]:
    texts = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] != "code":
                continue
            try:
                found = inline_kql("".join(cell["source"]))
            except SyntaxError:  # a cell with IPython magics: no KQL of ours is written that way
                continue
            texts.extend({"file": f"{path.relative_to(ROOT)} cell {index}", "text": t} for _, t in found)
    return texts


def example_texts() -> list[dict[str, str]]:
    """KQL in README.md, docs/*.md and the commands' help examples."""
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "etl" / "cli").glob("*.py"))]
    texts = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for pattern in EXAMPLE_PATTERNS:
            for match in pattern.finditer(text):
                kql = match.group(1).replace('\\"', '"')
                line = text.count("\n", 0, match.start()) + 1
                texts.append({"file": f"{path.relative_to(ROOT)}:{line}", "text": kql})
        if path.suffix == ".md":
            for match in FENCE.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                texts.append({"file": f"{path.relative_to(ROOT)}:{line}", "text": match.group(1)})
    return texts


def kql_file(path: Path) -> dict[str, str]:
    return {"file": str(path.relative_to(ROOT)), "text": path.read_text(encoding="utf-8")}



# -- running the parser ----------------------------------------------------


#: Small cases that show the check can fail, checked in the same node process as the project's texts.
PROBES: dict[str, dict] = {
    "string_comparison": {"database": "db", "script": [
        {"file": "t.kql", "text": ".create-merge table T (A: string, B: string)"}],
        "cluster": [{"file": "q.kql", "text": "T\n| where A < B"}]},
    "analyzer_warning": {"database": "db", "script": [
        {"file": "t.kql", "text": ".create-merge table T (A: string)"}],
        "cluster": [{"file": "q.kql", "text": "T | join (T) on A"}]},
    "function_before_view": {"database": "db", "script": [
        {"file": "f.kql", "text": ".create-or-alter function F() { LatestT | count }"},
        {"file": "t.kql", "text": ".create-merge table T (A: string, IngestedAt: datetime)"},
        {"file": "v.kql", "text": ".create async ifnotexists materialized-view with (backfill=true) LatestT on table T\n"
                                  "{\n    T\n    | summarize arg_max(IngestedAt, *) by A\n}"},
    ], "cluster": [{"file": "q.kql", "text": "LatestT | where A == 'x'"}]},
}


def run_checker(cases: dict[str, dict]) -> dict[str, dict]:
    node = shutil.which("node")
    if node is None or not PARSER_PACKAGE.exists():
        pytest.fail(INSTALL_HINT, pytrace=False)
    done = subprocess.run([node, str(CHECKER)], input=json.dumps({"cases": cases}), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"the KQL checker failed: {done.stderr.strip()[-2000:]}"
    return json.loads(done.stdout)["cases"]


@pytest.fixture(scope="module")
def script_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script `schema apply --dry-run --to FILE` writes, with the default settings."""
    path = tmp_path_factory.mktemp("schema") / "schema.kql"
    result = CliRunner().invoke(app, ["schema", "apply", "--dry-run", "--to", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def answers(script_file: Path) -> dict[str, tuple[dict, dict]]:
    queries = [kql_file(p) for p in sorted((KQL_DIR / "queries").glob("*.kql"))]
    others = python_texts() + notebook_texts() + example_texts()
    request = {
        "database": "CiTelemetry",
        "script": [{"file": f"{script_file.name} command {i + 1}", "text": c}
                   for i, c in enumerate(script_commands(script_file))],
        # Not the whole `.execute database script` as one text: Kusto.Language 12.4 takes over a minute to
        # parse 73 commands as a script block. Each command is the script's text between blank lines.
        "cluster": queries + others,
        "local": {"functions": [kql_file(p) for p in function_files()], "texts": queries + others},
    }
    cases = {"project": request, **PROBES}
    answered = run_checker(cases)
    for d in answered["project"]["diagnostics"]:
        print(f"{d['code']} {d['severity']} [{d['context']}] {d['file']} line {d['line']}: {d['message']}\n"
              f"    {d['snippet']}")
    return {name: (cases[name], answered[name]) for name in cases}


@pytest.fixture(scope="module")
def checked(answers: dict[str, tuple[dict, dict]]) -> tuple[dict, dict]:
    return answers["project"]


# -- the official parser -----------------------------------------------------
# `slow`: the one node process takes seconds (Kusto.Language parses each management command for
# hundreds of milliseconds), so these are out of the quick loop and their module starts among the first.


@pytest.mark.slow
def test_the_official_parser_finds_no_error_or_warning_in_any_kql_text(checked: tuple[dict, dict]) -> None:
    _, answer = checked
    problems = [f"{d['code']} {d['severity']} {d['file']} line {d['line']}: {d['message']} | {d['snippet']}"
                for d in answer["diagnostics"]]
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
def test_every_kind_of_kql_text_reached_the_parser(checked: tuple[dict, dict]) -> None:
    request, answer = checked
    files = {t["file"].split(":")[0] for t in request["cluster"]}
    assert {f"kql/queries/{p.name}" for p in (KQL_DIR / "queries").glob("*.kql")} <= files
    assert {"etl/classify/known_issues.py", "etl/classify/rebuild.py", "etl/retention.py", "etl/freshness.py",
            "etl/state.py", "etl/doctor.py", "etl/analysis/alerts.py", "README.md"} <= files
    sent = len(request["script"]) + len(request["cluster"]) + len(request["local"]["texts"]) + len(
        request["local"]["functions"])
    assert answer["checked"] == sent


@pytest.mark.slow
def test_the_replayed_script_creates_every_table_view_and_function(checked: tuple[dict, dict]) -> None:
    _, answer = checked
    tables = sorted(load_tables())
    assert sorted(answer["entities"]["tables"]) == tables
    assert sorted(answer["entities"]["materializedViews"]) == sorted(view_name(t) for t in tables)
    assert sorted(answer["entities"]["functions"]) == ["DailyBuildTrend", "KnownIssueHits", "TopSignatures"]


@pytest.mark.slow
def test_the_parser_reports_a_string_comparison_with_its_code_file_and_snippet(answers: dict) -> None:
    """The check can fail: TopSignatures' old tie-break, `OtherSignature < Signature`, is KS106."""
    _, answer = answers["string_comparison"]
    assert [(d["code"], d["file"], d["line"], d["snippet"]) for d in answer["diagnostics"]] == [
        ("KS106", "q.kql", 2, "| where A < B")]


@pytest.mark.slow
def test_the_analyzers_warnings_are_reported_too(answers: dict) -> None:
    _, answer = answers["analyzer_warning"]
    assert [(d["code"], d["severity"]) for d in answer["diagnostics"]] == [("KS508", "Warning")]


@pytest.mark.slow
def test_a_function_created_before_the_view_it_calls_is_reported(answers: dict) -> None:
    _, answer = answers["function_before_view"]
    assert [(d["code"], d["file"]) for d in answer["diagnostics"]] == [("KS204", "f.kql")]


# -- what the parser accepts and the service refuses --------------------------

RETENTION = re.compile(r"^\.alter-merge table (\w+) policy retention softdelete = (\d+)(\w*) recoverability = enabled$")
CACHING = re.compile(r"^\.alter table (\w+) policy caching hot = (\d+)(\w*)$")
MAPPING = re.compile(r"""^\.create-or-alter table (\w+) ingestion json mapping "(\w+)" '(.*)'$""", re.S)
VIEW = re.compile(r"^\.create async ifnotexists materialized-view with \(backfill=true, [^)]*\) (\w+) on table (\w+)\n"
                  r"\{\n    (\w+)\n    \| summarize arg_max\(IngestedAt, \*\) by ([\w, ]+)\n\}$")


def test_every_table_gets_a_retention_and_a_caching_period_in_days_within_limits(script_file: Path) -> None:
    commands = script_commands(script_file)
    retention = {m.group(1): (int(m.group(2)), m.group(3)) for c in commands if (m := RETENTION.match(c))}
    caching = {m.group(1): (int(m.group(2)), m.group(3)) for c in commands if (m := CACHING.match(c))}
    assert set(retention) == set(caching) == set(load_tables())
    for table, (days, unit) in retention.items():
        # A bare number is read as a timespan in ticks by some clients and refused by the service.
        assert unit == "d" and 1 <= days <= 36500, f"{table}: softdelete = {days}{unit}"
        hot_days, hot_unit = caching[table]
        assert hot_unit == "d" and 0 < hot_days <= days, f"{table}: caching hot = {hot_days}{hot_unit}"


def test_every_mapping_reads_each_column_of_its_table_by_name_and_type(script_file: Path) -> None:
    mappings = [m for c in script_commands(script_file) if (m := MAPPING.match(c))]
    assert sorted(m.group(1) for m in mappings) == sorted(load_tables())
    for match in mappings:
        table = load_tables()[match.group(1)]
        assert match.group(2) == table.mapping_name
        entries = json.loads(match.group(3))
        assert [(e["column"], e["path"], e["datatype"]) for e in entries] == [
            (c.name, f"$.{c.name}", c.kusto_type) for c in table.columns], table.name


def test_every_latest_view_is_keyed_by_its_tables_key_line(script_file: Path) -> None:
    views = [m for c in script_commands(script_file) if (m := VIEW.match(c))]
    assert sorted(m.group(1) for m in views) == sorted(view_name(t) for t in load_tables())
    for match in views:
        table = load_tables()[match.group(2)]
        assert match.group(1) == view_name(table.name) and match.group(3) == table.name
        assert tuple(k.strip() for k in match.group(4).split(",")) == table.key, table.name


# -- function order ------------------------------------------------------------


def _function(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.kql"
    path.write_text(f'// {name}: calls {body}\n.create-or-alter function with (docstring = "d") {name}() {{ {body} }}\n')
    return path


def test_functions_are_ordered_by_the_calls_in_their_bodies_not_by_name(tmp_path: Path) -> None:
    paths = [_function(tmp_path, "Alpha", "Beta() | count"), _function(tmp_path, "Beta", "Gamma"),
             _function(tmp_path, "Gamma", "T | where Name == 'Alpha'"), _function(tmp_path, "Delta", "T")]
    assert [p.stem for p in ordered_functions(paths)] == ["Delta", "Gamma", "Beta", "Alpha"]


def test_functions_calling_each_other_in_a_cycle_are_refused_naming_them(tmp_path: Path) -> None:
    paths = [_function(tmp_path, "Alpha", "Beta"), _function(tmp_path, "Beta", "Alpha")]
    with pytest.raises(ValueError, match=r"^stored functions call each other in a cycle: (Alpha -> Beta -> Alpha|Beta -> Alpha -> Beta)$"):
        ordered_functions(paths)


def test_without_node_the_check_fails_with_the_makefiles_instruction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"run `make kqlcheck` \(needs Node\.js 18\+ and npm"):
        run_checker(PROBES)
