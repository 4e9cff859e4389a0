"""Insights benchmark: how fast bank data becomes categories and figures. Prints JSON.

- `categorise`: transactions categorised per second on one core (the one mapping table and the
  scikit-learn model together, as the sync runs them), over statement lines from every sandbox
  persona's generated history; and the model alone on the lines the mapping left unsure.
- `recompute`: one member's whole picture, as `evaluate_behaviour` computes it from their stored
  rows after each sync (`picture_of`: 24 months of figures, trends, income, recurring payments,
  health score, prediction, data quality, unusual spending, the badge snapshot), and the badge
  decisions: p50 / p99 over members.
- `unseal`: what opening a transaction's sealed description and merchant name costs (with the
  member's key in the key cache, as `KeyStore.unseal` does for `GET /v1/me/transactions`, a
  correction and the sync's re-categorisation; never on the per-event path), and what an
  evaluation saves by knowing the previous one's notices by digest instead of opening its document.

    python -m bench.insights [--members 200] [--lines 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import resource
import statistics
import time
import uuid
import zlib
from datetime import UTC, date, datetime
from typing import Any, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.activities.behaviour import picture_of
from badges.api.catalogue import read_catalogue_file
from badges.banking.sandbox import history
from badges.banking.sandbox.catalogue import UK, US
from badges.banking.sandbox.personas import PERSONAS
from badges.db.insights import AccountRow, BehaviourInputs, ConnectionRow, TransactionRow
from badges.db.keys import DataKeyMaterial, KeyStore, MasterKeys, digest_key
from badges.domain.catalogue import parse_catalogue
from badges.domain.categories import CONFIDENT, from_provider
from badges.domain.definitions import BadgeDefinition
from badges.domain.financial import decide
from badges.insights.categoriser import categorise, load

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
Line = tuple[str, str | None, int, str | None, str | None, str | None, str | None]


def persona_lines(seed: str, months: float = 24) -> list[Line]:
    lines: list[Line] = []
    for persona, market in itertools.product(PERSONAS.values(), (US, UK)):
        generated = history.generate(persona, seed=seed, today=TODAY, months=months, market=market)
        for t in generated.transactions:
            level = None if t.mcc is None else "VERY_HIGH"
            lines.append(
                (t.name, t.merchant_name, -round(t.amount * 100), t.category.detailed, t.category.primary, level, t.mcc)
            )
    return lines


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_categorise(total: int) -> dict[str, Any]:
    model = load()
    lines: list[Line] = []
    seed = 0
    while len(lines) < total:
        lines += persona_lines(f"bench-{seed}")
        seed += 1
    lines = lines[:total]
    model.predict([line[:3] for line in lines[:100]])  # warm up
    started, cpu = time.perf_counter(), cpu_seconds()
    for start in range(0, len(lines), 5_000):  # a sync writes batches of this order
        categorise(model, lines[start : start + 5_000])
    wall, used = time.perf_counter() - started, cpu_seconds() - cpu
    unsure = [line for line in lines if (found := from_provider(*line[3:])) is None or found.confidence < CONFIDENT]
    model_started = time.perf_counter()
    model.predict([line[:3] for line in unsure])
    model_wall = time.perf_counter() - model_started
    return {
        "transactions": len(lines),
        "per_second": round(len(lines) / wall),
        "per_cpu_second": round(len(lines) / used) if used else None,
        "decided_by_model_share": round(len(unsure) / len(lines), 3),
        "model_alone_per_second": round(len(unsure) / model_wall) if unsure else None,
        "target_per_second": 50_000,
    }


def member_inputs(persona_name: str, seed: str) -> BehaviourInputs:
    """A member's 24 months as the evaluation reads them from the database: categorised as the
    sync stores them, merchants known by a digest."""
    market = US if zlib.crc32(seed.encode()) % 2 else UK  # the same members every run (`hash` is salted)
    generated = history.generate(PERSONAS[persona_name], seed=seed, today=TODAY, months=24, market=market)
    lines: list[Line] = [
        (t.name, t.merchant_name, -round(t.amount * 100), t.category.detailed, t.category.primary, None, t.mcc)
        for t in generated.transactions
    ]
    rows = [
        TransactionRow(
            t.transaction_id,
            t.account_id,
            t.date,
            line[2],
            found.category.value,
            found.confidence,
            hashlib.sha256((t.merchant_name or t.name).encode()).digest()[:16],
            t.pending,
        )
        for t, line, found in zip(generated.transactions, lines, categorise(load(), lines), strict=True)
    ]
    accounts = [
        AccountRow(
            account.account_id,
            "depository",
            account.subtype,
            round(account.opening_balance * 100)
            + sum(r.amount_minor for r in rows if r.account_id == account.account_id),
        )
        for account in (generated.checking, generated.savings)
    ]
    return BehaviourInputs("UTC", accounts, rows, [ConnectionRow(uuid.uuid4(), "active", NOW)])


def typical_document() -> dict[str, Any]:
    """What one evaluation keeps (sealed) for the dashboard."""
    return picture_of(member_inputs("user_spender", "document"), TODAY, NOW).document()


def bench_recompute(members: int) -> dict[str, Any]:
    specs = parse_catalogue(read_catalogue_file("")).badges
    catalogue = [BadgeDefinition.from_spec(badge_id, 1, spec) for badge_id, spec in sorted(specs.items())]
    names = sorted(PERSONAS)
    histories = [member_inputs(names[n % len(names)], f"m{n}") for n in range(members)]
    timings = []
    for inputs in histories:
        started = time.perf_counter()
        picture = picture_of(inputs, TODAY, NOW)
        decide(catalogue, picture.snapshot)
        json.dumps(picture.document())
        timings.append((time.perf_counter() - started) * 1000)
    ordered = sorted(timings)
    return {
        "members": members,
        "transactions_per_member": round(statistics.mean(len(inputs.transactions) for inputs in histories)),
        "months": 24,
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
        "target_p99_ms": 50,
    }


def sealing_keys() -> tuple[KeyStore, DataKeyMaterial]:
    """A key store holding one member's key in its cache, as a worker does after its first use
    (no database: the cache answers)."""
    raw = AESGCM.generate_key(bit_length=256)
    material = DataKeyMaterial(uuid.uuid4().hex, str(uuid.uuid4()), AESGCM(raw), digest_key(raw))
    keys = KeyStore(cast(AsyncEngine, None), MasterKeys([("bench", AESGCM.generate_key(bit_length=256))]))
    keys.remember_created(material)
    return keys, material


async def bench_unseal(lines: list[Line], document: dict[str, Any]) -> dict[str, Any]:
    keys, material = sealing_keys()
    sealed = [
        (await keys.seal(material.owner, description.encode()), await keys.seal(material.owner, merchant.encode()))
        if merchant is not None
        else (await keys.seal(material.owner, description.encode()), None)
        for description, merchant, *_ in lines
    ]
    started = time.perf_counter()
    for description, merchant in sealed:
        (await keys.unseal(description)).decode()
        if merchant is not None:
            (await keys.unseal(merchant)).decode()
    through_store = time.perf_counter() - started
    started = time.perf_counter()
    for description, merchant in sealed:
        material.decrypt(description.partition(b":")[2])
        if merchant is not None:
            material.decrypt(merchant.partition(b":")[2])
    decrypt_only = time.perf_counter() - started
    # What each evaluation did before notices were kept by digest: open the previous document.
    kept = await keys.seal(material.owner, json.dumps(document, sort_keys=True, default=str).encode())
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        json.loads(await keys.unseal(kept))
    opened = (time.perf_counter() - started) / runs
    notice_keys = [f"reach:badge-{n}:3" for n in range(10)]
    started = time.perf_counter()
    for _ in range(runs):
        await keys.digests(material.owner, notice_keys)
    digested = (time.perf_counter() - started) / runs
    return {
        "transactions": len(sealed),
        "with_merchant_name_share": round(sum(m is not None for _, m in sealed) / len(sealed), 3),
        "per_transaction_us": round(through_store / len(sealed) * 1e6, 2),
        "decrypt_only_per_transaction_us": round(decrypt_only / len(sealed) * 1e6, 2),
        "previous_document_kib": round(len(kept) / 1024, 1),
        "previous_document_open_us": round(opened * 1e6, 1),
        "notice_digests_us": round(digested * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    result = {
        "categorise": bench_categorise(args.lines),
        "recompute": bench_recompute(args.members),
        "unseal": asyncio.run(bench_unseal(persona_lines("unseal")[:20_000], typical_document())),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
