"""The seed's success metrics computed by real PostgreSQL on a known population (a database of
their own, so no other test's members count), and `GET /v1/admin/metrics/success` for staff only.

The population, with `NOW` in mid-June 2026 and three months shown (April, May, June to date):

| member | open_banking consent | engagement actions (UTC days) |
|---|---|---|
| A | since January | events 3, 3 and 4 May, 20 May; read comparisons 21 May; event 2 June |
| B | since February | read rewards 10 May |
| C | none | event 12 May |
| D | none | gave a consent 13 May |
| E | January, revoked 10 April | event 5 April, event 15 May |
| F | since March | event 20 April, read comparisons 20 April (a staff read and a system record in May: not F's) |

plus an audit record of a member who is not (erased). So May: 5 active (A-E), 2 open-banking
(A, B: E's consent ended in April), A engaged on 4 days, B, C, D, E on one each.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.audit import GENESIS_HASH, canonical_record, chain_hash
from badges.db.engine import make_engine
from badges.db.metrics import success_metrics
from badges.domain.programme import MetricId, MetricSeries
from tests.conftest import fresh_database
from tests.support import dev_token

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


MEMBERS = "ABCDEF"
BADGES = {
    "rt-count": {"kind": "count", "eventType": "attendance", "target": 2},
    "rt-tiers": {"kind": "tiers", "eventType": "voting", "tiers": [{"name": "bronze", "target": 1}]},
    "bank-save": {"kind": "milestone", "targetMinor": 100000},
}


class Population:
    """Writes the rows the metrics read, at chosen times, straight into the test's own database."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self.ids = {name: uuid.uuid4() for name in MEMBERS}
        self.last_hash = GENESIS_HASH
        self.accounts: dict[tuple[str, str], uuid.UUID] = {}
        for member_id in self.ids.values():
            connection.execute(
                "INSERT INTO members (id, subject_digest) VALUES (%s, %s)", (member_id, secrets.token_bytes(32))
            )

    def consent(self, name: str, granted: datetime, revoked: datetime | None = None) -> None:
        self.connection.execute(
            "INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at, revoked_at)"
            " VALUES (%s, 'open_banking', 'test', %s, %s, %s)",
            (self.ids[name], granted, datetime(2027, 1, 1, tzinfo=UTC), revoked),
        )

    def event(self, name: str, when: datetime) -> None:
        self.connection.execute(
            "INSERT INTO event_receipts (user_id, event_id, received_at, signalled_at) VALUES (%s, %s, %s, %s)",
            (self.ids[name], str(uuid.uuid4()), when, when),
        )

    def audit(self, subject: uuid.UUID, when: datetime, action: str, role: str = "user") -> None:
        """An audit record, chained as `append_audit` chains it (records are added in time order)."""
        record: dict[str, Any] = {
            "actor": "member" if role == "user" else role,
            "actor_role": role,
            "action": action,
            "subject": subject,
            "resource": "/test",
            "purpose": "test",
            "details": {},
        }
        digest = chain_hash(self.last_hash, canonical_record(at=when, **record))
        self.connection.execute(
            "INSERT INTO audit_log (at, actor, actor_role, action, subject, resource, purpose, details, prev_hash,"
            " hash) VALUES (%(at)s, %(actor)s, %(actor_role)s, %(action)s, %(subject)s, %(resource)s, %(purpose)s,"
            " %(details)s, %(prev)s, %(hash)s)",
            {**record, "details": Jsonb({}), "at": when, "prev": self.last_hash, "hash": digest},
        )
        self.last_hash = digest

    def read(self, name: str, when: datetime, action: str) -> None:
        self.audit(self.ids[name], when, action)

    def badge(self, badge_id: str, rule: dict[str, Any]) -> None:
        spec = {"name": badge_id, "rule": rule}
        self.connection.execute(
            "INSERT INTO badge_definitions (badge_id, version, spec, created_by) VALUES (%s, 1, %s, 'test')",
            (badge_id, Jsonb(spec)),
        )

    def progress(self, name: str, badge_id: str, when: datetime) -> None:
        self.connection.execute(
            "INSERT INTO outbox (user_id, kind, payload, created_at) VALUES (%s, 'progress', %s, %s)",
            (self.ids[name], Jsonb({"badgeId": badge_id, "value": 1, "target": 2}), when),
        )

    def award(self, name: str, badge_id: str, when: datetime) -> None:
        self.connection.execute(
            "INSERT INTO awards (user_id, badge_id, instance, version, awarded_at) VALUES (%s, %s, %s, 1, %s)",
            (self.ids[name], badge_id, when.isoformat(), when),
        )

    def account(self, name: str, kind: str) -> tuple[uuid.UUID, str]:
        """The member's current ("checking") or savings account, made on first use."""
        if not any(owner == name for owner, _ in self.accounts):
            connection_id = uuid.uuid4()
            self.connection.execute(
                "INSERT INTO bank_connections (id, user_id, provider, item_id, access_token, status)"
                " VALUES (%s, %s, 'plaid', %s, %s, 'active')",
                (connection_id, self.ids[name], f"item-{name}", b"sealed"),
            )
            for subtype in ("checking", "savings"):
                self.connection.execute(
                    "INSERT INTO bank_accounts (connection_id, account_id, user_id, name, type, subtype, currency)"
                    " VALUES (%s, %s, %s, %s, 'depository', %s, 'GBP')",
                    (connection_id, subtype, self.ids[name], b"sealed", subtype),
                )
                self.accounts[(name, subtype)] = connection_id
        return self.accounts[(name, kind)], kind

    def transaction(
        self, name: str, day: date, amount: int, category: str, account: str = "checking", pending: bool = False
    ) -> None:
        connection_id, account_id = self.account(name, account)
        self.connection.execute(
            "INSERT INTO bank_transactions (connection_id, transaction_id, user_id, account_id, amount_minor,"
            " currency, posted_date, description, pending, category, category_source, category_confidence)"
            " VALUES (%s, %s, %s, %s, %s, 'GBP', %s, %s, %s, %s, 'provider', 0.9)",
            (connection_id, str(uuid.uuid4()), self.ids[name], account_id, amount, day, b"sealed", pending, category),
        )

    def month_of_saving(self, name: str, month: int, income: int, saved: int) -> None:
        self.transaction(name, date(2026, month, 1), income, "income_salary")
        self.transaction(name, date(2026, month, 2), -saved, "savings")


def populate(population: Population) -> None:
    p = population
    p.consent("A", at(1, 1))
    p.consent("B", at(2, 1))
    p.consent("E", at(1, 1), revoked=at(4, 10))
    p.consent("F", at(3, 1))
    for when in (at(5, 3, 9), at(5, 3, 18), at(5, 4), at(5, 20), at(6, 2)):
        p.event("A", when)
    p.event("C", at(5, 12))
    p.event("E", at(4, 5))
    p.event("E", at(5, 15))
    p.event("F", at(4, 20))
    # The audit log, in time order.
    p.read("F", at(4, 20), "read.comparisons")
    p.read("B", at(5, 10), "read.rewards")
    p.read("D", at(5, 13), "consent.granted")
    p.audit(p.ids["F"], at(5, 14), "admin.GET", role="operator")  # staff reading F's data: not F's engagement
    p.audit(p.ids["F"], at(5, 14, 15), "consent.expired", role="system")  # nor a system record about F
    p.audit(uuid.uuid4(), at(5, 16), "read.rewards")  # a member no longer here
    p.read("A", at(5, 21), "read.comparisons")

    for badge_id, rule in BADGES.items():
        p.badge(badge_id, rule)
    p.progress("A", "rt-count", at(5, 3))
    p.progress("A", "rt-count", at(5, 4, 9))  # the same badge again: one pair
    p.award("A", "rt-count", at(5, 4))
    p.progress("B", "rt-count", at(5, 10))
    p.progress("C", "bank-save", at(5, 12))  # a bank-data badge: not counted
    p.award("D", "rt-tiers", at(4, 25))
    p.progress("D", "rt-tiers", at(5, 13))  # worked on in May, earned in April only
    p.award("E", "rt-tiers", at(5, 15))

    # Savings rates (savings over income): A 10 % in April, 20 % in May (the savings account's own
    # side of the move does not count twice); B 20 % then 10 %, with a pending transfer to savings
    # in May that is not settled; F 10 % in March, 10.5 % in April (half a point: no improvement),
    # 11.5 % in May (one point).
    p.month_of_saving("A", 4, 300_000, 30_000)
    p.transaction("A", date(2026, 4, 2), 30_000, "savings", account="savings")
    p.month_of_saving("A", 5, 300_000, 60_000)
    p.month_of_saving("B", 4, 200_000, 40_000)
    p.month_of_saving("B", 5, 200_000, 20_000)
    p.transaction("B", date(2026, 5, 28), -100_000, "savings", pending=True)
    p.month_of_saving("F", 3, 100_000, 10_000)
    p.month_of_saving("F", 4, 100_000, 10_500)
    p.month_of_saving("F", 5, 100_000, 11_500)
    p.month_of_saving("F", 6, 100_000, 50_000)  # the month to date: not read


@pytest.fixture(scope="module")
def population_url(admin_url: str) -> Iterator[str]:
    with fresh_database(admin_url) as url, psycopg.connect(url, autocommit=True) as connection:
        populate(Population(connection))
        yield url


@pytest.fixture(scope="module")
async def population_engine(population_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(population_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def metrics(population_engine: AsyncEngine) -> dict[MetricId, MetricSeries]:
    return {series.definition.id: series for series in await success_metrics(population_engine, NOW, 3)}


def readings(series: MetricSeries) -> dict[str, tuple[float | None, float, float]]:
    return {
        item.window.label: (item.reading.value, item.reading.numerator, item.reading.denominator)
        for item in series.monthly
    }


def test_windows_are_the_last_thirty_days_and_calendar_months(metrics: dict[MetricId, MetricSeries]) -> None:
    series = metrics[MetricId.OPEN_BANKING_ADOPTION]
    assert [item.window.label for item in series.monthly] == ["2026-04", "2026-05", "2026-06"]
    assert [item.window.partial for item in series.monthly] == [False, False, True]
    assert series.monthly[-1].window.end == NOW
    assert series.current.window.label == "last 30 days"
    assert series.current.window.start == datetime(2026, 5, 16, 12, tzinfo=UTC)


def test_open_banking_adoption(metrics: dict[MetricId, MetricSeries]) -> None:
    series = metrics[MetricId.OPEN_BANKING_ADOPTION]
    # April: E (consent in force until the 10th) and F, both open-banking. May: A and B of A-E
    # (not the member who is gone, nor F, whom only staff and the system touched). June: A alone.
    assert readings(series) == {"2026-04": (1.0, 2, 2), "2026-05": (0.4, 2, 5), "2026-06": (1.0, 1, 1)}
    assert series.current.reading == series.monthly[-1].reading  # 16 May to 15 June: A alone
    assert series.monthly[1].reading.met(series.definition) is True  # > 25 %


def test_engagement_uplift(metrics: dict[MetricId, MetricSeries]) -> None:
    series = metrics[MetricId.ENGAGEMENT_UPLIFT]
    # May: A on 4 days (two events on the 3rd are one day), B on 1: 2.5 a member; C, D, E 1 each.
    assert readings(series)["2026-05"] == (1.5, 2.5, 1.0)
    assert readings(series)["2026-04"] == (None, 0, 0)  # nobody without open banking to compare with
    assert series.monthly[1].reading.met(series.definition) is True


def test_comparative_analytics_engagement(metrics: dict[MetricId, MetricSeries]) -> None:
    series = metrics[MetricId.COMPARATIVE_ENGAGEMENT]
    assert readings(series) == {"2026-04": (0.5, 1, 2), "2026-05": (0.5, 1, 2), "2026-06": (0.0, 0, 1)}
    assert series.current.reading.value == 1.0  # A's read on 21 May is in the last 30 days
    assert series.monthly[1].reading.met(series.definition) is False  # not > 80 %


def test_real_time_badge_completion(metrics: dict[MetricId, MetricSeries]) -> None:
    series = metrics[MetricId.REAL_TIME_COMPLETION]
    # May: A/rt-count (earned), B/rt-count (not), D/rt-tiers (earned in April, not May), E/rt-tiers
    # (earned); C's bank-data badge is not real-time.
    assert readings(series) == {"2026-04": (1.0, 1, 1), "2026-05": (0.5, 2, 4), "2026-06": (None, 0, 0)}
    assert series.monthly[1].reading.met(series.definition) is False  # not > 50 %


def test_behaviour_improvement(metrics: dict[MetricId, MetricSeries]) -> None:
    series = metrics[MetricId.BEHAVIOUR_IMPROVEMENT]
    # April: F alone has March to compare with (+0.5 points: no). May: A up, B down, F up a point.
    assert readings(series) == {"2026-04": (0.0, 0, 1), "2026-05": (2 / 3, 2, 3), "2026-06": (None, 0, 0)}
    assert series.current.window.label == "2026-05"  # the last complete month
    assert series.definition.target is None
    assert series.current.reading.met(series.definition) is None


@pytest.mark.usefixtures("worker")
async def test_staff_read_the_metrics_and_members_are_refused(client: httpx.AsyncClient) -> None:
    member = await dev_token(client, f"member-{uuid.uuid4()}", ["user"])
    assert (await client.get("/v1/admin/metrics/success", headers=member)).status_code == 403
    assert (await client.get("/v1/admin/metrics/success")).status_code == 401
    for scope in ("operator", "compliance", "admin"):
        staff = await dev_token(client, f"staff-{scope}", [scope])
        response = await client.get("/v1/admin/metrics/success", params={"months": 2}, headers=staff)
        assert response.status_code == 200, response.text
        body = response.json()
        assert [metric["id"] for metric in body["metrics"]] == [metric.value for metric in MetricId]
        adoption = body["metrics"][0]
        assert adoption["targetText"] == "> 25 % of active members" and adoption["target"] == 0.25
        assert "open_banking consent" in adoption["definition"]
        assert [month["partial"] for month in adoption["monthly"]] == [False, True]
        assert set(adoption["current"]) == {
            *("label", "start", "end", "partial", "value", "numerator", "denominator", "met")
        }
    bad = await client.get("/v1/admin/metrics/success", params={"months": 0}, headers=staff)
    assert bad.status_code == 422
