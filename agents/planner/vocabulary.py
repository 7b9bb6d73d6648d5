"""Words of a requirement against names of a schema: tokens, light stemming, generic business synonyms.

Nothing here knows a particular database. The synonym groups are ordinary business English
("client" means "customer", "revenue" is money); every table and column name comes from the
introspected schema at planning time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from learning.embedders import embedder_create

logger = logging.getLogger(__name__)

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "for",
        "to",
        "in",
        "on",
        "at",
        "by",
        "per",
        "with",
        "without",
        "and",
        "or",
        "all",
        "any",
        "each",
        "every",
        "its",
        "their",
        "his",
        "her",
        "our",
        "my",
        "your",
        "me",
        "us",
        "we",
        "i",
        "you",
        "it",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "that",
        "which",
        "who",
        "whom",
        "whose",
        "this",
        "these",
        "those",
        "there",
        "here",
        "from",
        "into",
        "onto",
        "than",
        "then",
        "but",
        "as",
        "list",
        "show",
        "give",
        "get",
        "find",
        "return",
        "fetch",
        "display",
        "want",
        "need",
        "please",
        "what",
        "how",
        "many",
        "much",
        "some",
        "only",
        "just",
        "also",
        "who've",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "not",
        "no",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "endpoint",
        "api",
        "data",
        "records",
        "record",
        "rows",
        "row",
        "details",
        "detail",
        "information",
        "info",
        "given",
        "specific",
        "single",
        "one",
        "they",
        "them",
        "anything",
        "something",
    ]
)

# Words about data itself (not about any business): each group names the same kind of column.
# Paraphrases of a schema's own nouns ("clients" for a customers table) are not guessed: they are
# asked about, with candidates ranked by the embedder, and the answer goes to the glossary.
SYNONYM_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(group.split())
    for group in (
        "name title label",
        "status state stage",
        "category type kind class",
        "quantity qty",
        "line item detail",
    )
)

# Nouns for what a row does over time, recorded as dated rows of a child table ("no activity", "activity dropped").
ACTIVITY_WORDS = frozenset(
    [
        "activity",
        "activities",
        "event",
        "events",
        "log",
        "logs",
        "interaction",
        "interactions",
        "visit",
        "visits",
        "session",
        "sessions",
        "login",
        "logins",
        "action",
        "actions",
        "touchpoint",
        "touchpoints",
        "engagement",
    ]
)
MONEY_WORDS = frozenset(
    ["revenue", "sales", "sale", "spend", "spent", "spending", "income", "turnover", "money", "earnings", "gmv"]
)
MEASURE_NAME_QUALITY = {
    "revenue": 1.0,
    "total": 0.95,
    "amount": 0.95,
    "sales": 0.9,
    "value": 0.7,
    "subtotal": 0.8,
    "net": 0.7,
    "gross": 0.7,
    "price": 0.7,
    "cost": 0.6,
    "spend": 0.9,
}
# Verbs that say a row was recorded ("orders placed", "customers who signed up"): filler words of a request.
RECORDING_VERBS = (
    "sold",
    "placed",
    "made",
    "bought",
    "purchased",
    "ordered",
    "received",
    "registered",
    "signed",
    "joined",
    "happened",
    "recorded",
    "logged",
)
# Verbs that say a row came to be, with the particle some of them take ("signed up").
EVENT_VERBS = frozenset([*RECORDING_VERBS, "opened", "created", "submitted", "added"])
VERB_PARTICLES = frozenset(["up"])
# Ordinary words of a request that select no rows: a requirement may contain them and nothing else unexplained.
FILLER_WORDS = frozenset(
    [
        *RECORDING_VERBS,
        "along",
        "together",
        "including",
        "included",
        "plus",
        "also",
        "current",
        "currently",
        "overall",
        "latest",
        "newest",
        "oldest",
        "recent",
        "recently",
        "report",
        # Verbs of asking for a figure, like "show": they select nothing (the platform's lexicon agrees).
        "calculate",
        "calculates",
        "compute",
        "computes",
        "overview",
        "breakdown",
        "figures",
        "stats",
        "statistics",
        "metrics",
        "kpi",
        "kpis",
        "dashboard",
        "summary",
        "table",
        "view",
        "list",
        "lists",
        "name",
        "names",
        "everything",
        "entries",
        "entry",
        "results",
        "result",
        "items",
        "item",
        "rows",
        "values",
        "value",
        "number",
        "numbers",
        "count",
        "counts",
        "total",
        "totals",
        "sum",
        "amount",
        "amounts",
        "figure",
        "show",
        "see",
        "know",
        "tell",
        "each",
        "per",
        "every",
        "ranked",
        "rank",
        "ranking",
        "sorted",
        "order",
        "ordered",
        "descending",
        "ascending",
        "highest",
        "lowest",
        "most",
        "least",
        "biggest",
        "largest",
        "smallest",
        "best",
        "worst",
        "top",
        "bottom",
        "who",
        "which",
        "where",
        "when",
        "what",
        "whose",
        "have",
        "has",
        "had",
        "having",
        "been",
        "do",
        "did",
        "does",
        "done",
        "get",
        "got",
        "made",
    ]
)
QUANTITY_WORDS = frozenset(["quantity", "qty", "units", "count"])
LOCATION_WORDS = ("region", "country", "area", "zone", "territory", "market", "city", "state", "location")
# Columns a list endpoint leaves out unless the requirement names them.
SENSITIVE_WORDS = frozenset(
    [
        "email",
        "mail",
        "phone",
        "mobile",
        "ssn",
        "social",
        "birth",
        "dob",
        "passport",
        "iban",
        "card",
        "cvv",
        "address",
        "street",
        "zip",
        "postcode",
        "postal",
        "fax",
        "cell",
        "birthday",
        "birthdate",
        "salary",
        "nationality",
        "gender",
        "ip",
        "bic",
        "tax",
    ]
)
SECRET_WORDS = frozenset(
    ["password", "passwd", "secret", "token", "hash", "salt", "apikey", "api_key", "credential", "pin"]
)

_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}|'[^']*'|\"[^\"]*\"|[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*|\d+(?:\.\d+)?")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class Token:
    text: str  # as written (quotes removed)
    lower: str
    start: int
    end: int
    quoted: bool = False

    @property
    def is_number(self) -> bool:
        return bool(re.fullmatch(r"\d+(?:\.\d+)?", self.text))


def tokenize(text: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        quoted = raw[:1] in "'\"" and len(raw) >= 2 and raw[-1] == raw[0]
        value = raw[1:-1] if quoted else raw
        if value.endswith("'s"):
            value = value[:-2]
        tokens.append(Token(text=value, lower=value.lower(), start=match.start(), end=match.end(), quoted=quoted))
    return tokens


def name_tokens(identifier: str) -> tuple[str, ...]:
    """Split an identifier (snake_case, camelCase, with digits) into lowercase words."""
    spaced = _CAMEL.sub(" ", identifier)
    return tuple(part for part in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if part)


def _lemmas(word: str) -> set[str]:
    """Dictionary forms of an English word (written -> write, bought -> buy), from lemminflect's tables."""
    try:
        from lemminflect import getAllLemmas
    except ImportError:  # the light stemming below still applies
        return set()
    return {lemma.lower() for forms in getAllLemmas(word).values() for lemma in forms}


@lru_cache(maxsize=4096)
def variants(word: str) -> frozenset[str]:
    """The word and its light stems: plural and past-tense endings removed."""
    word = word.lower()
    out = {word}
    irregular = {"people": "person", "children": "child", "men": "man", "women": "woman", "data": "datum"}
    if word in irregular:
        out.add(irregular[word])
    out.update(_lemmas(word))
    if len(word) > 3:
        if word.endswith("ies"):
            out.add(word[:-3] + "y")
        if word.endswith(("sses", "xes", "ches", "shes", "uses")):
            out.add(word[:-2])
        if word.endswith("s") and not word.endswith(("ss", "us", "is")):
            out.add(word[:-1])
        if word.endswith("ed") and len(word) > 4:
            stem = word[:-2]
            out.update({stem, word[:-1]})
            if len(stem) > 2 and stem[-1] == stem[-2]:
                out.add(stem[:-1])
        if word.endswith("ing") and len(word) > 5:
            stem = word[:-3]
            out.update({stem, stem + "e"})
            if stem[-1] == stem[-2]:
                out.add(stem[:-1])
    return frozenset(out)


@lru_cache(maxsize=4096)
def synonyms(word: str) -> frozenset[str]:
    found: set[str] = set()
    for form in variants(word):
        for group in SYNONYM_GROUPS:
            if form in group:
                found |= group
    return frozenset(found)


# What turns a verb into the noun of its rows: supplier, rental, payment, booking.
NOUN_SUFFIXES = ("er", "ers", "r", "rs", "al", "als", "ment", "ments", "ing", "ings")


def derives(word: str, name_word: str) -> bool:
    """Whether a verb names a noun made from it: supplied -> supplier, rented -> rental, paid -> payment."""
    noun = name_word.lower()
    for stem in variants(word):
        if len(stem) >= 3 and noun.startswith(stem) and noun[len(stem) :] in NOUN_SUFFIXES:
            return True
        if (
            len(stem) >= 4
            and stem.endswith("y")
            and noun.startswith(stem[:-1])
            and noun[len(stem) - 1 :]
            in (
                "ier",
                "iers",
            )
        ):
            return True
    return False


def word_score(word: str, name_word: str) -> float:
    """1.0 for the same word (after stemming), 0.8 for a synonym, 0 otherwise."""
    a, b = variants(word), variants(name_word)
    if a & b:
        return 1.0
    if synonyms(word) & b:
        return 0.8
    return 0.0


def singular(name: str) -> str:
    """A readable singular of a table name, for aliases and column prefixes (order_items -> order_item)."""
    parts = list(name_tokens(name)) or [name.lower()]
    last = parts[-1]
    if last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith(("sses", "xes", "ches", "shes")):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith(("ss", "us", "is")) and len(last) > 3:
        last = last[:-1]
    parts[-1] = last
    return "_".join(parts)


# Embedding similarity (optional) ----------------------------------------------------------------

_embedder_state: dict[str, object] = {}


def semantic_similarity(texts_a: list[str], texts_b: list[str]) -> list[list[float]] | None:
    """Cosine similarity of every a against every b with the built-in local embedder; None if unavailable."""
    if "embedder" not in _embedder_state:
        try:
            _embedder_state["embedder"] = embedder_create(kind="local")
        except Exception:  # the learning app is optional for planning; lexical matching still works
            logger.info("local embedder unavailable; the planner matches words lexically only")
            _embedder_state["embedder"] = None
    embedder = _embedder_state["embedder"]
    if embedder is None or not texts_a or not texts_b:
        return None
    try:
        vectors = embedder.embed(list(texts_a) + list(texts_b))  # type: ignore[attr-defined]
    except Exception:
        logger.warning("local embedder failed; falling back to lexical matching", exc_info=True)
        return None

    def unit(vector: list[float]) -> list[float]:
        norm = sum(x * x for x in vector) ** 0.5 or 1.0
        return [x / norm for x in vector]

    left = [unit(v) for v in vectors[: len(texts_a)]]
    right = [unit(v) for v in vectors[len(texts_a) :]]
    return [[sum(x * y for x, y in zip(a, b, strict=False)) for b in right] for a in left]
