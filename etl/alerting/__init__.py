"""The alert workflow: alerts grouped into summaries, one tracker item per summary, a daily digest, a daily sync.

Data flows one way: Alerts (written by `alerts detect`) → summaries → trackers / webhook → the ledger tables
AlertSummaries and AlertDigests, and back into Alerts Status/Resolution by `alerts sync`.
"""
