"""Webhook endpoints and the delivery log: creating, removing, listing, retrying."""

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tally.companies import repository as companies
from tally.errors import NotFound, ValidationFailed
from tally.webhooks import repository
from tally.webhooks.models import WebhookDelivery, WebhookEndpoint
from tally.webhooks.schemas import EndpointIn
from tally.webhooks.signing import new_secret
from tally.webhooks.targets import TargetRefused, check_url


def create_endpoint(
    session: Session, body: EndpointIn, allow_private: bool, now: datetime
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the row holds it; show it once)."""
    try:
        check_url(body.url, allow_private)
    except TargetRefused as exc:
        raise ValidationFailed.field("url", str(exc)) from exc
    if body.company_id is not None and body.ats_integration_id is not None:
        raise ValidationFailed.field("companyId", "give companyId or atsIntegrationId, not both")
    if body.company_id is not None and companies.get_company(session, body.company_id) is None:
        raise ValidationFailed.field("companyId", "no company with this id")
    if body.ats_integration_id is not None and (
        companies.get_ats(session, body.ats_integration_id) is None
    ):
        raise ValidationFailed.field("atsIntegrationId", "no ATS integration with this id")
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=body.url,
        description=body.description,
        company_id=body.company_id,
        ats_integration_id=body.ats_integration_id,
        secret=new_secret(),
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def delete_endpoint(session: Session, endpoint_id: uuid.UUID, now: datetime) -> WebhookEndpoint:
    """Remove an endpoint: nothing more is sent to it; its delivery log stays."""
    endpoint = repository.get_endpoint(session, endpoint_id)
    if endpoint is None:
        raise NotFound("no webhook endpoint with this id")
    endpoint.deleted_at = now
    repository.fail_pending_of(session, endpoint_id, "endpoint removed")
    session.flush()
    return endpoint


def page_deliveries(
    session: Session, endpoint_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[list[WebhookDelivery], int]:
    if endpoint_id is not None and session.get(WebhookEndpoint, endpoint_id) is None:
        raise NotFound("no webhook endpoint with this id")
    return repository.page_deliveries(session, endpoint_id, offset, limit)


def retry(session: Session, delivery_id: uuid.UUID, now: datetime) -> WebhookDelivery:
    """Make a delivery due now, whatever its status; the worker sends it at once."""
    delivery = repository.get_delivery(session, delivery_id)
    if delivery is None:
        raise NotFound("no webhook delivery with this id")
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        raise NotFound("the endpoint of this delivery was removed")
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(status="pending", next_attempt_at=now)
    )
    session.flush()
    session.refresh(delivery)
    return delivery
