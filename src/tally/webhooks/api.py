"""Routes: /admin/webhook-endpoints and /admin/webhook-deliveries."""

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Query, Request
from starlette.background import BackgroundTask

from tally.core.envelope import EnvelopeResponse, success
from tally.core.http import parse_uuid
from tally.core.instants import utcnow
from tally.core.pagination import Paging, page_of
from tally.deps import Admin, DbSession
from tally.settings import Settings
from tally.webhooks import repository, service
from tally.webhooks.models import WebhookDelivery, WebhookEndpoint
from tally.webhooks.schemas import (
    CreatedEndpointOut,
    DeliveryOut,
    DeliveryStatus,
    EndpointIn,
    EndpointOut,
)

router = APIRouter(prefix="/admin", tags=["webhooks"])


def _endpoint_fields(row: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "company_id": row.company_id,
        "ats_integration_id": row.ats_integration_id,
        "created_at": row.created_at,
    }


def endpoint_out(row: WebhookEndpoint) -> dict[str, object]:
    return EndpointOut.model_validate(_endpoint_fields(row)).model_dump(by_alias=True)


def delivery_out(row: WebhookDelivery) -> dict[str, object]:
    return DeliveryOut(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        status=cast(DeliveryStatus, row.status),
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
    ).model_dump(by_alias=True)


@router.post("/webhook-endpoints", status_code=201, responses={201: {"model": CreatedEndpointOut}})
def create_endpoint(
    _admin: Admin, request: Request, session: DbSession, body: EndpointIn
) -> EnvelopeResponse:
    """Register an endpoint; the answer is the only time its signing secret is shown."""
    settings: Settings = request.app.state.settings
    row = service.create_endpoint(session, body, settings.webhook_allow_private, utcnow())
    created = CreatedEndpointOut.model_validate(_endpoint_fields(row) | {"secret": row.secret})
    response = success(created.model_dump(by_alias=True), 201)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/webhook-endpoints")
def list_endpoints(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Webhook endpoints, oldest first; never a secret."""
    items, total = repository.page_endpoints(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, endpoint_out))


@router.delete("/webhook-endpoints/{endpoint_id}", responses={200: {"model": EndpointOut}})
def delete_endpoint(_admin: Admin, session: DbSession, endpoint_id: uuid.UUID) -> EnvelopeResponse:
    """Remove an endpoint; its pending deliveries are failed, its log stays."""
    return success(endpoint_out(service.delete_endpoint(session, endpoint_id, utcnow())))


@router.get("/webhook-deliveries")
def list_deliveries(
    _admin: Admin,
    session: DbSession,
    paging: Paging,
    endpoint_id: Annotated[str | None, Query(alias="endpointId")] = None,
) -> EnvelopeResponse:
    """Deliveries, newest first, of one endpoint or of all."""
    wanted = parse_uuid(endpoint_id, "endpointId") if endpoint_id is not None else None
    items, total = service.page_deliveries(session, wanted, paging.offset, paging.limit)
    return success(page_of(items, total, paging, delivery_out))


@router.post("/webhook-deliveries/{delivery_id}/retry", responses={200: {"model": DeliveryOut}})
def retry_delivery(
    _admin: Admin, request: Request, session: DbSession, delivery_id: uuid.UUID
) -> EnvelopeResponse:
    """Send a delivery again now (the worker picks it up at once), whatever its status."""
    row = service.retry(session, delivery_id, utcnow())
    worker = getattr(request.app.state, "webhook_worker", None)
    answer = success(delivery_out(row))
    if worker is not None:
        # Runs after the answer is sent, so after the commit: the worker sees the row.
        answer.background = BackgroundTask(worker.wake)
    return answer
