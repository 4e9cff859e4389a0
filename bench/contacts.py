"""Contacts-release accuracy: how far a contacts group's released savings-rate median and noisy
count are from the truth, for groups of n contacts when each member may be in N groups, at a few
budgets. Prints JSON. Pure computation (no database): the release as `insights/contacts.py` runs
it, with the usefulness cut switched off so every group's median is measured.

    python -m bench.contacts [--groups 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics

from badges.domain.contacts import ContactsPlan
from badges.insights.contacts import contacts_frame, release_contacts

# (N, n, ε): the default limit with full groups, and a small limit; budgets from the default to
# far past anything the yearly budget allows.
CASES = [(25, 25, 1.0), (25, 25, 4.0), (25, 25, 16.0), (25, 25, 40.0), (10, 10, 4.0), (10, 10, 40.0), (5, 5, 60.0)]


def measure(max_contacts: int, size: int, epsilon: float, groups: int, repeats: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    plan = ContactsPlan(max_contacts=max_contacts, min_group_size=2, epsilon=epsilon)
    median_errors: list[float] = []
    count_errors: list[float] = []
    for _ in range(repeats):
        keys = [f"g{i}" for i in range(groups)]
        rates = {key: [min(max(rng.gauss(0.1, 0.15), -1.0), 1.0) for _ in range(size)] for key in keys}
        frame = contacts_frame([k for k in keys for _ in range(size)], [r for k in keys for r in rates[k]])
        # Every group's median measured (no cut): the point is to see what it would be worth.
        result = release_contacts(frame, keys, plan, cut=-math.inf)
        for group in result.groups:
            count_errors.append(abs(group.noisy_count - size))
            found = group.values.get("savingsRate.p50")
            if found is not None:
                median_errors.append(abs(found - statistics.median(rates[group.key])))
    per_group = plan.shares()[1] / max_contacts
    return {
        "maxContacts": max_contacts,
        "groupSize": size,
        "epsilon": epsilon,
        "medianEpsilonPerGroup": round(per_group, 4),
        "nTimesEpsilonPerGroup": round(size * per_group, 2),
        "countScale": round(plan.count_scale(), 2),
        "medianAbsErrorPp": {
            "p50": round(100 * statistics.median(median_errors), 1),
            "p90": round(100 * statistics.quantiles(median_errors, n=10)[-1], 1),
        },
        "countAbsError": {"p50": statistics.median(count_errors)},
        "publishable": plan.futile() is None,  # with a minimum group size of 2
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = [measure(n_max, size, eps, args.groups, args.repeats, seed=i) for i, (n_max, size, eps) in enumerate(CASES)]
    print(json.dumps({"contacts": cases}, indent=1))


if __name__ == "__main__":
    main()
