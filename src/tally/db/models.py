"""Imports every table so that Base.metadata is complete (Alembic, checks)."""

from tally.auth.models import ApiKey
from tally.companies.models import AtsIntegration, Company
from tally.db.base import Base
from tally.plans.models import Plan
from tally.pricing.models import PricingRule
from tally.usage.models import (
    Interview,
    UsageBucket,
    UsageDelta,
    UsageEvent,
    UsagePair,
    UsageUnitBucket,
)
from tally.webhooks.models import (
    ThresholdCrossing,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "ApiKey",
    "AtsIntegration",
    "Base",
    "Company",
    "Interview",
    "Plan",
    "PricingRule",
    "ThresholdCrossing",
    "UsageBucket",
    "UsageDelta",
    "UsageEvent",
    "UsagePair",
    "UsageUnitBucket",
    "WebhookDelivery",
    "WebhookEndpoint",
]
