"""The contacts release: each member's contacts group (their consenting contacts) under
differential privacy, with OpenDP. Pure: rows in, a release out.

The privacy unit is still one member, but a member is in the contacts group of each of their
contacts: up to N groups (N, the most contacts a member may have), once in each. OpenDP is told
exactly that (`dp.unit_of(contributions=…)`: at most N rows, at most one per group), so a count's
noise grows N-fold (a member moves N counts by one each) and so does each group's median's (it
shares its budget with the N groups a member can be in). Contacts groups are also small (at most
N members), which is why they are noisier than any group of the main release, and why at a
modest budget none can be published at all (docs/api/peers.md, "Contacts").

Two queries, in one compositor: a noisy count per group (every group's key is listed, so no key
comes from anyone's figures), then, only for the groups whose noisy count passes, the savings-rate
median (exponential mechanism over the main release's candidate grid). A group is published when
its noisy count reaches both:

- `min_group_size + b·ln(1/(2p))`, b the count's noise scale: a group of fewer than
  `min_group_size` consenting members passes with probability at most p (5 %). Per group, not
  over all groups (as the main release does): each owner reads only their own group.
- `MEDIAN_RANKS / ε_g`, ε_g the median's privacy loss per group: below that size the median is
  mostly noise. Measured (`bench/contacts.py`): at n·ε_g ≈ 27 the median is 1.2 percentage
  points off the true one (p50) and within 5 for nine groups in ten; at n·ε_g ≈ 11 it is 3 points
  off but one group in ten is off by more than 20; at n·ε_g ≈ 3 it is noise (35 points).

When even a full group of N could not reach both, nothing is measured and nothing spent: every
owner is told that at this budget their group would be too noisy to be of use.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import opendp.prelude as dp
import polars as pl

from badges.domain.contacts import COUNT_WEIGHT, MEDIAN_WEIGHT, ContactsPlan
from badges.insights.peers import MAX_MEMBERS, SAVINGS_RATE_BOUNDS, SAVINGS_RATE_CANDIDATES

dp.enable_features("contrib")

GROUP = "group"
MECHANISM = (
    "OpenDP compositor (pure ε, each member in up to N contacts groups): integer Laplace counts on every"
    " group's key, then the exponential-mechanism savings-rate median of the groups large enough"
)


def privacy_unit(plan: ContactsPlan) -> tuple[Any, Any]:
    """OpenDP's privacy unit: up to N rows, at most one in any group (a member is in each of
    their contacts' groups once)."""
    return dp.unit_of(
        contributions=[
            dp.polars.Bound(per_group=plan.max_contacts),
            dp.polars.Bound(by=[GROUP], per_group=1, num_groups=plan.max_contacts),
        ]
    )


def describe(plan: ContactsPlan) -> dict[str, Any]:
    return {
        "dimension": "contacts",
        "maxContacts": plan.max_contacts,
        "minGroupSize": plan.min_group_size,
        "falsePass": plan.false_pass,
        "cut": plan.cut(),
        "bounds": {"savingsRate": list(SAVINGS_RATE_BOUNDS)},
        "privacyUnit": f"one member: up to {plan.max_contacts} rows, at most one in any contacts group",
        "population": "rows: one per (contacts group, consenting contact)",
    }


@dataclass(frozen=True)
class ContactQuery:
    name: str
    mechanism: str
    scale: float
    epsilon: float


@dataclass(frozen=True)
class ContactsGroup:
    key: str
    noisy_count: int
    released: bool
    reason: str | None
    values: dict[str, float | None]


@dataclass(frozen=True)
class ContactsRelease:
    groups: list[ContactsGroup]
    queries: list[ContactQuery]
    # The sum of the measurements' privacy maps at the unit's bound (pure ε: δ = 0).
    epsilon: float
    population: int


def contacts_frame(groups: Sequence[str], savings_rates: Sequence[float | None]) -> pl.DataFrame:
    """One row per (group, consenting contact): the group's key and the contact's clamped rate."""
    low, high = SAVINGS_RATE_BOUNDS
    return pl.DataFrame(
        {
            GROUP: list(groups),
            "savings_rate": [None if r is None else min(max(float(r), low), high) for r in savings_rates],
        },
        schema={GROUP: pl.String, "savings_rate": pl.Float64},
    )


def release_contacts(
    frame: pl.DataFrame, keys: Sequence[str], plan: ContactsPlan, *, cut: float | None = None
) -> ContactsRelease:
    """The noisy count of every group in `keys`, and the median of those whose count reaches
    `cut` (the plan's; `bench/contacts.py` lowers it to see what a median would be worth)."""
    cut = plan.cut() if cut is None else cut
    metric, bound = privacy_unit(plan)
    context = dp.Context.compositor(
        data=frame.lazy(),
        privacy_unit=(metric, bound),
        privacy_loss=dp.loss_of(epsilon=plan.epsilon),
        split_by_weights=[COUNT_WEIGHT, MEDIAN_WEIGHT],
        margins=[dp.polars.Margin(by=[], max_length=MAX_MEMBERS)],
    )
    runner = _Runner(context, bound, frame.schema, plan.shares())
    counts = runner.run(
        "count by contacts group",
        "integer Laplace",
        lambda scale: _by_keys(frame.schema, keys, [dp.len(scale=scale, signed=True)], lambda rows: rows),
    )
    noisy = {row[GROUP]: int(row["len"] or 0) for row in counts.iter_rows(named=True)}
    passed = [key for key in keys if noisy.get(key, 0) >= cut]
    medians: dict[str, float | None] = {}
    if passed:
        found = runner.run(
            "savings_rate p50 by contacts group",
            "exponential mechanism",
            lambda scale: _by_keys(
                frame.schema,
                passed,
                [pl.col("savings_rate").dp.quantile(0.5, SAVINGS_RATE_CANDIDATES, scale=scale).alias("q")],
                lambda rows: rows.filter(pl.col("savings_rate").is_not_null()),
            ),
        )
        medians = {row[GROUP]: row["q"] for row in found.iter_rows(named=True)}
    groups = []
    for key in keys:
        count = noisy.get(key, 0)
        if key in medians:
            groups.append(ContactsGroup(key, count, True, None, {"savingsRate.p50": medians[key]}))
        else:
            reason = plan.too_small() if count < plan.count_cut() else plan.too_noisy()
            groups.append(ContactsGroup(key, count, False, reason, {}))
    return ContactsRelease(groups, runner.records, sum(q.epsilon for q in runner.records), frame.height)


def _by_keys(
    schema: Any, keys: Sequence[str], aggregations: list[pl.Expr], rows: Callable[[pl.LazyFrame], pl.LazyFrame]
) -> pl.LazyFrame:
    public = pl.LazyFrame({GROUP: list(keys)}, schema={GROUP: pl.String})
    members = rows(pl.LazyFrame(schema=schema))
    return public.join(members.group_by(GROUP).agg(aggregations), on=GROUP, how="left")


class _Runner:
    """Runs the compositor's queries, each at the noise scale whose privacy map (at the unit's
    bound) is exactly its share, and records what each ran."""

    def __init__(self, context: Any, bound: Any, schema: Any, shares: tuple[float, ...]) -> None:
        self._context = context
        self._bound = bound
        self._shares = shares
        self.records: list[ContactQuery] = []

    def run(self, name: str, mechanism: str, plan: Callable[[float], pl.LazyFrame]) -> pl.DataFrame:
        share = self._shares[len(self.records)]
        unit = self._measurement(plan(1.0)).map(self._bound)
        scale = unit / share * (1 + 1e-9)  # a hair wider: rounding never asks for more than the share
        measurement = self._measurement(plan(scale))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answer = self._context(measurement).collect()
        self.records.append(ContactQuery(name, mechanism, scale, float(measurement.map(self._bound))))
        return answer  # type: ignore[no-any-return]

    def _measurement(self, plan: pl.LazyFrame) -> Any:
        accountant = self._context.accountant
        return dp.m.make_private_lazyframe(
            accountant.input_domain, accountant.input_metric, accountant.output_measure, plan
        )
