"""Usage events (ingest, void), the aggregates kept on write, and the usage query."""
