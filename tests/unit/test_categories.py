"""The one table from provider categories and merchant codes into the programme's taxonomy."""

from __future__ import annotations

from badges.banking.sandbox.catalogue import UK, US
from badges.domain.banking import CATEGORY_PRIMARIES
from badges.domain.categories import (
    CONFIDENT,
    PLAID_DETAILED,
    PLAID_PRIMARY,
    Categorised,
    SpendingCategory,
    from_mcc,
    from_provider,
    merchant_label,
)

C = SpendingCategory


def test_every_plaid_primary_and_listed_detailed_category_maps() -> None:
    assert set(PLAID_PRIMARY) == set(CATEGORY_PRIMARIES)
    for detailed in PLAID_DETAILED:
        assert any(detailed.startswith(primary + "_") for primary in CATEGORY_PRIMARIES), detailed


def test_what_the_behaviour_badges_read_is_exact() -> None:
    assert from_provider("FOOD_AND_DRINK_FAST_FOOD", "FOOD_AND_DRINK", "VERY_HIGH") == Categorised(
        C.FAST_FOOD, "provider", 0.97
    )
    assert from_provider("ENTERTAINMENT_CASINOS_AND_GAMBLING", "ENTERTAINMENT").category is C.GAMBLING  # type: ignore[union-attr]
    assert from_provider("TRANSFER_OUT_SAVINGS", "TRANSFER_OUT").category is C.SAVINGS  # type: ignore[union-attr]
    # Money back from savings is savings undone; card repayments are neither spending nor saving.
    assert from_provider("TRANSFER_IN_SAVINGS", "TRANSFER_IN").category is C.SAVINGS  # type: ignore[union-attr]
    assert from_provider("TRANSFER_IN_ACCOUNT_TRANSFER", "TRANSFER_IN").category is C.TRANSFER  # type: ignore[union-attr]
    assert from_provider("LOAN_PAYMENTS_CREDIT_CARD_PAYMENT", "LOAN_PAYMENTS").category is C.DEBT_REPAYMENT  # type: ignore[union-attr]
    assert from_provider("INCOME_WAGES", "INCOME").category is C.INCOME_SALARY  # type: ignore[union-attr]


def test_confidence_follows_the_provider_and_a_bare_primary_is_never_confident() -> None:
    low = from_provider("FOOD_AND_DRINK_FAST_FOOD", "FOOD_AND_DRINK", "LOW")
    assert low is not None and low.confidence < CONFIDENT
    by_primary = from_provider("FOOD_AND_DRINK_OTHER_FOOD_AND_DRINK", "FOOD_AND_DRINK", "VERY_HIGH")
    assert by_primary is not None and by_primary.category is C.EATING_OUT and by_primary.confidence < CONFIDENT
    assert from_provider(None, None) is None and from_provider("SOMETHING_NEW", "NEW") is None


def test_a_merchant_code_settles_the_category() -> None:
    assert from_mcc("5814") is C.FAST_FOOD and from_mcc("7995") is C.GAMBLING and from_mcc("5411") is C.GROCERIES
    assert from_mcc("0000") is None and from_mcc("abcd") is None and from_mcc(None) is None
    # Coffee shops trade under the fast-food code: the provider's coffee wins there.
    assert from_provider("FOOD_AND_DRINK_COFFEE", "FOOD_AND_DRINK", "HIGH", "5814").category is C.EATING_OUT  # type: ignore[union-attr]
    # A fast-food chain the provider filed under restaurants is fast food by its code.
    assert from_provider("FOOD_AND_DRINK_RESTAURANT", "FOOD_AND_DRINK", "HIGH", "5814").category is C.FAST_FOOD  # type: ignore[union-attr]


def test_the_sandbox_merchants_land_where_their_persona_says() -> None:
    for market in (US, UK):
        for merchant in market.fast_food:
            assert from_provider(merchant.category.detailed, merchant.category.primary).category is C.FAST_FOOD  # type: ignore[union-attr]
        for merchant in market.bookmakers:
            assert from_provider(merchant.category.detailed, merchant.category.primary).category is C.GAMBLING  # type: ignore[union-attr]


def test_a_merchant_reads_the_same_on_every_line() -> None:
    assert merchant_label("DRAFTKINGS *SPORTSBOOK 4411", "DraftKings") == "draftkings"
    # Without the provider's merchant name: the description without numbers, months and bank words.
    one = merchant_label("CARD PAYMENT TO TESCO STORES 2041 ON 03 MAR", None)
    assert one == merchant_label("CARD PAYMENT TO TESCO STORES 3310 ON 21 NOV", None) == "tesco stores"
    assert merchant_label("ONLINE TRANSFER TO SAV XXXXXX1234", None) == "online transfer sav"
    assert merchant_label("SAINSBURYS", None) != merchant_label("TESCO", None)
    assert merchant_label("1234 5678", None) == "1234 5678"  # nothing but numbers: kept, not empty
