"""What an evaluation tells the member: each thing once, never a merchant's name."""

from __future__ import annotations

from datetime import UTC, date, datetime

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry
from badges.domain.financial import Verdict
from badges.domain.quality import Record
from badges.insights.notices import fresh, notices
from badges.insights.picture import member_picture

C = SpendingCategory
NOW = datetime(2026, 4, 2, 12, tzinfo=UTC)


def picture_with_spending(march: int, february: int) -> object:
    entries = [
        Entry(date(2026, 1, 1), 300_000, C.INCOME_SALARY, transaction_id="s1"),
        Entry(date(2026, 2, 5), -february, C.GROCERIES, merchant="a1b2", transaction_id="f"),
        Entry(date(2026, 3, 5), -march, C.GROCERIES, merchant="a1b2", transaction_id="m"),
    ]
    records = [Record(e.transaction_id, "acc", e.day, e.amount_minor, category=e.category) for e in entries]
    return member_picture(entries, records, [], NOW, date(2026, 4, 2), NOW)


def test_a_badge_within_reach_a_category_to_check_and_a_trend() -> None:
    picture = picture_with_spending(march=70_000, february=100_000)
    verdicts = [
        Verdict(badge_id="first", version=1, value=80_000, target=100_000, earned=[]),
        Verdict(badge_id="far", version=1, value=10, target=100, earned=[]),
        Verdict(badge_id="done", version=1, value=100, target=100, earned=["1"]),
        Verdict(
            badge_id="bets",
            version=1,
            value=0,
            target=90,
            earned=[],
            waiting="please check transactions that may be gambling",
        ),
    ]
    found = notices(picture, verdicts, {"first": "First thousand"})  # type: ignore[arg-type]
    kinds = {(n["kind"], n.get("badgeId")) for n in found}
    assert ("badge-in-reach", "first") in kinds and ("check-category", "bets") in kinds
    assert ("badge-in-reach", "far") not in kinds and ("badge-in-reach", "done") not in kinds
    [trend] = [n for n in found if n["kind"] == "trend"]
    assert trend["change"] == -0.3 and "down 30 %" in trend["message"]
    assert all("a1b2" not in n["message"] for n in found)
    # The next evaluation says only what is new.
    digests = [key.encode() for key in (n["key"] for n in found)]  # the keys' digests stand in
    assert fresh(found, digests, set(digests)) == [] and fresh(found, digests, set()) == found
    assert fresh(found, digests, set(digests[1:])) == found[:1]
