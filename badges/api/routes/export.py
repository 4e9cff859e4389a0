"""`GET /v1/me/export`: everything held about the member, as one JSON document.

The export is produced by `MemberExportWorkflow`. A small one is answered at once (200); a large
one answers 202 with its progress and a `Location` to fetch when it is ready
(`GET /v1/me/export/{exportId}`: 202 while it runs, 200 with the document, 404 once expired).
Every download is audited.

Each export is a sealed copy of every member table kept for a day, so asking again does not
always make another: an export still running is joined, one finished within `EXPORT_FRESH_FOR` is
answered again, and new ones are limited per member (`BADGES_EXPORT_RATE`, shared by every API
process; 429 with `Retry-After` past it).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from badges.api.deps import MemberId, Services, ServicesDep, SettingsDep, audit_member_access
from badges.api.intake import temporal_or_503
from badges.api.problems import Problem
from badges.api.schemas import WireModel
from badges.api.throttle import parse_rate, rate_limited
from badges.db.exports import EXPORT_TTL, begin_export, export_document, export_status, latest_export
from badges.messages.export import ExportRequest
from badges.temporal import export_progress, start_export

router = APIRouter(tags=["privacy"])

EXPORT_WAIT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 2
# A finished export this recent is answered again rather than made anew (a double click, a retry).
EXPORT_FRESH_FOR = timedelta(minutes=15)


class ExportStatus(WireModel):
    export_id: uuid.UUID
    status: str = "running"
    sections_done: int
    sections_total: int


DOCUMENT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "The export: `{exportId, userId, generatedAt, sections: {name: {rows, items}}}`"},
    202: {"model": ExportStatus, "description": "Still being produced; fetch `Location` shortly."},
}


@router.get("/v1/me/export", response_class=StreamingResponse, response_model=None, responses=DOCUMENT_RESPONSES)
async def export_me(
    member_id: MemberId, services: ServicesDep, settings: SettingsDep
) -> StreamingResponse | JSONResponse:
    """Start an export of everything held about the caller: or join the one running, or answer
    one finished in the last 15 minutes; new ones are limited per member (429 past it)."""
    now = datetime.now(UTC)
    latest = await latest_export(services.engine, member_id, since=now - EXPORT_TTL)
    if latest is not None and latest.completed_at is not None and latest.completed_at >= now - EXPORT_FRESH_FOR:
        return await download(services, member_id, latest.export_id)
    if latest is not None and latest.completed_at is None:
        export_id = latest.export_id  # running (joined), or stopped part-way (resumed: each step is idempotent)
    else:
        rate = parse_rate(settings.export_rate)
        decision = await services.throttle.check("member-exports", rate, str(member_id))
        if not decision.allowed:
            # The newest export, if it is still kept, can be downloaded meanwhile.
            newest = {"latest_export": f"/v1/me/export/{latest.export_id}"} if latest is not None else {}
            raise rate_limited(rate, "exports per member", decision.retry_after, **newest)
        export_id = uuid.uuid4()
    with temporal_or_503("The export cannot be started right now; retry shortly."):
        handle = await start_export(services.temporal, settings, ExportRequest(user_id=member_id, export_id=export_id))
        try:
            outcome = await asyncio.wait_for(handle.result(), EXPORT_WAIT_SECONDS)
        except TimeoutError:
            progress = await export_progress(handle)
            # The workflow records the export in its first step, which may not have run yet: the
            # Location answered here must work at once. (Idempotent: the same row either way.)
            async with services.pool.connection() as connection, connection.transaction():
                sections = await begin_export(connection, progress.export_id, member_id)
            return running(progress.export_id, progress.sections_done, len(sections))
    return await download(services, member_id, outcome.export_id)


@router.get(
    "/v1/me/export/{export_id}", response_class=StreamingResponse, response_model=None, responses=DOCUMENT_RESPONSES
)
async def export_by_id(
    export_id: uuid.UUID, member_id: MemberId, services: ServicesDep
) -> StreamingResponse | JSONResponse:
    return await download(services, member_id, export_id)


def running(export_id: uuid.UUID, done: int, total: int) -> JSONResponse:
    body = ExportStatus(export_id=export_id, sections_done=done, sections_total=total)
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True),
        status_code=202,
        headers={"Location": f"/v1/me/export/{export_id}", "Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def download(services: Services, member_id: uuid.UUID, export_id: uuid.UUID) -> StreamingResponse | JSONResponse:
    """The finished export (audited), its progress while it runs, or 404."""
    status = await export_status(services.engine, member_id, export_id)
    if status is None:
        raise Problem(404, "export-not-found", "No such export: it never existed or has expired (after 24 hours).")
    completed_at = status.completed_at
    if completed_at is None:
        return running(export_id, status.sections_done, status.sections_total)
    await audit_member_access(
        services,
        member_id,
        action="export.download",
        resource=f"/v1/me/export/{export_id}",
        purpose="the member's right of access",
    )
    return StreamingResponse(
        export_document(services.engine, services.keys, member_id, export_id, completed_at),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="badges-export-{export_id}.json"',
            "Cache-Control": "no-store",
        },
    )
