"""A local TrueLayer: the auth server and Data API v1 endpoints our adapter uses, with TrueLayer's
shapes and errors, so the real adapter is exercised over HTTP without TrueLayer's sandbox.

Emulated: the auth dialog link (`GET /`), `POST /connect/token` (authorization_code and
refresh_token grants, form-encoded), `POST /v1/reauthuri`, `DELETE /api/delete`, and under
`/data/v1`: `me`, `accounts`, `accounts/{id}/balance`, `accounts/{id}/transactions?from&to` and
`accounts/{id}/transactions/pending`. Access tokens are short-lived and only the newest one per
connection works (as at TrueLayer); refresh tokens are stable; the consent lasts `consent_days`.
Each connection gets a deterministic history (current and savings accounts, up to 24 months of
salary, rent, bills, groceries, fast food, gambling and savings transfers, in pounds at UK
merchants): the shared generator's for the persona the `user` given on authorisation names,
`john` (steady), `saver`, `spender`, `gambler`, `fastfood` (see `history.py`).

Not TrueLayer, for tests and `make dev` (all under `/_sandbox`):
- `GET /_sandbox/authorize?<auth link query>&user=john`: the member "authorises"; answers 302 to
  `redirect_uri?code=…&state=…` (no browser). `GET /` shows a page with that link.
- `POST /_sandbox/faults` `{"status": 429|500|503, "count": N, "delay_seconds": 0}`: the next N
  TrueLayer calls fail so (or are slowed by `delay_seconds`).
- `POST /_sandbox/connections/{credentials_id}/transactions` `{"transactions": [...]}`: new
  booked or pending transactions (fields as TrueLayer's, plus `account`: "current"|"savings").
- `POST /_sandbox/connections/{credentials_id}/pending/{transaction_id}/post`: a pending
  transaction posts (a new booked transaction with a new id, as TrueLayer reports it).
- `POST /_sandbox/connections/{credentials_id}/expire-consent`: the 90 days are over.
- `POST /_sandbox/connections/{credentials_id}/expire-access-token`: the current token lapses.
- `POST /_sandbox/connections/{credentials_id}/revoke-refresh-token`: refreshes get invalid_grant.
- `GET /_sandbox/connections/{credentials_id}`: everything the connection holds (ground truth).

Not emulated: cards (`/data/v1/cards`), standing orders and direct debits, `/connections/extend`,
PKCE, provider selection UI, data-access limits per day, and TrueLayer's `results` pagination
beyond one page (it has none for transactions).
"""

from badges.banking.sandbox.truelayer.app import create_truelayer_sandbox
from badges.banking.sandbox.truelayer.history import generate

__all__ = ["create_truelayer_sandbox", "generate"]
