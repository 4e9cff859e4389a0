"""Plaid's error object, and the errors the sandbox answers with (same types, codes and statuses as Plaid)."""

from __future__ import annotations

from typing import Any

_DOCS = "https://plaid.com/docs/errors/"


class PlaidError(Exception):
    """An API error: rendered as Plaid's error object with `status` as the HTTP status."""

    def __init__(
        self, status: int, error_type: str, error_code: str, message: str, display_message: str | None = None
    ) -> None:
        super().__init__(f"{error_type}/{error_code}: {message}")
        self.status = status
        self.error_type = error_type
        self.error_code = error_code
        self.message = message
        self.display_message = display_message

    def body(self, request_id: str | None) -> dict[str, Any]:
        """The error object; without a request id when nested (in an item or a webhook)."""
        body: dict[str, Any] = {
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_code_reason": None,
            "error_message": self.message,
            "display_message": self.display_message,
            "causes": [],
            "status": self.status,
            "documentation_url": _DOCS,
            "suggested_action": None,
        }
        return body if request_id is None else body | {"request_id": request_id}


def invalid_api_keys() -> PlaidError:
    return PlaidError(
        400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided", "Invalid API keys"
    )


def invalid_access_token() -> PlaidError:
    return PlaidError(400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN", "provided access token is in an invalid format")


def invalid_public_token() -> PlaidError:
    return PlaidError(400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN", "provided public token is expired or invalid")


def invalid_link_token() -> PlaidError:
    return PlaidError(400, "INVALID_INPUT", "INVALID_LINK_TOKEN", "provided link token is expired or invalid")


def invalid_institution(institution_id: str) -> PlaidError:
    return PlaidError(400, "INVALID_INPUT", "INVALID_INSTITUTION", f"invalid institution_id {institution_id!r}")


def invalid_credentials() -> PlaidError:
    return PlaidError(
        400,
        "ITEM_ERROR",
        "INVALID_CREDENTIALS",
        "the provided credentials were not correct",
        "The provided credentials were not correct. Please try again.",
    )


def missing_fields(names: list[str]) -> PlaidError:
    return PlaidError(
        400, "INVALID_REQUEST", "MISSING_FIELDS", f"the following required fields are missing: {', '.join(names)}"
    )


def invalid_field(message: str) -> PlaidError:
    return PlaidError(400, "INVALID_REQUEST", "INVALID_FIELD", message)


def item_login_required() -> PlaidError:
    return PlaidError(
        400,
        "ITEM_ERROR",
        "ITEM_LOGIN_REQUIRED",
        "the login details of this item have changed (credentials, MFA, or required user action) and a user login is "
        "required to update this information. use Link's update mode to restore the item to a good state",
        "The login details of this item have changed. Please log in again.",
    )


def mutation_during_pagination() -> PlaidError:
    return PlaidError(
        400,
        "TRANSACTIONS_ERROR",
        "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
        "Underlying transaction data changed since last page was fetched. Please restart pagination from last update.",
    )


def rate_limit(error_code: str) -> PlaidError:
    return PlaidError(
        429,
        "RATE_LIMIT_EXCEEDED",
        error_code,
        "rate limit exceeded for attempts to access this item. please try again later",
        "Too many attempts. Please try again later.",
    )


def internal_server_error() -> PlaidError:
    return PlaidError(
        500,
        "API_ERROR",
        "INTERNAL_SERVER_ERROR",
        "an unexpected error occurred",
        "Something went wrong. Please try again later.",
    )


def sandbox_webhook_invalid(message: str) -> PlaidError:
    return PlaidError(400, "SANDBOX_ERROR", "SANDBOX_WEBHOOK_INVALID", message)
