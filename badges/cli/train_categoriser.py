"""`python -m badges.cli.train_categoriser`: train the transaction categoriser, evaluate it on
merchants it has never seen, and save both beside the code (`badges/insights/models/`).

Reproducible: the corpus is made from the merchants the project ships and the sandbox banks'
merchants with a fixed seed, so the same command gives the same model and the same figures.
Prints the evaluation as JSON.

`--corrections` adds what members corrected (`PATCH /v1/me/transactions/{id}`), read from the
database (`DATABASE_URL` and the master keys, as the worker reads them): each correction's
merchant label is opened with its member's key in this process's memory only, and a merchant
enters the corpus only when at least `--min-members` members corrected it (in the category most
of them chose), as statement lines written around its label with the range of their amounts.
So the model, which keeps its vocabulary, learns only merchants many members share, never a
line that could name one person; nothing opened is written anywhere else. The model then
depends on the live data: write it with `--out` and ship that directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from badges.banking.sandbox.catalogue import UK, US, Market, Merchant, discretionary
from badges.config import Settings
from badges.db.banking import corrections_for_training
from badges.db.engine import make_engine
from badges.db.keys import KeyStore
from badges.db.master_keys import configured_master_keys
from badges.db.pool import open_pool
from badges.domain.categories import from_provider
from badges.insights.categoriser import MODELS, evaluate, save, train
from badges.insights.training import (
    MIN_CORRECTING_MEMBERS,
    Counterparty,
    MemberCorrection,
    corpus,
    corrected_counterparties,
    shipped_counterparties,
)


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


async def member_corrections() -> list[MemberCorrection]:
    """Every member's corrections, labels opened (see the module's docstring)."""
    settings = Settings()  # type: ignore[call-arg]
    engine = make_engine(settings.database_url, pool_size=2)
    pool = await open_pool(settings.libpq_url, max_size=2)
    try:
        records = await corrections_for_training(pool, KeyStore(engine, configured_master_keys(settings)))
    finally:
        await pool.close()
        await engine.dispose()
    return [MemberCorrection(str(r.user_id), r.label, r.category, r.amounts_minor) for r in records]


def correction_parties(corrections: list[MemberCorrection], min_members: int) -> tuple[list[Counterparty], Any]:
    parties = corrected_counterparties(corrections, min_members)
    summary = {
        "corrections": len(corrections),
        "members": len({c.member for c in corrections}),
        "merchantsCorrected": len({c.label for c in corrections}),
        "merchantsUsed": len({party.name for party in parties}),
        "minMembers": min_members,
    }
    return parties, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS, help="where to save the model (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corrections", action="store_true", help="add members' corrections from the database")
    parser.add_argument(
        "--min-members",
        type=int,
        default=MIN_CORRECTING_MEMBERS,
        help="members who must have corrected a merchant before it is used (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    parties = shipped_counterparties() + sandbox_counterparties()
    summary = None
    if args.corrections:
        corrected, summary = correction_parties(asyncio.run(member_corrections()), args.min_members)
        parties += corrected
        print(f"members' corrections: {json.dumps(summary)}", file=sys.stderr)
    examples = corpus(parties, seed=args.seed)
    print(f"training on {len(examples)} statement lines; evaluating with merchants held out…", file=sys.stderr)
    metrics = evaluate(examples)
    if summary is not None:
        metrics["memberCorrections"] = summary
    path = save(train(examples), metrics, args.out)
    print(f"saved {path}", file=sys.stderr)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
