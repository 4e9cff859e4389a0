"""`python -m badges.cli.train_categoriser`: train the transaction categoriser, evaluate it on
merchants it has never seen, and save both beside the code (`badges/insights/models/`).

Reproducible: the corpus is made from the merchants the project ships and the sandbox banks'
merchants with a fixed seed, so the same command gives the same model and the same figures.
Prints the evaluation as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from badges.banking.sandbox.catalogue import UK, US, Market, Merchant, discretionary
from badges.domain.categories import from_provider
from badges.insights.categoriser import MODELS, evaluate, save, train
from badges.insights.training import Counterparty, corpus, shipped_counterparties


def sandbox_counterparties() -> list[Counterparty]:
    """The sandbox banks' merchants (what the personas' histories are made of), in our taxonomy."""
    parties = []
    for market, country in ((US, "US"), (UK, "UK")):
        for merchant in _market_merchants(market):
            found = from_provider(merchant.category.detailed, merchant.category.primary)
            if found is None:
                continue
            name = merchant.descriptor.split("{")[0].strip(" :#*-") or merchant.descriptor
            low, high = (merchant.low, merchant.high) if merchant.high else (500.0, 3000.0)
            parties.append(
                Counterparty(name, found.category, country, max(low, 1.0), max(high, low, 1.0), merchant.name)
            )
    return parties


def _market_merchants(market: Market) -> Iterator[Merchant]:
    pools = discretionary(market)
    yield from market.employers + market.gig_payers + market.landlords + market.bills + market.card_issuers
    yield from market.fast_food + market.grocers + market.eating_out + market.bookmakers + market.subscriptions
    yield from pools.purchases + pools.subscriptions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS, help="where to save the model (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    examples = corpus(shipped_counterparties() + sandbox_counterparties(), seed=args.seed)
    print(f"training on {len(examples)} statement lines; evaluating with merchants held out…", file=sys.stderr)
    metrics = evaluate(examples)
    path = save(train(examples), metrics, args.out)
    print(f"saved {path}", file=sys.stderr)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
