"""ci-telemetry: CI analytics from Azure DevOps into Kusto tables."""
__version__ = "0.1.0"
