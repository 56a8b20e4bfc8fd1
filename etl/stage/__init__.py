"""The outbox (batches staged on disk before loading) and the quarantine (payloads that could not be read)."""
