"""Where sandbox money goes, market by market: merchants with real-world descriptor patterns, their
MCC and category (Plaid's taxonomy, the one `badges.domain` speaks; each provider renders it in its own).

A `Market` is everything a history takes from the country it is set in: the currency, the
merchants, the words on the statement, the account names and how far a dollar of the personas'
habits goes. Core everyday merchants (payroll, rent, groceries, fast food, gambling…) are curated
here in each country's bank-statement style (`US`, `UK`); discretionary shopping, travel and
subscriptions come from the `solyanka` pattern dataset (its patterns for the market's country and
currency), so histories read like real statements.
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


@dataclass(frozen=True, eq=False)
class Market:
    """The country a history is set in. Descriptors may hold `{n}` (a store or reference number);
    the transfer descriptors hold `{savings_mask}` or `{checking_mask}`."""

    country: str  # as solyanka names it
    currency: str
    scale: float  # local money per US dollar of the personas' habits
    employers: tuple[Merchant, ...]
    gig_payers: tuple[Merchant, ...]
    landlords: tuple[Merchant, ...]
    bills: tuple[Merchant, ...]  # direct debits, each on its `monthly_day`
    card_issuers: tuple[Merchant, ...]
    fast_food: tuple[Merchant, ...]  # at least 3
    grocers: tuple[Merchant, ...]  # at least 2
    eating_out: tuple[Merchant, ...]  # at least 3
    bookmakers: tuple[Merchant, ...]  # at least 2
    subscriptions: tuple[Merchant, ...]  # curated, besides solyanka's
    to_savings: str
    from_checking: str
    interest: str
    checking: tuple[str, str]  # name, official name
    savings: tuple[str, str]


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
US = Market(
    country="United States",
    currency="USD",
    scale=1.0,
    employers=EMPLOYERS,
    gig_payers=GIG_PAYERS,
    landlords=LANDLORDS,
    bills=BILLS,
    card_issuers=CARD_ISSUERS,
    fast_food=FAST_FOOD_PLACES,
    grocers=GROCERS,
    eating_out=EATING_OUT,
    bookmakers=BOOKMAKERS,
    subscriptions=(),
    to_savings="ONLINE TRANSFER TO SAV XXXXXX{savings_mask}",
    from_checking="ONLINE TRANSFER FROM CHK XXXXXX{checking_mask}",
    interest="INTEREST PAYMENT",
    checking=("Everyday Checking", "Platypus Everyday Checking"),
    savings=("Rainy Day Savings", "Platypus High Yield Savings"),
)

UK = Market(
    country="United Kingdom",
    currency="GBP",
    scale=0.65,
    employers=(
        Merchant("ACME LTD SALARY", "Acme Ltd", WAGES, None, 0, 0, "other", "income_source"),
        Merchant("BRIGHTWELL PLC SALARY {n}", "Brightwell plc", WAGES, None, 0, 0, "other", "income_source"),
        Merchant("NORTHWIND LOGISTICS WAGES", "Northwind Logistics", WAGES, None, 0, 0, "other", "income_source"),
    ),
    gig_payers=(
        Merchant("UPWORK ESCROW {n}", "Upwork", OTHER_INCOME, None, 0, 0, "online", "income_source"),
        Merchant("DELIVEROO RIDER {n}", "Deliveroo", OTHER_INCOME, None, 0, 0, "online", "income_source"),
        Merchant("STRIPE PAYMENTS UK {n}", "Stripe", OTHER_INCOME, None, 0, 0, "online", "payment_app"),
        Merchant("UBER BV DRIVER {n}", "Uber", OTHER_INCOME, None, 0, 0, "online", "income_source"),
    ),
    landlords=(
        Merchant("OAKWOOD LETTINGS RENT", "Oakwood Lettings", RENT, None, 0, 0, "other"),
        Merchant("FOXTONS RENT {n}", "Foxtons", RENT, None, 0, 0, "other"),
        Merchant("GRAINGER PLC RENT {n}", "Grainger", RENT, None, 0, 0, "other"),
    ),
    bills=(
        Merchant(
            "BRITISH GAS {n}",
            "British Gas",
            _category("RENT_AND_UTILITIES_GAS_AND_ELECTRICITY"),
            "4900",
            45,
            130,
            "other",
            monthly_day=14,
        ),
        Merchant(
            "VIRGIN MEDIA {n}",
            "Virgin Media",
            _category("RENT_AND_UTILITIES_INTERNET_AND_CABLE"),
            "4899",
            45,
            45,
            "online",
            monthly_day=5,
        ),
        Merchant(
            "EE LIMITED {n}", "EE", _category("RENT_AND_UTILITIES_TELEPHONE"), "4814", 25, 40, "online", monthly_day=20
        ),
        Merchant(
            "THAMES WATER {n}",
            "Thames Water",
            _category("RENT_AND_UTILITIES_WATER"),
            "4900",
            25,
            45,
            "other",
            monthly_day=9,
        ),
        Merchant(
            "COUNCIL TAX {n}",
            "Council Tax",
            _category("GOVERNMENT_AND_NON_PROFIT_TAX_PAYMENT"),
            "9311",
            142,
            142,
            "other",
            monthly_day=3,
        ),
    ),
    card_issuers=(
        Merchant("BARCLAYCARD {n}", "Barclaycard", CARD_PAYMENT, None, 0, 0, "other", "financial_institution"),
        Merchant(
            "AMERICAN EXPRESS {n}", "American Express", CARD_PAYMENT, None, 0, 0, "other", "financial_institution"
        ),
        Merchant("MBNA LIMITED {n}", "MBNA", CARD_PAYMENT, None, 0, 0, "other", "financial_institution"),
    ),
    fast_food=(
        Merchant("MCDONALDS {n}", "McDonald's", FAST_FOOD, "5814", 3.5, 15, website="mcdonalds.co.uk"),
        Merchant("KFC {n}", "KFC", FAST_FOOD, "5814", 5, 18, website="kfc.co.uk"),
        Merchant("GREGGS {n}", "Greggs", FAST_FOOD, "5814", 2.5, 9, website="greggs.co.uk"),
        Merchant("DELIVEROO {n}", "Deliveroo", FAST_FOOD, "5814", 12, 32, "online", website="deliveroo.co.uk"),
        Merchant("BURGER KING {n}", "Burger King", FAST_FOOD, "5814", 5, 16, website="burgerking.co.uk"),
    ),
    grocers=(
        Merchant("TESCO STORES {n}", "Tesco", GROCERIES, "5411", 8, 95, website="tesco.com"),
        Merchant("SAINSBURYS S/MKTS {n}", "Sainsbury's", GROCERIES, "5411", 10, 110, website="sainsburys.co.uk"),
        Merchant("LIDL GB {n}", "Lidl", GROCERIES, "5411", 8, 70, website="lidl.co.uk"),
        Merchant("ASDA STORES {n}", "Asda", GROCERIES, "5411", 10, 100, website="asda.com"),
        Merchant("ALDI STORES {n}", "Aldi", GROCERIES, "5411", 8, 70, website="aldi.co.uk"),
    ),
    eating_out=(
        Merchant("COSTA COFFEE {n}", "Costa Coffee", COFFEE, "5814", 2.5, 9, website="costa.co.uk"),
        Merchant("PRET A MANGER {n}", "Pret A Manger", COFFEE, "5814", 3, 12, website="pret.co.uk"),
        Merchant("NANDOS {n}", "Nando's", RESTAURANT, "5812", 15, 60, website="nandos.co.uk"),
        Merchant("WAGAMAMA {n}", "wagamama", RESTAURANT, "5812", 18, 70, website="wagamama.com"),
    ),
    bookmakers=(
        Merchant("BET365 {n}", "Bet365", GAMBLING, "7995", 5, 80, "online", website="bet365.com"),
        Merchant("WILLIAM HILL {n}", "William Hill", GAMBLING, "7995", 5, 80, "online", website="williamhill.com"),
        Merchant("PADDY POWER {n}", "Paddy Power", GAMBLING, "7995", 5, 60, "online", website="paddypower.com"),
        Merchant("SKY BET {n}", "Sky Bet", GAMBLING, "7995", 5, 60, "online", website="skybet.com"),
    ),
    subscriptions=(
        Merchant(
            "NETFLIX.COM",
            "Netflix",
            _category("ENTERTAINMENT_TV_AND_MOVIES"),
            "4899",
            10.99,
            10.99,
            "online",
            monthly_day=7,
        ),
        Merchant(
            "SPOTIFY UK",
            "Spotify",
            _category("ENTERTAINMENT_MUSIC_AND_AUDIO"),
            "5815",
            11.99,
            11.99,
            "online",
            monthly_day=12,
        ),
        Merchant(
            "PUREGYM {n}",
            "PureGym",
            _category("PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS"),
            "7997",
            24.99,
            24.99,
            monthly_day=1,
        ),
        Merchant(
            "AMAZON PRIME*{n}",
            "Amazon Prime",
            _category("GENERAL_MERCHANDISE_ONLINE_MARKETPLACES"),
            "5968",
            8.99,
            8.99,
            "online",
            monthly_day=22,
        ),
    ),
    to_savings="TO EASY SAVER {savings_mask}",
    from_checking="FROM CURRENT ACCOUNT {checking_mask}",
    interest="INTEREST PAID",
    checking=("Current Account", "Classic Current Account"),
    savings=("Easy Saver", "Easy Saver Account"),
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
def discretionary(market: Market) -> Discretionary:
    """The market's solyanka patterns (its country, in its currency) as merchants, with its curated
    subscriptions; loaded once per market (it parses YAML)."""
    purchases: list[Merchant] = []
    subscriptions: list[Merchant] = []
    for pattern in PatternsService().get_patterns(country=market.country):
        # Templated titles need solyanka's generators; plain ones are real descriptors as they are.
        if pattern.currency != market.currency or not isinstance(pattern.title, str) or "{" in pattern.title:
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
    return Discretionary(tuple(purchases), tuple(subscriptions) + market.subscriptions)
