"""Award webhooks as data: the body, the delivery id, the workflow id and which answers to retry."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from badges.activities.webhooks import UnsafeWebhookTarget, check_webhook_target, is_public_address
from badges.domain.definitions import BadgeDefinition
from badges.domain.identity import key_owner_for_workflow, webhook_delivery_workflow_id
from badges.domain.webhooks import award_delivery_id, worth_retrying
from badges.messages.webhook_delivery import award_webhook

MEMBER = uuid.UUID("2b3c4d5e-0000-4000-8000-000000000001")
AWARDED_AT = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)


def definition(web_socket: dict[str, object] | None, reward: dict[str, object] | None = None) -> BadgeDefinition:
    document: dict[str, object] = {
        "badgeId": "saver",
        "version": 3,
        "name": "Saver",
        "rule": {"kind": "count", "eventType": "attendance", "target": 2},
        "reward": reward,
    }
    if web_socket is not None:
        document["config"] = {"webSocket": web_socket}
    return BadgeDefinition.model_validate(document)


def test_an_award_of_a_badge_with_a_webhook_url_becomes_a_delivery() -> None:
    badge = definition(
        {"eventTypes": ["attendance"], "webhookUrl": "https://partner.example/hooks", "authenticationMethod": "token"},
        {"kind": "money", "amountMinor": 500, "currency": "GBP"},
    )
    delivery = award_webhook(MEMBER, badge, "gold", AWARDED_AT)
    assert delivery is not None
    assert delivery.delivery_id == award_delivery_id(MEMBER, "saver", "gold")
    assert (delivery.user_id, delivery.badge_id, delivery.instance, delivery.version) == (MEMBER, "saver", "gold", 3)
    assert (delivery.url, delivery.authentication_method) == ("https://partner.example/hooks", "token")
    assert delivery.body == {
        "type": "award",
        "deliveryId": delivery.delivery_id,
        "memberId": str(MEMBER),
        "badgeId": "saver",
        "instance": "gold",
        "version": 3,
        "awardedAt": "2026-11-25T10:30:00+00:00",
        "reward": {"kind": "money", "amountMinor": 500, "currency": "GBP"},
    }
    assert (delivery.initial_retry_interval, delivery.maximum_retry_interval, delivery.give_up_after) == (
        timedelta(seconds=5),
        timedelta(hours=1),
        timedelta(hours=24),
    )


def test_badges_without_a_webhook_url_have_no_delivery() -> None:
    assert award_webhook(MEMBER, definition(None), "1", AWARDED_AT) is None
    assert award_webhook(MEMBER, definition({"eventTypes": ["attendance"]}), "1", AWARDED_AT) is None


def test_a_badge_without_a_reward_says_null_and_signature_is_the_default() -> None:
    badge = definition({"eventTypes": ["attendance"], "webhookUrl": "http://localhost:9000/x"})
    delivery = award_webhook(MEMBER, badge, "1", AWARDED_AT)
    assert delivery is not None and delivery.body["reward"] is None
    assert delivery.authentication_method == "signature"


def test_delivery_ids_are_stable_per_award_and_differ_between_awards() -> None:
    assert award_delivery_id(MEMBER, "saver", "1") == award_delivery_id(MEMBER, "saver", "1")
    assert uuid.UUID(award_delivery_id(MEMBER, "saver", "1"))
    ids = {award_delivery_id(MEMBER, "saver", "1"), award_delivery_id(MEMBER, "saver", "2")}
    ids.add(award_delivery_id(uuid.uuid4(), "saver", "1"))
    assert len(ids) == 3


def test_the_delivery_workflow_belongs_to_the_member_so_their_key_seals_it() -> None:
    workflow_id = webhook_delivery_workflow_id(MEMBER, "saver", "gold")
    assert workflow_id == f"user/{MEMBER}/webhook/saver/gold"
    assert key_owner_for_workflow(workflow_id) == str(MEMBER)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        *[(status, False) for status in (400, 401, 403, 404, 410, 422)],
        *[(status, True) for status in (408, 409, 425, 429, 500, 502, 503, 301)],
    ],
)
def test_only_4xx_answers_that_mean_never_are_not_retried(status: int, retry: bool) -> None:
    assert worth_retrying(status) is retry


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/hook",  # not https
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
    ],
)
async def test_webhooks_refuse_http_and_internal_hosts(url: str) -> None:
    with pytest.raises(UnsafeWebhookTarget):
        await check_webhook_target(url, allow_private=False)


async def test_a_public_address_passes_and_development_may_allow_anything() -> None:
    await check_webhook_target("https://93.184.216.34/hook", allow_private=False)
    await check_webhook_target("http://127.0.0.1:9/hook", allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::808:808",  # NAT64 of a public address: the gateway is still a way in
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:a00:1::1",  # 6to4 wrapping 10.0.0.1
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:8.8.8.8",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "fec0::1",  # site-local (deprecated)
        "fc00::1",
        "fe80::1",
        "100.64.0.1",  # shared address space (carrier NAT)
        "192.168.1.1",
        "0.0.0.0",
        "224.0.0.1",
        "ff0e::1",
        "198.18.0.1",
    ],
)
def test_no_address_that_reaches_a_private_network_counts_as_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1", "2001:4860:4860::8888", "2002:808:808::1"])
def test_globally_routable_unicast_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url", ["https://[64:ff9b::a00:1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://[2002:a00:1::1]/hook"]
)
async def test_webhooks_refuse_ipv6_forms_that_wrap_a_private_address(url: str) -> None:
    with pytest.raises(UnsafeWebhookTarget):
        await check_webhook_target(url, allow_private=False)


async def test_the_check_answers_the_addresses_the_delivery_connects_to() -> None:
    target = await check_webhook_target("https://93.184.216.34:8443/hook", allow_private=False)
    assert target.addresses == ("93.184.216.34",) and target.url.netloc == b"93.184.216.34:8443"
