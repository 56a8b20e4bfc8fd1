"""Sources the ETL reads: Azure DevOps organizations (REST), uploaded metrics documents, an inbox directory."""
