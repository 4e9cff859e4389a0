"""Plaid's transactions in our terms: signs flipped (positive = money in), exact minor units,
dates parsed, the v2 category kept."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from badges.banking.plaid import failure_kind, transaction_of
from badges.banking.provider import ProviderError
from badges.domain.banking import to_minor


def plaid_json(amount: float, **extra: object) -> dict[str, object]:
    return {
        "transaction_id": "t1",
        "account_id": "a1",
        "amount": amount,
        "iso_currency_code": "GBP",
        "date": "2026-11-20",
        "authorized_date": "2026-11-19",
        "name": "LADBROKES",
        "merchant_name": "Ladbrokes",
        "pending": False,
        "pending_transaction_id": None,
        "personal_finance_category": {
            "primary": "ENTERTAINMENT",
            "detailed": "ENTERTAINMENT_CASINOS_AND_GAMBLING",
            "confidence_level": "HIGH",
        },
        **extra,
    }


def test_money_out_is_negative_and_exact() -> None:
    spent = transaction_of(plaid_json(19.99))
    assert spent.amount_minor == -1999
    assert spent.posted_date == date(2026, 11, 20) and spent.authorized_date == date(2026, 11, 19)
    assert spent.category_detailed == "ENTERTAINMENT_CASINOS_AND_GAMBLING"
    assert spent.description == "LADBROKES"  # no original description: the name
    assert transaction_of(plaid_json(-2500.0, original_description="ACME PAYROLL")).amount_minor == 250_000
    assert transaction_of(plaid_json(-2500.0, original_description="ACME PAYROLL")).description == "ACME PAYROLL"


def test_the_category_confidence_and_merchant_code_are_kept() -> None:
    kept = transaction_of(plaid_json(19.99, merchant_category_code="7995"))
    assert kept.category_confidence_level == "HIGH" and kept.mcc == "7995"
    bare = transaction_of(plaid_json(19.99, personal_finance_category=None, merchant_category_code=None))
    assert bare.category_confidence_level is None and bare.mcc is None and bare.category_detailed is None


@pytest.mark.parametrize(("amount", "minor"), [("0.1", 10), (0.29, 29), ("1234.565", 123457), (Decimal("-0.01"), -1)])
def test_to_minor_rounds_through_decimal(amount: object, minor: int) -> None:
    assert to_minor(amount, money_out_positive=False) == minor  # type: ignore[arg-type]


def test_a_transaction_without_a_date_is_refused() -> None:
    with pytest.raises(ProviderError):
        transaction_of(plaid_json(1.0, date=None))


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, {"error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED"}, "login_required"),
        (400, {"error_code": "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"}, "mutation_during_pagination"),
        (429, {"error_type": "RATE_LIMIT_EXCEEDED", "error_code": "TRANSACTIONS_SYNC_LIMIT"}, "rate_limited"),
        (500, {"error_type": "API_ERROR", "error_code": "INTERNAL_SERVER_ERROR"}, "unavailable"),
        (400, {"error_type": "INVALID_INPUT", "error_code": "INVALID_ACCESS_TOKEN"}, "gone"),
        (400, {"error_type": "INVALID_INPUT", "error_code": "INVALID_API_KEYS"}, "invalid"),
    ],
)
def test_plaid_errors_map_to_what_we_do_about_them(status: int, error: dict[str, str], kind: str) -> None:
    assert failure_kind(status, error) == kind
