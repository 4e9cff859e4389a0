"""TrueLayer's error shape, raised by routes and dependencies and rendered by the app's handler."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class TrueLayerError(Exception):
    """An API error: rendered as TrueLayer's `{error, error_description, error_details}` with `status`."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{status} {code}: {description}")
        self.status = status
        self.code = code
        self.description = description

    def response(self) -> JSONResponse:
        return error(self.status, self.code, self.description)


def error(status: int, code: str, description: str) -> JSONResponse:
    """TrueLayer's error shape."""
    return JSONResponse({"error": code, "error_description": description, "error_details": {}}, status_code=status)
