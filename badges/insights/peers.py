"""Peer statistics under differential privacy, with OpenDP over a Polars LazyFrame. Pure: rows in,
a release out (the database and the budget are the activity's).

The privacy unit is one member: each contributes one row (their latest figures), so at most once
to any group. A release has two phases, each an OpenDP compositor over the members' frame:

1. Counts. One noisy count (integer Laplace) per level of each released dimension's hierarchy
   (postcode district → area → region → everyone; salary bracket → band → everyone; ...). Keys
   are public (every district, area, region, bracket there can be), so no key is revealed by the
   data and the guarantee is pure ε (δ = 0): an empty group gets a noisy count like any other.
   These counts only decide the roll-up; they are not stored.
2. Statistics. From the noisy counts alone (post-processing), each dimension's groups are rolled
   up: a key is published when its noisy count, less what its published sub-groups already
   cover, reaches the threshold; its members whose finer group was not published are compared
   within it. Each member is then in exactly one group per dimension, and for those groups the
   release computes a count, the savings-rate percentiles that are used (the median, and those
   named by comparative badges' `percentileTargets`) and the salary median, by the exponential
   mechanism over candidate grids (a fine grid for rates, log-spaced for money).

The threshold is decided on the noisy count: a group is published when its noisy remainder is at
least `min_group_size + b·ln(keys/(2p))`, b the count's noise scale and keys the level's number
of keys: at any level, a group of fewer than `min_group_size` members passes with probability at
most p (`FALSE_PASS`, 5 %) all keys together (the margin grows with the square root of the counts
a remainder involves, an approximation of their summed noise).

The privacy loss of a release is the sum of the two compositors' own privacy maps (basic
sequential composition, the second phase chosen from the first's output), and every query's
measurement is checked against its share by the compositor that runs it.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import opendp.prelude as dp
import polars as pl

from badges.domain.definitions import BadgeDefinition, ComparativeRule
from badges.domain.peers import PeerInput
from badges.insights.segments import segment_keys, segments_of

dp.enable_features("contrib")

# Values are clamped to these bounds before any statistic (documented in the README).
SAVINGS_RATE_BOUNDS = (-1.0, 1.0)
SALARY_BOUNDS_MINOR = (10_000.0, 2_000_000.0)  # £100 to £20,000 a month
# A fine grid for rates (half a percentage point), log-spaced for money (about 2.7 % apart).
SAVINGS_RATE_CANDIDATES = [round(-1.0 + 0.005 * i, 3) for i in range(401)]
SALARY_CANDIDATES = [
    round(SALARY_BOUNDS_MINOR[0] * (SALARY_BOUNDS_MINOR[1] / SALARY_BOUNDS_MINOR[0]) ** (i / 199)) * 1.0
    for i in range(200)
]
# The chance that a group smaller than the minimum size is published all the same.
FALSE_PASS = 0.05
# Budget shares, by ε: a quantile costs twice a count at the same noise scale (its score's
# sensitivity is 2 in OpenDP's exponential mechanism), so this gives every query the same scale.
COUNT_WEIGHT = 1.0
QUANTILE_WEIGHT = 2.0
# A public upper bound on the number of rows (OpenDP needs one for quantiles).
MAX_MEMBERS = 100_000_000
EVERYONE = "all"

SALARY_BANDS = {
    "<20k": "<30k",
    "20-30k": "<30k",
    "30-45k": "30-60k",
    "45-60k": "30-60k",
    "60-80k": "60k+",
    "80-100k": "60k+",
    "100k+": "60k+",
}
AGE_BANDS = {
    "18-24": "18-34",
    "25-34": "18-34",
    "35-44": "35-54",
    "45-54": "35-54",
    "55-64": "55+",
    "65+": "55+",
}
DEPENDANTS = ("0", "1", "2", "3+")
DEPENDANTS_BANDS = {"0": "none", "1": "some", "2": "some", "3+": "some"}
# Central London's districts that are split by a letter (EC1A, SW1A, W1K, ...).
LETTERED_DISTRICTS = ("EC1", "EC2", "EC3", "EC4", "WC1", "WC2", "W1", "SW1", "N1", "E1", "NW1", "SE1")


@cache
def postcode_regions() -> dict[str, str]:
    """Postcode area → the region most of it lies in (areas that straddle a border are placed
    by their main town)."""
    text = resources.files("badges.insights").joinpath("data/postcode_areas.csv").read_text()
    return {row["area"]: row["region"] for row in csv.DictReader(text.splitlines())}


@cache
def postcode_districts() -> tuple[str, ...]:
    """Every district key there can be, from public facts only (each area's numbers 0-99 and
    central London's lettered ones): the keys never come from the data."""
    numbered = [f"{area}{number}" for area in postcode_regions() for number in range(100)]
    lettered = [f"{prefix}{letter}" for prefix in LETTERED_DISTRICTS for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    return tuple(numbered + lettered)


def postcode_area(district: str) -> str:
    return district[: 2 if len(district) > 1 and district[1].isalpha() else 1]


@dataclass(frozen=True)
class Level:
    """One level of a dimension's hierarchy: the frame's column, its public keys, and each key's
    parent at the next level up (the last level is everyone)."""

    name: str
    keys: tuple[str, ...]
    parent: Callable[[str], str]


def _everyone(_: str) -> str:
    return EVERYONE


HIERARCHIES: dict[str, tuple[Level, ...]] = {
    "postcode": (
        Level("district", (), postcode_area),  # keys: postcode_districts(), loaded on first use
        Level("area", (), lambda area: postcode_regions().get(area, "")),
        Level("region", (), _everyone),
    ),
    "salary_bracket": (
        Level("salary_bracket", tuple(SALARY_BANDS), SALARY_BANDS.__getitem__),
        Level("salary_band", tuple(dict.fromkeys(SALARY_BANDS.values())), _everyone),
    ),
    "dependants": (
        Level("dependants", DEPENDANTS, DEPENDANTS_BANDS.__getitem__),
        Level("dependants_band", tuple(dict.fromkeys(DEPENDANTS_BANDS.values())), _everyone),
    ),
    "age_range": (
        Level("age_range", tuple(AGE_BANDS), AGE_BANDS.__getitem__),
        Level("age_band", tuple(dict.fromkeys(AGE_BANDS.values())), _everyone),
    ),
    # "People like you" (insights/segments.py): one level, the shipped model's segment ids.
    "segment": (Level("segment", (), _everyone),),  # keys: segment_keys(), loaded on first use
}
ROOT = Level(EVERYONE, (EVERYONE,), _everyone)


def levels(dimension: str) -> tuple[Level, ...]:
    """The dimension's levels, finest first, ending with everyone; with their public keys."""
    found = []
    for level in HIERARCHIES[dimension]:
        keys = level.keys
        if level.name == "district":
            keys = postcode_districts()
        elif level.name == "area":
            keys = tuple(postcode_regions())
        elif level.name == "region":
            keys = tuple(dict.fromkeys(postcode_regions().values()))
        elif level.name == "segment":
            keys = segment_keys()
        found.append(Level(level.name, keys, level.parent))
    return (*found, ROOT)


def peer_frame(inputs: Iterable[PeerInput]) -> pl.DataFrame:
    """One row a member: every level's key (null where unknown) and the clamped values."""
    rows = list(inputs)
    districts = [row.postcode_district.upper() if row.postcode_district else None for row in rows]
    areas = [postcode_area(d) if d else None for d in districts]
    regions = postcode_regions()
    dependants = [
        None if row.dependants is None else ("3+" if row.dependants >= 3 else str(row.dependants)) for row in rows
    ]
    region_of = [regions.get(a) if a else None for a in areas]
    ages = [row.age_range for row in rows]
    brackets = [row.salary_bracket for row in rows]
    return pl.DataFrame(
        {
            "district": districts,
            "area": areas,
            "region": region_of,
            "salary_bracket": [row.salary_bracket for row in rows],
            "salary_band": [SALARY_BANDS.get(row.salary_bracket or "") for row in rows],
            "dependants": dependants,
            "dependants_band": [DEPENDANTS_BANDS.get(d) if d else None for d in dependants],
            "age_range": [row.age_range for row in rows],
            "age_band": [AGE_BANDS.get(row.age_range or "") for row in rows],
            "segment": segments_of(ages, dependants, brackets, region_of),
            EVERYONE: [EVERYONE] * len(rows),
            "savings_rate": [_clamp(row.savings_rate, SAVINGS_RATE_BOUNDS) for row in rows],
            "salary": [_clamp(row.salary_minor, SALARY_BOUNDS_MINOR) for row in rows],
        },
        schema={
            **{name: pl.String for name in _KEY_COLUMNS},
            "savings_rate": pl.Float64,
            "salary": pl.Float64,
        },
    )


_KEY_COLUMNS = (
    "district",
    "area",
    "region",
    "salary_bracket",
    "salary_band",
    "dependants",
    "dependants_band",
    "age_range",
    "age_band",
    "segment",
    EVERYONE,
)


def _clamp(value: float | None, bounds: tuple[float, float]) -> float | None:
    return None if value is None else min(max(float(value), bounds[0]), bounds[1])


# --- the plan and the release -----------------------------------------------------------------


@dataclass(frozen=True)
class ReleasePlan:
    """What to release: the dimensions compared on, the savings-rate percentiles used (the median
    always), the budget of this release and the smallest group worth publishing; `false_pass`,
    the chance that some too-small group of a level passes on noise all the same."""

    dimensions: tuple[str, ...]
    percentiles: tuple[int, ...]
    epsilon: float
    min_group_size: int
    false_pass: float = FALSE_PASS

    def weights(self) -> tuple[list[float], list[float]]:
        """Each phase's queries' shares of the budget, in the order they run."""
        counts = [COUNT_WEIGHT for dimension in self.dimensions for _ in HIERARCHIES[dimension]] + [COUNT_WEIGHT]
        # A count, each savings-rate percentile, the salary median: one measurement each (each
        # percentile's scale is its own: OpenDP scores percentiles other than the median on a
        # much larger scale).
        per_dimension = [COUNT_WEIGHT] + [QUANTILE_WEIGHT] * len(self.alphas()) + [QUANTILE_WEIGHT]
        return counts, per_dimension * len(self.dimensions)

    def alphas(self) -> list[int]:
        """The savings-rate percentiles released: the median and the targets."""
        return sorted({50, *self.percentiles})

    def split(self) -> tuple[float, float]:
        """The budget of each phase, in proportion to their weights."""
        counts, stats = self.weights()
        share = sum(counts) / (sum(counts) + sum(stats))
        return self.epsilon * share, self.epsilon * (1 - share)


def plan_for(catalogue: Sequence[BadgeDefinition], epsilon: float, min_group_size: int) -> ReleasePlan:
    """What the active comparative badges use: their comparison groups (those with a hierarchy:
    `contacts` is not released here), their percentile targets, the lowest ε any allows (at most
    `epsilon`) and the largest minimum group size any asks for (at least `min_group_size`)."""
    dimensions: dict[str, None] = {}
    percentiles: set[int] = set()
    for badge in catalogue:
        config = badge.config.comparative_analytics
        if not badge.active or not isinstance(badge.rule, ComparativeRule) or config is None:
            continue
        dimensions.update((group, None) for group in config.comparison_groups if group in HIERARCHIES)
        percentiles.update(config.percentile_targets)
        epsilon = min(epsilon, config.anonymization.epsilon)
        min_group_size = max(min_group_size, config.anonymization.min_group_size)
    return ReleasePlan(tuple(dimensions), tuple(sorted(percentiles)), epsilon, min_group_size)


def describe(plan: ReleasePlan) -> dict[str, Any]:
    """The plan's parameters, as the ledger records them (with each query's, once run)."""
    return {
        "dimensions": list(plan.dimensions),
        "percentiles": plan.alphas(),
        "minGroupSize": plan.min_group_size,
        "falsePass": plan.false_pass,
        "bounds": {"savingsRate": list(SAVINGS_RATE_BOUNDS), "salaryMinor": list(SALARY_BOUNDS_MINOR)},
        "candidates": {
            "savingsRate": f"{len(SAVINGS_RATE_CANDIDATES)}, every 0.005 from -1 to 1",
            "salaryMinor": f"{len(SALARY_CANDIDATES)}, log-spaced from {SALARY_BOUNDS_MINOR[0]:g}"
            f" to {SALARY_BOUNDS_MINOR[1]:g}",
        },
        "privacyUnit": "one member (one row, so at most one contribution to any group)",
    }


MECHANISM = (
    "OpenDP compositors (pure ε): integer Laplace counts on public keys, exponential-mechanism quantiles"
    " over candidate grids"
)


@dataclass(frozen=True)
class QueryRecord:
    """One measurement run: what it computed, its mechanism, noise scale and privacy loss (its own
    privacy map at one member)."""

    phase: str
    name: str
    mechanism: str
    scale: float
    epsilon: float


@dataclass(frozen=True)
class PeerGroup:
    dimension: str
    level: str
    key: str
    noisy_count: int
    values: dict[str, float | None]


@dataclass(frozen=True)
class Release:
    groups: list[PeerGroup]
    queries: list[QueryRecord]
    # Each phase's compositor's privacy map at one member, and their sum (pure ε: δ = 0).
    phase_epsilons: tuple[float, float]
    epsilon: float
    delta: float
    # The noisy count (less what published sub-groups cover) a group of each level had to reach.
    thresholds: dict[str, float]
    population: int
    rolled_up: dict[str, int] = field(default_factory=dict)


def threshold(plan: ReleasePlan, count_scale: float, keys: int) -> float:
    """The noisy count a group of a level with `keys` keys must reach to be published: with
    Laplace noise of scale b, a group of fewer than `min_group_size` members passes with
    probability at most ½·exp(-margin/b) = false_pass/keys, so that any of the level's keys does
    with probability at most `plan.false_pass` (a union bound: thousands of empty districts would
    otherwise let some through on noise alone)."""
    return plan.min_group_size + count_scale * math.log(keys / (2 * plan.false_pass))


def release(frame: pl.DataFrame, plan: ReleasePlan) -> Release:
    """The release of `plan` over the members in `frame` (`peer_frame`)."""
    count_budget, stats_budget = plan.split()
    count_weights, stats_weights = plan.weights()
    counter = _Compositor(frame, count_budget, count_weights, "counts")
    noisy: dict[tuple[str, str], dict[str, int]] = {}
    for dimension in plan.dimensions:
        for level in levels(dimension)[:-1]:
            noisy[dimension, level.name] = counter.count(level.name, level.keys)
    noisy_all = counter.count(EVERYONE, (EVERYONE,))
    # Every count query has the same scale (equal weights): the thresholds follow from it.
    scale = counter.records[0].scale
    cuts = {
        level.name: threshold(plan, scale, len(level.keys))
        for dimension in plan.dimensions
        for level in levels(dimension)
    }
    published = {
        dimension: roll_up(levels(dimension), {**_of(noisy, dimension), EVERYONE: noisy_all}, cuts, plan.min_group_size)
        for dimension in plan.dimensions
    }
    grouped = frame.with_columns(
        [_group_column(dimension, levels(dimension), published[dimension]) for dimension in plan.dimensions]
    )
    stats = _Compositor(grouped, stats_budget, stats_weights, "statistics")
    groups: list[PeerGroup] = []
    for dimension in plan.dimensions:
        labels = [_label(name, key) for (name, key) in published[dimension]]
        if not labels:  # nothing large enough: nothing to compute (its share stays unspent)
            continue
        column = _group_name(dimension)
        counts = stats.count(column, labels)
        values: dict[str, dict[str, float | None]] = {label: {} for label in labels}
        for alpha in plan.alphas():
            for label, found in stats.quantile(column, labels, "savings_rate", alpha, SAVINGS_RATE_CANDIDATES).items():
                values[label][f"savingsRate.p{alpha}"] = found
        for label, found in stats.quantile(column, labels, "salary", 50, SALARY_CANDIDATES).items():
            values[label]["salary.p50"] = found
        for name, key in published[dimension]:
            label = _label(name, key)
            groups.append(PeerGroup(dimension, name, key, counts[label], values[label]))
    phase_epsilons = (counter.privacy_loss(), stats.privacy_loss())
    return Release(
        groups=groups,
        queries=counter.records + stats.records,
        phase_epsilons=phase_epsilons,
        epsilon=sum(phase_epsilons),
        delta=0.0,
        thresholds=cuts,
        population=frame.height,
        rolled_up={dimension: _rolled_up(levels(dimension), published[dimension]) for dimension in plan.dimensions},
    )


def roll_up(
    hierarchy: Sequence[Level], noisy: dict[str, dict[str, int]], cuts: dict[str, float], min_group_size: int
) -> list[tuple[str, str]]:
    """The (level, key) groups published, from the noisy counts alone: finest first, a key is
    published when its count less what its published sub-groups cover reaches its level's cut."""
    published: list[tuple[str, str]] = []
    # Per key: the noisy count its published groups cover, and how many noisy counts that sums.
    covered: dict[str, tuple[float, int]] = {}
    for depth, level in enumerate(hierarchy):
        below: dict[str, tuple[float, int]] = {}
        if depth:
            for key, (amount, terms) in covered.items():
                parent = hierarchy[depth - 1].parent(key)
                total, count = below.get(parent, (0.0, 0))
                below[parent] = (total + amount, count + terms)
        covered = {}
        for key in level.keys:
            count = noisy[level.name].get(key, 0)
            already, terms = below.get(key, (0.0, 0))
            if count - already >= remainder_cut(cuts[level.name], terms, min_group_size):
                published.append((level.name, key))
                covered[key] = (count, 1)
            elif terms:
                covered[key] = (already, terms)
    return published


def remainder_cut(cut: float, terms: int, min_group_size: int) -> float:
    """The cut for a remainder: a noisy count less `terms` others is noisier (its spread grows
    with the square root of the counts involved), so the threshold's margin over the minimum
    size grows so too. An approximation of the sum's tail, on the safe side at these levels."""
    return cut if not terms else min_group_size + (cut - min_group_size) * math.sqrt(1 + terms)


def _rolled_up(hierarchy: Sequence[Level], published: list[tuple[str, str]]) -> int:
    """How many published groups are above the finest level (a roll-up's remainder)."""
    return sum(1 for level, _ in published if level != hierarchy[0].name)


def _of(noisy: dict[tuple[str, str], dict[str, int]], dimension: str) -> dict[str, dict[str, int]]:
    return {level: counts for (d, level), counts in noisy.items() if d == dimension}


def _label(level: str, key: str) -> str:
    return f"{level}:{key}"


def _group_name(dimension: str) -> str:
    return f"group:{dimension}"


def _group_column(dimension: str, hierarchy: Sequence[Level], published: list[tuple[str, str]]) -> pl.Expr:
    """Each member's group in the dimension: their finest published level (null: none)."""
    chosen: dict[str, list[str]] = {}
    for name, key in published:
        chosen.setdefault(name, []).append(key)
    expression: Any = None
    for level in hierarchy:
        keys = chosen.get(level.name)
        if not keys:
            continue
        condition = pl.col(level.name).is_in(keys)
        value = pl.lit(f"{level.name}:") + pl.col(level.name)
        expression = pl.when(condition).then(value) if expression is None else expression.when(condition).then(value)
    if expression is None:
        return pl.lit(None, dtype=pl.String).alias(_group_name(dimension))
    grouped: pl.Expr = expression.otherwise(None).alias(_group_name(dimension))
    return grouped


class _Compositor:
    """An OpenDP compositor over the frame with its queries' shares of `epsilon`; each query's
    noise scale is set so its measurement's privacy map is exactly its share."""

    def __init__(self, frame: pl.DataFrame, epsilon: float, weights: list[float], phase: str) -> None:
        self._context = dp.Context.compositor(
            data=frame.lazy(),
            privacy_unit=dp.unit_of(contributions=1),
            privacy_loss=dp.loss_of(epsilon=epsilon),
            split_by_weights=weights,
            margins=[dp.polars.Margin(by=[], max_length=MAX_MEMBERS)],
        )
        self._shares = [epsilon * w / sum(weights) for w in weights]
        self._schema = frame.schema
        self._phase = phase
        self.records: list[QueryRecord] = []

    def privacy_loss(self) -> float:
        """The compositor's own privacy map at one member: what the whole phase may lose."""
        return float(self._context.accountant.map(1))

    def count(self, column: str, keys: Sequence[str]) -> dict[str, int]:
        def plan(scale: float) -> pl.LazyFrame:
            return self._by_keys(column, keys, [dp.len(scale=scale, signed=True)], lambda frame: frame)

        result = self._run(f"count by {column}", "integer Laplace", plan)
        return {row[column]: int(row["len"] or 0) for row in result.iter_rows(named=True)}

    def quantile(
        self, column: str, keys: Sequence[str], value: str, alpha: int, candidates: list[float]
    ) -> dict[str, float | None]:
        """The `alpha`th percentile of `value` in each group, over the members who have one."""

        def plan(scale: float) -> pl.LazyFrame:
            expression = pl.col(value).dp.quantile(alpha / 100, candidates, scale=scale).alias("q")
            return self._by_keys(column, keys, [expression], lambda frame: frame.filter(pl.col(value).is_not_null()))

        result = self._run(f"{value} p{alpha} by {column}", "exponential mechanism", plan)
        return {row[column]: row["q"] for row in result.iter_rows(named=True)}

    def _by_keys(
        self,
        column: str,
        keys: Sequence[str],
        aggregations: list[pl.Expr],
        rows: Callable[[pl.LazyFrame], pl.LazyFrame],
    ) -> pl.LazyFrame:
        public = pl.LazyFrame({column: list(keys)}, schema={column: pl.String})
        members = rows(self._data())
        return public.join(members.group_by(column).agg(aggregations), on=column, how="left")

    def _data(self) -> pl.LazyFrame:
        return pl.LazyFrame(schema=self._schema)

    def _run(self, name: str, mechanism: str, plan: Callable[[float], pl.LazyFrame]) -> pl.DataFrame:
        share = self._shares[len(self.records)]
        # The loss is proportional to 1/scale: measure it at scale 1, then scale to the share
        # (a hair wider, so rounding never asks for more than the share).
        unit = self._measurement(plan(1.0)).map(1)
        scale = unit / share * (1 + 1e-9)
        measurement = self._measurement(plan(scale))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answer = self._context(measurement).collect()
        self.records.append(QueryRecord(self._phase, name, mechanism, scale, float(measurement.map(1))))
        return answer

    def _measurement(self, plan: pl.LazyFrame) -> dp.Measurement:
        accountant = self._context.accountant
        return dp.m.make_private_lazyframe(
            accountant.input_domain, accountant.input_metric, accountant.output_measure, plan
        )
