"""GitHub Actions: typed payload models and their mapping onto the shared Timeline*/Test* tables.

No HTTP client yet; see docs/sources.md, section "GitHub Actions", for the mapping and what remains.
"""
