"""Does the interpretation account for every phrase of the requirement, each with the right shape?

Two checks, both on the requirement's own words, independent of whoever wrote the design:

1. coverage: every content word (lexicon.content_words) lies inside the phrase of some element,
   and every element's phrase is words of the requirement;
2. shape: phrases that demand a particular element get one: "a given X" a parameter, a year or a
   period a time window, "never / no / without" a negation, "most recent" an ordering by a date,
   "each month" that grain, "top 10" and "which five ... the most" a limit of that number with an
   ordering, "more than 30" a comparison with 30, "twice" a count condition, "names" of people first
   and last names, "how many" a count, "this month compared with last month" a figure measured in
   each of the two periods on its own; "the best-selling product in each category" (the top rows within each
   group) is refused unless the design is one maximum or minimum per group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from endpoints.compiler import Catalog
from endpoints.interpretation import Filter, Interpretation
from endpoints.verification.findings import Finding
from endpoints.verification.lexicon import NEGATIONS, content_words, name_words, related, words

UNITS = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}
GRAIN_ADJECTIVES = {
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
    "annual": "year",
    "annually": "year",
}
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "fifty": 50,
    "hundred": 100,
}
DOWN_VERBS = frozenset({"dropped", "fell", "declined", "decreased", "shrank", "shrunk", "slowed", "dipped"})
UP_VERBS = frozenset({"grew", "rose", "increased", "climbed", "jumped"})
# Not a change between periods when a comparison with a value follows ("stock has fallen below its reorder level").
CHANGE_VERBS = re.compile(
    r"\b(" + "|".join(sorted(DOWN_VERBS | UP_VERBS)) + r")\b(?!\s+(?:below|above|under|over|beneath|to|by|than)\b)"
)
# Two calendar periods side by side ("this month compared with last month", "this year vs last year").
_PERIOD = r"(?:the\s+)?(?:this|current|last|previous|prior|past)\s+(?:week|month|quarter|year)"
CALENDAR_VERSUS = re.compile(
    r"\b("
    + _PERIOD
    + r")\s*,?\s*(?:vs\.?|versus|(?:as\s+)?compared\s+(?:with|to)|against)\s+("
    + _PERIOD
    + r")(?![a-z'])"
)
MEASURE_WINDOW = re.compile(r"measures\[(\d+)\]\.window")
# "the best-selling product in each category", "the top 3 films of every category": the first rows within each
# group, which a design (one ordering and one limit over every row) cannot say.
TOP_PER_GROUP = re.compile(
    r"\b(?:the|our|which)\s+(?:(?:\d+|" + "|".join(NUMBER_WORDS) + r")\s+)?"
    r"(best|top|worst|most(?!\s+recent)|highest|lowest|biggest|largest|smallest|least|fewest|cheapest|longest|shortest)"
    r"(?:[- ](?:selling|sellers?|performing|earning|grossing|paying|spending|expensive|popular))?"
    r"(?:\s+(?:\d+|" + "|".join(NUMBER_WORDS) + r"))?"
    r"(?:\s+[a-z][\w-]*){1,3}?\s+(?:in|for|within|of|across)\s+(?:each|every)\s+(?P<group>[a-z][\w-]*)"
)
# Superlatives of a measured dimension ("the three longest films"): an ordering on it, that way.
DESCENDING_DIMENSIONS = {"longest", "heaviest", "tallest", "widest"}
ASCENDING_DIMENSIONS = {"shortest", "lightest", "narrowest"}
DESCENDING = {"most", "top", "highest", "largest", "biggest", "best", "greatest", "maximum", "max", "leading"}
DESCENDING |= DESCENDING_DIMENSIONS
ASCENDING = {"least", "fewest", "lowest", "smallest", "worst", "bottom", "minimum", "min"} | ASCENDING_DIMENSIONS


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    path: str


def _occurrences(requirement: str, phrase: str) -> list[tuple[int, int]]:
    text, needle = requirement.lower(), phrase.lower().strip()
    if not needle:
        return []
    pattern = r"(?<![A-Za-z0-9])" + re.escape(needle) + r"(?![A-Za-z0-9])"
    return [m.span() for m in re.finditer(pattern, text)]


def _spans(requirement: str, interp: Interpretation) -> tuple[list[Span], list[Finding]]:
    spans: list[Span] = []
    findings: list[Finding] = []
    for path, phrase in interp.phrases():
        found = _occurrences(requirement, phrase)
        if not found:
            findings.append(
                Finding(
                    "coverage",
                    False,
                    f"the design says '{phrase}' comes from the requirement, but the requirement does not say it",
                    element=path,
                    phrase=phrase,
                )
            )
        spans += [Span(s, e, path) for s, e in found]
    return spans, findings


def _covering(spans: list[Span], start: int, end: int) -> list[str]:
    return [s.path for s in spans if s.start <= start and end <= s.end]


def _element(interp: Interpretation, path: str):
    """The element a path names (entities[0], measures[1].filters[0] ...)."""
    node = interp
    for part in re.findall(r"[a-z_]+(?:\[\d+\])?", path):
        name, _, index = part.partition("[")
        node = getattr(node, name if name != "from" else "from_")
        if index:
            node = node[int(index.rstrip("]"))]
    return node


def coverage_check(
    *, requirement: str, interpretation: Interpretation, left_out: tuple[str, ...] = ()
) -> list[Finding]:
    """Every content word of the requirement lies inside an element's phrase, or a phrase the Service's
    glossary leaves out (a user's answer that the words add nothing)."""
    spans, findings = _spans(requirement, interpretation)
    spans += [Span(s, e, "left out") for phrase in left_out for s, e in _occurrences(requirement, phrase)]
    uncovered = [w for w in content_words(requirement) if not _covering(spans, w.start, w.end)]
    for word in uncovered:
        findings.append(
            Finding("coverage", False, f"nothing in the design accounts for '{word.text}'", phrase=word.text)
        )
    if not findings:
        findings.append(Finding("coverage", True, "every phrase of the requirement is accounted for"))
    return findings


# --- shape cues -----------------------------------------------------------------------------------------------


def _kinds(interp: Interpretation, paths: list[str]) -> list[tuple[str, object]]:
    out = []
    for path in paths:
        head = re.match(r"[a-z_]+", path.split(".")[-1] if "." in path else path).group(0)
        out.append((head, _element(interp, path)))
    return out


def _elements_at(interp: Interpretation, spans: list[Span], start: int, end: int):
    return _kinds(interp, _covering(spans, start, end))


def _number(text: str) -> float | None:
    text = text.lower().replace(",", "")
    if text in NUMBER_WORDS:
        return NUMBER_WORDS[text]
    try:
        return float(text.rstrip("%"))
    except ValueError:
        return None


def _uses_param(element) -> bool:
    if isinstance(element, Filter):
        return element.param is not None
    for attr in ("param",):
        if getattr(element, attr, None):
            return True
    for edge in ("start", "end"):
        bound = getattr(element, edge, None)
        if bound is not None and getattr(bound, "param", None):
            return True
    return type(element).__name__ == "Parameter"


def _years_in(element) -> set[int]:
    years: set[int] = set()
    for edge in ("start", "end"):
        bound = getattr(element, edge, None)
        if bound is not None and getattr(bound, "date", None):
            years.add(int(bound.date[:4]))
    for attr in ("value",):
        value = getattr(element, attr, None)
        if isinstance(value, int) and 1000 <= value <= 9999:
            years.add(value)
        if isinstance(value, str) and re.match(r"\d{4}", value):
            years.add(int(value[:4]))
    for value in getattr(element, "values", None) or []:
        if isinstance(value, str) and re.match(r"\d{4}", value):
            years.add(int(value[:4]))
    return years


def shape_check(*, requirement: str, interpretation: Interpretation, catalog: Catalog) -> list[Finding]:
    """Phrases that demand an element of a particular shape get one (see the module docstring)."""
    interp = interpretation
    spans, _ = _spans(requirement, interp)
    text = requirement.lower()
    findings: list[Finding] = []

    def need(ok: bool, message: str, phrase: str) -> None:
        findings.append(Finding("shape", ok, message if not ok else f"'{phrase}' is realized", phrase=phrase))

    def at(match: re.Match, group: int = 0):
        return _elements_at(interp, spans, match.start(group), match.end(group))

    # "a given country", "a specific customer", "any category": a parameter.
    for m in re.finditer(
        r"\b(?:a|an|any|the|one|some)?\s*(given|specific|particular|certain|selected|chosen|specified|provided|"
        r"requested)\s+([a-z][\w-]*(?:\s+[a-z][\w-]*)?)",
        text,
    ):
        elements = at(m, 2) + at(m, 1)
        need(
            any(_uses_param(e) for _, e in elements),
            f"'{m.group(0).strip()}' asks for a value the caller gives, but the design has no parameter for it",
            m.group(0).strip(),
        )
    # A year ("in 2024", "each month of 2024"): a time window (or a filter) on that year.
    for m in re.finditer(r"(?<![\d-])\b(19\d{2}|20\d{2})\b(?!-\d)", text):
        year = int(m.group(1))
        elements = at(m, 1)
        ok = any(year in _years_in(e) for kind, e in elements if kind in ("windows", "window", "filters"))
        need(ok, f"'{m.group(1)}' names a year, but the design does not limit the dates to it", m.group(1))
    # Periods and rolling windows: a time window.
    for m in re.finditer(
        r"\b(?:this|last|previous|past|current|next)\s+(?:\d+\s+)?(day|week|month|quarter|year)s?\b|"
        r"\b(?:since|before|after|until|older than|newer than|within)\b|\b(?:today|yesterday)\b|"
        r"\b(?:year|month|quarter)[- ]to[- ]date\b|\b(?:ytd|mtd|qtd)\b",
        text,
    ):
        if re.match(r"last\s+\d+\s+(?!day|week|month|quarter|year)", m.group(0)):
            continue
        elements = at(m)
        ok = any(
            kind in ("windows", "window", "comparisons")
            or (kind == "filters" and _is_temporal_filter(interp, e, catalog))
            for kind, e in elements
        )
        need(ok, f"'{m.group(0)}' is a time window, but the design has no date condition for it", m.group(0))
    # "in the past week": the days up to today (seven for a week), not the calendar week before this one.
    for m in re.finditer(r"\bpast\s+(day|week|month|year)\b", text):
        amount, unit = (7, "day") if m.group(1) == "week" else (1, m.group(1))
        ok = any(kind in ("windows", "window") and _starts_ago(e, amount, unit) for kind, e in at(m))
        need(ok, f"'{m.group(0)}' is the {m.group(1)} up to today, but the design's dates start elsewhere", m.group(0))
    # "the highest lifetime value": money added up over every row, never an average or a single row's amount.
    for m in re.finditer(r"\blifetime\s+[a-z]+", text):
        elements = at(m)
        measures = [e for kind, e in elements if kind == "measures"]
        measures += [interp.measure(e.measure) for kind, e in elements if kind == "order_by" and e.measure]
        measures = [e for e in measures if e is not None]
        if measures:
            ok = all(e.func == "sum" for e in measures)
            need(ok, f"'{m.group(0)}' adds up every amount, but the design does not sum them", m.group(0))
    # A change between periods ("activity dropped", "orders grew"): a period comparison, that way round.
    for m in CHANGE_VERBS.finditer(text):
        direction = "down" if m.group(1) in DOWN_VERBS else "up"
        ok = any(kind == "comparisons" and e.direction == direction for kind, e in at(m, 1))
        need(
            ok,
            f"'{m.group(1)}' compares two periods, but the design does not compare a figure with the period before",
            m.group(1),
        )
    # Calendar periods side by side: each period measured on its own, by a figure of its own.
    for m in CALENDAR_VERSUS.finditer(text):
        sides = [
            {
                int(found.group(1))
                for p in _covering(spans, m.start(g), m.end(g))
                if (found := MEASURE_WINDOW.fullmatch(p))
            }
            for g in (1, 2)
        ]
        windows = [{_window_key(interp.measures[i].window) for i in side} for side in sides]
        ok = all(sides) and not sides[0] & sides[1] and not windows[0] & windows[1]
        need(
            ok,
            f"'{m.group(0)}' sets two periods side by side, but the design does not measure each period on its own",
            m.group(0),
        )
    # The first rows within each group: one figure per group (the highest salary in each department) is a
    # maximum or a minimum; the rows that hold it (the best-selling product in each category) no design can say.
    for m in TOP_PER_GROUP.finditer(text):
        ok = any(kind == "measures" and e.func in ("max", "min") for kind, e in at(m, 1))
        group = m.group("group")
        need(ok, f"'{m.group(0)}' asks for the top ones within each {group}, which cannot be offered yet", m.group(0))
    # Negation: an anti-join, a null test or a negative comparison.
    for w in words(requirement):
        if w.lower not in NEGATIONS:
            continue
        elements = _elements_at(interp, spans, w.start, w.end)
        ok = any(_is_negative(kind, e) for kind, e in elements)
        need(ok, f"'{w.text}' negates something, but the design has no condition that excludes it", w.text)
    # Recency: "most recent", "latest", "newest", "last 5 orders".
    for m in re.finditer(
        r"\b(most recent|latest|newest|oldest|earliest|last\s+(\d+|" + "|".join(NUMBER_WORDS) + r")\s+"
        r"(?!day|week|month|quarter|year|hour|minute)[a-z]+)\b",
        text,
    ):
        elements = at(m)
        orders = [e for kind, e in elements if kind == "order_by"]
        dated = [o for o in orders if o.column is not None and _temporal(interp, o.column, catalog)]
        measured = [o for o in orders if o.measure is not None and _measure_of_date(interp, o.measure, catalog)]
        direction = "asc" if m.group(1).startswith(("oldest", "earliest")) else "desc"
        ok = any(o.direction == direction for o in dated + measured)
        need(ok, f"'{m.group(1)}' asks for an order by date, but the design does not order by a date", m.group(1))
        if m.group(2):
            n = _number(m.group(2))
            need(
                interp.limit is not None and interp.limit.n == n,
                f"'{m.group(1)}' asks for {int(n)} rows, but the design does not return that many",
                m.group(1),
            )
    # Grain: "each month", "per week", "by year", "monthly".
    for m in re.finditer(r"\b(?:each|every|per|by|a)\s+(day|week|month|quarter|year)\b", text):
        if m.group(0).startswith("a ") and re.search(r"\bthan\s+$", text[: m.start()]):
            continue  # "older than a week" is a length of time, checked as a time window above
        unit = UNITS[m.group(1)]
        need(
            any(g.bucket == unit for g in interp.group_by),
            f"'{m.group(0)}' asks for one row per {unit}, but the design does not group by {unit}",
            m.group(0),
        )
    for w in words(requirement):
        unit = GRAIN_ADJECTIVES.get(w.lower)
        if unit:
            need(
                any(g.bucket == unit for g in interp.group_by),
                f"'{w.text}' asks for one row per {unit}, but the design does not group by {unit}",
                w.text,
            )
    # Top N / N most: a limit of N with an ordering.
    ranked_spans: list[tuple[int, int]] = []
    for m in re.finditer(
        r"\b(top|bottom|first|best|worst)\s+(\d+|" + "|".join(NUMBER_WORDS) + r")\b|"
        r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\s+(most|least|best|worst|biggest|largest|highest|lowest|"
        r"smallest|top|" + "|".join(sorted(DESCENDING_DIMENSIONS | ASCENDING_DIMENSIONS)) + r")\b",
        text,
    ):
        ranked_spans.append(m.span())
        n = _number(m.group(2) or m.group(3))
        word = (m.group(1) or m.group(4)).lower()
        ok = interp.limit is not None and interp.limit.n == n and bool(interp.order_by)
        if ok and word in ASCENDING | DESCENDING and word not in ("first",):
            wanted = "asc" if word in ASCENDING else "desc"
            ok = interp.order_by[0].direction == wanted
        need(ok, f"'{m.group(0)}' asks for {int(n)} ranked rows, but the design does not rank and cut them", m.group(0))
    # A number apart from its superlative ("which five actors appear in the most films", "the three countries
    # that bring in the most revenue"): a limit of that number, ordered that way.
    apart = re.match(
        r"\s*(?:which|what|the|our)\s+(\d+|" + "|".join(NUMBER_WORDS) + r")\s+[a-z][\w'-]*"
        r"(?:\s+(?!than\b)[a-z][\w'-]*){0,8}?\s+the\s+(most|fewest|least|highest|lowest|biggest|largest)\b",
        text,
    )
    if apart and not any(start <= apart.start(1) < end for start, end in ranked_spans):
        n = _number(apart.group(1))
        wanted = "asc" if apart.group(2) in ASCENDING else "desc"
        ok = interp.limit is not None and interp.limit.n == n and bool(interp.order_by)
        ok = ok and interp.order_by[0].direction == wanted
        need(
            ok,
            f"'{apart.group(0).strip()}' asks for {int(n)} ranked rows, but the design does not rank and cut them",
            apart.group(1),
        )
    # Superlatives without a number: an ordering on a measure or column, the right way.
    for w in words(requirement):
        if w.lower not in DESCENDING | ASCENDING or w.lower in ("max", "min"):
            continue
        if any(start <= w.start and w.end <= end for start, end in ranked_spans):
            continue  # checked with its number above
        if re.match(r"(most|least)\s+(recent|recently)", text[w.start :]):
            continue
        if re.match(r"(at\s+)$", text[max(0, w.start - 3) : w.start]):
            continue  # "at most", "at least": thresholds
        elements = _elements_at(interp, spans, w.start, w.end)
        orders = [e for kind, e in elements if kind == "order_by"]
        thresholds = [e for kind, e in elements if kind in ("having", "filters")]
        if thresholds and not orders:
            continue
        wanted = "asc" if w.lower in ASCENDING else "desc"
        need(
            any(o.direction == wanted for o in orders),
            f"'{w.text}' ranks the results, but the design does not order them "
            f"{'from the least' if wanted == 'asc' else 'from the most'}",
            w.text,
        )
    # Thresholds: "more than 30", "at least 5", "over 1000", "under 10".
    for m in re.finditer(
        r"\b(more than|greater than|higher than|larger than|bigger than|longer than|over|above|exceeding|"
        r"at least|no less than|fewer than|less than|lower than|smaller than|shorter than|under|below|at most|"
        r"no more than|up to|exactly|equal to)\s+(?:\$|€|£)?(\d+(?:[.,]\d+)*|" + "|".join(NUMBER_WORDS) + r")\b",
        text,
    ):
        n = _number(m.group(2))
        elements = at(m)
        ago = re.match(r"\s+(day|week|month|year)s?\s+ago\b", text[m.end() :])
        if not ago and re.search(r"\bfor\s+$", text[: m.start()]):
            ago = re.match(r"\s+(day|week|month|year)s?\b", text[m.end() :])  # "with us for more than five years"
        if ago and n is not None and m.group(1) in ("more than", "over", "at least"):
            # "more than 3 days ago": rows dated before the cut-off 3 days back, a window with that end.
            amount, unit = (n * 7, "day") if ago.group(1) == "week" else (n, ago.group(1))
            ok = any(
                kind in ("windows", "window") and _ends_ago(e, amount, unit)
                for kind, e in _elements_at(interp, spans, m.start(), m.end() + ago.end())
            )
            need(ok, f"'{m.group(0)}{ago.group(0)}' is an age, but the design has no window ending then", m.group(0))
            continue
        comparisons = [e for kind, e in elements if kind in ("having", "filters")]
        ok = any(_compares(e, n, m.group(1)) for e in comparisons)
        need(ok, f"'{m.group(0)}' is a threshold, but the design has no comparison with {m.group(2)}", m.group(0))
    # "more than four different products": each product counted once, however many rows name it.
    for m in re.finditer(r"\b(?:different|distinct|separate)\s+[a-z]+", text):
        counted = [interp.measure(e.measure) for kind, e in at(m) if kind == "having"]
        counted += [e for kind, e in at(m) if kind == "measures"]
        counts = [e for e in counted if e is not None and e.func in ("count", "count_distinct")]
        if counts:
            ok = all(e.func == "count_distinct" for e in counts)
            need(ok, f"'{m.group(0)}' counts each one once, but the design counts every row", m.group(0))
    # "twice", "more than once", "N times": a count condition.
    for m in re.finditer(
        r"\b(twice|more than once|at least once|once|(\d+|" + "|".join(NUMBER_WORDS) + r") times)\b", text
    ):
        elements = at(m)
        ok = any(kind in ("having", "repeated") for kind, _ in elements)
        need(ok, f"'{m.group(0)}' counts occurrences, but the design has no condition on a count", m.group(0))
    # Counting: "how many", "number of", "count".
    for m in re.finditer(r"\b(how many|number of|count of|count|counts)\b", text):
        elements = at(m)
        ok = any(kind == "measures" and e.func in ("count", "count_distinct") for kind, e in elements)
        ok = ok or any(kind == "having" for kind, _ in elements)
        need(ok, f"'{m.group(0)}' asks for a count, but the design counts nothing there", m.group(0))
    for m in re.finditer(r"\b(average|avg|mean)\b", text):
        ok = any(kind == "measures" and e.func == "avg" for kind, e in at(m))
        need(ok, f"'{m.group(0)}' asks for an average, but the design does not average", m.group(0))
    # A count of rows grouped by a key of the only table counts one row per group: it counts nothing.
    root = catalog.get(interp.root.object) if len(interp.entities) == 1 else None
    grouped = {g.column.column for g in interp.group_by if g.bucket is None and g.column.entity == interp.root.alias}
    for m in interp.measures:
        if root is not None and m.func == "count" and m.column is None and grouped and root.is_unique(grouped):
            need(
                False,
                f"'{m.phrase or m.id}' counts rows per {', '.join(sorted(grouped))}, which is one row each",
                m.phrase,
            )
    # Two equalities on one column select nothing: a row holds one value ("gold and platinum" is a list).
    equalities: dict[tuple[str, str], list[Filter]] = {}
    for f in interp.filters:
        if f.op == "eq" and f.other is None:
            equalities.setdefault(f.column.key(), []).append(f)
    for (alias, column), same in equalities.items():
        if len(same) > 1:
            phrase = " and ".join(f"'{f.phrase or f.value}'" for f in same)
            need(False, f"{phrase} each require {alias}.{column} to equal a value; a row holds only one", phrase)
    # People's names: first and last name where the entity has both.
    for m in re.finditer(r"\b(full names?|names?)\b", text):
        findings += _names_check(interp, catalog, spans, m)
    return findings


def _ends_ago(window, amount: float, unit: str) -> bool:
    """Whether a window ends `amount` units before today, with no start ("older than", "more than ... ago")."""
    end = getattr(window, "end", None)
    if window.start is not None or end is None:
        return False
    if end.relative is not None:
        return end.relative.unit == unit and abs(end.relative.amount + amount) < 1e-9
    return end.param is not None and end.param_unit == "days_ago" and unit == "day"


def _starts_ago(window, amount: float, unit: str) -> bool:
    """Whether a window starts `amount` units before today and runs on to today ("the past week")."""
    start = getattr(window, "start", None)
    if window.end is not None or start is None or start.relative is None:
        return False
    relative = start.relative
    if relative.unit == "week" and unit == "day":
        return abs(relative.amount * 7 + amount) < 1e-9
    return relative.unit == unit and abs(relative.amount + amount) < 1e-9


def _temporal(interp: Interpretation, col, catalog: Catalog) -> bool:
    entity = interp.entity(col.entity)
    info = catalog.get(entity.object) if entity else None
    column = info.columns.get(col.column) if info else None
    return bool(column and column.is_temporal)


def _measure_of_date(interp: Interpretation, measure_id: str, catalog: Catalog) -> bool:
    m = interp.measure(measure_id)
    return bool(m and m.func in ("max", "min") and m.column is not None and _temporal(interp, m.column, catalog))


def _is_temporal_filter(interp: Interpretation, f, catalog: Catalog) -> bool:
    return isinstance(f, Filter) and _temporal(interp, f.column, catalog)


def _is_negative(kind: str, e) -> bool:
    if kind == "exists":
        return bool(e.negated)
    if kind in ("filters",):
        return e.op in ("ne", "not_in", "is_null", "lt", "lte") or (
            e.op == "eq" and e.value in (False, 0) and not isinstance(e.value, str)
        )
    if kind == "having":
        return e.op in ("lt", "lte", "ne") or (e.op == "eq" and e.value == 0)
    if kind in ("windows", "window"):
        return e.end is not None and e.start is None  # "not since", "older than"
    return False


def _window_key(window) -> str:
    """A window's dates, whatever its phrase."""
    return window.model_dump_json(exclude={"phrase"})


def _compares(element, n: float | None, words_: str) -> bool:
    if n is None:
        return False
    value = element.value
    lower = words_ in ("fewer than", "less than", "lower than", "smaller than", "shorter than", "under", "below")
    upper = words_ in ("more than", "greater than", "higher than", "larger than", "bigger than", "longer than", "over")
    upper = upper or words_ in ("above", "exceeding")
    at_least = words_ in ("at least", "no less than")
    at_most = words_ in ("at most", "no more than", "up to")
    op = element.op
    if lower and op not in ("lt", "lte"):
        return False
    if (upper or at_least) and op not in ("gt", "gte"):
        return False
    if at_most and op not in ("lt", "lte"):
        return False
    if words_ in ("exactly", "equal to") and op != "eq":
        return False
    if getattr(element, "param", None):
        return True  # a parameter holds the number; its default is checked with the parameters
    if value is None or isinstance(value, bool):
        return False
    try:
        value = float(value)
    except (TypeError, ValueError):
        return False
    # The same number, or the boundary written the other way (more than 30 = at least 31), or a unit
    # conversion either way (minutes to seconds, hours to minutes, seconds to minutes, grams to kilograms).
    candidates = {n, n + 1, n - 1, n * 60, n * 3600, n * 1000, n / 100, n / 60, n / 3600, n / 1000}
    return any(abs(value - c) < 1e-9 for c in candidates)


def _name_columns(columns: list[str]) -> tuple[list[str], list[str], list[str]]:
    first = [c for c in columns if {"first", "given", "fore"} & set(name_words(c)) and "name" in name_words(c)]
    last = [c for c in columns if {"last", "sur", "family"} & set(name_words(c)) and "name" in name_words(c)]
    last += [c for c in columns if c.lower() in ("surname", "lastname")]
    first += [c for c in columns if c.lower() in ("firstname", "forename")]
    plain = [c for c in columns if "name" in name_words(c)]
    return first, last, plain


def _names_check(interp: Interpretation, catalog: Catalog, spans: list[Span], m: re.Match) -> list[Finding]:
    phrase = m.group(0)
    shown = [(s.column.entity, s.column.column) for s in interp.select]
    shown += [(g.column.entity, g.column.column) for g in interp.group_by]
    # Whose names: the entity named just before "names" ("customer names"), else the root.
    before = [w for w in words(m.string[: m.start()]) if w.lower not in ("their", "the", "with", "and", "full")]
    candidates = []
    if before:
        word = before[-1].lower
        candidates = [e for e in interp.entities if related(word, e.object_name) or related(word, e.alias)]
    if not candidates:
        shown_entities = {e for e, _ in shown}
        candidates = [e for e in interp.entities if e.alias in shown_entities] or [interp.root]
    for entity in candidates[:1]:
        info = catalog.get(entity.object)
        if info is None:
            continue
        first, last, plain = _name_columns(list(info.columns))
        mine = {c for a, c in shown if a == entity.alias}
        if first and last:
            ok = bool(set(first) & mine) and bool(set(last) & mine)
            return [
                Finding(
                    "shape",
                    ok,
                    f"'{phrase}' asks for names, but the design does not show both "
                    f"{first[0]} and {last[0]} of {info.name}"
                    if not ok
                    else f"'{phrase}' is realized",
                    phrase=phrase,
                )
            ]
        if plain:
            ok = bool(set(plain) & mine)
            return [
                Finding(
                    "shape",
                    ok,
                    f"'{phrase}' asks for names, but the design shows no name column of {info.name}"
                    if not ok
                    else f"'{phrase}' is realized",
                    phrase=phrase,
                )
            ]
    return []
