"""Segments, "people like you" (badges/insights/segments.py): the shipped model is what its seed rebuilds,
fitted on the synthetic reference population alone, every segment has a plain-words description,
and a segment is a dimension of the peer release."""

from __future__ import annotations

import gc
import inspect
import random
from collections.abc import Iterator

import numpy as np
import pytest

from badges.domain.peers import PeerInput
from badges.insights import segments
from badges.insights.peers import ReleasePlan, levels, peer_frame, release
from badges.insights.segments import (
    build_model,
    features,
    model_path,
    model_text,
    nearest,
    reference_population,
    segment_descriptions,
    segment_keys,
    segment_of,
    segments_of,
    shipped_model,
)


@pytest.fixture(autouse=True)
def _free_opendp_objects() -> Iterator[None]:
    """OpenDP's objects are freed now: left to a later collection, their finalisers could run
    inside a workflow sandbox of a test that follows, which refuses what they call."""
    yield
    gc.collect()


def test_the_shipped_model_is_what_its_seed_rebuilds_from_the_reference_population() -> None:
    assert model_text(build_model()) == model_path().read_text()
    # The fit reads nothing but the seed and the size: no member, no database, no file.
    assert list(inspect.signature(build_model).parameters) == ["seed", "size"]
    assert reference_population(7, 100) == reference_population(7, 100) != reference_population(8, 100)
    assert "badges.db" not in inspect.getsource(segments)


def test_every_segment_has_a_description_in_plain_words() -> None:
    described = segment_descriptions()
    assert list(described) == list(segment_keys()) and len(described) == segments.SEGMENTS
    for text in described.values():
        age, children, salary, region = text.split(", ")
        assert age[0].isdigit() and "child" in children and "£" in salary and region


def test_a_member_is_placed_by_their_circumstances_alone_and_needs_all_four() -> None:
    placed = segments_of(
        ["18-24", "65+", "65+", None],
        ["0", "0", "0", "1"],
        ["<20k", "<20k", "<20k", "30-45k"],
        ["North West", "London", "London", "London"],
    )
    assert placed[0] is not None and placed[1] == placed[2] != placed[0] and placed[3] is None
    young = segment_descriptions()[placed[0]]
    assert young.startswith("18-24")
    # The lookup table places everyone as the nearest centroid does.
    people = reference_population(5, 2000)
    columns = (people["age_range"], people["dependants"], people["salary_bracket"], people["region"])
    matrix, _ = features(*columns)
    direct = [
        segment_keys()[k] for k in nearest(matrix, np.array([s["centroid"] for s in shipped_model()["segments"]]))
    ]
    assert segments_of(*columns) == direct
    # One member at a time (a comparison's request), the same placement, unknown values included.
    odd = [("18-24", "0", "<20k", "Atlantis"), ("", "0", "<20k", "London"), ("65+", "9", "<20k", "London")]
    for row in [*zip(*columns, strict=True), *odd]:
        assert segment_of(*row) == segments_of(*([value] for value in row))[0], row


def test_a_segment_group_appears_in_a_release() -> None:
    rng = random.Random(11)
    inputs = [
        PeerInput(
            savings_rate=rng.gauss(0.1, 0.05),
            salary_minor=250_000,
            postcode_district="M1",
            age_range="25-34",
            dependants=0,
            salary_bracket="30-45k",
        )
        for _ in range(3000)
    ]
    frame = peer_frame(inputs)  # keys as their index in the level's public keys
    key = segment_keys()[frame["segment"][0]]
    assert frame["segment"].n_unique() == 1
    assert [level.name for level in levels("segment")] == ["segment", "all"]
    plan = ReleasePlan(dimensions=("segment",), targets=(), epsilon=1.0, min_group_size=20, false_pass=1e-9)
    found = release(frame, plan)
    published = {(g.dimension, g.level, g.key) for g in found.groups}
    assert ("segment", "segment", key) in published
    # The other segments' keys are public too, but empty: none is published on noise.
    assert {k for d, level, k in published if level == "segment"} == {key}
