"""API keys, scopes and the authenticated caller."""
