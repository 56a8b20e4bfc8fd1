"""Tracker state → alert Resolution (FIXED, WONTFIX, INVALID, WORKSFORME), or None while the item is open.

Labels (GitHub) and tags (Azure DevOps) named for a resolution win over the state: a team that closes an
issue as "completed" but labels it `invalid` means INVALID. Otherwise:

Azure DevOps (Agile, Scrum, CMMI Bug states): New/Active/Approved/Committed/Proposed are open; Resolved,
Closed and Done resolve by System.Reason; Removed is INVALID.
GitHub: `state` open is open; closed resolves by `state_reason`.
"""

from __future__ import annotations

from etl.alerting.http import TrackerItem

#: Label or tag (lower-cased) → resolution.
LABELS = {
    "invalid": "INVALID", "duplicate": "INVALID", "not a regression": "INVALID", "noise": "INVALID",
    "wontfix": "WONTFIX", "won't fix": "WONTFIX", "as designed": "WONTFIX", "by design": "WONTFIX",
    "worksforme": "WORKSFORME", "works for me": "WORKSFORME", "cannot reproduce": "WORKSFORME",
    "fixed": "FIXED",
}

ADO_DONE_STATES = ("resolved", "closed", "done")
#: System.Reason (lower-cased) of a done Bug → resolution; any other reason of a done state is FIXED.
ADO_REASONS = {
    "fixed": "FIXED", "fixed and verified": "FIXED", "verified": "FIXED", "work finished": "FIXED",
    "as designed": "WONTFIX", "deferred": "WONTFIX", "won't fix": "WONTFIX", "obsolete": "WONTFIX",
    "cannot reproduce": "WORKSFORME", "unable to reproduce": "WORKSFORME",
    "duplicate": "INVALID", "rejected": "INVALID", "removed from the backlog": "INVALID",
}

GITHUB_REASONS = {"completed": "FIXED", "not_planned": "WONTFIX", "duplicate": "INVALID"}


def _from_labels(item: TrackerItem) -> str | None:
    for label in item.labels:
        found = LABELS.get(label.strip().lower())
        if found:
            return found
    return None


def azure_devops_resolution(item: TrackerItem) -> str | None:
    """The resolution a work item's state, reason and tags say, or None while it is open."""
    state = item.state.strip().lower()
    if state == "removed":
        return "INVALID"
    if state not in ADO_DONE_STATES:
        return None
    return _from_labels(item) or ADO_REASONS.get(item.reason.strip().lower(), "FIXED")


def github_resolution(item: TrackerItem) -> str | None:
    """The resolution an issue's state, state_reason and labels say, or None while it is open."""
    if item.state.strip().lower() != "closed":
        return None
    return _from_labels(item) or GITHUB_REASONS.get(item.reason.strip().lower(), "FIXED")


def resolution(kind: str, item: TrackerItem) -> str | None:
    """The resolution for a tracker of *kind* (azure-devops or github)."""
    return azure_devops_resolution(item) if kind == "azure-devops" else github_resolution(item)
