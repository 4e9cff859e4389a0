"""Open Badges 3.0 credentials: a member claims one for an award (and may revoke it); anyone reads
the issuer's profile, keys, achievements and status lists, and verifies a credential."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from badges.api.credential_schemas import (
    AchievementView,
    CheckView,
    IssuedCredentialView,
    IssuerProfileView,
    Jwk,
    JwkSet,
    RevokedCredential,
    VerificationView,
    VerifyRequest,
)
from badges.api.credentials import NoSuchAward
from badges.api.deps import LimitedBySourceAddress, MemberId, MemberPrincipal, ServicesDep
from badges.api.problems import Problem
from badges.db.credentials import status_lists

router = APIRouter(tags=["credentials"])

BadgePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
InstancePath = Annotated[str, Path(min_length=1, max_length=64)]
VC_JWT = "application/vc+jwt"


@router.get("/v1/me/badges/{badge_id}/credentials/{instance}", response_model=IssuedCredentialView)
async def claim_credential(
    badge_id: BadgePath, instance: InstancePath, principal: MemberPrincipal, member_id: MemberId, services: ServicesDep
) -> IssuedCredentialView:
    """An Open Badges 3.0 credential for one of your awards (`instance` as `GET /v1/me/badges`
    lists it), signed by the programme. It names you only by a salted hash of your email address
    (from your token), never by your id here, and holds no financial figure. Issued only when you
    ask, and audited; asking again gives the same credential, freshly signed."""
    if principal.email is None:
        raise Problem(
            422,
            "no-identity-to-disclose",
            "Your token carries no email address: a credential needs one to name you by.",
        )
    try:
        issued = await services.credentials.issue(member_id, badge_id, instance, principal.email)
    except NoSuchAward as error:
        raise Problem(404, "award-not-found", str(error)) from error
    return IssuedCredentialView(
        credential_id=issued.credential["id"],
        jwt=issued.jwt,
        credential=issued.credential,
        issued_at=issued.record.issued_at,
        status_list_credential=issued.status.list_url,
        status_list_index=issued.status.index,
        file_name=f"{badge_id}-{instance}.jwt",
    )


@router.delete("/v1/me/badges/{badge_id}/credentials/{instance}", response_model=RevokedCredential)
async def revoke_credential(
    badge_id: BadgePath, instance: InstancePath, member_id: MemberId, services: ServicesDep
) -> RevokedCredential:
    """Revoke your credential for an award: verifiers see it revoked from now on. The award stays;
    asking for a credential again makes a new one."""
    revoked = await services.credentials.revoke(member_id, badge_id, instance)
    if revoked is None:
        raise Problem(404, "credential-not-found", f"You hold no live credential for {badge_id!r} / {instance!r}.")
    return RevokedCredential(credential_id=revoked)


@router.get("/.well-known/jwks.json", response_model=JwkSet)
async def jwks(services: ServicesDep) -> JwkSet:
    """Every public key the issuer has signed credentials with (retired ones too, so what they
    signed still verifies)."""
    return JwkSet(keys=[Jwk.model_validate(jwk) for jwk in await services.credentials.public_keys()])


@router.get("/v1/credentials/keys/{kid}", response_model=Jwk)
async def issuer_key(kid: Annotated[str, Path(max_length=64)], services: ServicesDep) -> Jwk:
    """One public key, as a credential's JWT header names it (`kid`)."""
    uri = services.credentials.key_uri(kid)
    found = next((jwk for jwk in await services.credentials.public_keys() if jwk["kid"] == uri), None)
    if found is None:
        raise Problem(404, "unknown-key", f"The issuer has no key {kid!r}.")
    return Jwk.model_validate(found)


@router.get("/v1/credentials/issuer", response_model=IssuerProfileView)
async def issuer_profile(services: ServicesDep) -> IssuerProfileView:
    """The issuer's Open Badges `Profile`."""
    return IssuerProfileView.model_validate(services.credentials.issuer.profile())


@router.get("/v1/credentials/achievements/{badge_id}/{version}", response_model=AchievementView)
async def achievement(
    badge_id: BadgePath, version: Annotated[int, Path(ge=1, le=2**31 - 1)], services: ServicesDep
) -> AchievementView:
    """A badge version as an Open Badges `Achievement` (what credentials earned under it name)."""
    badge = await services.credentials.definition(badge_id, version)
    if badge is None:
        raise Problem(404, "unknown-achievement", f"No badge {badge_id!r} version {version}.")
    return AchievementView.model_validate(services.credentials.achievement(badge))


@router.get(
    "/v1/credentials/status/{number}",
    response_class=Response,
    dependencies=[LimitedBySourceAddress],  # signed afresh at each request
    responses={
        200: {
            "description": "A BitstringStatusListCredential as a VC-JWT",
            "content": {VC_JWT: {"schema": {"type": "string"}}},
        }
    },
)
async def status_list(number: Annotated[int, Path(ge=1, le=2**31 - 1)], services: ServicesDep) -> Response:
    """A revocation status list (W3C Bitstring Status List), signed like the credentials: bit n
    set means the credential whose `statusListIndex` is n is revoked."""
    if number > await status_lists(services.engine):
        raise Problem(404, "unknown-status-list", f"No status list {number}.")
    return Response(await services.credentials.status_list(number), media_type=VC_JWT)


@router.post("/v1/credentials/verify", response_model=VerificationView, dependencies=[LimitedBySourceAddress])
async def verify(body: VerifyRequest, services: ServicesDep) -> VerificationView:
    """Check a credential as any verifier would: the issuer's published key, the signature, its
    claims, its validity dates and its revocation status. 200 either way; `verified` says."""
    reading = await services.credentials.verify(body.credential)
    credential: dict[str, Any] = reading.credential or {}
    status = next((check for check in reading.checks if check.name == "status"), None)
    subject = credential.get("credentialSubject")
    achievement = subject.get("achievement") if isinstance(subject, dict) else None
    return VerificationView(
        verified=reading.verified,
        checks=[CheckView(check=check.name, passed=check.passed, detail=check.detail) for check in reading.checks],
        credential_id=credential.get("id"),
        achievement=achievement.get("name") if isinstance(achievement, dict) else None,
        valid_from=credential.get("validFrom"),
        revoked=None if status is None or (not status.passed and status.detail != "revoked") else not status.passed,
    )
