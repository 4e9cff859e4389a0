"""Open Badges credentials built, signed and read (domain/credentials.py): the status list's
bits, the identity hash, the claims a VC-JWT must agree on, and the checks a verifier makes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from importlib import resources

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from badges.api.credentials import sign
from badges.domain.catalogue import parse_catalogue
from badges.domain.credentials import (
    STATUS_LIST_SIZE,
    Issuer,
    Recipient,
    StatusEntry,
    criteria_in_words,
    encode_status_list,
    identity_hash,
    open_badge_credential,
    read_credential,
    status_bit,
)
from badges.domain.definitions import BadgeDefinition, TiersRule

ISSUER = Issuer(id="https://badges.example/v1/credentials/issuer", name="Badges", url="https://badges.example")
AWARDED = datetime(2026, 11, 3, 10, 15, 30, 123456, tzinfo=UTC)
KID = "https://badges.example/v1/credentials/keys/k1"


def calculator_badge() -> BadgeDefinition:
    return BadgeDefinition.model_validate(
        {
            "badgeId": "calculator-explorer",
            "version": 2,
            "name": "Calculator explorer",
            "description": "Used the calculators",
            "rule": {"kind": "count", "eventType": "tool_usage", "target": 3},
            "reward": {"kind": "money", "amountMinor": 500, "currency": "GBP"},
        }
    )


def credential() -> dict:
    return open_badge_credential(
        credential_id="urn:uuid:1b0e5b7e-0000-4000-8000-000000000001",
        issuer=ISSUER,
        badge=calculator_badge(),
        achievement_id="https://badges.example/v1/credentials/achievements/calculator-explorer/2",
        instance="1",
        recipient=Recipient("urn:uuid:2b0e5b7e-0000-4000-8000-000000000002", "emailAddress", "a@example.com", "Kosher"),
        awarded_at=AWARDED,
        status=StatusEntry("https://badges.example/v1/credentials/status/1", 7),
    )


def test_identity_hash_is_the_specifications_example() -> None:
    # OB 3.0's own example: 'a@example.com' salted with 'Kosher'.
    assert identity_hash("a@example.com", "Kosher") == ("sha256$" + hashlib.sha256(b"a@example.comKosher").hexdigest())


def test_the_credential_names_no_figure_and_no_internal_id() -> None:
    document = credential()
    text = str(document)
    assert "a@example.com" not in text  # only its salted hash
    assert "500" not in text and "GBP" not in text  # the reward's figures
    assert document["validFrom"] == "2026-11-03T10:15:30Z"
    assert document["credentialSubject"]["achievement"]["criteria"] == {
        "narrative": "Recorded 3 uses of a financial calculator."
    }


def test_status_list_bits_round_trip() -> None:
    encoded = encode_status_list({0, 7, 8, STATUS_LIST_SIZE - 1})
    assert encoded.startswith("u")
    assert [status_bit(encoded, i) for i in (0, 1, 7, 8, 9, STATUS_LIST_SIZE - 1)] == [
        True,
        False,
        True,
        True,
        False,
        True,
    ]
    with pytest.raises(ValueError):
        status_bit(encoded, STATUS_LIST_SIZE)


def test_signed_credential_reads_back_and_a_changed_one_does_not() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = sign(credential(), key, KID)
    now = AWARDED + timedelta(days=1)
    reading = read_credential(token, {KID: key.public_key()}, ISSUER.id, now)
    assert reading.verified, reading.checks
    assert reading.credential == credential()
    header, _, signature = token.split(".")
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"])
    claims["credentialSubject"]["achievement"]["name"] = "Gold saver"
    forged_payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    forged = read_credential(f"{header}.{forged_payload}.{signature}", {KID: key.public_key()}, ISSUER.id, now)
    assert not forged.verified and forged.checks[-1].name == "signature"


def test_unknown_key_wrong_issuer_and_early_use_are_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    token = sign(credential(), key, KID)
    later = AWARDED + timedelta(days=1)
    assert read_credential(token, {"elsewhere": key.public_key()}, ISSUER.id, later).checks[-1].name == "issuer-key"
    assert read_credential(token, {KID: other.public_key()}, ISSUER.id, later).checks[-1].name == "signature"
    assert read_credential(token, {KID: key.public_key()}, "https://other.example", later).checks[-1].name == "claims"
    early = read_credential(token, {KID: key.public_key()}, ISSUER.id, AWARDED - timedelta(days=1))
    assert not early.verified and early.checks[-1].name == "validity"
    assert read_credential("not.a.jws", {}, ISSUER.id, later).checks[-1].name == "format"


def test_criteria_of_every_rule_kind_are_words_without_the_members_figures() -> None:
    tiers = BadgeDefinition.model_validate(
        {
            "badgeId": "civic-voice",
            "name": "Civic voice",
            "rule": {
                "kind": "tiers",
                "eventType": "voting",
                "tiers": [{"name": "bronze", "target": 1}, {"name": "silver", "target": 10}],
            },
        }
    )
    assert criteria_in_words(tiers, "silver") == "Reached the silver tier: 10 votes cast."
    streak = BadgeDefinition.model_validate(
        {"badgeId": "daily", "name": "Daily", "rule": {"kind": "streak", "eventType": "tool_usage", "length": 5}}
    )
    assert criteria_in_words(streak, "1") == "Recorded a use of a financial calculator on each of 5 consecutive days."


def test_every_shipped_badge_has_criteria_in_words_and_none_names_its_reward() -> None:
    shipped = parse_catalogue(resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    kinds = set()
    for badge_id, spec in shipped.badges.items():
        badge = BadgeDefinition.from_spec(badge_id, 1, spec)
        instance = badge.rule.tiers[-1].name if isinstance(badge.rule, TiersRule) else "p95"
        words = criteria_in_words(badge, instance)
        kinds.add(badge.rule.kind)
        assert words.endswith(".") and words not in (badge.name, badge.description), badge_id
        if badge.reward is not None and badge.reward.kind == "money":
            assert f"{badge.reward.amount_minor / 100:,.2f}" not in words
    assert len(kinds) >= 8  # the catalogue holds most rule kinds
