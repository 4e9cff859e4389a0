"""`/v1/me/contacts`: members connect with each other, both consenting (one makes a single-use
invitation code, the other accepts it), and either may remove the connection at any time. A member
has at most `BADGES_CONTACTS_MAX` contacts.

The list also says where the member's contacts group stands: published by the newest contacts
release (with its statistics), or why not. Only the member reads their group's key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field

from badges.api.deps import MemberId, ServicesDep, SettingsDep
from badges.api.problems import Problem
from badges.config import Settings
from badges.db.consents import has_consent
from badges.db.contacts import (
    ContactError,
    ContactGroup,
    accept_invitation,
    contact_group,
    create_invitation,
    member_contacts,
    pending_invitations,
    remove_contact,
)
from badges.domain.contacts import ContactsPlan
from badges.domain.wire import WireModel

router = APIRouter(tags=["contacts"])


class ContactView(WireModel):
    contact_id: uuid.UUID = Field(description="the other member's id (their `userId`)")
    connected_at: datetime


class InvitationView(WireModel):
    code: str = Field(description="give it to the person you want to connect with; shown only now")
    created_at: datetime
    expires_at: datetime


class PendingInvitationView(WireModel):
    created_at: datetime
    expires_at: datetime


class ContactGroupView(WireModel):
    """Your contacts group (your consenting contacts) in the newest contacts release."""

    status: Literal["released", "not_released"]
    reason: str | None = Field(description="why it was not released")
    key: str | None = Field(description="the group's key in `peer_stats` (dimension `contacts`): yours alone")
    release_id: uuid.UUID | None
    noisy_count: int | None = Field(description="its differentially private size in that release")
    stats: dict[str, Any] | None = Field(description="its released statistics (`savingsRate.p50`)")


class Contacts(WireModel):
    contacts: list[ContactView]
    most: int = Field(description="contacts one member may have")
    invitations: list[PendingInvitationView] = Field(description="your invitations not yet used nor expired")
    group: ContactGroupView


class AcceptInvitation(WireModel):
    code: str = Field(min_length=8, max_length=64)


def refused(error: ContactError) -> Problem:
    return Problem(error.status, error.kind, str(error))


def plan_of(settings: Settings) -> ContactsPlan:
    return ContactsPlan(
        max_contacts=settings.contacts_max,
        min_group_size=settings.contacts_min_group_size,
        epsilon=settings.contacts_release_epsilon,
    )


def group_view(group: ContactGroup | None, contacts: int, consents: bool, plan: ContactsPlan) -> ContactGroupView:
    """Where the member's group stands. Reasons that follow from what the member knows (their own
    consent, how many contacts they have, the budget) come first; then the release's own. Without
    `peer_comparison` consent nothing of a release is shown."""
    if consents and group is not None and group.status == "released":
        return ContactGroupView(
            status="released",
            reason=None,
            key=group.key,
            release_id=group.release_id,
            noisy_count=group.noisy_count,
            stats=group.stats,
        )
    if not consents:
        reason = "you have not consented to peer comparison (`peer_comparison`): grant it with PUT /v1/me/consent"
    elif contacts < plan.min_group_size:
        reason = (
            f"your contacts group has fewer than {plan.min_group_size} consenting members: you have {contacts}"
            f" contact{'s' if contacts != 1 else ''}"
        )
    elif (futile := plan.futile()) is not None:
        reason = futile
    elif group is not None and group.reason:
        reason = group.reason
    else:
        reason = "no contacts release has considered your group yet"
    return ContactGroupView(
        status="not_released",
        reason=reason,
        key=group.key if group else None,
        release_id=group.release_id if group else None,
        noisy_count=group.noisy_count if group and consents else None,
        stats=None,
    )


@router.get("/v1/me/contacts", response_model=Contacts)
async def list_contacts(member_id: MemberId, services: ServicesDep, settings: SettingsDep) -> Contacts:
    """Your contacts, your open invitations, and your contacts group: released, or why not."""
    now = datetime.now(UTC)
    contacts = await member_contacts(services.pool, member_id)
    invitations = await pending_invitations(services.pool, member_id, now)
    group = await contact_group(services.pool, member_id)
    consents = await has_consent(services.pool, member_id, "peer_comparison", now)
    return Contacts(
        contacts=[ContactView(contact_id=c.contact_id, connected_at=c.connected_at) for c in contacts],
        most=settings.contacts_max,
        invitations=[PendingInvitationView(created_at=i.created_at, expires_at=i.expires_at) for i in invitations],
        group=group_view(group, len(contacts), consents, plan_of(settings)),
    )


@router.post(
    "/v1/me/contacts/invitations",
    response_model=InvitationView,
    status_code=201,
    responses={409: {"description": "You have the most contacts one member may have"}},
)
async def invite(member_id: MemberId, services: ServicesDep, settings: SettingsDep) -> InvitationView:
    """A new single-use invitation code, valid for `BADGES_CONTACTS_INVITATION_HOURS`."""
    try:
        made = await create_invitation(
            services.pool,
            member_id,
            now=datetime.now(UTC),
            valid_for=timedelta(hours=settings.contacts_invitation_hours),
            limit=settings.contacts_max,
        )
    except ContactError as error:
        raise refused(error) from None
    return InvitationView(code=made.code, created_at=made.created_at, expires_at=made.expires_at)


@router.post(
    "/v1/me/contacts",
    response_model=ContactView,
    status_code=201,
    responses={
        404: {"description": "No invitation has this code"},
        409: {"description": "Your own code, already connected, or a limit reached"},
        410: {"description": "The invitation expired or was used"},
    },
)
async def accept(
    body: AcceptInvitation, member_id: MemberId, services: ServicesDep, settings: SettingsDep
) -> ContactView:
    """Accept an invitation: you and its maker become each other's contacts."""
    try:
        contact = await accept_invitation(
            services.pool, member_id, body.code, now=datetime.now(UTC), limit=settings.contacts_max
        )
    except ContactError as error:
        raise refused(error) from None
    return ContactView(contact_id=contact.contact_id, connected_at=contact.connected_at)


@router.delete(
    "/v1/me/contacts/{contact_id:uuid}",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "You are not connected with this member"}},
)
async def remove(contact_id: uuid.UUID, member_id: MemberId, services: ServicesDep) -> Response:
    """Remove a contact: the connection ends for both of you."""
    if not await remove_contact(services.pool, member_id, contact_id):
        raise Problem(404, "not-found", "You are not connected with this member.")
    return Response(status_code=204)
