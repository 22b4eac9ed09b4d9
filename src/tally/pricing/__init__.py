"""Pricing rules and rating an event to credits."""
