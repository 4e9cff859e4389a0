"""A local TrueLayer: the auth server and Data API v1 endpoints our adapter uses, with TrueLayer's
shapes and errors, so the real adapter is exercised over HTTP without TrueLayer's sandbox.

Emulated: the auth dialog link (`GET /`), `POST /connect/token` (authorization_code and
refresh_token grants, form-encoded), `POST /v1/reauthuri`, `DELETE /api/delete`, and under
`/data/v1`: `me`, `accounts`, `accounts/{id}/balance`, `accounts/{id}/transactions?from&to` and
`accounts/{id}/transactions/pending`. Access tokens are short-lived and only the newest one per
connection works (as at TrueLayer); refresh tokens are stable; the consent lasts `consent_days`.
Each connection gets a deterministic history (current and savings accounts, up to 24 months of
salary, rent, bills, groceries, fast food, gambling and savings transfers) chosen by the `user`
given on authorisation: `john` (steady), `saver`, `spender`, `gambler`, `fastfood`.

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

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

SCOPES = ("info", "accounts", "balance", "transactions", "offline_access")
PROVIDER = {
    "display_name": "Mock Bank",
    "logo_uri": "https://truelayer-provider-assets.s3.amazonaws.com/global/logos/mock.svg",
    "provider_id": "mock",
}
DAYS_PER_MONTH = 30.4
PENDING_DAYS = 2  # card payments of the last two days are still pending at the bank


@dataclass(frozen=True)
class Habits:
    """How a persona lives: pay, rent and savings a month (pounds), card spending visits a week."""

    salary: int
    rent: int
    savings: int
    groceries: float
    fast_food: float
    gambling: float


PERSONAS: dict[str, Habits] = {
    "john": Habits(salary=2600, rent=950, savings=200, groceries=2, fast_food=1, gambling=0),
    "saver": Habits(salary=2900, rent=900, savings=700, groceries=2, fast_food=0.3, gambling=0),
    "spender": Habits(salary=2400, rent=1000, savings=0, groceries=3, fast_food=3, gambling=0.3),
    "gambler": Habits(salary=2300, rent=850, savings=0, groceries=2, fast_food=2, gambling=4),
    "fastfood": Habits(salary=2200, rent=800, savings=50, groceries=1, fast_food=6, gambling=0),
}


@dataclass(frozen=True)
class Spending:
    """A kind of card spending: where (descriptor pattern, merchant), how much, how TrueLayer
    classifies it."""

    habit: str  # the Habits field giving visits a week
    merchants: tuple[tuple[str, str], ...]
    low: float
    high: float
    classification: tuple[str, str]


SPENDING = (
    Spending(
        "groceries",
        (("TESCO STORES {n}", "Tesco"), ("SAINSBURYS S/MKTS {n}", "Sainsbury's"), ("LIDL GB {n}", "Lidl")),
        12,
        95,
        ("Food & Dining", "Groceries"),
    ),
    Spending(
        "fast_food",
        (("MCDONALDS {n}", "McDonald's"), ("KFC {n}", "KFC"), ("GREGGS {n}", "Greggs"), ("DELIVEROO {n}", "Deliveroo")),
        4,
        28,
        ("Food & Dining", "Fast Food"),
    ),
    Spending(
        "gambling",
        (("BET365 {n}", "Bet365"), ("WILLIAM HILL {n}", "William Hill"), ("PADDY POWER {n}", "Paddy Power")),
        5,
        60,
        ("Entertainment", "Gambling"),
    ),
)
# (descriptor, merchant, day of month, low, high): monthly direct debits.
BILLS = (
    ("BRITISH GAS {n}", "British Gas", 14, 60, 140),
    ("THAMES WATER {n}", "Thames Water", 9, 25, 45),
    ("EE LIMITED {n}", "EE", 20, 25, 40),
)


@dataclass
class Posting:
    """One transaction as the sandbox bank holds it; rendered in TrueLayer's shape."""

    transaction_id: str
    account_id: str
    timestamp: datetime
    description: str
    amount: Decimal  # TrueLayer's sign: negative for money out
    transaction_category: str
    classification: list[str]
    merchant_name: str | None = None
    provider_category: str = "POS"

    def render(self, currency: str, running_balance: Decimal | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "normalised_provider_transaction_id": f"txn-{self.transaction_id[:20]}",
            "provider_transaction_id": self.transaction_id[::-1][:24],
            "timestamp": self.timestamp.isoformat(),
            "description": self.description,
            "amount": float(self.amount),
            "currency": currency,
            "transaction_type": "DEBIT" if self.amount < 0 else "CREDIT",
            "transaction_category": self.transaction_category,
            "transaction_classification": self.classification,
            "meta": {
                "provider_category": self.provider_category,
                "provider_transaction_category": self.provider_category,
            },
        }
        if self.merchant_name:
            item["merchant_name"] = self.merchant_name
        if running_balance is not None:
            item["running_balance"] = {"amount": float(running_balance), "currency": currency}
        return item


@dataclass
class Connection:
    """A TrueLayer "credentials": one member's consent at one provider, with its data."""

    credentials_id: str
    client_id: str
    user: str
    accounts: list[dict[str, Any]]
    opening_balances: dict[str, Decimal]
    booked: list[Posting]
    pending: list[Posting]
    consent_created_at: datetime
    consent_expires_at: datetime
    refresh_token: str | None
    access_token: str | None = None
    access_expires_at: datetime | None = None
    rng: Random = field(default_factory=Random)

    def account(self, account_id: str) -> dict[str, Any] | None:
        return next((item for item in self.accounts if item["account_id"] == account_id), None)


@dataclass
class Fault:
    status: int | None = None
    count: int = 0
    delay_seconds: float = 0.0


@dataclass
class Bank:
    """All state of the sandbox; one per app."""

    client_id: str
    client_secret: str
    access_token_seconds: int
    consent_days: int
    months: int
    seed: str
    today: date | None
    connections: dict[str, Connection] = field(default_factory=dict)
    # code: (client id, redirect_uri, credentials id when re-authenticating, user)
    codes: dict[str, tuple[str, str, str | None, str]] = field(default_factory=dict)
    reauth: dict[str, str] = field(default_factory=dict)  # reauth session id: credentials id
    fault: Fault = field(default_factory=Fault)
    created: int = 0

    def by_access_token(self, token: str) -> Connection | None:
        for connection in self.connections.values():
            if connection.access_token == token:
                return connection
        return None

    def by_refresh_token(self, token: str) -> Connection | None:
        for connection in self.connections.values():
            if connection.refresh_token == token:
                return connection
        return None


def error(status: int, code: str, description: str) -> JSONResponse:
    """TrueLayer's error shape."""
    return JSONResponse({"error": code, "error_description": description, "error_details": {}}, status_code=status)


@dataclass(frozen=True)
class History:
    accounts: list[dict[str, Any]]  # TrueLayer account resources: current, then savings
    opening_balances: dict[str, Decimal]
    postings: list[Posting]


def _hex_id(rng: Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def generate(user: str, seed: str, today: date, months: int) -> History:
    """A persona's accounts, opening balances and booked history (oldest first) through
    yesterday: the same for the same user, seed and day."""
    habits = PERSONAS.get(user, PERSONAS["john"])
    rng = Random(hashlib.sha256(f"{user}|{seed}".encode()).digest())
    current_id, savings_id = _hex_id(rng), _hex_id(rng)
    sort_code = f"{rng.randrange(10, 99)}-{rng.randrange(10, 99)}-{rng.randrange(10, 99)}"

    def account(account_id: str, kind: str, name: str) -> dict[str, Any]:
        number = f"{rng.randrange(10**7, 10**8)}"
        return {
            "update_timestamp": datetime.combine(today, datetime.min.time(), UTC).isoformat(),
            "account_id": account_id,
            "account_type": kind,
            "display_name": name,
            "currency": "GBP",
            "account_number": {
                "iban": f"GB{rng.randrange(10, 99)}MOCK{sort_code.replace('-', '')}{number}",
                "number": number,
                "sort_code": sort_code,
                "swift_bic": "MOCKGB21",
            },
            "provider": PROVIDER,
        }

    accounts = [account(current_id, "TRANSACTION", "Current Account"), account(savings_id, "SAVINGS", "Easy Saver")]
    openings = {current_id: Decimal(rng.randrange(300, 1500)), savings_id: Decimal(rng.randrange(0, 3000))}
    postings: list[Posting] = []

    def post(
        day: date,
        description: str,
        amount: float,
        category: str,
        classification: tuple[str, ...] = (),
        merchant: str | None = None,
        code: str = "POS",
        account_id: str = current_id,
    ) -> None:
        moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=rng.randrange(6 * 60, 22 * 60))
        postings.append(
            Posting(
                transaction_id=_hex_id(rng),
                account_id=account_id,
                timestamp=moment,
                description=description.format(n=rng.randrange(1000, 9999)),
                amount=Decimal(str(amount)).quantize(Decimal("0.01")),
                transaction_category=category,
                classification=list(classification),
                merchant_name=merchant,
                provider_category=code,
            )
        )

    def visits(per_week: float) -> int:
        """How many visits on one day, for a weekly rate."""
        chance = per_week / 7
        return int(chance) + (1 if rng.random() < chance - int(chance) else 0)

    day = today - timedelta(days=round(months * DAYS_PER_MONTH))
    while day < today:  # through yesterday: nothing is dated later than now
        if day.day == 25:
            post(day, "ACME LTD SALARY", habits.salary + rng.randrange(-50, 50), "CREDIT", (), "Acme Ltd", "BGC")
        if day.day == 1:
            post(day, "OAKWOOD LETTINGS RENT", -habits.rent, "STANDING_ORDER", ("Home", "Mortgage & Rent"), code="SO")
        if day.day == 26 and habits.savings:
            post(day, "TO EASY SAVER", -habits.savings, "TRANSFER", code="TFR")
            post(day, "FROM CURRENT ACCOUNT", habits.savings, "TRANSFER", code="TFR", account_id=savings_id)
        for pattern, name, bill_day, low, high in BILLS:
            if day.day == bill_day:
                post(
                    day,
                    pattern,
                    -round(rng.uniform(low, high), 2),
                    "DIRECT_DEBIT",
                    ("Bills and Utilities",),
                    name,
                    "DD",
                )
        for kind in SPENDING:
            for _ in range(visits(getattr(habits, kind.habit))):
                pattern, name = rng.choice(kind.merchants)
                post(day, pattern, -round(rng.uniform(kind.low, kind.high), 2), "PURCHASE", kind.classification, name)
                if kind.habit == "gambling" and rng.random() < 0.15:  # an occasional win
                    post(day, pattern, round(rng.uniform(10, 150), 2), "CREDIT", kind.classification, name)
        if day.day == 28 and day.month % 3 == 0:
            post(day, "INTEREST PAID", round(rng.uniform(0.5, 8), 2), "INTEREST", code="INT", account_id=savings_id)
        day += timedelta(days=1)
    postings.sort(key=lambda item: item.timestamp)
    return History(accounts, openings, postings)


class NewTransaction(BaseModel):
    """A transaction added to a connection by a test (TrueLayer's fields, our account alias)."""

    account: str = "current"  # "current", "savings" or an account id
    description: str
    amount: Decimal  # negative for money out, as TrueLayer
    timestamp: datetime | None = None
    transaction_category: str = "PURCHASE"
    transaction_classification: list[str] = []
    merchant_name: str | None = None
    pending: bool = False


class NewTransactions(BaseModel):
    transactions: list[NewTransaction]


class FaultRequest(BaseModel):
    status: int | None = None
    count: int = 1
    delay_seconds: float = 0.0


class ReauthRequest(BaseModel):
    response_type: str = "code"
    client_id: str
    redirect_uri: str
    refresh_token: str
    state: str | None = None
    client_secret: str | None = None


def create_truelayer_sandbox(
    *,
    client_id: str = "sandbox-client-id",
    client_secret: str = "sandbox-secret",
    access_token_seconds: int = 3600,
    consent_days: int = 90,
    months: int = 24,
    seed: str = "truelayer-sandbox",
    today: date | None = None,
) -> FastAPI:
    """The sandbox as an ASGI app (serve it with uvicorn). `today` fixes the last day of every
    generated history (default: the day each connection is authorised)."""
    bank = Bank(client_id, client_secret, access_token_seconds, consent_days, months, seed, today)
    app = FastAPI(
        title="TrueLayer sandbox (Data API v1 subset)", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json"
    )
    app.state.bank = bank

    @app.middleware("http")
    async def inject_faults(request: Request, call_next: Any) -> Response:
        """Faults apply to TrueLayer's endpoints only, never to the sandbox's own controls."""
        if request.url.path.startswith("/_sandbox"):
            response: Response = await call_next(request)
            return response
        fault = bank.fault
        if fault.count > 0:
            fault.count -= 1
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.status == 429:
                return error(429, "provider_too_many_requests", "Too many requests: try again later.")
            if fault.status is not None and fault.status >= 500:
                return error(fault.status, "internal_server_error", "Internal server error.")
        response = await call_next(request)
        return response

    def authorised(authorization: str | None) -> Connection | JSONResponse:
        token = (authorization or "").removeprefix("Bearer ").strip()
        connection = bank.by_access_token(token) if token else None
        now = datetime.now(UTC)
        if connection is None or connection.access_expires_at is None or now >= connection.access_expires_at:
            return error(401, "invalid_token", "Invalid access token.")
        if now >= connection.consent_expires_at:
            return error(403, "access_denied", "Consent has expired: the user must reauthenticate.")
        return connection

    def found(connection: Connection, account_id: str) -> dict[str, Any] | JSONResponse:
        account = connection.account(account_id)
        if account is None:
            return error(404, "account_not_found", "Account not found.")
        return account

    def issue_tokens(connection: Connection) -> dict[str, Any]:
        # Only the newest access token works, as at TrueLayer; the refresh token does not change.
        connection.access_token = secrets.token_urlsafe(32)
        connection.access_expires_at = datetime.now(UTC) + timedelta(seconds=bank.access_token_seconds)
        return {
            "access_token": connection.access_token,
            "expires_in": bank.access_token_seconds,
            "token_type": "Bearer",
            "refresh_token": connection.refresh_token,
            "scope": " ".join(SCOPES),
        }

    def connect(client: str, user: str) -> Connection:
        bank.created += 1
        now = datetime.now(UTC)
        last_day = bank.today or now.date()
        history = generate(user, bank.seed, last_day, bank.months)
        cutoff = datetime.combine(last_day - timedelta(days=PENDING_DAYS), datetime.min.time(), UTC)

        def held(posting: Posting) -> bool:
            return posting.timestamp >= cutoff and posting.transaction_category == "PURCHASE"

        credentials_id = uuid.UUID(bytes=hashlib.sha256(f"{user}|{bank.seed}|{bank.created}".encode()).digest()[:16])
        connection = Connection(
            credentials_id=str(credentials_id),
            client_id=client,
            user=user,
            accounts=history.accounts,
            opening_balances=history.opening_balances,
            booked=[p for p in history.postings if not held(p)],
            pending=[p for p in history.postings if held(p)],
            consent_created_at=now,
            consent_expires_at=now + timedelta(days=bank.consent_days),
            refresh_token=secrets.token_urlsafe(32),
            rng=Random(f"{user}|{bank.seed}|{bank.created}|later"),
        )
        bank.connections[connection.credentials_id] = connection
        return connection

    @app.get("/", response_class=HTMLResponse)
    async def auth_dialog(request: Request) -> Response:
        """The auth link target: in place of TrueLayer's dialog, a page linking to the authorisation."""
        query = request.query_params
        if query.get("response_type") != "code" or query.get("client_id") != bank.client_id:
            return error(400, "invalid_request", "response_type=code and a known client_id are required.")
        if not query.get("redirect_uri"):
            return error(400, "invalid_request", "redirect_uri is required.")
        target = f"/_sandbox/authorize?{urlencode(dict(query))}"
        return HTMLResponse(
            "<!doctype html><title>Mock Bank</title><h1>Mock Bank</h1>"
            f'<p>Sign in as <a href="{target}&amp;user=john">john</a>, <a href="{target}&amp;user=saver">saver</a>, '
            f'<a href="{target}&amp;user=gambler">gambler</a>, <a href="{target}&amp;user=fastfood">fastfood</a>.</p>'
        )

    @app.get("/_sandbox/authorize")
    async def authorize(request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != bank.client_id:
            return error(400, "invalid_client", "Unknown client_id.")
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri:
            return error(400, "invalid_request", "redirect_uri is required.")
        reauth = query.get("reauth_id")
        credentials_id = bank.reauth.pop(reauth, None) if reauth else None
        if reauth and credentials_id is None:
            return error(400, "invalid_request", "Unknown or used reauthentication link.")
        code = secrets.token_urlsafe(24)
        bank.codes[code] = (bank.client_id, redirect_uri, credentials_id, query.get("user", "john"))
        answer = {"code": code, "scope": " ".join(SCOPES)}
        if query.get("state"):
            answer["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", status_code=302)

    @app.post("/connect/token")
    async def token(request: Request) -> Response:
        # Form-encoded as at TrueLayer; parsed by hand, since FastAPI's Form needs python-multipart.
        form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
        grant_type, client_id, client_secret = form.get("grant_type"), form.get("client_id"), form.get("client_secret")
        code, redirect_uri, refresh_token = form.get("code"), form.get("redirect_uri"), form.get("refresh_token")
        if client_id != bank.client_id or client_secret != bank.client_secret:
            return error(400, "invalid_client", "Client authentication failed.")
        if grant_type == "authorization_code":
            granted = bank.codes.pop(code or "", None)
            if granted is None or granted[1] != redirect_uri:
                return error(400, "invalid_grant", "The code is invalid, used, or for another redirect_uri.")
            _, _, credentials_id, user = granted
            existing = bank.connections.get(credentials_id) if credentials_id else None
            if existing is not None:  # re-authentication: the same credentials, a fresh consent
                now = datetime.now(UTC)
                existing.consent_created_at, existing.consent_expires_at = now, now + timedelta(days=bank.consent_days)
                existing.refresh_token = secrets.token_urlsafe(32)
                return JSONResponse(issue_tokens(existing))
            return JSONResponse(issue_tokens(connect(client_id, user)))
        if grant_type == "refresh_token":
            connection = bank.by_refresh_token(refresh_token or "")
            if connection is None or datetime.now(UTC) >= connection.consent_expires_at:
                return error(400, "invalid_grant", "The refresh token is invalid or the consent has expired.")
            return JSONResponse(issue_tokens(connection))
        return error(400, "unsupported_grant_type", f"Grant type {grant_type!r} is not supported.")

    @app.post("/v1/reauthuri")
    async def reauth_uri(body: ReauthRequest, request: Request) -> Response:
        if body.client_id != bank.client_id:
            return error(400, "invalid_client", "Unknown client_id.")
        connection = next(
            (c for c in bank.connections.values() if c.refresh_token == body.refresh_token and c.refresh_token),
            None,
        )
        if connection is None:
            return error(400, "invalid_grant", "Unknown refresh token.")
        session = secrets.token_urlsafe(16)
        bank.reauth[session] = connection.credentials_id
        query = {"client_id": body.client_id, "redirect_uri": body.redirect_uri, "reauth_id": session}
        if body.state:
            query["state"] = body.state
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"result": f"{base}/_sandbox/authorize?{urlencode(query)}"})

    @app.delete("/api/delete")
    async def delete_credentials(authorization: Annotated[str | None, Header()] = None) -> Response:
        token = (authorization or "").removeprefix("Bearer ").strip()
        connection = bank.by_access_token(token) if token else None
        if connection is None:
            return error(401, "invalid_token", "Invalid access token.")
        del bank.connections[connection.credentials_id]
        return Response(status_code=200)

    @app.get("/data/v1/me")
    async def me(authorization: Annotated[str | None, Header()] = None) -> Response:
        connection = authorised(authorization)
        if isinstance(connection, JSONResponse):
            return connection
        result = {
            "client_id": connection.client_id,
            "credentials_id": connection.credentials_id,
            "consent_status": "Authorised",
            "consent_status_updated_at": connection.consent_created_at.isoformat(),
            "consent_created_at": connection.consent_created_at.isoformat(),
            "consent_expires_at": connection.consent_expires_at.isoformat(),
            "provider": PROVIDER,
            "scopes": list(SCOPES),
            "privacy_policy": "Feb2021",
        }
        return JSONResponse({"results": [result], "status": "Succeeded"})

    @app.get("/data/v1/accounts")
    async def accounts(authorization: Annotated[str | None, Header()] = None) -> Response:
        connection = authorised(authorization)
        if isinstance(connection, JSONResponse):
            return connection
        return JSONResponse({"results": connection.accounts, "status": "Succeeded"})

    def balance_of(connection: Connection, account_id: str) -> Decimal:
        return connection.opening_balances[account_id] + sum(
            (p.amount for p in connection.booked if p.account_id == account_id), Decimal(0)
        )

    @app.get("/data/v1/accounts/{account_id}/balance")
    async def balance(account_id: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        connection = authorised(authorization)
        if isinstance(connection, JSONResponse):
            return connection
        account = found(connection, account_id)
        if isinstance(account, JSONResponse):
            return account
        current = balance_of(connection, account_id)
        held = sum((p.amount for p in connection.pending if p.account_id == account_id), Decimal(0))
        overdraft = 500 if account["account_type"] == "TRANSACTION" else 0
        result = {
            "currency": account["currency"],
            "available": float(current + held + overdraft),
            "current": float(current),
            "overdraft": overdraft,
            "update_timestamp": datetime.now(UTC).isoformat(),
        }
        return JSONResponse({"results": [result], "status": "Succeeded"})

    @app.get("/data/v1/accounts/{account_id}/transactions")
    async def transactions(
        account_id: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        connection = authorised(authorization)
        if isinstance(connection, JSONResponse):
            return connection
        account = found(connection, account_id)
        if isinstance(account, JSONResponse):
            return account
        now = datetime.now(UTC)
        try:
            start = _when(request.query_params.get("from"), now - timedelta(days=90))
            end = _when(request.query_params.get("to"), now)
        except ValueError:
            return error(400, "invalid_date_range", "from and to must be ISO 8601 dates or date-times.")
        if start > end:
            return error(400, "invalid_date_range", "from must not be after to.")
        running = connection.opening_balances[account_id]
        results = []
        for posting in sorted((p for p in connection.booked if p.account_id == account_id), key=lambda p: p.timestamp):
            running += posting.amount
            if start <= posting.timestamp <= end:
                results.append(posting.render(account["currency"], running))
        results.reverse()  # newest first, as most providers answer
        return JSONResponse({"results": results, "status": "Succeeded"})

    @app.get("/data/v1/accounts/{account_id}/transactions/pending")
    async def pending(account_id: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        connection = authorised(authorization)
        if isinstance(connection, JSONResponse):
            return connection
        account = found(connection, account_id)
        if isinstance(account, JSONResponse):
            return account
        results = [p.render(account["currency"], None) for p in connection.pending if p.account_id == account_id]
        return JSONResponse({"results": results, "status": "Succeeded"})

    # --- sandbox controls (not TrueLayer) ---------------------------------------------------

    def connection_or_404(credentials_id: str) -> Connection | JSONResponse:
        connection = bank.connections.get(credentials_id)
        return connection if connection is not None else error(404, "not_found", "No such connection.")

    @app.post("/_sandbox/faults")
    async def faults(body: FaultRequest) -> dict[str, Any]:
        bank.fault = Fault(body.status, body.count, body.delay_seconds)
        return {"status": body.status, "count": body.count, "delay_seconds": body.delay_seconds}

    @app.get("/_sandbox/connections/{credentials_id}")
    async def ground_truth(credentials_id: str) -> Response:
        connection = connection_or_404(credentials_id)
        if isinstance(connection, JSONResponse):
            return connection
        return JSONResponse(
            {
                "credentials_id": connection.credentials_id,
                "user": connection.user,
                "consent_expires_at": connection.consent_expires_at.isoformat(),
                "accounts": connection.accounts,
                "booked": [p.render("GBP", None) | {"account_id": p.account_id} for p in connection.booked],
                "pending": [p.render("GBP", None) | {"account_id": p.account_id} for p in connection.pending],
            }
        )

    @app.post("/_sandbox/connections/{credentials_id}/transactions")
    async def add_transactions(credentials_id: str, body: NewTransactions) -> Response:
        connection = connection_or_404(credentials_id)
        if isinstance(connection, JSONResponse):
            return connection
        aliases = {"current": connection.accounts[0]["account_id"], "savings": connection.accounts[1]["account_id"]}
        created = []
        for item in body.transactions:
            account_id = aliases.get(item.account, item.account)
            if connection.account(account_id) is None:
                return error(404, "account_not_found", f"No account {item.account}.")
            posting = Posting(
                _hex_id(connection.rng),
                account_id,
                item.timestamp or datetime.now(UTC),
                item.description,
                item.amount.quantize(Decimal("0.01")),
                item.transaction_category,
                item.transaction_classification,
                item.merchant_name,
            )
            (connection.pending if item.pending else connection.booked).append(posting)
            created.append(posting.transaction_id)
        return JSONResponse({"transaction_ids": created})

    @app.post("/_sandbox/connections/{credentials_id}/pending/{transaction_id}/post")
    async def post_pending(credentials_id: str, transaction_id: str) -> Response:
        connection = connection_or_404(credentials_id)
        if isinstance(connection, JSONResponse):
            return connection
        posting = next((p for p in connection.pending if p.transaction_id == transaction_id), None)
        if posting is None:
            return error(404, "not_found", "No such pending transaction.")
        connection.pending.remove(posting)
        booked = Posting(**{**posting.__dict__, "transaction_id": _hex_id(connection.rng)})
        connection.booked.append(booked)
        return JSONResponse({"transaction_id": booked.transaction_id})

    @app.post("/_sandbox/connections/{credentials_id}/expire-consent")
    async def expire_consent(credentials_id: str) -> Response:
        connection = connection_or_404(credentials_id)
        if isinstance(connection, JSONResponse):
            return connection
        connection.consent_expires_at = datetime.now(UTC) - timedelta(seconds=1)
        return JSONResponse({"consent_expires_at": connection.consent_expires_at.isoformat()})

    @app.post("/_sandbox/connections/{credentials_id}/expire-access-token")
    async def expire_access_token(credentials_id: str) -> Response:
        connection = connection_or_404(credentials_id)
        if isinstance(connection, JSONResponse):
            return connection
        connection.access_expires_at = datetime.now(UTC) - timedelta(seconds=1)
        return JSONResponse({})

    @app.post("/_sandbox/connections/{credentials_id}/revoke-refresh-token")
    async def revoke_refresh_token(credentials_id: str) -> Response:
        connection = connection_or_404(credentials_id)
        if isinstance(connection, JSONResponse):
            return connection
        connection.refresh_token = None
        return JSONResponse({})

    return app


def _when(value: str | None, default: datetime) -> datetime:
    """A `from`/`to` parameter: a date (midnight UTC) or a date-time (UTC when naive)."""
    if not value:
        return default
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    instant = datetime.fromisoformat(value)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
