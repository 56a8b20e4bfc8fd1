"""Analyses over the store's deduplicated views: CI health, flaky tests, regressions and alerts.

Plain functions over pandas DataFrames (the rows `kql/queries/*.kql` return), used by the report
notebooks and the CLI. KQL does the filtering; percentiles, ranking and change detection happen here,
because the local engine lacks percentile(), row_number() and series functions.
"""
