"""The contacts release (badges/insights/contacts.py): the privacy loss it records is the privacy
map of the measurements it ran with each member in up to N groups, a group too small is not
published and says why, and at a budget where no group could be useful nothing is measured."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator

import opendp.prelude as dp
import polars as pl
import pytest

from badges.api.routes.contacts import group_view
from badges.db.contacts import ContactGroup
from badges.domain.contacts import ContactsPlan
from badges.insights.contacts import GROUP, contacts_frame, privacy_unit, release_contacts
from badges.insights.peers import MAX_MEMBERS, SAVINGS_RATE_CANDIDATES


@pytest.fixture(autouse=True)
def _free_opendp_objects() -> Iterator[None]:
    """OpenDP's objects are freed now: left to a later collection, their finalisers could run
    inside a workflow sandbox of a test that follows, which refuses what they call."""
    yield
    gc.collect()


# Large enough a budget for groups of five to be published (a test's, not a real one).
PLAN = ContactsPlan(max_contacts=5, min_group_size=3, epsilon=150.0, false_pass=1e-3)


def frame_of(sizes: dict[str, int], rng: random.Random) -> pl.DataFrame:
    groups = [key for key, size in sizes.items() for _ in range(size)]
    return contacts_frame(groups, [rng.gauss(0.12, 0.03) for _ in groups])


def test_at_the_default_budget_no_contacts_group_can_be_published_and_the_reason_says_so() -> None:
    default = ContactsPlan(max_contacts=25, min_group_size=10, epsilon=1.0)
    reason = default.futile()
    assert reason is not None and reason.startswith("too few for a useful comparison at this privacy budget")
    # A count's noise grows with N: at ε = 1 it is wider than any contacts group can be.
    assert default.count_scale() == pytest.approx(75.0) and default.cut() > default.max_contacts
    assert PLAN.futile() is None and PLAN.cut() <= PLAN.max_contacts


def test_the_recorded_loss_is_the_privacy_map_of_what_ran_with_each_member_in_up_to_n_groups() -> None:
    rng = random.Random(3)
    frame = frame_of({"big": 5, "also": 5, "small": 1}, rng)
    keys = ["big", "also", "small", "empty"]
    result = release_contacts(frame, keys, PLAN)
    assert [q.name for q in result.queries] == ["count by contacts group", "savings_rate p50 by contacts group"]
    assert result.epsilon == pytest.approx(sum(q.epsilon for q in result.queries)) and result.epsilon <= PLAN.epsilon

    # Each query rebuilt here, at the scale it ran at, under the unit `contributions = N` (at most
    # one row in any group): its privacy map at that bound is what the release recorded.
    metric, bound = privacy_unit(PLAN)
    assert bound[0].per_group == PLAN.max_contacts
    context = dp.Context.compositor(
        data=frame.lazy(),
        privacy_unit=(metric, bound),
        privacy_loss=dp.loss_of(epsilon=PLAN.epsilon),
        split_evenly_over=1,
        margins=[dp.polars.Margin(by=[], max_length=MAX_MEMBERS)],
    )
    accountant = context.accountant
    published = [g.key for g in result.groups if g.released]
    plans = [
        pl.LazyFrame({GROUP: keys}).join(
            pl.LazyFrame(schema=frame.schema).group_by(GROUP).agg(dp.len(scale=result.queries[0].scale, signed=True)),
            on=GROUP,
            how="left",
        ),
        pl.LazyFrame({GROUP: published}).join(
            pl.LazyFrame(schema=frame.schema)
            .filter(pl.col("savings_rate").is_not_null())
            .group_by(GROUP)
            .agg(pl.col("savings_rate").dp.quantile(0.5, SAVINGS_RATE_CANDIDATES, scale=result.queries[1].scale)),
            on=GROUP,
            how="left",
        ),
    ]
    for query, plan in zip(result.queries, plans, strict=True):
        measurement = dp.m.make_private_lazyframe(
            accountant.input_domain, accountant.input_metric, accountant.output_measure, plan
        )
        assert measurement.map(bound) == pytest.approx(query.epsilon, rel=1e-9)
        # With one group a member (the main release's unit) the same noise would be accounted far
        # less: the unit is what makes contacts groups noisier.
        single_metric, single = dp.unit_of(contributions=1)
        single_context = dp.Context.compositor(
            data=frame.lazy(),
            privacy_unit=(single_metric, single),
            privacy_loss=dp.loss_of(epsilon=PLAN.epsilon),
            split_evenly_over=1,
            margins=[dp.polars.Margin(by=[], max_length=MAX_MEMBERS)],
        )
        lone = dp.m.make_private_lazyframe(
            single_context.accountant.input_domain,
            single_context.accountant.input_metric,
            single_context.accountant.output_measure,
            plan,
        )
        assert lone.map(single) < query.epsilon / 1.5


def test_a_group_below_the_threshold_is_not_published_and_its_owner_is_told_why() -> None:
    result = release_contacts(frame_of({"big": 5, "small": 1}, random.Random(5)), ["big", "small"], PLAN)
    by_key = {g.key: g for g in result.groups}
    assert by_key["big"].released and by_key["big"].values["savingsRate.p50"] is not None
    small = by_key["small"]
    assert not small.released and small.values == {}
    assert small.reason == PLAN.too_small() and "fewer than 3 consenting members" in small.reason
    # What the owner reads (GET /v1/me/contacts): the release's reason, with their group's key.
    stored = ContactGroup("k", None, "suppressed", small.reason, small.noisy_count, None)
    view = group_view(stored, contacts=4, consents=True, plan=PLAN)
    assert view.status == "not_released" and view.reason == small.reason and view.stats is None


def test_the_owner_is_told_the_reasons_that_follow_from_what_they_know_first() -> None:
    default = ContactsPlan(max_contacts=25, min_group_size=10, epsilon=1.0)
    assert "not consented" in (group_view(None, 12, False, default).reason or "")
    assert "fewer than 10 consenting members: you have 2 contacts" in (group_view(None, 2, True, default).reason or "")
    assert group_view(None, 12, True, default).reason == default.futile()
    released = ContactGroup("k", None, "released", None, 5, {"savingsRate.p50": 0.1})
    assert group_view(released, 5, True, PLAN).stats == {"savingsRate.p50": 0.1}
