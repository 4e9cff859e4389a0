"""Logs free of bearer tokens: the WebSocket may carry its token as `?access_token=` (RFC 6750's
name, for clients that can set no header), and uvicorn logs request targets with their query, in
its access log and in the WebSocket handshake lines it writes to `uvicorn.error`. A filter on both
loggers replaces every `access_token` value before anything is written."""

from __future__ import annotations

import logging
import re

# The query parameter and its value up to the next separator; percent-encoded names too.
ACCESS_TOKEN_VALUE = re.compile(r"((?:^|[?&;\s\"'])access(?:_|%5[Ff])token=)[^&;#\s\"']*", re.IGNORECASE)
REDACTED = "[redacted]"
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    return ACCESS_TOKEN_VALUE.sub(lambda match: match.group(1) + REDACTED, text)


class RedactAccessTokens(logging.Filter):
    """Rewrites a record's message and string arguments with `access_token` values redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                key: redact(value) if isinstance(value, str) else value for key, value in record.args.items()
            }
        return True


def redact_server_logs() -> None:
    """Install the filter on uvicorn's loggers (once, however often the app is built)."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactAccessTokens) for existing in logger.filters):
            logger.addFilter(RedactAccessTokens())
