"""Azure DevOps: REST client, payload models and the extractor."""
