"""Request bodies the sandbox reads: Plaid's field names; unknown fields are ignored, as Plaid's clients send many.

`parse` turns a validation failure into Plaid's MISSING_FIELDS or INVALID_FIELD error.
"""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from badges.banking.sandbox.plaid import errors

M = TypeVar("M", bound=BaseModel)
DEFAULT_INSTITUTION = "ins_109508"


def parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        problems = error.errors()
        missing = [".".join(map(str, problem["loc"])) for problem in problems if problem["type"] == "missing"]
        if missing:
            raise errors.missing_fields(missing) from None
        where = ".".join(map(str, problems[0]["loc"]))
        raise errors.invalid_field(f"{where}: {problems[0]['msg']}") from None


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WithAccessToken(_Request):
    access_token: str


class LinkUser(_Request):
    client_user_id: str


class LinkTokenCreate(_Request):
    client_name: str
    language: str
    country_codes: list[str] = Field(min_length=1)
    user: LinkUser
    webhook: str | None = None
    access_token: str | None = None  # update mode


class PublicTokenOptions(_Request):
    webhook: str | None = None
    override_username: str | None = None


class SandboxPublicTokenCreate(_Request):
    institution_id: str
    initial_products: list[str] = Field(min_length=1)
    options: PublicTokenOptions = PublicTokenOptions()
    user_id: str | None = None  # seeds the history with the persona and institution


class PublicTokenExchange(_Request):
    public_token: str


class InstitutionGet(_Request):
    institution_id: str
    country_codes: list[str] = Field(min_length=1)


class SyncOptions(_Request):
    include_original_description: bool | None = None


class TransactionsSync(WithAccessToken):
    cursor: str = ""
    count: int = Field(100, ge=1, le=500)
    options: SyncOptions = SyncOptions()


class VerificationKeyGet(_Request):
    key_id: str


class FireWebhook(WithAccessToken):
    webhook_code: str
    webhook_type: str | None = None


class CustomTransaction(_Request):
    date_transacted: date
    date_posted: date
    amount: float
    description: str
    iso_currency_code: str = "USD"
    # The sandbox's own (Plaid's sandbox takes neither): the account (default: the checking
    # account) and a `personal_finance_category.detailed` (default: by the money's direction).
    account_id: str | None = None
    personal_finance_category: str | None = None


class TransactionsCreate(WithAccessToken):
    transactions: list[CustomTransaction] = Field(min_length=1)


# The sandbox's own endpoints (not Plaid's)


class LinkComplete(_Request):
    link_token: str
    institution_id: str = DEFAULT_INSTITUTION
    username: str | None = None


class PendingTransaction(_Request):
    amount: float
    description: str
    merchant_name: str | None = None
    date_transacted: date | None = None
    account_id: str | None = None


class PendingCreate(WithAccessToken):
    transactions: list[PendingTransaction] = Field(min_length=1)


class PostPending(WithAccessToken):
    transaction_ids: list[str] | None = None  # None: every pending transaction
    amounts: dict[str, float] = {}  # the posted amount where it differs (a tip added, say)


class TransactionModify(WithAccessToken):
    transaction_id: str
    amount: float | None = None
    name: str | None = None


class TransactionsRemove(WithAccessToken):
    transaction_ids: list[str] = Field(min_length=1)
