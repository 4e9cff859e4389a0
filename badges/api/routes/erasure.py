"""`DELETE /v1/me`: the member's erasure. Starts (or joins) their `ErasureWorkflow`, refuses their
tokens at once, and answers 200 once it has finished or 202 while it runs (it always finishes:
Temporal resumes it after any crash). Afterwards every `/v1/me...` path answers 410."""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

from fastapi import APIRouter, Response

from badges.api.deps import MemberId, ServicesDep, SettingsDep
from badges.api.intake import temporal_or_503
from badges.api.schemas import WireModel
from badges.db.audit import append_audit
from badges.db.erasure import audit_erasure, block_member
from badges.domain.identity import erasure_reference
from badges.temporal import start_erasure

router = APIRouter(tags=["privacy"])

# How long the request waits for the erasure to finish before answering 202.
ERASURE_WAIT_SECONDS = 10.0


class ErasureReceipt(WireModel):
    status: Literal["erased", "erasing"]
    # Names this erasure in the audit log, which never names the member.
    reference: uuid.UUID


@router.delete("/v1/me", response_model=ErasureReceipt, responses={202: {"model": ErasureReceipt}})
async def erase_me(
    member_id: MemberId, services: ServicesDep, settings: SettingsDep, response: Response
) -> ErasureReceipt:
    """Erase everything held about the caller: their rows, workflows and data key (so copies in
    histories become unreadable, and backups once their master key is destroyed). The account's
    tokens stop working at once."""
    with temporal_or_503("The erasure cannot be started right now; retry shortly."):
        # Started first: once it exists it finishes, whatever happens to this request.
        handle = await start_erasure(services.temporal, settings, member_id)
    reference = erasure_reference(handle.result_run_id or "")
    async with services.pool.connection() as connection, connection.transaction():
        # The workflow's first step does this too; here, so the caller's tokens are refused by
        # the time this answers. The tombstone before the audit records, in the order the
        # workflow's step takes them (the audit chain's lock second): the other order deadlocked
        # with that step when both ran at once.
        blocked = await block_member(connection, member_id)
        await append_audit(
            connection,
            actor="member",
            actor_role="user",
            action="erasure.requested",
            subject=None,
            resource=f"erasure/{reference}",
            purpose="the member asked to be erased",
        )
        if blocked:
            await audit_erasure(connection, reference, "blocked", {})
    services.members.forget(str(member_id))
    try:
        outcome = await asyncio.wait_for(handle.result(), ERASURE_WAIT_SECONDS)
    except TimeoutError:
        response.status_code = 202
        return ErasureReceipt(status="erasing", reference=reference)
    return ErasureReceipt(status="erased", reference=outcome.reference)
