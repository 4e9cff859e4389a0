"""The one bank one can link in the Yodlee sandbox: Yodlee's own test site, "Dag Site"."""

from __future__ import annotations

PROVIDER = {"id": 16441, "name": "Dag Site"}
