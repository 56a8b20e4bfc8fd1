"""The tracker configured in `notify:`, behind one small interface, and the guard every tracker call runs in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

import requests

from etl.alerting.config import Notify
from etl.alerting.http import TrackerError, TrackerItem
from etl.secret_refs import SecretError, mask

T = TypeVar("T")


class Tracker(Protocol):
    """What the workflow needs of a work-item or issue tracker."""

    kind: str

    @property
    def where(self) -> str: ...

    def reveal_credential(self) -> None: ...

    def create(self, title: str, body: str, labels: list[str]) -> TrackerItem: ...

    def get(self, item_id: str) -> TrackerItem: ...

    def comment(self, item_id: str, text: str) -> datetime | None: ...


def tracker_for(notify: Notify, retries: int = 3) -> Tracker | None:
    """The configured tracker, or None when `tracker: none`."""
    if notify.tracker == "azure-devops" and notify.azure_devops:
        from etl.alerting.azure_devops import AzureDevOpsWorkItems

        return AzureDevOpsWorkItems(notify.azure_devops, notify.timeout_seconds, retries)
    if notify.tracker == "github" and notify.github:
        from etl.alerting.github_issues import GitHubIssues

        return GitHubIssues(notify.github, notify.timeout_seconds, retries)
    return None


def guarded(where: str, call: Callable[..., T], *args: object) -> T:
    """Run `call(*args)`, one tracker call; every failure becomes a one-line, masked TrackerError naming *where*."""
    try:
        return call(*args)
    except TrackerError:
        raise
    except SecretError as exc:
        raise TrackerError(mask(str(exc).splitlines()[0])) from None
    except requests.RequestException as exc:
        raise TrackerError(mask(f"{where}: {type(exc).__name__} (unreachable or timed out)")) from None
