"""Segments ("people like you"): members with similar non-sensitive circumstances (age range,
dependants, salary bracket, region; never spending, savings or gambling), whose ids are the public
keys of the peer release's `segment` dimension.

The clustering never sees a member. It is fitted (scikit-learn k-means, fixed seed) on a synthetic
reference population that this module generates from the fixed proportions below (plausible UK
shapes, written down, not learnt from anyone), and shipped as `models/segments.json`: the
centroids, each segment's id and plain-words description. `python -m badges.insights.segments`
rebuilds that file, byte for byte (a test holds it to that). At release time a member's segment is
their nearest centroid, computed from the figures the release already reads, so it always follows
their current demographics and the shipped model, and nothing about it is stored per member.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

SEED = 20261209
REFERENCE_SIZE = 20_000
SEGMENTS = 10
# How far apart two regions are, against a whole step across the age, dependants or salary scale
# (each scaled to 0..1): enough for a segment to be regional where a region stands out, not so
# much that region alone decides.
REGION_WEIGHT = 0.45
MODEL_FILE = "models/segments.json"

AGE_RANGES = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
DEPENDANTS = ("0", "1", "2", "3+")
SALARY_BRACKETS = ("<20k", "20-30k", "30-45k", "45-60k", "60-80k", "80-100k", "100k+")
SALARY_WORDS = {
    "<20k": "under £20k",
    "20-30k": "£20-30k",
    "30-45k": "£30-45k",
    "45-60k": "£45-60k",
    "60-80k": "£60-80k",
    "80-100k": "£80-100k",
    "100k+": "£100k+",
}

# The reference population's proportions (invented to be plausible, stated here, fitted to nobody).
AGE_SHARES = (0.11, 0.18, 0.17, 0.18, 0.16, 0.20)
DEPENDANTS_BY_AGE = (
    (0.90, 0.07, 0.02, 0.01),
    (0.55, 0.20, 0.18, 0.07),
    (0.30, 0.25, 0.30, 0.15),
    (0.45, 0.25, 0.20, 0.10),
    (0.85, 0.10, 0.04, 0.01),
    (0.97, 0.02, 0.01, 0.00),
)
SALARY_BY_AGE = (
    (0.45, 0.35, 0.15, 0.04, 0.01, 0.00, 0.00),
    (0.15, 0.30, 0.33, 0.14, 0.05, 0.02, 0.01),
    (0.12, 0.22, 0.30, 0.18, 0.10, 0.05, 0.03),
    (0.13, 0.22, 0.28, 0.18, 0.10, 0.05, 0.04),
    (0.20, 0.25, 0.27, 0.14, 0.08, 0.03, 0.03),
    (0.45, 0.30, 0.15, 0.06, 0.02, 0.01, 0.01),
)
REGION_SHARES = {
    "London": 0.13,
    "South East": 0.14,
    "East of England": 0.095,
    "South West": 0.085,
    "West Midlands": 0.09,
    "East Midlands": 0.075,
    "North West": 0.11,
    "North East": 0.04,
    "Yorkshire and The Humber": 0.08,
    "Wales": 0.047,
    "Scotland": 0.08,
    "Northern Ireland": 0.028,
}
LONDON_SALARY_UPLIFT = 0.35  # a Londoner's bracket is one higher this often


@cache
def regions() -> tuple[str, ...]:
    """Every region a postcode area lies in (the peer release's `region` keys)."""
    text = resources.files("badges.insights").joinpath("data/postcode_areas.csv").read_text()
    return tuple(sorted({row["region"] for row in csv.DictReader(text.splitlines())}))


def reference_population(seed: int = SEED, size: int = REFERENCE_SIZE) -> dict[str, list[str]]:
    """The synthetic reference population: `size` people drawn from the proportions above."""
    rng = np.random.default_rng(seed)
    names = list(REGION_SHARES)
    weights = np.array(list(REGION_SHARES.values()))
    region = rng.choice(len(names), size=size, p=weights / weights.sum())
    age = rng.choice(len(AGE_RANGES), size=size, p=AGE_SHARES)
    dependants = np.array([rng.choice(len(DEPENDANTS), p=DEPENDANTS_BY_AGE[a]) for a in age])
    salary = np.array([rng.choice(len(SALARY_BRACKETS), p=SALARY_BY_AGE[a]) for a in age])
    uplift = (np.array(names)[region] == "London") & (rng.random(size) < LONDON_SALARY_UPLIFT)
    salary = np.minimum(salary + uplift, len(SALARY_BRACKETS) - 1)
    return {
        "age_range": [AGE_RANGES[i] for i in age],
        "dependants": [DEPENDANTS[i] for i in dependants],
        "salary_bracket": [SALARY_BRACKETS[i] for i in salary],
        "region": [names[i] for i in region],
    }


def features(
    age_range: Sequence[str | None],
    dependants: Sequence[str | None],
    salary_bracket: Sequence[str | None],
    region: Sequence[str | None],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The clustering's features (age, dependants and salary as steps scaled to 0..1, region
    one-hot times `REGION_WEIGHT`), and which rows have all four (the others get no segment)."""
    places = regions()
    columns = (
        (age_range, AGE_RANGES),
        (dependants, DEPENDANTS),
        (salary_bracket, SALARY_BRACKETS),
    )
    size = len(age_range)
    ordinal = np.zeros((size, len(columns)))
    known = np.ones(size, dtype=bool)
    for j, (values, scale) in enumerate(columns):
        steps = {value: i / (len(scale) - 1) for i, value in enumerate(scale)}
        mapped = pl.Series(list(values), dtype=pl.String).replace_strict(steps, default=None, return_dtype=pl.Float64)
        known &= mapped.is_not_null().to_numpy()
        ordinal[:, j] = mapped.fill_null(0.0).to_numpy()
    spots = {name: i for i, name in enumerate(places)}
    spot = pl.Series(list(region), dtype=pl.String).replace_strict(spots, default=None, return_dtype=pl.Int64)
    known &= spot.is_not_null().to_numpy()
    one_hot = np.zeros((size, len(places)))
    found = spot.fill_null(0).to_numpy()
    one_hot[np.arange(size), found] = REGION_WEIGHT
    one_hot[~spot.is_not_null().to_numpy()] = 0.0
    return np.hstack([ordinal, one_hot]), known


def build_model(seed: int = SEED, size: int = REFERENCE_SIZE) -> dict[str, Any]:
    """Fit the segments on the reference population: deterministic (fixed seed, one thread's
    worth of arithmetic, centroids rounded), segments numbered by their centroids' order."""
    from sklearn.cluster import KMeans

    people = reference_population(seed, size)
    matrix, _ = features(people["age_range"], people["dependants"], people["salary_bracket"], people["region"])
    fitted = KMeans(n_clusters=SEGMENTS, n_init=10, random_state=seed).fit(matrix)
    centroids = np.round(fitted.cluster_centers_, 6)
    order = sorted(range(SEGMENTS), key=lambda k: tuple(centroids[k]))
    labels = nearest(matrix, centroids[order])
    segments = []
    for rank, k in enumerate(order):
        members = labels == rank
        chosen = {name: [v for v, m in zip(values, members, strict=True) if m] for name, values in people.items()}
        segments.append(
            {
                "id": f"seg-{rank + 1:02d}",
                "centroid": [float(x) for x in centroids[k]],
                "share": round(float(members.mean()), 4),
                "description": describe(chosen),
            }
        )
    return {
        "seed": seed,
        "referenceSize": size,
        "regionWeight": REGION_WEIGHT,
        "features": ["age_range", "dependants", "salary_bracket", *(f"region:{r}" for r in regions())],
        "segments": segments,
    }


def describe(people: dict[str, list[str]]) -> str:
    """A segment in plain words, from the reference people in it: for each ordered feature the
    narrowest run of values that holds at least 60 % of them, the region when half are in one."""
    parts = [
        _span(people["age_range"], AGE_RANGES, _age_words),
        _span(people["dependants"], DEPENDANTS, _dependants_words),
        _span(people["salary_bracket"], SALARY_BRACKETS, _salary_words),
    ]
    region, count = Counter(people["region"]).most_common(1)[0]
    parts.append(region if count >= len(people["region"]) / 2 else "across the UK")
    return ", ".join(parts)


def _span(values: list[str], scale: Sequence[str], words: Any) -> str:
    counts = Counter(values)
    for width in range(1, len(scale) + 1):
        runs = [(i, i + width - 1) for i in range(len(scale) - width + 1)]
        covered = {run: sum(counts[v] for v in scale[run[0] : run[1] + 1]) for run in runs}
        best = max(runs, key=lambda run: covered[run])
        if covered[best] >= 0.6 * len(values):
            return str(words(scale[best[0]], scale[best[1]]))
    return str(words(scale[0], scale[-1]))


def _age_words(low: str, high: str) -> str:
    if low == high:
        return low
    top = high.split("-")[-1]
    return f"{low.split('-')[0]}+" if top.endswith("+") else f"{low.split('-')[0]}-{top}"


def _dependants_words(low: str, high: str) -> str:
    def children(n: str) -> str:
        return f"{n} child" if n == "1" else f"{n} children"

    if low == high:
        return "no children" if low == "0" else children(low)
    if low == "0":
        return f"up to {children(high)}"
    return f"{low}-{high} children"


def _salary_words(low: str, high: str) -> str:
    if low == high:
        return SALARY_WORDS[low]
    top = SALARY_WORDS[high].split("-")[-1]
    if high == "100k+":
        return f"{SALARY_WORDS[low].split('-')[0].replace('under ', '')}k+"
    if low == "<20k":
        return f"under £{top.lstrip('£')}"
    return f"{SALARY_WORDS[low].split('-')[0]}-{top}"


def model_path() -> Path:
    return Path(str(resources.files("badges.insights").joinpath(MODEL_FILE)))


def model_text(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=1, ensure_ascii=False) + "\n"


@cache
def shipped_model() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("badges.insights").joinpath(MODEL_FILE).read_text())
    return loaded


def segment_keys() -> tuple[str, ...]:
    return tuple(segment["id"] for segment in shipped_model()["segments"])


def segment_descriptions() -> dict[str, str]:
    return {segment["id"]: segment["description"] for segment in shipped_model()["segments"]}


@cache
def _centroids() -> np.ndarray[Any, Any]:
    return np.array([segment["centroid"] for segment in shipped_model()["segments"]])


def segments_of(
    age_range: Sequence[str | None],
    dependants: Sequence[str | None],
    salary_bracket: Sequence[str | None],
    region: Sequence[str | None],
) -> list[str | None]:
    """Each member's segment (nearest centroid of the shipped model); None without all four
    features. By table: every combination of the four is placed once (`_placements`), and each
    member's combination is looked up (a million members in well under a second)."""
    if not len(age_range):
        return []
    code = np.zeros(len(age_range), dtype=np.int64)
    known = np.ones(len(age_range), dtype=bool)
    for values, index in zip((age_range, dependants, salary_bracket, region), _indexes(), strict=True):
        found = pl.Series(list(values), dtype=pl.String).replace_strict(index, default=None, return_dtype=pl.Int64)
        known &= found.is_not_null().to_numpy()
        code = code * len(index) + found.fill_null(0).to_numpy()
    keys = np.array(segment_keys(), dtype=object)[_placements()[code]]
    keys[~known] = None
    return list(keys)


def segment_of(
    age_range: str | None, dependants: str | None, salary_bracket: str | None, region: str | None
) -> str | None:
    """One member's segment, as `segments_of` places it, in plain Python: what one member's
    comparison needs (a frame for one row cost most of that request's time)."""
    code = 0
    for value, index in zip((age_range, dependants, salary_bracket, region), _indexes(), strict=True):
        found = index.get(value) if value is not None else None
        if found is None:
            return None
        code = code * len(index) + found
    return segment_keys()[int(_placements()[code])]


@cache
def _indexes() -> tuple[dict[str, int], ...]:
    """Each feature's values in `segments_of`'s code order."""
    return tuple(
        {value: i for i, value in enumerate(scale)} for scale in (AGE_RANGES, DEPENDANTS, SALARY_BRACKETS, regions())
    )


@cache
def _placements() -> np.ndarray[Any, Any]:
    """The segment of every combination of the four features, in `segments_of`'s code order."""
    combos = list(itertools.product(AGE_RANGES, DEPENDANTS, SALARY_BRACKETS, regions()))
    matrix, _ = features(*(list(column) for column in zip(*combos, strict=True)))
    return nearest(matrix, _centroids())


def nearest(matrix: np.ndarray[Any, Any], centroids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Each row's nearest centroid (squared distance as |x|^2 - 2 x.c + |c|^2: no array of rows by
    centroids by features, so a million members take megabytes)."""
    distances = -2 * matrix @ centroids.T + (centroids**2).sum(axis=1)[None, :]
    return np.argmin(distances, axis=1)


if __name__ == "__main__":
    model_path().write_text(model_text(build_model()))
    for segment in shipped_model.__wrapped__()["segments"]:
        print(segment["id"], f"{segment['share']:.1%}", segment["description"])
