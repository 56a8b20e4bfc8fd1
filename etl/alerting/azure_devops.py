"""Azure DevOps work items as an alert tracker (Work Items REST 7.1).

- create: `POST {org}/{project}/_apis/wit/workitems/${type}?api-version=7.1`, a JSON Patch body
  (`application/json-patch+json`); the answer is the WorkItem (`id`, `fields`, `_links.html.href`).
- get: `GET {org}/{project}/_apis/wit/workitems/{id}?api-version=7.1`; `fields` holds System.State,
  System.Reason, System.Tags ("a; b") and System.ChangedDate.
- comment: `POST {org}/{project}/_apis/wit/workItems/{id}/comments?api-version=7.1-preview.4`, body `{"text"}`.
A PAT goes as Basic auth with an empty user name. A refused PAT answers 401, or 203 with a sign-in page.
"""

from __future__ import annotations

import base64
from datetime import datetime
from urllib.parse import quote

from etl.alerting.config import AzureDevOpsTracker
from etl.alerting.http import TrackerError, TrackerItem, check, parse_time, session

_HINT = "the PAT needs the Work Items (Read & write) scope in this organization"


class AzureDevOpsWorkItems:
    """Create, read and comment on work items of one project."""

    kind = "azure-devops"

    def __init__(self, config: AzureDevOpsTracker, timeout: float = 30.0, retries: int = 3) -> None:
        self.config = config
        self.timeout = timeout
        self._session = session(retries)
        self._base = f"{config.organization_url.rstrip('/')}/{quote(config.project, safe='')}/_apis/wit"

    @property
    def where(self) -> str:
        return f"azure-devops {self.config.organization_url.rstrip('/')}/{self.config.project}"

    def reveal_credential(self) -> None:
        """Resolve the token now, so text rendered before the first call is already masked for it."""
        self.config.token.reveal()

    def _headers(self, content_type: str = "application/json") -> dict[str, str]:
        token = base64.b64encode(f":{self.config.token.reveal()}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}", "Content-Type": content_type, "Accept": "application/json"}

    def _check(self, response, what: str) -> dict:
        return check(response, f"{self.where}: {what}", self.config.token.reference, _HINT)

    def create(self, title: str, body_html: str, tags: list[str]) -> TrackerItem:
        """File one work item; returns its id and web URL."""
        patch = [
            {"op": "add", "path": "/fields/System.Title", "value": title[:255]},
            {"op": "add", "path": "/fields/System.Description", "value": body_html},
            {"op": "add", "path": "/fields/System.Tags", "value": "; ".join([*self.config.tags, *tags])},
        ]
        if self.config.work_item_type == "Bug":
            # A Bug's form shows Repro Steps, not Description (Agile, Scrum and CMMI processes alike).
            patch.append({"op": "add", "path": "/fields/Microsoft.VSTS.TCM.ReproSteps", "value": body_html})
        if self.config.area_path:
            patch.append({"op": "add", "path": "/fields/System.AreaPath", "value": self.config.area_path})
        url = f"{self._base}/workitems/${quote(self.config.work_item_type, safe='')}?api-version=7.1"
        response = self._session.post(url, data=_json(patch), headers=self._headers("application/json-patch+json"), timeout=self.timeout)
        return self._item(self._check(response, f"create {self.config.work_item_type}"))

    def get(self, item_id: str) -> TrackerItem:
        """The work item's state, reason, tags and last change."""
        response = self._session.get(f"{self._base}/workitems/{int(item_id)}?api-version=7.1", headers=self._headers(), timeout=self.timeout)
        return self._item(self._check(response, f"work item {item_id}"))

    def comment(self, item_id: str, text_html: str) -> datetime | None:
        """Add one comment; returns its creation time."""
        url = f"{self._base}/workItems/{int(item_id)}/comments?api-version=7.1-preview.4"
        response = self._session.post(url, data=_json({"text": text_html}), headers=self._headers(), timeout=self.timeout)
        return parse_time(self._check(response, f"comment on work item {item_id}").get("createdDate"))

    def _item(self, body: dict) -> TrackerItem:
        if "id" not in body:
            raise TrackerError(f"{self.where}: the answer has no work item id")
        fields = body.get("fields") or {}
        link = ((body.get("_links") or {}).get("html") or {}).get("href") or ""
        tags = tuple(t.strip() for t in str(fields.get("System.Tags") or "").split(";") if t.strip())
        return TrackerItem(
            id=str(body["id"]), url=link or f"{self.config.organization_url.rstrip('/')}/{self.config.project}/_workitems/edit/{body['id']}",
            state=str(fields.get("System.State") or ""), reason=str(fields.get("System.Reason") or ""),
            labels=tags, updated_at=parse_time(fields.get("System.ChangedDate")),
        )


def _json(value: object) -> bytes:
    import json

    return json.dumps(value).encode("utf-8")
