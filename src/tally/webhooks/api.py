"""Routes: /admin/webhook-endpoints and /admin/webhook-deliveries."""

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask

from tally.bodies import JsonBody
from tally.core.envelope import (
    AUTHENTICATED,
    WITH_BODY,
    Envelope,
    EnvelopeResponse,
    error_responses,
    success,
)
from tally.core.headers import no_store
from tally.core.http import OptionalQuery, parse_uuid, uuid_query
from tally.core.instants import utcnow
from tally.core.pagination import Page, Paging, page_of
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

router = APIRouter(prefix="/admin", tags=["webhooks"], responses=error_responses(*AUTHENTICATED))
ONE = error_responses(404)


def _endpoint_fields(row: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "company_id": row.company_id,
        "ats_integration_id": row.ats_integration_id,
        "created_at": row.created_at,
    }


def endpoint_out(row: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(_endpoint_fields(row))


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        status=cast(DeliveryStatus, row.status),
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
    )


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=Envelope[CreatedEndpointOut],
    responses=error_responses(*WITH_BODY),
)
def create_endpoint(
    _admin: Admin,
    request: Request,
    session: DbSession,
    body: Annotated[EndpointIn, JsonBody(EndpointIn)],
) -> EnvelopeResponse:
    """Register an endpoint; the answer is the only time its signing secret is shown.

    A URL tally will not send to (not https://, or a private, loopback or
    link-local target) is a 400 naming `url`.
    """
    settings: Settings = request.app.state.settings
    row = service.create_endpoint(session, body, settings.webhook_allow_private, utcnow())
    created = CreatedEndpointOut.model_validate(_endpoint_fields(row) | {"secret": row.secret})
    return no_store(success(created, 201))


@router.get("/webhook-endpoints", response_model=Envelope[Page[EndpointOut]])
def list_endpoints(_admin: Admin, session: DbSession, paging: Paging) -> EnvelopeResponse:
    """Webhook endpoints, oldest first; never a secret."""
    items, total = repository.page_endpoints(session, paging.offset, paging.limit)
    return success(page_of(items, total, paging, endpoint_out))


@router.delete(
    "/webhook-endpoints/{endpoint_id}", response_model=Envelope[EndpointOut], responses=ONE
)
def delete_endpoint(_admin: Admin, session: DbSession, endpoint_id: uuid.UUID) -> EnvelopeResponse:
    """Remove an endpoint; its pending deliveries are failed, its log stays."""
    return success(endpoint_out(service.delete_endpoint(session, endpoint_id, utcnow())))


@router.get("/webhook-deliveries", response_model=Envelope[Page[DeliveryOut]], responses=ONE)
def list_deliveries(
    _admin: Admin,
    session: DbSession,
    paging: Paging,
    endpoint_id: Annotated[
        OptionalQuery,
        uuid_query("endpointId", "only the deliveries of this endpoint (404 if there is none)"),
    ] = None,
) -> EnvelopeResponse:
    """Deliveries, newest first, of one endpoint or of all."""
    wanted = parse_uuid(endpoint_id, "endpointId") if endpoint_id is not None else None
    items, total = service.page_deliveries(session, wanted, paging.offset, paging.limit)
    return success(page_of(items, total, paging, delivery_out))


@router.post(
    "/webhook-deliveries/{delivery_id}/retry", response_model=Envelope[DeliveryOut], responses=ONE
)
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
