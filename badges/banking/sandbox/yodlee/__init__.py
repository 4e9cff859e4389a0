"""A local Yodlee: the API v1.1 endpoints our adapter uses, with Yodlee's shapes and errors
(`{errorCode, errorMessage, referenceCode}`), so the real adapter is exercised over HTTP without
Yodlee's sandbox. Every call needs `Api-Version: 1.1`.

Emulated: `POST /auth/token` (form `clientId`, `secret`; header `loginName`: a token for that user
or the admin, 30 minutes), `POST /user/register` (admin token), `GET`/`DELETE
/providerAccounts/{id}` (the refresh status: `status`, `dataset[].additionalStatus`,
`updateEligibility`), `GET /accounts?providerAccountId=`, `GET /transactions?accountId&fromDate&
toDate&skip&top` (newest first, `top` ≤ 500) and `GET /transactions/count`. FastLink is stood in
for by `POST /fastlink?redirect&state[&flow=edit&providerAccountId]` with `accessToken` in the
form-encoded body (never in the URL), a page whose links
complete the link as one of the shared personas (`user_good`, `user_saver`, `user_gambler`, …).
Each provider account gets a deterministic history (checking and savings, up to 24 months, in
dollars at US merchants): the shared generator's for the persona chosen.

Not Yodlee, for tests and `make dev` (all under `/_sandbox`):
- `GET /_sandbox/fastlink/complete?<fastlink query>&user=user_saver`: the user finishes FastLink;
  302 to `redirect?providerAccountId=…&status=SUCCESS&state=…` (no browser).
- `POST /_sandbox/faults` `{"status": 429|500|503, "count": N (null: until cleared), "delay_seconds": 0}`,
  `DELETE /_sandbox/faults`, `GET /_sandbox/calls` (Yodlee calls answered so far).
- `POST /_sandbox/tokens/expire`: every token lapses.
- `POST /_sandbox/providerAccounts/{id}/transactions` `{"transactions": [...]}` (our sign:
  negative is money out; `account`: "checking"|"savings"), `.../pending/{transaction_id}/post`,
  `.../require-login` `{"additional_status": "INCORRECT_CREDENTIALS"}`, `.../notify`
  `{"callbackUrl": …}` (posts a `REFRESH.PROCESS_COMPLETED` notification), and
  `GET /_sandbox/providerAccounts/{id}`: everything it holds (ground truth).

Not emulated: other containers (cards, investments, loans), holdings, statements, MFA flows,
the DATA_UPDATES extract endpoints, and Yodlee's refresh timing (a link is complete at once).
"""

from badges.banking.sandbox.yodlee.app import create_yodlee_sandbox

__all__ = ["create_yodlee_sandbox"]
