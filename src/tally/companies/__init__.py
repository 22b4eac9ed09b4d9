"""Companies and the ATS integrations that manage them."""
