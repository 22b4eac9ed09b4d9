"""Imports every table so that Base.metadata is complete (Alembic, checks)."""

from tally.auth.models import ApiKey
from tally.companies.models import AtsIntegration, Company
from tally.db.base import Base
from tally.pricing.models import PricingRule
from tally.usage.models import Interview, UsageBucket, UsageEvent, UsagePair

__all__ = [
    "ApiKey",
    "AtsIntegration",
    "Base",
    "Company",
    "Interview",
    "PricingRule",
    "UsageBucket",
    "UsageEvent",
    "UsagePair",
]
