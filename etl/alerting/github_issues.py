"""GitHub issues as an alert tracker (REST API, version 2022-11-28).

- create: `POST /repos/{owner}/{repo}/issues` with `{title, body, labels}`; 201 and the Issue
  (`number`, `html_url`).
- get: `GET /repos/{owner}/{repo}/issues/{number}`; `state` open|closed, `state_reason`
  completed|not_planned|duplicate|reopened|null, `labels[].name`, `updated_at`.
- comment: `POST /repos/{owner}/{repo}/issues/{number}/comments` with `{body}`; 201 and `created_at`.
Failures: 401 bad credentials; 403 with `x-ratelimit-remaining: 0` is the primary rate limit, other 403s a
missing permission; 429 a secondary rate limit; 404 an unknown or unreadable repository; 410 issues disabled.
"""

from __future__ import annotations

from datetime import datetime

from etl.alerting.config import GitHubTracker
from etl.alerting.http import TrackerError, TrackerItem, check, parse_time, session

_HINT = "the token needs Issues: write on the repository"


class GitHubIssues:
    """Create, read and comment on issues of one repository."""

    kind = "github"

    def __init__(self, config: GitHubTracker, timeout: float = 30.0, retries: int = 3) -> None:
        self.config = config
        self.timeout = timeout
        self._session = session(retries)
        self._base = f"{config.api_url.rstrip('/')}/repos/{config.repository}/issues"

    @property
    def where(self) -> str:
        return f"github {self.config.repository}"

    def reveal_credential(self) -> None:
        """Resolve the token now, so text rendered before the first call is already masked for it."""
        self.config.token.reveal()

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.token.reveal()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    def _check(self, response, what: str) -> dict:
        if response.status_code == 410:
            raise TrackerError(f"{self.where}: {what}: HTTP 410, issues are disabled on this repository")
        return check(response, f"{self.where}: {what}", self.config.token.reference, _HINT)

    def create(self, title: str, body_markdown: str, labels: list[str]) -> TrackerItem:
        """File one issue; returns its number and web URL."""
        payload = {"title": title[:256], "body": body_markdown, "labels": [*self.config.labels, *labels]}
        response = self._session.post(self._base, json=payload, headers=self._headers(), timeout=self.timeout)
        return self._item(self._check(response, "create issue"))

    def get(self, item_id: str) -> TrackerItem:
        """The issue's state, state_reason, labels and last update."""
        response = self._session.get(f"{self._base}/{int(item_id)}", headers=self._headers(), timeout=self.timeout)
        return self._item(self._check(response, f"issue #{item_id}"))

    def comment(self, item_id: str, text_markdown: str) -> datetime | None:
        """Add one comment; returns its creation time."""
        response = self._session.post(f"{self._base}/{int(item_id)}/comments", json={"body": text_markdown},
                                      headers=self._headers(), timeout=self.timeout)
        return parse_time(self._check(response, f"comment on issue #{item_id}").get("created_at"))

    def _item(self, body: dict) -> TrackerItem:
        if "number" not in body:
            raise TrackerError(f"{self.where}: the answer has no issue number")
        labels = tuple(str(lab.get("name") if isinstance(lab, dict) else lab) for lab in body.get("labels") or [])
        return TrackerItem(
            id=str(body["number"]), url=str(body.get("html_url") or ""), state=str(body.get("state") or ""),
            reason=str(body.get("state_reason") or ""), labels=labels, updated_at=parse_time(body.get("updated_at")),
        )
