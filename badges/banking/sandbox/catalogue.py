"""Where sandbox money goes: merchants with real-world descriptor patterns, their MCC and Plaid category.

Core everyday merchants (payroll, rent, groceries, fast food, gambling…) are curated here in US
bank-statement style; discretionary shopping, travel and subscriptions come from the `solyanka`
pattern dataset (its US-dollar patterns), so histories read like real statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from solyanka import PatternsService

from badges.domain.banking import primary_category


@dataclass(frozen=True, slots=True)
class Category:
    """A Plaid `personal_finance_category` (taxonomy v2): `primary` is the prefix of `detailed`."""

    primary: str
    detailed: str


@dataclass(frozen=True, slots=True)
class Merchant:
    """A counterparty as it shows on a statement: `descriptor` may hold `{n}`, a store/reference number."""

    descriptor: str
    name: str | None
    category: Category
    mcc: str | None
    low: float
    high: float
    channel: str = "in store"
    counterparty_type: str = "merchant"
    website: str | None = None
    monthly_day: int | None = None  # set for subscriptions: charged on this day every month


def _category(detailed: str) -> Category:
    primary = primary_category(detailed)
    if primary is None:
        raise ValueError(f"{detailed} belongs to no primary category")
    return Category(primary, detailed)


WAGES = _category("INCOME_WAGES")
OTHER_INCOME = _category("INCOME_OTHER_INCOME")
INTEREST = _category("INCOME_INTEREST_EARNED")
TO_SAVINGS = _category("TRANSFER_OUT_SAVINGS")
FROM_CHECKING = _category("TRANSFER_IN_SAVINGS")
CARD_PAYMENT = _category("LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")
RENT = _category("RENT_AND_UTILITIES_RENT")
GAMBLING = _category("ENTERTAINMENT_CASINOS_AND_GAMBLING")
FAST_FOOD = _category("FOOD_AND_DRINK_FAST_FOOD")
GROCERIES = _category("FOOD_AND_DRINK_GROCERIES")
RESTAURANT = _category("FOOD_AND_DRINK_RESTAURANT")
COFFEE = _category("FOOD_AND_DRINK_COFFEE")
OTHER_CARD_SPEND = _category("GENERAL_MERCHANDISE_OTHER_GENERAL_MERCHANDISE")

EMPLOYERS = (
    Merchant("ACME CORP PAYROLL PPD ID: {n}", "Acme Corp", WAGES, None, 0, 0, "other", "income_source"),
    Merchant("GUSTO PAY {n} DIRECT DEP", "Gusto", WAGES, None, 0, 0, "other", "income_source"),
    Merchant("ADP WAGE PAY PPD ID: {n}", "ADP", WAGES, None, 0, 0, "other", "income_source"),
)
GIG_PAYERS = (
    Merchant("UPWORK ESCROW INC PPD ID: {n}", "Upwork", OTHER_INCOME, None, 0, 0, "online", "income_source"),
    Merchant("DOORDASH DASHER PAY {n}", "DoorDash", OTHER_INCOME, None, 0, 0, "online", "income_source"),
    Merchant("STRIPE TRANSFER ST-{n}", "Stripe", OTHER_INCOME, None, 0, 0, "online", "payment_app"),
    Merchant("UBER *DRIVER PAY {n}", "Uber", OTHER_INCOME, None, 0, 0, "online", "income_source"),
)
LANDLORDS = (
    Merchant("GREYSTAR RENT PMT WEB ID: {n}", "Greystar", RENT, None, 0, 0, "other"),
    Merchant("AVALON COMMUNITIES ACH RENT {n}", "AvalonBay", RENT, None, 0, 0, "other"),
    Merchant("EQUITY RESIDENTIAL RENT {n}", "Equity Residential", RENT, None, 0, 0, "other"),
)
BILLS = (
    Merchant(
        "CON EDISON DES:CONED PYMT ID: {n}",
        "Con Edison",
        _category("RENT_AND_UTILITIES_GAS_AND_ELECTRICITY"),
        "4900",
        60,
        180,
        "other",
        monthly_day=14,
    ),
    Merchant(
        "COMCAST CABLE COMM {n}",
        "Comcast",
        _category("RENT_AND_UTILITIES_INTERNET_AND_CABLE"),
        "4899",
        79.99,
        79.99,
        "online",
        monthly_day=5,
    ),
    Merchant(
        "VERIZON WIRELESS PAYMENTS {n}",
        "Verizon",
        _category("RENT_AND_UTILITIES_TELEPHONE"),
        "4814",
        65,
        95,
        "online",
        monthly_day=20,
    ),
    Merchant(
        "CITY WATER DEPT WEB PMT {n}",
        "City Water",
        _category("RENT_AND_UTILITIES_WATER"),
        "4900",
        25,
        60,
        "other",
        monthly_day=9,
    ),
)
CARD_ISSUERS = (
    Merchant(
        "CHASE CREDIT CRD AUTOPAY PPD ID: {n}", "Chase", CARD_PAYMENT, None, 0, 0, "other", "financial_institution"
    ),
    Merchant("DISCOVER E-PAYMENT {n}", "Discover", CARD_PAYMENT, None, 0, 0, "other", "financial_institution"),
    Merchant("CAPITAL ONE MOBILE PMT {n}", "Capital One", CARD_PAYMENT, None, 0, 0, "other", "financial_institution"),
)
FAST_FOOD_PLACES = (
    Merchant("MCDONALD'S F{n}", "McDonald's", FAST_FOOD, "5814", 4.5, 18, website="mcdonalds.com"),
    Merchant("TACO BELL #{n}", "Taco Bell", FAST_FOOD, "5814", 5, 16, website="tacobell.com"),
    Merchant("BURGER KING #{n}", "Burger King", FAST_FOOD, "5814", 5, 17, website="bk.com"),
    Merchant("CHICK-FIL-A #{n}", "Chick-fil-A", FAST_FOOD, "5814", 6, 19, website="chick-fil-a.com"),
    Merchant("WENDYS #{n}", "Wendy's", FAST_FOOD, "5814", 5, 15, website="wendys.com"),
    Merchant("DOMINO'S {n}", "Domino's", FAST_FOOD, "5814", 11, 32, "online", website="dominos.com"),
    Merchant("POPEYES #{n}", "Popeyes", FAST_FOOD, "5814", 6, 20, website="popeyes.com"),
)
GROCERS = (
    Merchant("KROGER #{n}", "Kroger", GROCERIES, "5411", 18, 140, website="kroger.com"),
    Merchant("SAFEWAY #{n}", "Safeway", GROCERIES, "5411", 15, 130, website="safeway.com"),
    Merchant("TRADER JOE S #{n}", "Trader Joe's", GROCERIES, "5411", 20, 110, website="traderjoes.com"),
    Merchant("WHOLEFDS MKT #{n}", "Whole Foods Market", GROCERIES, "5411", 25, 160, website="wholefoodsmarket.com"),
    Merchant("ALDI {n}", "Aldi", GROCERIES, "5411", 12, 90, website="aldi.us"),
)
EATING_OUT = (
    Merchant("STARBUCKS STORE {n}", "Starbucks", COFFEE, "5814", 3.5, 12, website="starbucks.com"),
    Merchant("DUNKIN #{n}", "Dunkin'", COFFEE, "5814", 3, 10, website="dunkindonuts.com"),
    Merchant("OLIVE GARDEN {n}", "Olive Garden", RESTAURANT, "5812", 28, 95, website="olivegarden.com"),
    Merchant("CHEESECAKE FACTORY #{n}", "The Cheesecake Factory", RESTAURANT, "5812", 35, 120),
)
BOOKMAKERS = (
    Merchant("DRAFTKINGS *SPORTSBOOK {n}", "DraftKings", GAMBLING, "7995", 10, 150, "online", website="draftkings.com"),
    Merchant("FANDUEL *SPORTSBOOK {n}", "FanDuel", GAMBLING, "7995", 10, 120, "online", website="fanduel.com"),
    Merchant("BETMGM *CASINO {n}", "BetMGM", GAMBLING, "7995", 20, 200, "online", website="betmgm.com"),
    Merchant("POKERSTARS *USA {n}", "PokerStars", GAMBLING, "7995", 10, 100, "online", website="pokerstars.com"),
)

# solyanka tags → Plaid category, checked in this order; patterns with no matching tag are not used.
_TAG_CATEGORIES = (
    ("fast_food", FAST_FOOD),
    ("groceries", GROCERIES),
    ("restaurant", RESTAURANT),
    ("fuel", _category("TRANSPORTATION_GAS")),
    ("ride_hailing", _category("TRANSPORTATION_TAXIS_AND_RIDE_SHARES")),
    ("micromobility", _category("TRANSPORTATION_BIKES_AND_SCOOTERS")),
    ("aviation", _category("TRAVEL_FLIGHTS")),
    ("hotel", _category("TRAVEL_LODGING")),
    ("booking", _category("TRAVEL_LODGING")),
    ("clothing", _category("GENERAL_MERCHANDISE_CLOTHING_AND_ACCESSORIES")),
    ("shopping", _category("GENERAL_MERCHANDISE_ONLINE_MARKETPLACES")),
    ("gaming", _category("ENTERTAINMENT_VIDEO_GAMES")),
    ("telecom", _category("RENT_AND_UTILITIES_TELEPHONE")),
    ("entertainment", _category("ENTERTAINMENT_TV_AND_MOVIES")),
    ("software", _category("GENERAL_SERVICES_OTHER_GENERAL_SERVICES")),
    ("subscription", _category("GENERAL_SERVICES_OTHER_GENERAL_SERVICES")),
)
_ONLINE_TAGS = {"online", "online_shopping", "subscription", "software", "application", "aviation", "booking"}


@dataclass(frozen=True)
class Discretionary:
    """The solyanka-backed pools: one-off card spend and monthly subscriptions."""

    purchases: tuple[Merchant, ...]
    subscriptions: tuple[Merchant, ...]


@cache
def discretionary() -> Discretionary:
    """US-dollar solyanka patterns as merchants; loaded once (it parses YAML)."""
    purchases: list[Merchant] = []
    subscriptions: list[Merchant] = []
    for pattern in PatternsService().get_patterns(country="United States"):
        # Templated titles need solyanka's generators; plain ones are real descriptors as they are.
        if pattern.currency != "USD" or not isinstance(pattern.title, str) or "{" in pattern.title:
            continue
        tags = set(pattern.types)
        category = next((category for tag, category in _TAG_CATEGORIES if tag in tags), None)
        if category is None:
            continue
        monthly = pattern.subscriptionFrequencyDays == 30
        merchant = Merchant(
            descriptor=pattern.title,
            name=pattern.prettyTitle,
            category=category,
            mcc=None,
            low=pattern.amount_min,
            high=pattern.amount_min if monthly else pattern.amount_max,  # a plan costs the same every month
            channel="online" if tags & _ONLINE_TAGS else "in store",
            # A billing day that stays put for a merchant, as a real subscription's does.
            monthly_day=(1 + len(pattern.title) % 28) if monthly else None,
        )
        if merchant.monthly_day:
            subscriptions.append(merchant)
        elif category.primary != "GENERAL_SERVICES":  # one-off software buys read oddly on a personal statement
            purchases.append(merchant)
    return Discretionary(tuple(purchases), tuple(subscriptions))
