"""Peer statistics under differential privacy, with OpenDP over a Polars frame. Pure: rows in,
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
   within it. Each member is then in exactly one group per dimension, and for those groups one
   query per dimension computes what the plan says (`ReleasePlan.statistics`): the count, the
   savings-rate and salary percentiles (exponential mechanism over candidate grids: fine for
   rates, log-spaced for money), the badge targets' percentiles in the dimensions comparative
   badges compare on, and the sum of each spending category (integer Laplace; the mean is the
   sum over the count).

The budget goes to what is used (`Allocation`): most of it to the percentile the comparative
badges award on, in the dimensions they compare on; small shares to what places a member on the
comparisons page; little to the roll-up counts. Every released value comes with the half-width
of its 95 % interval (`quantile_error`, `mean_error`, `count_error`).

The threshold is decided on the noisy count: a group is published when its noisy remainder is at
least `min_group_size + b·ln(keys/(2p))`, b the level's count noise scale and keys the level's
number of keys: at any level, a group of fewer than `min_group_size` members passes with
probability at most p (`FALSE_PASS`, 5 %) all keys together (the margin grows with the square root
of the counts a remainder involves, an approximation of their summed noise, on the safe side as
finer levels get at least the budget of coarser ones).

The privacy loss of a release is the sum of the two compositors' own privacy maps (basic
sequential composition, the second phase chosen from the first's output), and every query's
measurement is checked against its share by the compositor that runs it.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import polars as pl

from badges.config import Settings, parse_percentiles
from badges.domain.categories import SpendingCategory
from badges.domain.definitions import BadgeDefinition, ComparativeRule
from badges.domain.peers import PeerInput
from badges.insights.segments import segment_keys, segment_of, segments_of

if TYPE_CHECKING:
    import opendp.prelude as dp


@cache
def load_opendp() -> Any:
    """OpenDP, loaded by the first release (with its `contrib` features and the `.dp` namespace on
    Polars expressions): the API reads this module's groups and plans, and never needs it."""
    import opendp.prelude

    opendp.prelude.enable_features("contrib")
    return opendp.prelude


# Values are clamped to these bounds before any statistic (documented in docs/api/peers.md).
SAVINGS_RATE_BOUNDS = (-1.0, 1.0)
SALARY_BOUNDS_MINOR = (10_000.0, 2_000_000.0)  # £100 to £20,000 a month
# The spending categories released (every category that is spending: not income, saving, transfers
# or debt repayment) and each one's monthly bound in minor units: a member's month is clamped to
# [0, bound] in each, so one member moves a category's sum by at most its bound.
SPENDING_BOUNDS_MINOR: dict[str, int] = {
    SpendingCategory.RENT_MORTGAGE: 300_000,
    SpendingCategory.BILLS_UTILITIES: 100_000,
    SpendingCategory.GROCERIES: 100_000,
    SpendingCategory.EATING_OUT: 50_000,
    SpendingCategory.FAST_FOOD: 20_000,
    SpendingCategory.GAMBLING: 50_000,
    SpendingCategory.TRANSPORT: 50_000,
    SpendingCategory.SHOPPING: 100_000,
    SpendingCategory.ENTERTAINMENT: 50_000,
    SpendingCategory.SUBSCRIPTIONS: 20_000,
    SpendingCategory.FEES: 20_000,
    SpendingCategory.CASH: 50_000,
    SpendingCategory.OTHER: 100_000,
}
SPENDING_CATEGORIES = tuple(str(category) for category in SPENDING_BOUNDS_MINOR)
# Rates: every percentage point from -30 % to 70 %, where nearly every member is, and every five
# outside it (a grid as fine over the whole range would spread the exponential mechanism's choice
# over many empty candidates in the tails, where the high percentiles are).
SAVINGS_RATE_CANDIDATES = (
    [round(-1.0 + 0.05 * i, 2) for i in range(14)]
    + [round(-0.3 + 0.01 * i, 2) for i in range(101)]
    + [round(0.75 + 0.05 * i, 2) for i in range(6)]
)
# Money: log-spaced, about 2.7 % apart.
SALARY_CANDIDATES = [
    round(SALARY_BOUNDS_MINOR[0] * (SALARY_BOUNDS_MINOR[1] / SALARY_BOUNDS_MINOR[0]) ** (i / 199)) * 1.0
    for i in range(200)
]
# The chance that a group smaller than the minimum size is published all the same.
FALSE_PASS = 0.05
# The intervals' miss probability (95 %), split between the mechanisms a value depends on.
MISS = 0.05
# A public upper bound on the number of rows (OpenDP needs one for quantiles).
MAX_MEMBERS = 100_000_000
EVERYONE = "all"
# The roll-up counts' weights by level (any other level: 1). Finer levels get at least the
# budget of coarser ones, which keeps `remainder_cut`'s approximation on the safe side, and the
# district, with thousands of keys, the most: its threshold grows with its noise.
LEVEL_WEIGHTS = {"district": 4.0, "area": 2.0}
# How each dimension's comparisons statistics share the dimension's display weight.
DISPLAY_SPLIT = {"count": 0.3, "savingsRate": 0.3, "salary": 0.2, "spending": 0.2}

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


# The columns a release reads, as `db.peers.consenting_inputs` answers them: one row a member.
INPUT_SCHEMA: dict[str, Any] = {
    "savings_rate": pl.Float64,
    "salary_minor": pl.Int64,
    "postcode_district": pl.String,
    "age_range": pl.String,
    "dependants": pl.Int64,
    "salary_bracket": pl.String,
    **{f"spending:{category}": pl.Int64 for category in SPENDING_CATEGORIES},
}


def inputs_frame(inputs: Iterable[PeerInput]) -> pl.DataFrame:
    """Members' inputs as the frame `consenting_inputs` reads from the database (for tests and
    the benchmark's in-memory populations)."""
    rows = list(inputs)
    columns: dict[str, list[Any]] = {
        "savings_rate": [row.savings_rate for row in rows],
        "salary_minor": [row.salary_minor for row in rows],
        "postcode_district": [row.postcode_district for row in rows],
        "age_range": [row.age_range for row in rows],
        "dependants": [row.dependants for row in rows],
        "salary_bracket": [row.salary_bracket for row in rows],
    }
    for category in SPENDING_CATEGORIES:
        columns[f"spending:{category}"] = [row.spending.get(category, 0) for row in rows]
    return pl.DataFrame(columns, schema=INPUT_SCHEMA)


def peer_frame(inputs: pl.DataFrame | Iterable[PeerInput]) -> pl.DataFrame:
    """One row a member who has a savings rate and a typical income (the members the statistics
    are of): every level's key as its index in the level's public keys (null where unknown), and
    the clamped values in compact integer units (the savings rate in basis points, money in minor
    units): what OpenDP is handed is copied into it whole, so its size is the release's cost."""
    raw = inputs if isinstance(inputs, pl.DataFrame) else inputs_frame(inputs)
    district = pl.col("postcode_district").str.to_uppercase().str.strip_chars()
    area = district.str.extract(r"^([A-Z][A-Z]?)", 1)
    dependants = pl.when(pl.col("dependants") >= 3).then(pl.lit("3+")).otherwise(pl.col("dependants").cast(pl.String))
    regions = postcode_regions()
    named = (
        raw.lazy()
        .filter(pl.col("savings_rate").is_not_null() & pl.col("salary_minor").is_not_null())
        .select(
            district.alias("district"),
            area.alias("area"),
            area.replace_strict(regions, default=None, return_dtype=pl.String).alias("region"),
            pl.col("salary_bracket"),
            _band(pl.col("salary_bracket"), SALARY_BANDS).alias("salary_band"),
            dependants.alias("dependants"),
            _band(dependants, DEPENDANTS_BANDS).alias("dependants_band"),
            pl.col("age_range"),
            _band(pl.col("age_range"), AGE_BANDS).alias("age_band"),
            pl.lit(EVERYONE).alias(EVERYONE),
            (pl.col("savings_rate").cast(pl.Float64).clip(*SAVINGS_RATE_BOUNDS) * RATE_UNITS)
            .round()
            .cast(pl.Int32)
            .alias("savings_rate"),
            pl.col("salary_minor").clip(*(int(b) for b in SALARY_BOUNDS_MINOR)).cast(pl.Int32).alias("salary"),
            *[
                pl.col(f"spending:{category}").fill_null(0).clip(0, bound).cast(pl.UInt32).alias(f"spending:{category}")
                for category, bound in SPENDING_BOUNDS_MINOR.items()
            ],
        )
        .collect()
    )
    # "People like you": each member's segment, from four of the keys above (insights/segments.py).
    segments = segments_of(
        named["age_range"].to_list(),
        named["dependants"].to_list(),
        named["salary_bracket"].to_list(),
        named["region"].to_list(),
    )
    named = named.with_columns(pl.Series("segment", segments, dtype=pl.String))
    return named.select(*[_code(pl.col(name), name) for name in _KEY_COLUMNS], *_VALUE_COLUMNS)


def member_keys(member: PeerInput) -> dict[str, str | None]:
    """One member's key at every level, as `peer_frame` computes them (a key that is not among
    its level's public keys: None), in plain Python: what a single member's comparison needs
    without building a frame."""
    district = member.postcode_district.upper().strip() if member.postcode_district is not None else None
    found = _AREA.match(district) if district else None
    area = found.group(1) if found else None
    region = postcode_regions().get(area) if area else None
    dependants = None if member.dependants is None else ("3+" if member.dependants >= 3 else str(member.dependants))
    keys: dict[str, str | None] = {
        "district": district,
        "area": area,
        "region": region,
        "salary_bracket": member.salary_bracket,
        "salary_band": SALARY_BANDS.get(member.salary_bracket) if member.salary_bracket else None,
        "dependants": dependants,
        "dependants_band": DEPENDANTS_BANDS.get(dependants) if dependants else None,
        "age_range": member.age_range,
        "age_band": AGE_BANDS.get(member.age_range) if member.age_range else None,
        "segment": segment_of(member.age_range, dependants, member.salary_bracket, region),
        EVERYONE: EVERYONE,
    }
    return {name: key if key is not None and key in key_codes(name) else None for name, key in keys.items()}


_AREA = re.compile(r"^([A-Z][A-Z]?)")


# The savings rate is kept in basis points (OpenDP's quantile scores integers as well as floats).
RATE_UNITS = 10_000


@cache
def key_levels() -> dict[str, Level]:
    """Every key column's level, with its public keys."""
    found = {level.name: level for dimension in HIERARCHIES for level in levels(dimension)}
    return found


@cache
def key_codes(level: str) -> dict[str, int]:
    """The level's public keys by their index."""
    return {key: index for index, key in enumerate(key_levels()[level].keys)}


def _code(expression: pl.Expr, level: str) -> pl.Expr:
    """A key as its index in the level's public keys (a key not among them: null)."""
    return expression.replace_strict(key_codes(level), default=None, return_dtype=pl.UInt32).alias(level)


def _band(source: pl.Expr, bands: dict[str, str]) -> pl.Expr:
    return source.replace_strict(bands, default=None, return_dtype=pl.String)


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


# --- the plan and the release -----------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """How a release's ε is shared: each statistic's share is its weight over the sum of all
    weights the plan uses (with the five dimensions and the shipped catalogue's two badge
    dimensions, the defaults add up to 1, so they are shares of ε).

    - `counts`: the roll-up counts together (by level: `LEVEL_WEIGHTS`);
    - `target`: each badge dimension's widest target percentile (the top 5 %: the one most awards
      are decided on, whose accuracy the release is held to);
    - `other_targets`: each badge dimension's narrower targets together (the top 1 %: only useful in
      larger groups at any budget one can afford);
    - `display`: each dimension's comparisons statistics together (`DISPLAY_SPLIT`: the count, the
      savings-rate and salary percentiles, the spending sums);
    - the percentiles the comparisons page places a member with."""

    counts: float = 0.05
    target: float = 0.375
    other_targets: float = 0.025
    display: float = 0.03
    savings_rate_percentiles: tuple[int, ...] = (25, 50, 75)
    salary_percentiles: tuple[int, ...] = (25, 50, 75)


@dataclass(frozen=True)
class Statistic:
    """One statistic of a dimension's query: `key` as stored (a sum is stored as its mean,
    `spending.<category>.mean`), what it computes, and its weight."""

    key: str
    kind: str  # "count", "quantile" or "sum"
    column: str | None
    weight: float
    alpha: int | None = None
    bound: int | None = None


DIMENSIONS = ("postcode", "salary_bracket", "dependants", "age_range", "segment")


@dataclass(frozen=True)
class ReleasePlan:
    """What to release: the dimensions (every one the comparisons page shows), the badge targets
    of the dimensions comparative badges compare on, the budget of this release, the smallest
    group worth publishing, and how the budget is shared; `false_pass`, the chance that some
    too-small group of a level passes on noise all the same."""

    dimensions: tuple[str, ...]
    targets: tuple[tuple[str, tuple[int, ...]], ...]
    epsilon: float
    min_group_size: int
    allocation: Allocation = field(default_factory=Allocation)
    false_pass: float = FALSE_PASS

    def targets_of(self, dimension: str) -> tuple[int, ...]:
        return dict(self.targets).get(dimension, ())

    def count_levels(self) -> list[tuple[str, Level]]:
        """The roll-up counts, in the order they run: each dimension's levels, then everyone."""
        return [(d, level) for d in self.dimensions for level in levels(d)[:-1]] + [(EVERYONE, ROOT)]

    def count_weights(self) -> list[float]:
        raw = [LEVEL_WEIGHTS.get(level.name, 1.0) for _, level in self.count_levels()]
        return [self.allocation.counts * w / sum(raw) for w in raw]

    def statistics(self, dimension: str) -> list[Statistic]:
        """The dimension's statistics with their weights: the display set, and the badge targets."""
        a = self.allocation
        share = {part: a.display * fraction for part, fraction in DISPLAY_SPLIT.items()}
        found: list[Statistic] = [Statistic("count", "count", None, share["count"])]
        targets = self.targets_of(dimension)
        rates: dict[int, float] = {alpha: share["savingsRate"] / len(a.savings_rate_percentiles)
                                   for alpha in a.savings_rate_percentiles}  # fmt: skip
        for index, alpha in enumerate(targets):
            # The widest target (the lowest percentile) gets `target`; the others share the rest.
            extra = a.target if index == 0 else a.other_targets / (len(targets) - 1)
            rates[alpha] = rates.get(alpha, 0.0) + extra
        found += [
            Statistic(f"savingsRate.p{alpha}", "quantile", "savings_rate", weight, alpha=alpha)
            for alpha, weight in sorted(rates.items())
        ]
        found += [
            Statistic(
                f"salary.p{alpha}", "quantile", "salary", share["salary"] / len(a.salary_percentiles), alpha=alpha
            )
            for alpha in a.salary_percentiles
        ]
        found += [
            Statistic(
                f"spending.{category}.mean",
                "sum",
                f"spending:{category}",
                share["spending"] / len(SPENDING_CATEGORIES),
                bound=bound,
            )
            for category, bound in SPENDING_BOUNDS_MINOR.items()
        ]
        return found

    def total_weight(self) -> float:
        return sum(self.count_weights()) + sum(s.weight for d in self.dimensions for s in self.statistics(d))

    def share(self, weight: float) -> float:
        """The ε a query or statistic of this weight may spend."""
        return self.epsilon * weight / self.total_weight()

    def split(self) -> tuple[float, float]:
        """The budget of each phase, in proportion to their weights."""
        counts = self.share(sum(self.count_weights()))
        return counts, self.epsilon - counts

    def alphas(self, dimension: str) -> list[int]:
        """The savings-rate percentiles released in the dimension."""
        return sorted({s.alpha for s in self.statistics(dimension) if s.column == "savings_rate" and s.alpha})


def allocation_of(settings: Settings) -> Allocation:
    """How the settings share a release's budget (docs/api/peers.md, "Peer statistics")."""
    return Allocation(
        counts=settings.peer_counts_weight,
        target=settings.peer_target_weight,
        other_targets=settings.peer_other_targets_weight,
        display=settings.peer_display_weight,
        savings_rate_percentiles=parse_percentiles(settings.peer_savings_rate_percentiles),
        salary_percentiles=parse_percentiles(settings.peer_salary_percentiles),
    )


def dimensions_of(settings: Settings) -> tuple[str, ...]:
    """The dimensions the settings release (`BADGES_PEER_DIMENSIONS`)."""
    return tuple(part.strip() for part in settings.peer_dimensions.split(",") if part.strip())


def plan_for(
    catalogue: Sequence[BadgeDefinition],
    epsilon: float,
    min_group_size: int,
    allocation: Allocation | None = None,
    dimensions: Sequence[str] = DIMENSIONS,
) -> ReleasePlan:
    """The release: every dimension of `dimensions` (the comparisons page's), and what the active
    comparative badges use: their comparison groups (those with a hierarchy: `contacts` is not
    released here) with their percentile targets, the lowest ε any allows (at most `epsilon`) and
    the largest minimum group size any asks for (at least `min_group_size`)."""
    released: dict[str, None] = dict.fromkeys(dimensions)
    targets: dict[str, set[int]] = {}
    for badge in catalogue:
        config = badge.config.comparative_analytics
        if not badge.active or not isinstance(badge.rule, ComparativeRule) or config is None:
            continue
        for group in config.comparison_groups:
            if group in HIERARCHIES:
                released.setdefault(group, None)
                targets.setdefault(group, set()).update(config.percentile_targets)
        epsilon = min(epsilon, config.anonymization.epsilon)
        min_group_size = max(min_group_size, config.anonymization.min_group_size)
    return ReleasePlan(
        dimensions=tuple(released),
        targets=tuple((d, tuple(sorted(targets[d]))) for d in released if d in targets),
        epsilon=epsilon,
        min_group_size=min_group_size,
        allocation=allocation or Allocation(),
    )


def describe(plan: ReleasePlan) -> dict[str, Any]:
    """The plan's parameters, as the ledger records them (with each query's, once run)."""
    return {
        "dimensions": list(plan.dimensions),
        "targets": {d: list(alphas) for d, alphas in plan.targets},
        "shares": {
            "counts": plan.share(sum(plan.count_weights())),
            **{d: {s.key: plan.share(s.weight) for s in plan.statistics(d)} for d in plan.dimensions},
        },
        "minGroupSize": plan.min_group_size,
        "falsePass": plan.false_pass,
        "bounds": {
            "savingsRate": list(SAVINGS_RATE_BOUNDS),
            "salaryMinor": list(SALARY_BOUNDS_MINOR),
            "spendingMinor": {category: [0, bound] for category, bound in SPENDING_BOUNDS_MINOR.items()},
        },
        "candidates": {
            "savingsRate": f"{len(SAVINGS_RATE_CANDIDATES)}: every 0.01 from -0.3 to 0.7, every 0.05 outside",
            "salaryMinor": f"{len(SALARY_CANDIDATES)}, log-spaced from {SALARY_BOUNDS_MINOR[0]:g}"
            f" to {SALARY_BOUNDS_MINOR[1]:g}",
        },
        "intervals": "95 %: quantiles in percentile points of rank, means in minor units, counts in members",
        "privacyUnit": "one member (one row, so at most one contribution to any group)",
    }


MECHANISM = (
    "OpenDP compositors (pure ε): integer Laplace counts and sums on public keys, exponential-mechanism"
    " quantiles over candidate grids"
)


@dataclass(frozen=True)
class QueryRecord:
    """One statistic of a measurement run: what it computed, its mechanism, noise scale and privacy
    loss (the map of a measurement of it alone, at one member); `query`, the index of the
    measurement it was part of (a dimension's statistics are one measurement)."""

    phase: str
    name: str
    mechanism: str
    scale: float
    epsilon: float
    query: int = 0


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


# --- uncertainty ---------------------------------------------------------------------------------


def count_error(scale: float) -> float:
    """Half-width of the 95 % interval of a noisy count with (integer) Laplace noise of scale b:
    P(|noise| > t) = exp(-t/b), so t = b·ln(1/0.05)."""
    return scale * math.log(1 / MISS)


def quantile_error(alpha: int, epsilon: float, candidates: int, noisy_count: int, count_scale: float) -> float:
    """Half-width, in percentile points of rank, of the 95 % interval of a released percentile.

    OpenDP scores each candidate c by |(1-a)·#(x < c) - a·#(x > c)| (times a's denominator) and
    picks one with probability ∝ exp(-score/scale), where scale = 2·Δ/ε and Δ = max(a, 1-a) in
    the same units. In members, score(c) = |lt - a·(n - eq)| (lt below c, eq at c), and the
    selection's scale is w = 2·max(a, 1-a)/ε. The exponential mechanism's tail (a union bound
    over the |C| candidates) gives P[score(out) > best + w·ln(|C|/β₁)] ≤ β₁; a score of at most
    s means the ranks the released value occupies, [lt, lt + eq], reach within s of a·n. The
    group's size comes from its noisy count N: n ≥ N - b·ln(1/(2β₂)) with probability 1 - β₂
    (Laplace's one-sided tail). With β₁ = 4 % and β₂ = 1 %, with probability ≥ 95 % the released
    value's rank is within 100·w·ln(|C|/β₁)/(N - b·ln(1/(2β₂))) percentile points of a.

    `best`, the score of the best candidate, is taken as 0: it is the grid's own resolution (the
    members between two neighbouring candidates), which no released figure can say without
    spending budget; the grids are fine where the members are, and the union bound is loose by
    far more than that in practice (the benchmark measures the coverage)."""
    beta_selection, beta_count = 0.8 * MISS, 0.2 * MISS
    fraction = alpha / 100
    sigma = 2 * max(fraction, 1 - fraction) / epsilon
    slack = sigma * math.log(candidates / beta_selection)
    members = noisy_count - count_scale * math.log(1 / (2 * beta_count))
    if members <= slack:
        return 100.0
    return min(100.0, 100 * slack / members)


def mean_error(mean: float, noisy_count: int, sum_scale: float, count_scale: float, bound: float) -> float:
    """Half-width, in the statistic's units, of the 95 % interval of a mean released as a noisy
    sum S (Laplace, scale b_s) over the group's noisy count N (scale b_c). With probability
    ≥ 1 - 2.5 % each, |S - s| ≤ a = b_s·ln(40) and |N - n| ≤ c = b_c·ln(40), so the true mean s/n
    lies in [(S - a)/(N + c), (S + a)/(N - c)]; the half-width is the wider side from S/N, and
    at most the bound (the mean is in [0, bound]) when N - c leaves no members."""
    a = sum_scale * math.log(2 / MISS)
    c = count_scale * math.log(2 / MISS)
    if noisy_count - c <= 0:
        return float(bound)
    total = mean * noisy_count
    low = max(0.0, (total - a) / (noisy_count + c))
    high = min(float(bound), (total + a) / (noisy_count - c))
    return min(float(bound), max(mean - low, high - mean))


# --- the release ---------------------------------------------------------------------------------


def release(frame: pl.DataFrame, plan: ReleasePlan) -> Release:
    """The release of `plan` over the members in `frame` (`peer_frame`)."""
    count_budget, _ = plan.split()
    counter = _Compositor(frame.select(_KEY_COLUMNS), count_budget, plan.count_weights(), "counts")
    noisy: dict[tuple[str, str], dict[str, int]] = {}
    scales: dict[str, float] = {}
    for dimension, level in plan.count_levels():
        noisy[dimension, level.name] = counter.count(level.name, level.keys)
        scales[level.name] = counter.records[-1].scale
    noisy_all = noisy[EVERYONE, EVERYONE]
    cuts = {
        level.name: threshold(plan, scales[level.name], len(level.keys))
        for dimension in plan.dimensions
        for level in levels(dimension)
    }
    published = {
        dimension: roll_up(levels(dimension), {**_of(noisy, dimension), EVERYONE: noisy_all}, cuts, plan.min_group_size)
        for dimension in plan.dimensions
    }
    # Only the dimensions with a group to publish are measured: the others' shares stay unspent.
    measured = [dimension for dimension in plan.dimensions if published[dimension]]
    weights = [sum(s.weight for s in plan.statistics(d)) for d in measured]
    groups: list[PeerGroup] = []
    stats_records: list[QueryRecord] = []
    stats_loss = 0.0
    if measured:
        grouped = frame.select(
            *[_group_column(dimension, levels(dimension), published[dimension]) for dimension in measured],
            *_VALUE_COLUMNS,
        )
        stats = _Compositor(grouped, plan.share(sum(weights)), weights, "statistics", first_query=len(counter.queries))
        for dimension in measured:
            # A group's code is its place in the dimension's published list.
            codes = list(range(len(published[dimension])))
            found = _measure(stats, plan, dimension, _group_name(dimension), codes)
            for code, (name, key) in enumerate(published[dimension]):
                count, values = found[code]
                groups.append(PeerGroup(dimension, name, key, count, values))
        stats_records = stats.records
        stats_loss = stats.privacy_loss()
    phase_epsilons = (counter.privacy_loss(), stats_loss)
    return Release(
        groups=groups,
        queries=counter.records + stats_records,
        phase_epsilons=phase_epsilons,
        epsilon=sum(phase_epsilons),
        delta=0.0,
        thresholds=cuts,
        population=frame.height,
        rolled_up={dimension: _rolled_up(levels(dimension), published[dimension]) for dimension in plan.dimensions},
    )


def _measure(
    stats: _Compositor, plan: ReleasePlan, dimension: str, column: str, labels: Sequence[int]
) -> dict[int, tuple[int, dict[str, float | None]]]:
    """One dimension's statistics for the groups `labels` of `column`, in one measurement: each
    group's noisy count and its values with their intervals."""
    statistics = plan.statistics(dimension)
    answers, records = stats.group(column, labels, statistics, plan)
    by_key = {statistic.key: record for statistic, record in zip(statistics, records, strict=True)}
    count_scale = by_key["count"].scale
    found = {}
    for label in labels:
        count = int(answers[label]["count"] or 0)
        found[label] = (count, _values(statistics, answers[label], count, count_scale, by_key))
    return found


def dimension_statistics(
    frame: pl.DataFrame, plan: ReleasePlan, dimension: str, column: str
) -> tuple[dict[int, tuple[int, dict[str, float | None]]], float]:
    """The statistics phase of one dimension alone, over groups given by `column` (every key in
    it), at the dimension's share of the plan's budget: what a release computes for a published
    group of that size (the benchmark measures accuracy with it at fixed group sizes, without
    the roll-up's thresholds). With the privacy loss its compositor accounts."""
    labels = sorted(key for key in frame.get_column(column).unique().to_list() if key is not None)
    weight = sum(s.weight for s in plan.statistics(dimension))
    stats = _Compositor(frame.select(column, *_VALUE_COLUMNS), plan.share(weight), [weight], "statistics")
    return _measure(stats, plan, dimension, column, labels), stats.privacy_loss()


def _values(
    statistics: Sequence[Statistic],
    answer: dict[str, Any],
    count: int,
    count_scale: float,
    records: dict[str, QueryRecord],
) -> dict[str, float | None]:
    """A group's stored statistics, each with its `.error` (null where the value is)."""
    values: dict[str, float | None] = {"count.error": round(count_error(count_scale), 2)}
    for statistic in statistics:
        record = records[statistic.key]
        found = answer.get(statistic.key)
        if statistic.kind == "quantile" and statistic.alpha is not None:
            grid = len(SAVINGS_RATE_CANDIDATES if statistic.column == "savings_rate" else SALARY_CANDIDATES)
            scale = RATE_UNITS if statistic.column == "savings_rate" else 1
            values[statistic.key] = None if found is None else float(found) / scale
            values[f"{statistic.key}.error"] = (
                None
                if found is None
                else round(quantile_error(statistic.alpha, record.epsilon, grid, count, count_scale), 3)
            )
        elif statistic.kind == "sum" and statistic.bound is not None:
            if found is None or count <= 0:
                values[statistic.key] = values[f"{statistic.key}.error"] = None
                continue
            mean = min(max(float(found) / count, 0.0), float(statistic.bound))
            values[statistic.key] = round(mean, 1)
            values[f"{statistic.key}.error"] = round(
                mean_error(mean, count, record.scale, count_scale, statistic.bound), 1
            )
    return values


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


def _group_name(dimension: str) -> str:
    return f"group:{dimension}"


def _group_column(dimension: str, hierarchy: Sequence[Level], published: list[tuple[str, str]]) -> pl.Expr:
    """Each member's group in the dimension, as its place in `published`: their finest published
    level (null: none)."""
    by_level: dict[str, dict[int, int]] = {}
    for place, (name, key) in enumerate(published):
        by_level.setdefault(name, {})[key_codes(name)[key]] = place
    finest_first = [
        pl.col(level.name).replace_strict(by_level[level.name], default=None, return_dtype=pl.UInt32)
        for level in hierarchy
        if level.name in by_level
    ]
    if not finest_first:
        return pl.lit(None, dtype=pl.UInt32).alias(_group_name(dimension))
    return pl.coalesce(finest_first).alias(_group_name(dimension))


_VALUE_COLUMNS = ("savings_rate", "salary", *(f"spending:{category}" for category in SPENDING_CATEGORIES))


class _Compositor:
    """An OpenDP compositor over the frame with its queries' shares of `epsilon`; each
    statistic's noise scale is set so its measurement's privacy map is exactly its share."""

    def __init__(
        self, frame: pl.DataFrame, epsilon: float, weights: list[float], phase: str, first_query: int = 0
    ) -> None:
        dp = load_opendp()
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
        self._first = first_query
        self.queries: list[dp.Measurement] = []
        self.records: list[QueryRecord] = []

    def privacy_loss(self) -> float:
        """The compositor's own privacy map at one member: what the whole phase may lose."""
        return float(self._context.accountant.map(1))

    def count(self, column: str, keys: Sequence[str]) -> dict[str, int]:
        """The noisy count of every public key of `column` (held as the keys' indexes)."""
        share = self._shares[len(self.queries)]
        statistic = Statistic("count", "count", None, 1.0)
        result, _ = self._run(column, range(len(keys)), [(statistic, share)], f"count by {column}")
        return {keys[row[column]]: int(row["count"] or 0) for row in result.iter_rows(named=True)}

    def group(
        self, column: str, keys: Sequence[int], statistics: Sequence[Statistic], plan: ReleasePlan
    ) -> tuple[dict[int, dict[str, Any]], list[QueryRecord]]:
        """Every statistic of a dimension, in one measurement (the compositor's next query), each
        at its own share of the plan's budget."""
        shares = [(statistic, plan.share(statistic.weight)) for statistic in statistics]
        result, records = self._run(column, keys, shares, None)
        return {row[column]: row for row in result.iter_rows(named=True)}, records

    def _run(
        self, column: str, keys: Sequence[int], shares: Sequence[tuple[Statistic, float]], name: str | None
    ) -> tuple[pl.DataFrame, list[QueryRecord]]:
        scaled: list[tuple[Statistic, float, float]] = []
        for statistic, share in shares:
            # The loss is proportional to 1/scale: measure it at scale 1, then scale to the share
            # (a hair wider, so rounding never asks for more than the share).
            unit = self._measurement(column, keys, [_expression(statistic, 1.0)]).map(1)
            scale = unit / share * (1 + 1e-9)
            alone = float(self._measurement(column, keys, [_expression(statistic, scale)]).map(1))
            scaled.append((statistic, scale, alone))
        measurement = self._measurement(column, keys, [_expression(s, scale) for s, scale, _ in scaled])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answer = self._context(measurement).collect()
        index = self._first + len(self.queries)
        self.queries.append(measurement)
        records = [
            QueryRecord(
                self._phase,
                name or f"{statistic.key} by {column}",
                _MECHANISMS[statistic.kind],
                scale,
                alone,
                index,
            )
            for statistic, scale, alone in scaled
        ]
        self.records += records
        return answer, records

    def _measurement(self, column: str, keys: Sequence[int], aggregations: list[pl.Expr]) -> dp.Measurement:
        accountant = self._context.accountant
        public = pl.LazyFrame({column: list(keys)}, schema={column: pl.UInt32})
        members = pl.LazyFrame(schema=self._schema).group_by(column).agg(aggregations)
        plan = public.join(members, on=column, how="left")
        return load_opendp().m.make_private_lazyframe(
            accountant.input_domain, accountant.input_metric, accountant.output_measure, plan
        )


_MECHANISMS = {"count": "integer Laplace", "quantile": "exponential mechanism", "sum": "integer Laplace"}


def _expression(statistic: Statistic, scale: float) -> pl.Expr:
    dp = load_opendp()  # also registers the `.dp` namespace on expressions used below
    if statistic.kind == "count":
        return dp.len(scale=scale, signed=True).alias(statistic.key)
    assert statistic.column is not None
    if statistic.kind == "quantile" and statistic.alpha is not None:
        candidates = _RATE_GRID if statistic.column == "savings_rate" else _SALARY_GRID
        return pl.col(statistic.column).dp.quantile(statistic.alpha / 100, candidates, scale=scale).alias(statistic.key)
    assert statistic.bound is not None
    # Summed in 64 bits (stored in 32: OpenDP refuses a sum that could overflow its type).
    return pl.col(statistic.column).cast(pl.Int64).dp.sum((0, statistic.bound), scale=scale).alias(statistic.key)


# The grids in the frame's units.
_RATE_GRID = [round(candidate * RATE_UNITS) for candidate in SAVINGS_RATE_CANDIDATES]
_SALARY_GRID = [int(candidate) for candidate in SALARY_CANDIDATES]
