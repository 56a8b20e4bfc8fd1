"""Injectable faults for the simulated server: throttling, server errors, slow, malformed and cut-off responses,
a lower `$top` cap on test results, listings that hold fewer results than the run's `totalTests`,
and a per-user rate limit announced in `X-RateLimit-*` headers before it blocks.

Faults are deterministic from the seed whatever the thread interleaving: the n-th request for one
exact URL gets the same verdict every run (a hash of seed, URL and n), and a scheduled fault hits
the n-th request of a kind of path. `max_consecutive` bounds how often one URL fails in a row, so a
client retrying more than that always gets through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "slow", "malformed", "cut")
PATH_KINDS = ("projects", "definitions", "builds", "build", "timeline", "timeline_attempt", "test_runs", "test_run",
              "test_results", "artifacts", "artifact_zip")


@dataclass(frozen=True)
class Faults:
    """What goes wrong, how often and where.

    rate: probability that a request gets a random fault drawn from `kinds`.
    kinds: fault kinds for random faults (`429`, `500`, `503`, `slow`, `malformed`; `cut`: the connection closes
        halfway through the body, which `Content-Length` announces whole, as a reset connection or proxy does).
    paths: path kinds random faults apply to (empty: all kinds).
    schedule: path kind -> list of fault kinds (or None) for its 1st, 2nd, ... request.
    retry_after: seconds sent in `Retry-After` with a 429.
    delay: seconds a `slow` response waits before answering.
    max_consecutive: most random faults in a row for one URL.
    results_cap: serve at most this many test results per page (below the service's own caps).
    withhold_results: test run id -> how many of its last results the listing leaves out
        (the run still says the full `totalTests`).
    rate_limit: requests per `rate_window` seconds before Azure DevOps-style delays (0: no limit);
        past half of it responses carry `X-RateLimit-*`, past it `X-RateLimit-Delay`, past twice it 429.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "503")
    paths: tuple[str, ...] = ()
    schedule: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)
    retry_after: float = 1
    delay: float = 0.5
    max_consecutive: int = 2
    seed: int = 0
    results_cap: int | None = None
    withhold_results: Mapping[int, int] = field(default_factory=dict)
    rate_limit: int = 0
    rate_window: float = 300.0

    def __post_init__(self) -> None:
        for kind in (*self.kinds, *(k for ks in self.schedule.values() for k in ks if k)):
            if kind not in FAULT_KINDS:
                raise ValueError(f"faults: unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        for path in (*self.paths, *self.schedule):
            if path not in PATH_KINDS:
                raise ValueError(f"faults: unknown path kind {path!r}; expected one of {', '.join(PATH_KINDS)}")
        if not 0 <= self.rate <= 1:
            raise ValueError(f"faults: rate {self.rate} is not a probability")
        if self.results_cap is not None and self.results_cap < 1:
            raise ValueError(f"faults: results_cap {self.results_cap} must be at least 1")

    @classmethod
    def from_value(cls, value: Faults | Mapping[str, Any] | None, seed: int = 0) -> Faults | None:
        """Accept a Faults, a dict of its fields, or None; the server's seed is used unless given."""
        if value is None or isinstance(value, Faults):
            return value
        data = dict(value)
        data.setdefault("seed", seed)
        if "kinds" in data:
            data["kinds"] = tuple(data["kinds"])
        if "paths" in data:
            data["paths"] = tuple(data["paths"])
        if "schedule" in data:
            data["schedule"] = {k: tuple(v) for k, v in data["schedule"].items()}
        if "withhold_results" in data:
            data["withhold_results"] = {int(k): int(v) for k, v in data["withhold_results"].items()}
        return cls(**data)

    def scheduled(self, path_kind: str, nth: int) -> str | None:
        """The scheduled fault of the `nth` (1-based) request of a path kind."""
        plan = self.schedule.get(path_kind, ())
        return plan[nth - 1] if nth <= len(plan) else None

    def random_fault(self, path_kind: str, url: str, nth: int, streak: int) -> str | None:
        """The random fault of the `nth` request for `url` (None: serve normally)."""
        if self.rate <= 0 or (self.paths and path_kind not in self.paths) or streak >= self.max_consecutive:
            return None
        digest = hashlib.blake2b(f"{self.seed}|{url}|{nth}".encode(), digest_size=8).digest()
        draw = int.from_bytes(digest[:4], "big") / 2**32
        if draw >= self.rate:
            return None
        return self.kinds[int.from_bytes(digest[4:], "big") % len(self.kinds)]
