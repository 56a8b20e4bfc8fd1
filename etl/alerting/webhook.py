"""The daily digest of monitor-mode changes, posted once per UTC day to a Teams, Slack or generic JSON webhook.

Payloads: Slack incoming webhooks take `{"text": ...}` (mrkdwn); Teams (Workflows "post to a channel when a
webhook request is received") takes a message with one Adaptive Card attachment; `json` posts
`{"day", "changes": [...]}` for any other receiver.
"""

from __future__ import annotations

import json
from datetime import datetime

import requests

from etl.alerting.config import Webhook
from etl.alerting.http import TrackerAuthError, TrackerError, session
from etl.secret_refs import mask


def _line(a: dict) -> str:
    pct = a.get("ChangePercent")
    pct_text = f"{float(pct):+.1f}%" if isinstance(pct, (int, float)) else ""
    return f"{a.get('Metric')} {pct_text} {a.get('Direction') or ''} on {a.get('Series')} (builds {a.get('BuildBefore')}..{a.get('BuildAfter')})"


def payload(kind: str, day: datetime, changes: list[dict]) -> dict:
    """The request body for a webhook of *kind*."""
    heading = f"ci-telemetry: {len(changes)} monitored change(s) on {day:%Y-%m-%d}"
    lines = [mask(_line(a)) for a in changes]
    if kind == "slack":
        return {"text": heading + "\n" + "\n".join(f"• {line}" for line in lines)}
    if kind == "teams":
        body = [{"type": "TextBlock", "text": heading, "weight": "Bolder", "wrap": True}]
        body += [{"type": "TextBlock", "text": f"- {line}", "wrap": True} for line in lines]
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": body}
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
    fields = ("AlertId", "Kind", "Metric", "Series", "BuildBefore", "BuildAfter", "Before", "After", "ChangePercent", "Direction")
    return {"day": f"{day:%Y-%m-%d}", "changes": [{k: a.get(k) for k in fields} for a in changes]}


def post(webhook: Webhook, day: datetime, changes: list[dict], timeout: float = 30.0) -> None:
    """Post one digest; a refused or failed post raises a one-line TrackerError naming the reference only."""
    where = f"webhook {webhook.kind} {webhook.url.reference}"
    url = webhook.url.reveal()  # before the payload is built, so the payload is masked for it too
    try:
        response = session(0).post(url, data=json.dumps(payload(webhook.kind, day, changes), default=str),
                                   headers={"Content-Type": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        # The exception text holds the URL, and a webhook URL is its own credential.
        raise TrackerError(f"{where}: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise TrackerAuthError(f"{where}: HTTP {response.status_code}, the webhook refused the post; check the URL is current")
    if response.status_code >= 400:
        raise TrackerError(f"{where}: HTTP {response.status_code}")
