"""The built-in embedder: hashed lexical and concept features, no download, deterministic.

Each text becomes a bag of features:

* word unigrams after light stemming ("purchases" -> "purchas"), stop words removed;
* word bigrams of those stems (word order carries some meaning: "top customers");
* character 3-5-grams of each word, so spelling variants and inflections still meet;
* concepts from a small built-in table of business and database words, so that paraphrases
  share features: customer/client/buyer, order/purchase, revenue/sales/income,
  recent/last/latest, inactive/no activity/churn, top/best/highest, ...

Features are weighted by kind with sublinear term frequency (1 + log tf), hashed into 384
signed buckets (blake2b, so the result never depends on the process) and L2-normalised. Cosine
similarity of two vectors is then a weighted overlap of their features.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from functools import lru_cache

import numpy as np

DIMENSIONS = 384

WEIGHT_UNIGRAM = 1.0
WEIGHT_CONCEPT = 1.3
WEIGHT_BIGRAM = 0.6
WEIGHT_CHARGRAM = 0.18

_WORD = re.compile(r"[a-z0-9]+")

_STOP_WORDS_TEXT = """a about above after again all also am an and any are as at be been being both but by can could
    did do does doing done each for from further get give had has have having he her here hers him his how
    i if in into is it its itself just let me more my need needs of off on once only or other our out over
    own please same she should show so some such than that the their them then there these they this those
    through to too under until up us very want wants was we were what when where which while who whom why
    will with would you your yours list return returns returning"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

# Words and phrases (already lower-cased, unstemmed) -> the concept they express.
_CONCEPT_GROUPS: dict[str, tuple[str, ...]] = {
    "customer": (
        "customer customers client clients buyer buyers shopper shoppers consumer consumers patron patrons "
        "account accounts purchaser purchasers",
    ),
    "order": (
        "order orders ordered ordering purchase purchases purchased buy buys bought buying transaction "
        "transactions checkout checkouts basket baskets cart carts",
    ),
    "revenue": (
        "revenue revenues sales income turnover earnings spend spending spent gmv takings money",
        "lifetime spend|total spend",
    ),
    "product": "product products item items sku skus article articles goods merchandise catalog catalogue",
    "employee": "employee employees staff worker workers personnel headcount colleague colleagues salesperson",
    "inventory": (
        "inventory stock stocks warehouse warehouses stocked restock replenish",
        "out of stock|low stock|stock level|stock levels",
    ),
    "recent": "recent recently last latest past newest lately previous trailing",
    "inactive": (
        "inactive dormant churn churned churning lapsed idle disengaged lost attrition",
        "no activity|no orders|no purchases|stopped buying|stopped ordering|not active|have not ordered"
        "|haven't ordered|no longer|not ordered|without orders|gone quiet|went quiet",
    ),
    "active": "active engaged engagement activity usage logins login sessions visits",
    "top": "top best highest leading largest biggest most greatest maximum max ranking ranked rank",
    "bottom": "bottom worst lowest least smallest fewest minimum min poorest weakest",
    "count": ("count counts number tally", "how many|number of"),
    "sum": "total totals sum summed aggregate aggregated overall combined cumulative",
    "average": "average averages mean avg typical median",
    "month": ("month months monthly", "per month|each month|by month"),
    "week": ("week weeks weekly", "per week|each week"),
    "year": ("year years yearly annual annually ytd", "per year|each year|year to date"),
    "day": ("day days daily today yesterday", "per day|each day"),
    "quarter": "quarter quarters quarterly q1 q2 q3 q4",
    "time_window": (
        "window period range between since during within timeframe interval dated date dates",
        "last 30 days|last 90 days|last 7 days|date range|time period",
    ),
    "region": "region regions country countries territory territories area areas location locations geography city",
    "supplier": "supplier suppliers vendor vendors provider providers manufacturer manufacturers",
    "invoice": "invoice invoices bill bills billing billed statement statements",
    "payment": "payment payments paid pay paying settle settled remittance",
    "refund": "refund refunds refunded return returns returned chargeback chargebacks reimbursement",
    "shipment": "shipment shipments shipping shipped delivery deliveries deliver delivered dispatch dispatched",
    "late": ("late delayed overdue tardy behind", "past due|not on time"),
    "discount": "discount discounts coupon coupons promotion promotions promo promos voucher vouchers markdown",
    "category": "category categories segment segments group groups grouped classification family department",
    "growth": "growth grow grew growing increase increased increasing rise rising gain gains uplift trend trending",
    "decline": "decline declined declining drop dropped dropping decrease decreased fall fell falling shrink",
    "cancel": "cancel cancels cancelled canceled cancellation cancellations abandon abandoned",
    "subscription": "subscription subscriptions subscriber subscribers plan plans renewal renewals renew membership",
    "ticket": "ticket tickets complaint complaints support incident incidents case cases helpdesk",
    "rating": "rating ratings review reviews feedback stars score scores satisfaction nps csat",
    "contact": "email emails contact contacts phone phones address addresses",
    "signup": ("signup signups registration registrations registered joined onboarded", "sign up|signed up"),
    "lifetime": ("lifetime alltime cumulative clv ltv", "all time|ever since"),
    "profit": "profit profits margin margins profitability markup cost costs",
    "price": "price prices pricing priced rate rates fee fees tariff",
    "duplicate": "duplicate duplicates duplicated dedupe deduplicate repeated",
    "fraud": "fraud fraudulent suspicious anomaly anomalies anomalous risky",
    "endpoint": "endpoint endpoints api apis route routes rest",
    "pagination": "paginate paginated pagination page pages paging offset cursor",
    "pii": ("pii sensitive personal mask masked redact redacted gdpr privacy", "personal data"),
    "delete": "delete deletes deleted remove removed erase purge",
    "join": "join joins joined joining combine combined merge merged together alongside plus",
    "search": ("search searching find lookup filter filtered filtering match matching", "look up"),
    "balance": "balance balances outstanding owed owe owing debt debts receivable receivables unpaid",
    "quantity": "quantity quantities units volume volumes qty amount amounts",
    "store": "store stores shop shops branch branches outlet outlets",
    "slow": "slow slowly slower latency timeout timeouts sluggish expensive",
    "fast": "fast faster quick quickly speed performance performant optimize optimise optimized index indexes",
    "write": "insert inserts update updates updating modify write writes writing",
    "security": "injection unsafe unauthorized forbidden denied rejected reject insecure vulnerability",
    "repeat": ("repeat repeated loyal loyalty retention retained returning", "came back|come back"),
    "new": "new newly first fresh",
    "currency": "currency currencies usd eur dollars euros exchange fx",
    "forecast": "forecast forecasts forecasting predict prediction projection projected estimate",
}


def _build_concepts() -> tuple[dict[str, str], dict[tuple[str, ...], str]]:
    words: dict[str, str] = {}
    phrases: dict[tuple[str, ...], str] = {}
    for concept, groups in _CONCEPT_GROUPS.items():
        if isinstance(groups, str):
            groups = (groups,)
        for group in groups:
            if "|" in group:
                for phrase in group.split("|"):
                    phrases[tuple(_WORD.findall(phrase.lower()))] = concept
            else:
                for word in group.split():
                    words[word] = concept
    return words, phrases


CONCEPT_WORDS, CONCEPT_PHRASES = _build_concepts()
_MAX_PHRASE = max((len(p) for p in CONCEPT_PHRASES), default=1)


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """Strip common English inflections; only needs to be consistent, not linguistically right."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement, min_len in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 5),
        ("ly", "", 5),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                continue
            if suffix == "es" and not word.endswith(("ses", "xes", "ches", "shes", "zes")):
                continue
            base = word[: len(word) - len(suffix)] + replacement
            if suffix in ("ing", "ed") and len(base) > 3 and base[-1] == base[-2] and base[-1] not in "ls":
                base = base[:-1]
            return base
    return word


@lru_cache(maxsize=500_000)
def _bucket(feature: str) -> tuple[int, float]:
    digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return digest % DIMENSIONS, 1.0 if (digest >> 40) & 1 else -1.0


@lru_cache(maxsize=100_000)
def _char_grams(word: str) -> tuple[str, ...]:
    padded = f"<{word}>"
    grams = []
    for n in (3, 4, 5):
        grams.extend("#" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return tuple(grams)


def features(text: str) -> dict[str, float]:
    """The weighted features of one text (before hashing), useful to see why two texts match."""
    words = _WORD.findall(text.lower())
    counts: dict[str, tuple[float, int]] = {}

    def add(feature: str, weight: float) -> None:
        w, n = counts.get(feature, (weight, 0))
        counts[feature] = (max(w, weight), n + 1)

    # Multi-word concepts first; the words stay as ordinary features too.
    for size in range(_MAX_PHRASE, 1, -1):
        for i in range(len(words) - size + 1):
            concept = CONCEPT_PHRASES.get(tuple(words[i : i + size]))
            if concept:
                add("c:" + concept, WEIGHT_CONCEPT)
    stems = []
    for word in words:
        concept = CONCEPT_WORDS.get(word)
        if concept:
            add("c:" + concept, WEIGHT_CONCEPT)
        if word in STOP_WORDS:
            continue
        stemmed = stem(word)
        if concept is None:
            concept = CONCEPT_WORDS.get(stemmed)
            if concept:
                add("c:" + concept, WEIGHT_CONCEPT)
        stems.append(stemmed)
        add("w:" + stemmed, WEIGHT_UNIGRAM)
        if not word.isdigit():
            for gram in _char_grams(word):
                add(gram, WEIGHT_CHARGRAM)
    for left, right in itertools.pairwise(stems):
        add(f"b:{left}_{right}", WEIGHT_BIGRAM)
    return {feature: weight * (1.0 + math.log(n)) for feature, (weight, n) in counts.items()}


def embed_text(text: str) -> list[float]:
    indices, weights = [], []
    for feature, weight in features(text).items():
        index, sign = _bucket(feature)
        indices.append(index)
        weights.append(sign * weight)
    if not indices:
        return [0.0] * DIMENSIONS
    vector = np.bincount(indices, weights=weights, minlength=DIMENSIONS)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return [0.0] * DIMENSIONS
    return (vector / norm).tolist()


class LocalEmbedder:
    """Hashed word, bigram, character n-gram and concept features in 384 dimensions."""

    name = "local-hash-v1"
    dimensions = DIMENSIONS

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [embed_text(text) for text in texts]
