"""Loopback fakes of the Azure DevOps Work Items REST API (7.1) and the GitHub REST issues API, on
pytest-httpserver, built from the published request and response shapes:

- Azure DevOps: Work Items - Create (`POST {org}/{project}/_apis/wit/workitems/${type}?api-version=7.1`,
  `application/json-patch+json`, 200 + WorkItem), Work Items - Get Work Item (200 + WorkItem, 404 TF401232),
  Comments - Add (`POST .../workItems/{id}/comments?api-version=7.1-preview.4`, `{"text"}`, 200 + Comment).
  A PAT is Basic auth with an empty user; a wrong one answers 401. A rule violation answers 400 with a
  `TF401320` message.
- GitHub: Create an issue (201 + Issue; 422 Validation Failed without a title), Get an issue,
  Create an issue comment (201 + IssueComment); 401 `Bad credentials`; version header 2022-11-28.

Each fake keeps its items in memory, lets a test close or change them as a person would, and records every
request body it received (to check what was sent, and that no secret was).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _json(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json; charset=utf-8")


@dataclass
class FakeAzureDevOps:
    """Work items of one project at `{server}/{org}/{project}`."""

    server: HTTPServer
    org: str
    project: str
    pat: str
    now: datetime = datetime(2026, 12, 1, 6, 0)
    items: dict[int, dict] = field(default_factory=dict)
    comments: dict[int, list[dict]] = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)
    #: Statuses to answer the next create requests with (e.g. [401]), before behaving normally again.
    refuse_next: list[int] = field(default_factory=list)
    next_id: int = 131489

    @property
    def organization_url(self) -> str:
        return self.server.url_for(f"/{self.org}")

    def install(self) -> FakeAzureDevOps:
        base = f"/{self.org}/{self.project}/_apis/wit"
        self.server.expect_request(re.compile(rf"^{base}/workitems/\$[A-Za-z%0-9 ]+$"), method="POST").respond_with_handler(self._create)
        self.server.expect_request(re.compile(rf"^{base}/workitems/\d+$"), method="GET").respond_with_handler(self._get)
        self.server.expect_request(re.compile(rf"^{base}/workItems/\d+/comments$"), method="POST").respond_with_handler(self._comment)
        return self

    def _authorized(self, request: Request) -> bool:
        expected = "Basic " + base64.b64encode(f":{self.pat}".encode()).decode()
        return request.headers.get("Authorization") == expected

    def _create(self, request: Request) -> Response:
        self.bodies.append(request.get_data(as_text=True))
        if self.refuse_next:
            return Response("", status=self.refuse_next.pop(0))
        if not self._authorized(request):
            return Response("", status=401)
        if request.args.get("api-version") != "7.1":
            return _json({"message": "VS800006: The api-version query parameter is required.", "typeKey": "VssVersionNotSpecifiedException"}, 400)
        if request.mimetype != "application/json-patch+json":
            return _json({"message": "VS402898: The request's content type is not supported.", "typeKey": "VssRequestContentTypeNotSupportedException"}, 415)
        ops = json.loads(request.get_data(as_text=True))
        fields = {op["path"].removeprefix("/fields/"): op["value"] for op in ops if op.get("op") == "add"}
        if not fields.get("System.Title"):
            return _json({"message": "TF401320: Rule Error for field Title. Error code: Required, InvalidEmpty.", "typeKey": "RuleValidationException"}, 400)
        wid = self.next_id
        self.next_id += 1
        wtype = request.path.rsplit("$", 1)[1]
        self.items[wid] = {
            "id": wid, "rev": 1,
            "fields": {**fields, "System.TeamProject": self.project, "System.WorkItemType": wtype,
                       "System.State": "New", "System.Reason": "New", "System.CreatedDate": _iso(self.now),
                       "System.ChangedDate": _iso(self.now)},
            "_links": {"self": {"href": self.server.url_for(f"/{self.org}/_apis/wit/workItems/{wid}")},
                       "html": {"href": self.server.url_for(f"/{self.org}/{self.project}/_workitems/edit/{wid}")}},
            "url": self.server.url_for(f"/{self.org}/_apis/wit/workItems/{wid}"),
        }
        return _json(self.items[wid])

    def _get(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("", status=401)
        wid = int(request.path.rsplit("/", 1)[1])
        if wid not in self.items:
            return _json({"message": f"TF401232: Work item {wid} does not exist, or you do not have permissions to read it."}, 404)
        return _json(self.items[wid])

    def _comment(self, request: Request) -> Response:
        self.bodies.append(request.get_data(as_text=True))
        if not self._authorized(request):
            return Response("", status=401)
        if request.args.get("api-version") != "7.1-preview.4":
            return _json({"message": "VS800006: The api-version query parameter is required."}, 400)
        wid = int(request.path.split("/")[-2])
        text = json.loads(request.get_data(as_text=True))["text"]
        comment = {"workItemId": wid, "id": len(self.comments.get(wid, [])) + 1, "version": 1, "text": text,
                   "createdDate": _iso(self.now), "modifiedDate": _iso(self.now)}
        self.comments.setdefault(wid, []).append(comment)
        self.items[wid]["fields"]["System.ChangedDate"] = _iso(self.now)  # a comment is a new revision
        return _json(comment)

    def set_state(self, wid: int, state: str, reason: str, tags: str = "") -> None:
        """A person moves the work item (e.g. Resolved / Cannot Reproduce)."""
        f = self.items[wid]["fields"]
        f.update({"System.State": state, "System.Reason": reason, "System.ChangedDate": _iso(self.now)})
        if tags:
            f["System.Tags"] = tags


@dataclass
class FakeGitHub:
    """Issues of one repository at `{server}/repos/{repository}`."""

    server: HTTPServer
    repository: str
    token: str
    now: datetime = datetime(2026, 12, 1, 6, 0)
    issues: dict[int, dict] = field(default_factory=dict)
    comments: dict[int, list[dict]] = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)
    refuse_next: list[tuple[int, dict]] = field(default_factory=list)
    next_number: int = 1347

    @property
    def api_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def install(self) -> FakeGitHub:
        base = f"/repos/{self.repository}/issues"
        self.server.expect_request(base, method="POST").respond_with_handler(self._create)
        self.server.expect_request(re.compile(rf"^{base}/\d+$"), method="GET").respond_with_handler(self._get)
        self.server.expect_request(re.compile(rf"^{base}/\d+/comments$"), method="POST").respond_with_handler(self._comment)
        return self

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}, 401)
        return None

    def _create(self, request: Request) -> Response:
        self.bodies.append(request.get_data(as_text=True))
        if self.refuse_next:
            status, headers = self.refuse_next.pop(0)
            return _json({"message": "refused", "documentation_url": "https://docs.github.com/rest"}, status, headers)
        if (denied := self._denied(request)) is not None:
            return denied
        payload = json.loads(request.get_data(as_text=True))
        if not payload.get("title"):
            return _json({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]}, 422)
        number = self.next_number
        self.next_number += 1
        self.issues[number] = {
            "id": 1000 + number, "node_id": f"I_{number}", "number": number,
            "url": self.server.url_for(f"/repos/{self.repository}/issues/{number}"),
            "html_url": f"https://github.com/{self.repository}/issues/{number}",
            "state": "open", "state_reason": None, "title": payload["title"], "body": payload.get("body"),
            "labels": [{"id": i, "name": n} for i, n in enumerate(payload.get("labels") or [])],
            "comments": 0, "created_at": _iso(self.now)[:-5] + "Z", "updated_at": _iso(self.now)[:-5] + "Z", "closed_at": None,
        }
        return _json(self.issues[number], 201)

    def _get(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        number = int(request.path.rsplit("/", 1)[1])
        if number not in self.issues:
            return _json({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/issues#get-an-issue", "status": "404"}, 404)
        return _json(self.issues[number])

    def _comment(self, request: Request) -> Response:
        self.bodies.append(request.get_data(as_text=True))
        if (denied := self._denied(request)) is not None:
            return denied
        number = int(request.path.split("/")[-2])
        body = json.loads(request.get_data(as_text=True))["body"]
        stamp = _iso(self.now)[:-5] + "Z"
        comment = {"id": 9000 + len(self.comments.get(number, [])), "body": body, "created_at": stamp, "updated_at": stamp}
        self.comments.setdefault(number, []).append(comment)
        self.issues[number].update(updated_at=stamp, comments=len(self.comments[number]))
        return _json(comment, 201)

    def close(self, number: int, state_reason: str, labels: tuple[str, ...] = ()) -> None:
        """A person closes the issue (completed, not_planned or duplicate), optionally labelling it."""
        stamp = _iso(self.now)[:-5] + "Z"
        issue = self.issues[number]
        issue.update(state="closed", state_reason=state_reason, closed_at=stamp, updated_at=stamp)
        issue["labels"] = [*issue["labels"], *({"id": 99, "name": n} for n in labels)]

    def touch(self, number: int) -> None:
        """A person comments on the issue."""
        self.issues[number]["updated_at"] = _iso(self.now)[:-5] + "Z"
