"""A contacts release's parameters and the decisions that follow from them alone: the noisy count
a contacts group must reach to be published, and the reasons a member is given when theirs is not.
Pure (the OpenDP release is `insights/contacts.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The chance that a group of fewer than the minimum size is published all the same.
FALSE_PASS = 0.05
# Budget shares by ε: the count, then the savings-rate median (the main release's weights).
COUNT_WEIGHT = 1.0
MEDIAN_WEIGHT = 2.0
# n·ε_g a group's median needs to be worth showing, ε_g its privacy loss per group: measured with
# `bench/contacts.py` (docs/api/peers.md, "Contacts").
MEDIAN_RANKS = 25.0


@dataclass(frozen=True)
class ContactsPlan:
    """A contacts release: N (the most contacts a member may have: the privacy unit's bound),
    the fewest consenting members a group needs, and the release's ε."""

    max_contacts: int
    min_group_size: int
    epsilon: float
    false_pass: float = FALSE_PASS

    def shares(self) -> tuple[float, float]:
        """The ε of the count and of the median."""
        total = COUNT_WEIGHT + MEDIAN_WEIGHT
        return self.epsilon * COUNT_WEIGHT / total, self.epsilon * MEDIAN_WEIGHT / total

    def count_scale(self) -> float:
        """The count's Laplace scale: a member moves up to N groups' counts by one each. (OpenDP
        calibrates to min(N, the number of keys): never more than this.)"""
        return self.max_contacts / self.shares()[0]

    def count_cut(self) -> float:
        return self.min_group_size + self.count_scale() * math.log(1 / (2 * self.false_pass))

    def median_cut(self) -> float:
        return MEDIAN_RANKS / (self.shares()[1] / self.max_contacts)

    def cut(self) -> float:
        """The noisy count a group must reach to be published."""
        return max(self.count_cut(), self.median_cut())

    def futile(self) -> str | None:
        """Why no group can be published at this budget, from public parameters alone (None: some may)."""
        if self.cut() <= self.max_contacts:
            return None
        return (
            f"too few for a useful comparison at this privacy budget: a contacts group has at most"
            f" {self.max_contacts} members, and at ε = {self.epsilon:g} a group needs about {math.ceil(self.cut())}"
            " before its figures are more than noise"
        )

    def too_small(self) -> str:
        return (
            f"your contacts group has fewer than {self.min_group_size} consenting members (by a noisy count),"
            " too few to publish"
        )

    def too_noisy(self) -> str:
        return (
            f"too few for a useful comparison at this privacy budget: your contacts group would need about"
            f" {math.ceil(self.median_cut())} consenting members for its median to be more than noise"
        )
