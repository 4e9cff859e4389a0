"""The banks one can link in the sandbox: Plaid's own sandbox institutions, ids included."""

from __future__ import annotations

from typing import Any

from badges.banking.sandbox.plaid import errors

_NAMES = {
    "ins_109508": "First Platypus Bank",
    "ins_109509": "First Gingham Credit Union",
    "ins_109510": "Tattersall Federal Credit Union",
    "ins_109511": "Tartan Bank",
    "ins_109512": "Houndstooth Bank",
}
PRODUCTS = ["assets", "auth", "balance", "identity", "transactions"]


def name_of(institution_id: str) -> str:
    name = _NAMES.get(institution_id)
    if name is None:
        raise errors.invalid_institution(institution_id)
    return name


def to_plaid(institution_id: str) -> dict[str, Any]:
    return {
        "institution_id": institution_id,
        "name": name_of(institution_id),
        "products": PRODUCTS,
        "country_codes": ["US", "GB"],
        "routing_numbers": ["011401533"],
        "dtc_numbers": [],
        "oauth": False,
        "connection_availability": "SUPPORTED",
        "url": None,
        "primary_color": None,
        "logo": None,
    }
