"""Open-banking provider adapters (Plaid, TrueLayer) and the local sandbox bank (issue 5)."""
