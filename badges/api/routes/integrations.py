"""Event systems: registered by admins, sending signed events; and the award webhooks going out."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from badges.api.deps import AdminPrincipal, LimitedBySourceAddress, ServicesDep, StaffPrincipal
from badges.api.integrations import (
    IntegrationList,
    IntegrationRequest,
    IntegrationSecret,
    WebhookDeliveryList,
    WebhookDeliveryView,
)
from badges.api.schemas import EventAcceptance
from badges.db.webhooks import list_deliveries
from badges.domain.events import RealTimeEvent
from badges.domain.signatures import SIGNATURE_HEADER

router = APIRouter(tags=["integrations"])

SIGNED_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A RealTimeEvent; the exact bytes sent are what the signature covers.",
        "content": {"application/json": {"schema": RealTimeEvent.model_json_schema(by_alias=True)}},
    }
}


@router.post("/v1/admin/integrations", status_code=201, response_model=IntegrationSecret)
async def register_integration(
    request: IntegrationRequest, principal: AdminPrincipal, services: ServicesDep
) -> IntegrationSecret:
    return await services.integrations.register(request, principal.subject)


@router.get("/v1/admin/integrations", response_model=IntegrationList)
async def list_integrations(principal: StaffPrincipal, services: ServicesDep) -> IntegrationList:
    return await services.integrations.integrations()


@router.post("/v1/admin/integrations/{integration_id}/secret", response_model=IntegrationSecret)
async def rotate_integration_secret(
    integration_id: str, principal: AdminPrincipal, services: ServicesDep
) -> IntegrationSecret:
    return await services.integrations.rotate(integration_id)


@router.delete("/v1/admin/integrations/{integration_id}", status_code=204, response_class=Response)
async def disable_integration(integration_id: str, principal: AdminPrincipal, services: ServicesDep) -> Response:
    await services.integrations.disable(integration_id)
    return Response(status_code=204)


@router.post(
    "/v1/integrations/{integration_id}/events",
    status_code=202,
    response_model=EventAcceptance,
    responses={200: {"model": EventAcceptance, "description": "An event with this id was already accepted."}},
    openapi_extra=SIGNED_EVENT_BODY,
    dependencies=[LimitedBySourceAddress],
)
async def post_signed_event(
    integration_id: str,
    request: Request,
    services: ServicesDep,
    signature: Annotated[
        str | None, Header(alias=SIGNATURE_HEADER, description="t=<unix seconds>,v1=<hex HMAC-SHA256>")
    ] = None,
) -> JSONResponse:
    outcome, event = await services.integrations.receive(integration_id, signature or "", await request.body())
    receipt = EventAcceptance(status=outcome, id=event.id)
    return JSONResponse(receipt.model_dump(mode="json"), status_code=202 if outcome == "accepted" else 200)


@router.get("/v1/admin/webhook-deliveries", response_model=WebhookDeliveryList)
async def webhook_deliveries(
    principal: StaffPrincipal,
    services: ServicesDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    badge_id: Annotated[str | None, Query(alias="badgeId", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WebhookDeliveryList:
    rows = await list_deliveries(services.engine, status=status, badge_id=badge_id, limit=limit)
    return WebhookDeliveryList(
        deliveries=[
            WebhookDeliveryView(
                delivery_id=row.delivery_id,
                member_id=row.user_id,
                badge_id=row.badge_id,
                url=row.url,
                status=row.status,
                attempts=row.attempts,
                last_status_code=row.last_status_code,
                last_error=row.last_error,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]
    )
