"""The extractor's decode window: requests stay max_parallel in flight, few bundles are decoded at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from etl.sources.azure_devops.extract import DECODED_AHEAD, AzureDevOpsExtractor

PARALLEL = 6


class TimelineClient:
    """Answers every latest-timeline request with an empty timeline, recording when each was fetched and decoded.

    The first build's body is held until every worker has fetched its own: the requests are in flight
    at once although only a few may decode.
    """

    organization = "org"

    def __init__(self, builds: int) -> None:
        self.lock = threading.Lock()
        self.fetched: list[int] = []
        self.all_fetched = threading.Event()
        self.expected = min(PARALLEL, builds)
        #: The highest build id the consumer had received when each build decoded (-1: none yet).
        self.received = -1
        self.decoded: list[tuple[int, int]] = []

    def url(self, project: str, path: str) -> str:
        return f"{project}/{path}"

    def get_json(self, url: str, params: dict[str, Any] | None = None, *,
                 before_decode: Callable[[], None] | None = None) -> tuple[Any, None]:
        build = int(url.split("/")[-2])  # <project>/_apis/build/builds/<id>/timeline
        with self.lock:
            self.fetched.append(build)
            if len(self.fetched) >= self.expected:
                self.all_fetched.set()
        if build == 0:
            assert self.all_fetched.wait(10), f"only {self.fetched} fetched while build 0 waits"
        if before_decode is not None:
            before_decode()
        with self.lock:
            self.decoded.append((build, self.received))
        return {"id": f"timeline-{build}", "records": []}, None


def extractor(client: TimelineClient) -> AzureDevOpsExtractor:
    return AzureDevOpsExtractor(client, test_results=False, max_parallel_requests=PARALLEL)  # type: ignore[arg-type]


def test_the_decode_window_defaults_to_two_bundles_ahead() -> None:
    assert DECODED_AHEAD == 2
    assert extractor(TimelineClient(1)).decoded_ahead == 2


def test_no_build_decodes_more_than_the_window_ahead_of_the_consumer_while_all_requests_are_in_flight() -> None:
    client = TimelineClient(20)
    builds = [{"id": i} for i in range(20)]
    seen = []
    for bundle in extractor(client).iter_bundles("p", builds):
        seen.append(bundle.build_id)
        with client.lock:
            client.received = bundle.build_id
    assert seen == list(range(20))
    assert sorted(client.fetched) == list(range(20))
    # The consumer holds build `received + 1` (or is about to): at most DECODED_AHEAD more beyond it.
    assert [b for b, received in client.decoded if b > received + 1 + DECODED_AHEAD] == []


def test_a_consumer_that_stops_early_lets_the_waiting_workers_finish() -> None:
    client = TimelineClient(20)
    builds = [{"id": i} for i in range(20)]
    first: list[int] = []

    def consume() -> None:
        bundles = extractor(client).iter_bundles("p", builds)
        first.append(next(bundles).build_id)
        bundles.close()  # the pool shuts down only once its waiting workers were let through

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(30)
    assert not consumer.is_alive()
    assert first == [0]
