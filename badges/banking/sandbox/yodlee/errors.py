"""Yodlee's error shape, raised by routes and dependencies and rendered by the app's handler."""

from __future__ import annotations

import secrets

from fastapi.responses import JSONResponse


class YodleeError(Exception):
    """An API error: rendered as Yodlee's `{errorCode, errorMessage, referenceCode}` with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        return error(self.status, self.code, self.message)


def error(status: int, code: str, message: str) -> JSONResponse:
    """Yodlee's error shape."""
    body = {"errorCode": code, "errorMessage": message, "referenceCode": f"sandbox-{secrets.token_hex(6)}"}
    return JSONResponse(body, status_code=status)
