"""A deterministic generator of the demo retail/CRM data.

Every value comes from ``random.Random`` streams seeded from the seed and the table name, and
every timestamp is an offset back from the anchor (a day, normally the day of seeding), so the
same seed, scale and anchor always give the same rows, while "the last 90 days" still finds data.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate

from roles.demo import words
from roles.demo.schema import LOYALTY_TIERS

DEMO_SEED = 20240601

# Row counts at scale 1.0.
BASE_SIZES = {
    "customers": 12_000,
    "products": 600,
    "orders": 120_000,
    "support_tickets": 7_500,
    "activity_events": 200_000,
}
MINIMUM_SIZES = {"customers": 50, "products": 40, "orders": 300, "support_tickets": 30, "activity_events": 500}
MIN_SCALE, MAX_SCALE = 0.001, 10.0

COLUMNS = {
    "customers": (
        "customer_id", "first_name", "last_name", "email", "phone", "country", "city", "region", "segment",
        "marketing_opt_in", "created_at",
    ),
    "accounts": ("account_id", "customer_id", "status", "tier", "credit_limit", "balance", "opened_at", "closed_at"),
    "products": ("product_id", "sku", "name", "category", "price", "cost", "is_active", "created_at"),
    "orders": (
        "order_id", "customer_id", "order_date", "status", "channel", "region", "shipping_country", "currency",
        "subtotal", "discount_amount", "shipping_amount", "tax_amount", "total_amount",
    ),
    "order_items": ("order_item_id", "order_id", "line_number", "product_id", "quantity", "unit_price", "line_total"),
    "payments": ("payment_id", "order_id", "method", "amount", "status", "paid_at", "created_at"),
    "support_tickets": (
        "ticket_id", "customer_id", "order_id", "region", "subject", "category", "priority", "status", "channel",
        "assigned_to", "opened_at", "closed_at",
    ),
    "activity_events": ("event_id", "customer_id", "event_type", "channel", "detail", "occurred_at"),
}  # fmt: skip

# Spend over the last 365 days that earns each loyalty tier (apply_loyalty_tier uses the same).
TIER_THRESHOLDS_CENTS = ((1_000_000, "platinum"), (400_000, "gold"), (100_000, "silver"), (0, "bronze"))
REVENUE_STATUSES = frozenset({"paid", "shipped", "delivered"})
DAY = 86_400
YEAR = 365 * DAY
DORMANT_DAYS = 91
DOUBLE_CHARGE_SHARE = 0.004  # paid orders charged a second time
OVER_LIMIT_SHARE = 0.03  # open accounts whose balance is over their credit limit


@dataclass(frozen=True)
class DemoTable:
    name: str
    columns: tuple[str, ...]
    rows: list[tuple]


@dataclass(frozen=True)
class DemoDataset:
    seed: int
    scale: float
    anchor: date
    tables: dict[str, DemoTable] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(table.rows) for name, table in self.tables.items()}

    def checksum(self) -> str:
        """A SHA-256 over every table's columns and rows, in load order."""
        digest = hashlib.sha256()
        for name, table in self.tables.items():
            digest.update(f"{name}:{','.join(table.columns)}\n".encode())
            for start in range(0, len(table.rows), 50_000):
                digest.update(repr(table.rows[start : start + 50_000]).encode())
        return digest.hexdigest()


def demo_validate_scale(scale: float) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a number between {MIN_SCALE} and {MAX_SCALE}, got {scale!r}") from None
    if not MIN_SCALE <= value <= MAX_SCALE:
        raise ValueError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, got {value}")
    return value


def demo_sizes(scale: float) -> dict[str, int]:
    scale = demo_validate_scale(scale)
    return {name: max(MINIMUM_SIZES[name], round(base * scale)) for name, base in BASE_SIZES.items()}


@lru_cache(maxsize=65_536)
def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _stream(seed: int, name: str) -> random.Random:
    # String seeds hash with SHA-512, so each table's stream is stable across runs and platforms.
    return random.Random(f"{seed}:{name}")  # noqa: S311 - demo data, not secrets


def _int(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in [low, high]; random() is much cheaper than randint() in the hot loops."""
    return low + int(rng.random() * (high - low + 1))


def _choice(rng: random.Random, options):
    return options[int(rng.random() * len(options))]


class _Pick:
    """A weighted choice with its cumulative weights computed once (random.choices recomputes them)."""

    __slots__ = ("cum", "total", "values")

    def __init__(self, options: dict):
        self.values = tuple(options)
        self.cum = tuple(accumulate(options.values()))
        self.total = self.cum[-1]

    def __call__(self, rng: random.Random):
        return self.values[bisect_right(self.cum, rng.random() * self.total)]


_SEGMENT = _Pick({"consumer": 76, "small_business": 19, "enterprise": 5})
_STATUS_FRESH = _Pick({"pending": 40, "paid": 60})
_STATUS_RECENT = _Pick({"paid": 20, "shipped": 72, "cancelled": 8})
_STATUS_OLD = _Pick({"delivered": 91, "cancelled": 5, "refunded": 4})
_ORDER_CHANNEL = _Pick({"web": 55, "mobile": 30, "store": 10, "phone": 5})
_LINE_COUNT = _Pick({1: 30, 2: 30, 3: 22, 4: 12, 5: 6})
_QUANTITY = _Pick({1: 70, 2: 20, 3: 7, 4: 2, 5: 1})
_PAYMENT_METHOD = _Pick({"card": 58, "paypal": 20, "wallet": 10, "bank_transfer": 8, "gift_card": 4})
_ACCOUNT_STATUS = _Pick({"active": 92, "suspended": 4, "closed": 4})
_PRIORITY = _Pick({"low": 30, "medium": 45, "high": 18, "urgent": 7})
_PRIORITY_BILLING = _Pick({"low": 10, "medium": 40, "high": 35, "urgent": 15})
_OPEN_STATUS = _Pick({"open": 50, "in_progress": 35, "waiting": 15})
_TICKET_CHANNEL = _Pick({"email": 40, "chat": 30, "phone": 15, "web": 15})
_EVENT_TYPE = _Pick(
    {"page_view": 45, "login": 15, "search": 15, "add_to_cart": 10, "email_open": 10, "checkout": 3,
     "support_contact": 2}
)  # fmt: skip
_EVENT_CHANNEL = _Pick({"web": 60, "mobile": 35, "store": 5})


class _Generator:
    def __init__(self, *, seed: int, scale: float, anchor: date):
        self.seed = seed
        self.sizes = demo_sizes(scale)
        self.anchor = datetime.combine(anchor, time(0), tzinfo=UTC)
        self.year_ago = self.anchor - timedelta(seconds=YEAR)
        self.customers: list[dict] = []
        self.products: list[tuple] = []
        self.orders: list[tuple] = []
        self.order_customer: list[int] = []

    def ago(self, seconds: float) -> datetime:
        return self.anchor - timedelta(seconds=int(seconds))

    def between(self, rng: random.Random, start: datetime, end: datetime) -> datetime:
        span = max(0, int((end - start).total_seconds()))
        return start + timedelta(seconds=_int(rng, 0, span))

    # -- customers -------------------------------------------------------------------------

    def gen_customers(self) -> list[tuple]:
        rng = _stream(self.seed, "customers")
        regions = tuple(words.REGIONS)
        region_weights = tuple(accumulate(words.REGIONS[r][0] for r in regions))
        rows = []
        for customer_id in range(1, self.sizes["customers"] + 1):
            region = rng.choices(regions, cum_weights=region_weights)[0]
            country, phone_code, cities = _choice(rng, words.REGIONS[region][1])
            first, last = _choice(rng, words.FIRST_NAMES), _choice(rng, words.LAST_NAMES)
            local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
            email = f"{local}{customer_id}@{_choice(rng, words.EMAIL_DOMAINS)}"
            phone = f"+{phone_code} {_int(rng, 200, 998)} {_int(rng, 1_000_000, 9_999_998)}"
            if rng.random() < 0.15:
                phone = None
            segment = _SEGMENT(rng)
            # Older customers are more common than brand-new ones; nobody joins on the anchor day.
            created_at = self.ago(DAY + (rng.random() ** 0.7) * 3 * YEAR)
            # Some established customers went quiet: no orders or activity in the last 90 days.
            dormant = created_at < self.ago(120 * DAY) and rng.random() < 0.18
            propensity = (
                rng.lognormvariate(0, 0.9) * {"consumer": 1.0, "small_business": 1.8, "enterprise": 3.0}[segment]
            )
            if rng.random() < 0.07:
                propensity = 0.0  # registered, never ordered
            self.customers.append(
                {
                    "id": customer_id,
                    "region": region,
                    "country": country,
                    "segment": segment,
                    "created_at": created_at,
                    "dormant": dormant,
                    "propensity": propensity,
                    "engagement": rng.lognormvariate(0, 0.8),
                }
            )
            rows.append(
                (customer_id, first, last, email, phone, country, _choice(rng, cities), region, segment,
                 rng.random() < 0.55, created_at)
            )  # fmt: skip
        return rows

    def window(self, customer: dict) -> tuple[datetime, datetime]:
        """When a customer could act: after joining, within the last year, and not lately if dormant."""
        if "window" in customer:
            return customer["window"]
        start = max(customer["created_at"], self.year_ago)
        end = self.ago(DORMANT_DAYS * DAY) if customer["dormant"] else self.anchor
        if end <= start:
            end = self.anchor
        customer["window"] = (start, end)
        return start, end

    # -- products --------------------------------------------------------------------------

    def gen_products(self) -> list[tuple]:
        rng = _stream(self.seed, "products")
        categories = tuple(words.CATEGORIES)
        rows = []
        seen: set[str] = set()
        for product_id in range(1, self.sizes["products"] + 1):
            category = categories[(product_id - 1) % len(categories)]
            prefix, (low, high), nouns = words.CATEGORIES[category]
            name = f"{_choice(rng, words.ADJECTIVES)} {_choice(rng, nouns)}"
            if name in seen:
                name = f"{name} {_choice(rng, ('Mini', 'Max', 'Plus', 'Lite', 'XL', 'II', 'III', 'S', 'Go'))}"
            if name in seen:
                name = f"{name} {product_id}"
            seen.add(name)
            # Log-uniform prices, ending in .99.
            dollars = int(low * (high / low) ** rng.random())
            price = max(dollars, 1) * 100 - 1
            cost = int(price * rng.uniform(0.35, 0.75))
            created_at = self.ago((400 + rng.random() * 1100) * DAY)
            rows.append(
                (product_id, f"{prefix}-{product_id:05d}", name, category, _money(price), _money(cost),
                 rng.random() < 0.95, created_at)
            )  # fmt: skip
            self.products.append((product_id, price))
        # Popularity follows a long tail, in a shuffled order so it is not tied to category.
        ranks = list(range(1, len(self.products) + 1))
        rng.shuffle(ranks)
        self.product_cum_weights = tuple(accumulate(1.0 / rank**0.9 for rank in ranks))
        return rows

    # -- orders, items, payments ---------------------------------------------------------

    def gen_orders(self) -> tuple[list[tuple], list[tuple], list[tuple]]:
        rng = _stream(self.seed, "orders")
        customer_cum = tuple(accumulate(c["propensity"] for c in self.customers))
        picks = rng.choices(self.customers, cum_weights=customer_cum, k=self.sizes["orders"])
        dated = sorted(
            ((self.between(rng, *self.window(customer)), index, customer) for index, customer in enumerate(picks)),
            key=lambda item: (item[0], item[1]),
        )
        n_products = len(self.products)
        # A separate stream, so that the few double charges leave every other row as it was.
        double_charges = _stream(self.seed, "double-charges")
        orders, items, payments = [], [], []
        spend: dict[int, int] = {}
        for order_id, (order_date, _, customer) in enumerate(dated, start=1):
            age_days = (self.anchor - order_date).total_seconds() / DAY
            if age_days < 2:
                status = _STATUS_FRESH(rng)
            elif age_days < 7:
                status = _STATUS_RECENT(rng)
            else:
                status = _STATUS_OLD(rng)
            channel = _ORDER_CHANNEL(rng)
            chosen: list[int] = []
            for _ in range(_LINE_COUNT(rng)):
                index = bisect_left(self.product_cum_weights, rng.random() * self.product_cum_weights[-1])
                index = min(index, n_products - 1)
                if index not in chosen:
                    chosen.append(index)
            subtotal = 0
            for line_number, index in enumerate(chosen, start=1):
                product_id, unit_price = self.products[index]
                quantity = _QUANTITY(rng)
                line_total = unit_price * quantity
                subtotal += line_total
                items.append(
                    (len(items) + 1, order_id, line_number, product_id, quantity, _money(unit_price),
                     _money(line_total))
                )  # fmt: skip
            discount = subtotal // 10 if rng.random() < 0.15 else 0
            shipping = 0 if channel == "store" or subtotal >= 5_000 else 499
            tax = (subtotal - discount) * words.TAX_RATES[customer["region"]] // 100
            total = subtotal - discount + shipping + tax
            orders.append(
                (order_id, customer["id"], order_date, status, channel, customer["region"], customer["country"],
                 "USD", _money(subtotal), _money(discount), _money(shipping), _money(tax), _money(total))
            )  # fmt: skip
            self.order_customer.append(customer["id"])
            if status in REVENUE_STATUSES and order_date >= self.year_ago:
                spend[customer["id"]] = spend.get(customer["id"], 0) + total
            paid = self._payments(rng, order_id, order_date, status, total, customer["segment"])
            if status in REVENUE_STATUSES and double_charges.random() < DOUBLE_CHARGE_SHARE:
                # The same amount taken twice (a retried checkout): orders that were paid twice.
                _order, method, amount, payment_status, paid_at, created = paid[-1]
                again = timedelta(seconds=_int(double_charges, 30, 900))
                later = min(created + again, self.anchor)
                paid.append((order_id, method, amount, payment_status, min(paid_at + again, self.anchor), later))
            payments.extend(paid)
        self.orders = orders
        self.spend = spend
        payments = [(payment_id, *row) for payment_id, row in enumerate(payments, start=1)]
        return orders, items, payments

    def _payments(self, rng, order_id, order_date, status, total, segment) -> list[tuple]:
        enterprise_transfer = segment == "enterprise" and rng.random() < 0.6
        method = "bank_transfer" if enterprise_transfer else _PAYMENT_METHOD(rng)
        created = order_date + timedelta(seconds=_int(rng, 5, 600))
        amount = _money(total)
        if status == "pending":
            return [(order_id, method, amount, "pending", None, created)]
        if status == "cancelled":
            return [(order_id, method, amount, "failed", None, created)] if rng.random() < 0.5 else []
        rows = []
        if rng.random() < 0.06:
            rows.append((order_id, "card", amount, "failed", None, created))
            created += timedelta(seconds=_int(rng, 60, 3600))
        delay = _int(rng, DAY, 3 * DAY) if method == "bank_transfer" else _int(rng, 1, 120)
        paid_at = min(created + timedelta(seconds=delay), self.anchor)
        rows.append((order_id, method, amount, "refunded" if status == "refunded" else "completed", paid_at, created))
        return rows

    # -- accounts --------------------------------------------------------------------------

    def gen_accounts(self) -> list[tuple]:
        rng = _stream(self.seed, "accounts")
        over_limit = _stream(self.seed, "accounts-over-limit")  # its own stream: other balances stay as they were
        limits = {"consumer": (5, 50), "small_business": (50, 500), "enterprise": (500, 5000)}  # hundreds of dollars
        rows = []
        for customer in self.customers:
            low, high = limits[customer["segment"]]
            credit_limit = _int(rng, low, high) * 10_000
            opened_at = customer["created_at"] + timedelta(seconds=_int(rng, 30, 3600))
            status = _ACCOUNT_STATUS(rng)
            closed_at = self.between(rng, opened_at, self.anchor) if status == "closed" else None
            balance = 0 if status == "closed" else int(credit_limit * rng.random() * 0.6)
            if status != "closed" and over_limit.random() < OVER_LIMIT_SHARE:
                balance = int(credit_limit * (1 + over_limit.random() * 0.25))  # over the limit by up to a quarter
            spend = self.spend.get(customer["id"], 0)
            tier = next(name for threshold, name in TIER_THRESHOLDS_CENTS if spend >= threshold)
            assert tier in LOYALTY_TIERS
            rows.append(
                (customer["id"], customer["id"], status, tier, _money(credit_limit), _money(balance), opened_at,
                 closed_at)
            )  # fmt: skip
        return rows

    # -- support tickets -------------------------------------------------------------------

    def gen_tickets(self) -> list[tuple]:
        rng = _stream(self.seed, "support_tickets")
        by_id = {c["id"]: c for c in self.customers}
        drafts = []
        for index in range(self.sizes["support_tickets"]):
            if self.orders and rng.random() < 0.7:
                order = _choice(rng, self.orders)
                order_id, customer, order_date = order[0], by_id[order[1]], order[2]
                room = max(60, int((self.anchor - order_date).total_seconds()))
                opened_at = order_date + timedelta(seconds=_int(rng, min(3600, room), min(20 * DAY, room)))
                category, template = _choice(rng, words.ORDER_TICKET_SUBJECTS)
                subject = template.format(order_id=order_id)
            else:
                customer = _choice(rng, self.customers)
                order_id = None
                opened_at = self.between(rng, *self.window(customer))
                category, subject = _choice(rng, words.ACCOUNT_TICKET_SUBJECTS)
            priority = (_PRIORITY_BILLING if category == "billing" else _PRIORITY)(rng)
            hours = {"urgent": (1, 24), "high": (4, 72), "medium": (12, 120), "low": (24, 240)}[priority]
            closed_at = opened_at + timedelta(seconds=int(rng.uniform(*hours) * 3600))
            if closed_at < self.anchor and rng.random() < 0.95:
                status = "closed" if closed_at < self.ago(14 * DAY) else "resolved"
            else:
                closed_at = None
                status = _OPEN_STATUS(rng)
            assigned = None if status == "open" and rng.random() < 0.5 else _choice(rng, words.SUPPORT_AGENTS)
            channel = _TICKET_CHANNEL(rng)
            drafts.append(
                (opened_at, index, customer["id"], order_id, customer["region"], subject, category, priority, status,
                 channel, assigned, closed_at)
            )  # fmt: skip
        drafts.sort(key=lambda d: (d[0], d[1]))
        return [(ticket_id, *d[2:11], d[0], d[11]) for ticket_id, d in enumerate(drafts, start=1)]

    # -- activity events -------------------------------------------------------------------

    def gen_events(self) -> list[tuple]:
        rng = _stream(self.seed, "activity_events")
        cum = tuple(accumulate(c["engagement"] * (0.5 + c["propensity"]) for c in self.customers))
        picks = rng.choices(self.customers, cum_weights=cum, k=self.sizes["activity_events"])
        skus = [f"{words.CATEGORIES[row[3]][0]}-{row[0]:05d}" for row in self._product_rows]
        drafts = []
        for index, customer in enumerate(picks):
            occurred_at = self.between(rng, *self.window(customer))
            event_type = _EVENT_TYPE(rng)
            if event_type == "email_open":
                channel, detail = "email", _choice(rng, words.EMAIL_CAMPAIGNS)
            else:
                channel = _EVENT_CHANNEL(rng)
                if event_type in ("page_view", "add_to_cart"):
                    detail = _choice(rng, skus)
                elif event_type == "search":
                    detail = _choice(rng, words.SEARCH_TERMS)
                else:
                    detail = None
            drafts.append((occurred_at, index, customer["id"], event_type, channel, detail))
        drafts.sort(key=lambda d: (d[0], d[1]))
        return [(event_id, d[2], d[3], d[4], d[5], d[0]) for event_id, d in enumerate(drafts, start=1)]

    def run(self) -> dict[str, list[tuple]]:
        customers = self.gen_customers()
        self._product_rows = products = self.gen_products()
        orders, items, payments = self.gen_orders()
        return {
            "customers": customers,
            "accounts": self.gen_accounts(),
            "products": products,
            "orders": orders,
            "order_items": items,
            "payments": payments,
            "support_tickets": self.gen_tickets(),
            "activity_events": self.gen_events(),
        }


def demo_generate(*, seed: int = DEMO_SEED, scale: float = 1.0, anchor: date) -> DemoDataset:
    """Generate every demo table's rows (without demo_metadata), in load order."""
    rows = _Generator(seed=seed, scale=scale, anchor=anchor).run()
    tables = {name: DemoTable(name, COLUMNS[name], rows[name]) for name in COLUMNS}
    return DemoDataset(seed=seed, scale=demo_validate_scale(scale), anchor=anchor, tables=tables)
