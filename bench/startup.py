"""Start-up time of the CLI: `ci-telemetry --help` and a small `query`, beside Python's own start-up.

Prints the median wall time of N runs of each command, run round-robin so that load from other jobs
falls on all of them alike:
- `ci-telemetry --help` (issue 14's target ≤ 0.5 s),
- `ci-telemetry query "print 1"` on a local store made by `schema apply` in a temporary directory
  (target ≤ 1 s; the stored-function cache is warm, as it is for every query after the first),
- and, as the same-run reference, `python -c pass` and `python -c "import duckdb"`,
then each CLI figure as a ratio to the two references. With `--baseline DIR`, the two CLI commands
are also run from another checkout (e.g. the main branch's worktree) in the same rounds, and this
checkout's figures are given as a ratio to its.

Usage: python bench/startup.py [--runs 11] [--baseline ../main]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli() -> list[str]:
    """The installed console script when there is one (what users run), else the same entry point via -c."""
    script = Path(sys.executable).parent / "ci-telemetry"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from etl.cli import main; main()"]


def run_once(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one run; a failing command stops the bench (a figure for an error is no figure)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs of each command (the median is printed)")
    parser.add_argument("--baseline", type=Path, help="another checkout to run the CLI commands from too")
    args = parser.parse_args()

    def env_for(root: Path) -> dict[str, str]:
        # The checkout being measured wins over whatever the environment has installed.
        return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}

    env = env_for(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            "sources:\n  - kind: simulator\n    name: simulated\n"
            f"warehouse:\n  kind: local\n  path: {Path(tmp) / 'warehouse.duckdb'}\n"
            f"staging:\n  dir: {Path(tmp) / 'staging'}\n",
            encoding="utf-8",
        )
        run_once([*cli(), "schema", "apply", "-c", str(config)], env)
        help_cmd, query_cmd = [*cli(), "--help"], [*cli(), "query", "print 1", "-c", str(config)]
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            'python -c "import duckdb"': ([sys.executable, "-c", "import duckdb"], env),
            "ci-telemetry --help": (help_cmd, env),
            'ci-telemetry query "print 1"': (query_cmd, env),
        }
        if args.baseline:
            base_env = env_for(args.baseline.resolve())
            commands["baseline: ci-telemetry --help"] = (help_cmd, base_env)
            commands['baseline: ci-telemetry query "print 1"'] = (query_cmd, base_env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for command, command_env in commands.values():  # one unmeasured run each: warm OS file cache for all
            run_once(command, command_env)
        for _ in range(args.runs):
            for name, (command, command_env) in commands.items():
                times[name].append(run_once(command, command_env))
    median = {name: statistics.median(values) for name, values in times.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {args.runs} runs each, round-robin; load average {load:.1f} at the end")
    width = max(len(name) for name in median)
    for name, value in median.items():
        spread = f"{min(times[name]):.3f}–{max(times[name]):.3f}"
        print(f"  {name:<{width}}  {value:6.3f} s   (range {spread} s)")
    base, duck = median["python -c pass"], median['python -c "import duckdb"']
    for name, target in (("ci-telemetry --help", 0.5), ('ci-telemetry query "print 1"', 1.0)):
        versus = f", {median[name] / median['baseline: ' + name]:.2f}× the baseline" if args.baseline else ""
        print(f"  {name}: {median[name] / base:.1f}× python -c pass, {median[name] / duck:.2f}× import duckdb"
              f"{versus} (target ≤ {target} s: {'met' if median[name] <= target else 'not met'})")
        if args.baseline:
            other = median["baseline: " + name]
            print(f"    baseline: {other / base:.1f}× python -c pass, {other / duck:.2f}× import duckdb")


if __name__ == "__main__":
    main()
