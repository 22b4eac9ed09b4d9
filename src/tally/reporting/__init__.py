"""Reporting: one computation of usage at N instants, and its views (usage, series, CSV)."""
