"""The member's side of Link at the local sandbox bank (`make dev`, tests): the sandbox's own
`/sandbox/link/complete` stands in for the person finishing Plaid Link, and answers the public
token that Link's onSuccess would hand the page. Only the dev API calls it (`/v1/dev/sandbox/link`)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from badges.banking.provider import ProviderError

# The sandbox's personas (badges/banking/sandbox/personas.py), in words a member picking one reads.
SANDBOX_PERSONAS: dict[str, str] = {
    "user_good": "steady pay, some saving, a few takeaways",
    "user_saver": "saves a quarter of each pay",
    "user_spender": "spends what comes in, saves nothing",
    "user_gambler": "bets most weeks",
    "user_fastfood": "fast food most days",
    "user_improver": "did better these last three months",
    "user_irregular_income": "gig work, pay varies",
}


@dataclass(frozen=True)
class SandboxLink:
    host: str  # the sandbox bank standing in for Plaid (PLAID_HOST)
    client_id: str
    secret: str

    async def complete(self, link_token: str, username: str) -> str:
        """The public token for `link_token` with the bank history of persona `username`."""
        body = {"client_id": self.client_id, "secret": self.secret, "link_token": link_token, "username": username}
        try:
            async with httpx.AsyncClient(base_url=self.host, timeout=30) as http:
                response = await http.post("/sandbox/link/complete", json=body)
        except httpx.HTTPError as exc:
            raise ProviderError(
                "unavailable", "SANDBOX_UNREACHABLE", f"The sandbox bank did not answer: {exc}"
            ) from exc
        if response.status_code != 200:
            try:
                error = response.json()
            except ValueError:
                error = {}
            code = str(error.get("error_code") or response.status_code)
            message = str(error.get("error_message") or response.text[:200])
            raise ProviderError("invalid", code, message)
        return str(response.json()["public_token"])
