"""The shipped categoriser: it loads, it knows the merchants the programme cares most about, and
it defers to confident providers."""

from __future__ import annotations

import json

import sklearn

from badges.domain.categories import CONFIDENT, SpendingCategory
from badges.insights.categoriser import MODEL_VERSION, MODELS, categorise, features, load
from badges.insights.training import MemberCorrection, corpus, corrected_counterparties, shipped_counterparties

C = SpendingCategory


def test_the_shipped_model_matches_this_code_and_library() -> None:
    card = json.loads((MODELS / "categoriser.json").read_text())
    assert card["version"] == MODEL_VERSION and card["sklearn"] == sklearn.__version__
    assert card["metrics"]["heldOut"] == "whole merchants" and 0 < card["metrics"]["macroF1"] <= 1
    assert load().version == MODEL_VERSION


def test_statement_lines_of_known_merchants_are_read_right() -> None:
    model = load()
    lines = [
        ("CARD PAYMENT TO GREGGS ON 12 MAR", None, -450),
        ("MCDONALDS #4411 CHICAGO IL", None, -899),
        ("BET365 LONDON GB", None, -2000),
        ("DRAFTKINGS 55120", None, -5000),
        ("TESCO STORES 3021 LEEDS GB", None, -4312),
        ("ACME CORP PAYROLL PPD ID: 99120", None, 310_000),
        ("TO EASY SAVER 4410", None, -20_000),
    ]
    expected = [C.FAST_FOOD, C.FAST_FOOD, C.GAMBLING, C.GAMBLING, C.GROCERIES, C.INCOME_SALARY, C.SAVINGS]
    assert [found.category for found in model.predict(lines)] == expected


def test_digits_and_case_do_not_matter_but_direction_and_size_do() -> None:
    assert features("TESCO 1234", None, -500) == features("tesco 98", None, -600)
    assert features("TESCO", None, -500) != features("TESCO", None, 500)
    assert features("TESCO", None, -500) != features("TESCO", None, -500_000)


def test_a_confident_provider_wins_and_an_unsure_one_asks_the_model() -> None:
    model = load()
    confident = ("MYSTERY 12", None, -1000, "FOOD_AND_DRINK_FAST_FOOD", "FOOD_AND_DRINK", "VERY_HIGH", None)
    unsure = (
        "BET365 LONDON GB",
        None,
        -2000,
        "GENERAL_MERCHANDISE_OTHER_GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE",
        "LOW",
        None,
    )
    nothing = ("PADDY POWER", None, -1000, None, None, None, None)
    first, second, third = categorise(model, [confident, unsure, nothing])
    assert (first.category, first.source) == (C.FAST_FOOD, "provider") and first.confidence >= CONFIDENT
    assert (second.category, second.source) == (C.GAMBLING, "model")
    assert (third.category, third.source) == (C.GAMBLING, "model")


def test_the_corpus_is_reproducible_and_grouped_by_merchant() -> None:
    parties = shipped_counterparties()[:20]
    assert corpus(parties, seed=3, lines_per_party=5) == corpus(parties, seed=3, lines_per_party=5)
    assert {example.group for example in corpus(parties, lines_per_party=2)} == {party.name for party in parties}


def test_a_merchant_enters_training_only_when_enough_members_corrected_it() -> None:
    def said(label: str, category: SpendingCategory, members: range, amount: int = -1250) -> list[MemberCorrection]:
        return [MemberCorrection(f"m{i}", label, category, (amount, amount * 2)) for i in members]

    corrections = [
        *said("corner bookie", C.GAMBLING, range(4)),  # four members: could still name a person's line
        *said("joe's diner", C.FAST_FOOD, range(4)),
        *said("joe's diner", C.EATING_OUT, range(4, 5)),  # five in all, most of them say fast food
        *said("split opinion", C.SHOPPING, range(3)),
        *said("split opinion", C.GROCERIES, range(3, 6)),  # no majority: left out
        *said("payroll co", C.INCOME_SALARY, range(5), amount=250_000),
    ]
    parties = corrected_counterparties(corrections, min_members=5)
    assert {(p.name, p.category, p.country) for p in parties} == {
        ("JOE'S DINER", C.FAST_FOOD, "UK"),
        ("JOE'S DINER", C.FAST_FOOD, "US"),
        ("PAYROLL CO", C.INCOME_SALARY, "UK"),
        ("PAYROLL CO", C.INCOME_SALARY, "US"),
    }
    diner = next(p for p in parties if p.name == "JOE'S DINER")
    assert (diner.low, diner.high, diner.money_in) == (12.5, 25.0, False)  # only the fast-food voters' amounts
    assert next(p for p in parties if p.name == "PAYROLL CO").money_in is True
    lines = corpus(parties, lines_per_party=3)
    assert {line.group for line in lines} == {"JOE'S DINER", "PAYROLL CO"}
    assert corrected_counterparties(corrections, min_members=4) != parties  # the threshold is what kept the bookie out
