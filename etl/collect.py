"""Run a build command and record what the ETL reads as `metrics.json`.

`ci-telemetry collect -- make all` starts the command, passes its output through unchanged, samples
the resident memory of its whole process tree and the machine's network counters at an interval,
timestamps the stage markers the command prints (`##ci-telemetry[stage]NAME` on stdout), and writes
one metrics document in the schema the metrics normalizer reads. It exits with the command's exit
code, so wrapping a build step never changes whether the step fails.

The document holds raw facts only; privacy scrubbing (host names, paths in failure text) happens in
the ETL before anything is staged, like for every other source.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil

#: A command marks the start of a stage by printing this prefix and the stage's name on stdout.
STAGE_MARKER = b"##ci-telemetry[stage]"
#: failure_reason keeps at most this many trailing stderr lines, and at most this many characters.
FAILURE_TAIL_LINES = 20
FAILURE_REASON_MAX_CHARS = 2000
#: Exit code when the command cannot be started at all (what shells use for "command not found").
NOT_STARTED_EXIT_CODE = 127

_MIB = 1024 * 1024
_GIB = 1024 * 1024 * 1024


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC with millisecond precision and a `Z`, the form every timestamp in the document takes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Stage:
    """One stage of the command: from its marker (or the command's start) to the next marker or the end."""

    name: str
    started: float | None = None
    ended: float | None = None

    def duration(self) -> float:
        if self.started is None or self.ended is None:
            return 0.0
        return round(max(0.0, self.ended - self.started), 3)


@dataclass
class StageTracker:
    """Turns stage markers into stage boundaries.

    With declared stages, the first one starts with the command (so `--stage build` alone needs no
    marker) and each marker ends the running stage and starts the named one; declared stages that
    never start are reported as skipped. A marker naming an undeclared stage still records it, so a
    typo shows up in the data rather than vanishing. Without declared stages markers are ignored and
    the whole command is one stage.
    """

    declared: list[str]
    whole_name: str
    clock: Callable[[], float] = time.monotonic
    stages: list[Stage] = field(default_factory=list)
    _marked: bool = False

    def start(self) -> None:
        name = self.declared[0] if self.declared else self.whole_name
        self.stages.append(Stage(name, started=self.clock()))

    def mark(self, name: str) -> None:
        if not self.declared or not name:
            return
        now = self.clock()
        current = self.stages[-1] if self.stages else None
        if current is not None and not self._marked and current.name == name:
            # The first stage already started with the command; its own marker confirms it.
            self._marked = True
            return
        self._marked = True
        if current is not None and current.ended is None:
            current.ended = now
        self.stages.append(Stage(name, started=now))

    def finish(self, exit_code: int) -> list[dict[str, Any]]:
        """The `build_stages` entries: the running stage takes the command's outcome."""
        now = self.clock()
        out = []
        for index, stage in enumerate(self.stages):
            last = index == len(self.stages) - 1
            if stage.ended is None:
                stage.ended = now
            status = "failed" if last and exit_code != 0 else "success"
            out.append({"name": stage.name, "status": status, "duration": stage.duration()})
        started = {s.name for s in self.stages}
        out.extend({"name": n, "status": "skipped", "duration": 0.0} for n in self.declared if n not in started)
        return out

    @property
    def current(self) -> str | None:
        return self.stages[-1].name if self.stages else None


class ProcessSampler:
    """Samples the RSS of a process and all its descendants, and counts their network connections."""

    def __init__(self, pid: int, interval: float, clock: Callable[[], datetime] = _now) -> None:
        self.pid = pid
        self.interval = interval
        self.clock = clock
        self.samples: list[dict[str, Any]] = []
        self.peak_mb = 0.0
        self.max_connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ci-telemetry-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> None:
        """Take one sample now (the loop calls this; public so the first sample is not left to chance)."""
        rss = 0
        connections = 0
        for proc in self._tree():
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue  # exited between listing and reading: it holds no memory any more
            # Not permitted on some platforms; the count is a lower bound then.
            with contextlib.suppress(psutil.Error):
                connections += len(proc.net_connections(kind="inet"))
        if rss == 0:
            return
        memory_mb = round(rss / _MIB, 3)
        self.samples.append({"timestamp": iso_utc(self.clock()), "memory_mb": memory_mb})
        self.peak_mb = max(self.peak_mb, memory_mb)
        self.max_connections = max(self.max_connections, connections)

    def _loop(self) -> None:
        # The caller takes the first sample itself, right after the command starts.
        while not self._stop.wait(self.interval):
            self.sample()


def _network_counters() -> dict[str, tuple[int, int]]:
    try:
        counters = psutil.net_io_counters(pernic=True)
    except (OSError, RuntimeError):
        return {}
    return {name: (c.bytes_recv, c.bytes_sent) for name, c in counters.items()}


def network_delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Bytes received/sent on non-loopback interfaces between two readings, and the busiest interface.

    The counters are machine-wide: on a shared agent other processes' traffic is included. That is
    the price of needing no privileges; per-process byte counts are not portable.
    """
    down = up = 0
    busiest, busiest_rank = "", (-1, -1)
    for name, (recv, sent) in after.items():
        if name == "lo" or name.startswith(("lo0", "Loopback")):
            continue
        r0, s0 = before.get(name, (recv, sent))
        d, u = max(0, recv - r0), max(0, sent - s0)
        down += d
        up += u
        # Busiest during the command; on a quiet command, the interface that carried most overall.
        rank = (d + u, recv + sent)
        if rank > busiest_rank:
            busiest, busiest_rank = name, rank
    return {"bytes_downloaded": down, "bytes_uploaded": up, "interface": busiest}


def host_facts(cwd: Path) -> dict[str, Any]:
    """The machine the command ran on (hostname is pseudonymized by the ETL, not here)."""
    try:
        disk_free = psutil.disk_usage(str(cwd)).free
    except OSError:
        disk_free = 0
    return {
        "hostname": socket.gethostname(),
        "os_info": platform.platform(),
        "cpu_cores": psutil.cpu_count(logical=True) or 0,
        "memory_total_mb": round(psutil.virtual_memory().total / _MIB, 1),
        "disk_available_gb": round(disk_free / _GIB, 2),
    }


def failure_reason(exit_code: int, stderr_tail: Sequence[str]) -> str:
    """`exit code N` and the last stderr lines, bounded so a runaway log cannot bloat the document."""
    text = f"exit code {exit_code}"
    tail = "\n".join(line.rstrip("\r\n") for line in stderr_tail if line.strip())
    if tail:
        text += ": " + tail
    if len(text) > FAILURE_REASON_MAX_CHARS:
        text = text[: FAILURE_REASON_MAX_CHARS - 1] + "…"
    return text


@dataclass
class CollectResult:
    """The command's exit code and the metrics document written for it."""

    exit_code: int
    document: dict[str, Any]


def _pump(source: IO[bytes], sink: IO[bytes] | None, on_line: Callable[[bytes], None]) -> None:
    for line in iter(source.readline, b""):
        if sink is not None:
            try:
                sink.write(line)
                sink.flush()
            except (OSError, ValueError):
                sink = None  # our own output went away; keep draining so the command never blocks
        on_line(line)
    source.close()


def _binary(stream: Any) -> IO[bytes] | None:
    return getattr(stream, "buffer", None) or (stream if "b" in getattr(stream, "mode", "") else None)


def run_collect(
    command: Sequence[str],
    stages: Sequence[str] = (),
    sample_interval: float = 1.0,
    stdout: Any = None,
    stderr: Any = None,
    cwd: Path | None = None,
) -> CollectResult:
    """Run *command*, pass its output through, and return its exit code and metrics document."""
    if not command:
        raise ValueError("no command given: put it after `--`, e.g. `ci-telemetry collect -- make all`")
    if sample_interval <= 0:
        raise ValueError("--sample-interval must be greater than 0")
    out_sink = _binary(stdout if stdout is not None else sys.stdout)
    err_sink = _binary(stderr if stderr is not None else sys.stderr)
    workdir = cwd or Path.cwd()
    tracker = StageTracker(list(stages), whole_name=Path(command[0]).name or "command")
    tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)

    def on_stdout(line: bytes) -> None:
        stripped = line.strip()
        if stripped.startswith(STAGE_MARKER):
            tracker.mark(stripped[len(STAGE_MARKER):].decode("utf-8", "replace").strip())

    def on_stderr(line: bytes) -> None:
        tail.append(line.decode("utf-8", "replace"))

    facts = host_facts(workdir)
    net_before = _network_counters()
    started_at = _now()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir)
    except OSError as exc:
        tracker.start()
        tail.append(f"cannot start {command[0]!r}: {exc.strerror or exc}")
        ended_at = _now()
        return CollectResult(NOT_STARTED_EXIT_CODE, _document(
            facts, started_at, ended_at, 0.0, [], 0.0, network_delta(net_before, net_before), 0,
            tracker.finish(NOT_STARTED_EXIT_CODE), NOT_STARTED_EXIT_CODE, tracker.current, list(tail)))
    tracker.start()
    sampler = ProcessSampler(proc.pid, sample_interval)
    sampler.sample()
    sampler.start()
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out_sink, on_stdout), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err_sink, on_stderr), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        returncode = proc.wait()
    except KeyboardInterrupt:
        # A cancelled pipeline step: stop the command but still write what was measured.
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait()
    for pump in pumps:
        pump.join()
    sampler.stop()
    elapsed = time.monotonic() - started
    ended_at = _now()
    exit_code = returncode if returncode >= 0 else 128 - returncode
    document = _document(
        facts, started_at, ended_at, elapsed, sampler.samples, sampler.peak_mb,
        network_delta(net_before, _network_counters()), sampler.max_connections,
        tracker.finish(exit_code), exit_code, tracker.current, list(tail),
    )
    return CollectResult(exit_code, document)


def _document(
    facts: dict[str, Any],
    started_at: datetime,
    ended_at: datetime,
    elapsed: float,
    samples: list[dict[str, Any]],
    peak_mb: float,
    network: dict[str, Any],
    connections: int,
    build_stages: list[dict[str, Any]],
    exit_code: int,
    current_stage: str | None,
    stderr_tail: list[str],
) -> dict[str, Any]:
    failed = exit_code != 0
    return {
        "build_session": {
            "start_time": iso_utc(started_at),
            "end_time": iso_utc(ended_at),
            "duration_seconds": round(elapsed, 3),
            **facts,
        },
        "memory_metrics": {"peak_usage_mb": peak_mb, "samples": samples},
        "network_metrics": {**network, "connection_count": connections},
        "build_metrics": {
            # The ETL's classifier assigns the real category from the reason; this only says "failed".
            "failure_category": "command_failed" if failed else None,
            "failure_stage": current_stage if failed else None,
            "failure_reason": failure_reason(exit_code, stderr_tail) if failed else None,
            # A generic command does not report packages; null keeps zeros out of the metric series.
            "packages_built": None,
            "packages_failed": None,
            "build_stages": build_stages,
        },
        "performance_metrics": {
            "regressions_detected": [],
            "baseline_comparison": {"duration_diff_percent": None, "memory_diff_percent": None},
            "performance_score": None,
        },
    }


def write_document(document: dict[str, Any], path: Path) -> None:
    """Write the document atomically, so a half-written file is never published as an artifact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
