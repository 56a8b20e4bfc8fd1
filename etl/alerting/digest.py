"""The daily digest: monitor-mode changes not sent before, posted once per webhook channel and UTC day."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from etl.alerting import webhook
from etl.alerting.config import Webhook
from etl.alerting.ledger import read_alerts, read_digests, write_digest
from etl.timeutil import utc_now
from etl.warehouse.base import Warehouse


@dataclass(frozen=True)
class DigestOutcome:
    """`posted` is the number of changes sent (0 when nothing was sent); `reason` says why not."""

    posted: int
    reason: str = ""


def channel(hook: Webhook) -> str:
    """A stable, secret-free name for a webhook: its kind and a hash of its reference."""
    return f"{hook.kind}:{hashlib.sha256(hook.url.reference.encode()).hexdigest()[:12]}"


def post_digest(warehouse: Warehouse, hook: Webhook, now: datetime | None = None, timeout: float = 30.0) -> DigestOutcome:
    """Post today's digest unless one was posted today; it lists the open monitor-mode changes no earlier
    digest listed. Raises TrackerError (one line) when the post fails; nothing is recorded then."""
    now = now or utc_now()
    day = datetime(now.year, now.month, now.day)
    name = channel(hook)
    digests = [d for d in read_digests(warehouse) if d.get("Channel") == name]
    if any(d.get("Day") == day for d in digests):
        return DigestOutcome(0, f"already posted for {day:%Y-%m-%d}")
    sent = {i for d in digests for i in (d.get("AlertIds") or [])}
    changes = [a for a in read_alerts(warehouse)
               if a["mode"] == "monitor" and a.get("Status") == "open" and a["AlertId"] not in sent]
    if not changes:
        return DigestOutcome(0, "no new monitored changes")
    webhook.post(hook, day, changes, timeout)
    write_digest(warehouse, {"Channel": name, "Day": day, "AlertIds": sorted(a["AlertId"] for a in changes),
                             "PostedAt": now}, now)
    return DigestOutcome(len(changes))
