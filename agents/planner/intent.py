"""Reading a requirement: time windows, top N, metrics, grains, negations, lookups and group-by phrases.

These are patterns of ordinary English about data, not of any schema. What they refer to (tables,
columns, values) is resolved against the schema in planner.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .units import UNIT_WORDS as QUANTITY_UNITS
from .vocabulary import EVENT_VERBS, MONEY_WORDS, VERB_PARTICLES

UNSUPPORTED = (
    (r"^\s*(delete|remove|update|insert|create|drop|add|modify|change|archive|merge|upsert)\b", "it asks for a write"),
    (r"\b(forecast|predict\w*|projection|extrapolat\w*)\b", "it asks for a prediction"),
    (r"\b(correlat\w*|regression|median|percentile|quantile|stddev|standard deviation)\b", "it asks for statistics"),
    (
        r"\b(year[- ]over[- ]year|month[- ]over[- ]month|growth rate|compared? (?:to|with)|versus|vs\.?)\b",
        "it compares periods or groups",
    ),
    (r"\b(sentiment|recommend\w*|classify|summari[sz]e|explain|why)\b", "it asks for judgement, not a query"),
    (r"\b(dropped|decreased|increased|declin\w*|rising|falling)\b", "it compares activity across periods"),
)

GRAIN_WORDS = {
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
    "annual": "year",
    "annually": "year",
}
UNIT_WORDS = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}
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
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "fifty": 50,
    "hundred": 100,
}
# A number as written: digits (with thousands separators) or a number word.
NUM = r"(\d+(?:,\d{3})*(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")"
# Comparison words before a number, and the operator they mean.
COMPARATIVES = {
    "more than": "gt",
    "greater than": "gt",
    "higher than": "gt",
    "larger than": "gt",
    "bigger than": "gt",
    "longer than": "gt",
    "over": "gt",
    "above": "gt",
    "exceeding": "gt",
    "at least": "gte",
    "no less than": "gte",
    "fewer than": "lt",
    "less than": "lt",
    "lower than": "lt",
    "smaller than": "lt",
    "shorter than": "lt",
    "under": "lt",
    "below": "lt",
    "at most": "lte",
    "no more than": "lte",
}
# Verbs of money coming in: "the countries that bring in the most revenue".
EARNING_VERBS = r"bring|brings|brought|bringing|earn|earns|earned|generate|generates|generated|make|makes|made"
# "lifetime value", "lifetime spend": money summed over every row of the entity, whatever its date.
LIFETIME_MONEY = r"lifetime\s+(?:value|" + "|".join(sorted(MONEY_WORDS)) + r")"


def is_money_word(word: str) -> bool:
    """Whether the words name an amount of money: 'revenue', 'sales', 'lifetime value'."""
    return word in MONEY_WORDS or re.fullmatch(LIFETIME_MONEY, word) is not None


RECENT_WORDS = {"most recent": "desc", "latest": "desc", "newest": "desc", "oldest": "asc", "earliest": "asc"}


def number_value(text: str) -> float | None:
    """The value of a number as written ("1,000", "3.5", "five"), or None."""
    text = text.lower().strip()
    if text in NUMBER_WORDS:
        return NUMBER_WORDS[text]
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


@dataclass
class TimeWindow:
    kind: str  # "rolling" | "before" (older than a rolling cut-off) | "period" | "since" | "until" | "between"
    phrase: str
    unit: str | None = None  # rolling: day | month | year
    amount: int | None = None
    period: str | None = None  # period: week | month | quarter | year
    previous: bool = False
    since: str | None = None
    until: str | None = None
    given: bool = False  # "since a given date": the caller gives the first day
    span: tuple[int, int] = (0, 0)


@dataclass
class Metric:
    func: str  # count | sum | avg | min | max
    word: str | None  # what is measured, as written ("revenue", "salary"); None for count(*)
    money: bool = False
    phrase: str = ""
    next_word: str | None = None  # the word after it ("order total": word "order", next_word "total")
    span: tuple[int, int] = (0, 0)


@dataclass
class Threshold:
    """'more than 30', 'above 50 dollars', 'at least 20%': a comparison with a number."""

    op: str  # gt | gte | lt | lte
    value: float
    span: tuple[int, int]  # the comparison words and the number (and its unit sign)
    percent: bool = False
    unit: str | None = None  # the word after the number ("dollars", "films"), as written
    unit_span: tuple[int, int] | None = None


@dataclass
class Phrases:
    """Everything recognised in the requirement by pattern, with the character spans it explains."""

    unsupported: str | None = None
    window: TimeWindow | None = None
    top_n: int | None = None
    top_ascending: bool = False
    rank_word: str | None = None  # "top 10 products by <rank_word>"
    metric: Metric | None = None
    grain: str | None = None
    negation_at: int | None = None  # character offset just after "no" / "without" ...
    negation_implicit: bool = False  # "inactive customers"
    lookup_word: str | None = None  # "by <id>", "with id 42"
    lookup_value: str | None = None
    lookup_at: int | None = None
    lookup_qualifier: str | None = None  # "customer" in "by their customer number"
    group_words: list[tuple[int, str]] = field(default_factory=list)  # (offset, word after by/per)
    group_starts: dict[int, int] = field(default_factory=dict)  # offset of the word -> start of "by"/"per"
    top_span: tuple[int, int] | None = None
    grain_span: tuple[int, int] | None = None
    negation_span: tuple[int, int] | None = None
    lookup_span: tuple[int, int] | None = None
    rank_span: tuple[int, int] | None = None
    child_at: list[int] = field(default_factory=list)  # offsets after "with its" / "including"
    given: list[tuple[tuple[int, int], int]] = field(default_factory=list)  # ("a given X" span, offset of X)
    thresholds: list[Threshold] = field(default_factory=list)
    repeats: list[Threshold] = field(default_factory=list)  # "twice", "more than once", "at least 3 times"
    recency: str | None = None  # "most recent", "latest": desc; "oldest": asc
    recency_span: tuple[int, int] | None = None
    name_lookup_span: tuple[int, int] | None = None  # "by first and last name"
    structure_spans: list[tuple[int, int]] = field(default_factory=list)  # "look up", "search for"
    single_ranked: bool = False  # "which channel brought in the most revenue": the one group with the most
    rank_verb: str | None = None  # "which film was rented the most": the verb naming the rows counted
    ranked_rows_at: tuple[int, int] | None = None  # "which shipper carried the most orders": (ranked, counted) offsets
    rank_verb_span: tuple[int, int] | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)

    def explains(self, start: int, end: int) -> bool:
        return any(s <= start and end <= e for s, e in self.spans)


def _read_single_superlative(lowered: str, found: Phrases) -> None:
    """'Which sales channel brought in the most revenue', 'The region with the highest sales': one row, ranked.

    The thing ranked is a singular noun at the start ("which channel", "the region with"), so the answer
    is its one value with the most (or least) money; the noun is what the rows are grouped by.
    """
    counted = re.match(
        r"\s*(?:which|what)\s+([a-z]+)\s+(?:was|were|is|are|has been|have been|got|gets|did)\s+([a-z]+ed)\s+"
        r"(?:the\s+)?(most|least)\b",
        lowered,
    )
    if counted and not counted.group(1).endswith("s"):
        # "Which film was rented the most?": the one row with the most rows of what the verb names.
        found.top_n, found.top_ascending = 1, counted.group(3) == "least"
        found.top_span = counted.span(1)
        found.rank_verb, found.rank_verb_span = counted.group(2), counted.span(2)
        found.rank_span = (counted.start(2), counted.end(3))
        found.spans += [found.rank_span]
        found.metric = Metric(func="count", word=None, phrase=counted.group(2), span=counted.span(2))
        found.single_ranked = True
        return
    most_rows = re.match(
        r"\s*(?:which|what)\s+(?:([a-z]+)\s+)??([a-z]+)\s+(?:has\s+|have\s+|had\s+)?([a-z]+ed)\s+(?:the\s+)?"
        r"(most|fewest|least)\s+([a-z]+s)\b",
        lowered,
    )
    if most_rows and not most_rows.group(2).endswith("s") and most_rows.group(5) not in MONEY_WORDS:
        # "Which shipping company carried the most orders?": the one row with the most rows of that table.
        found.top_n, found.top_ascending = 1, most_rows.group(4) != "most"
        found.top_span = (most_rows.start(1) if most_rows.group(1) else most_rows.start(2), most_rows.end(2))
        found.rank_span = (most_rows.start(3), most_rows.end(4))
        found.spans += [found.rank_span]
        found.single_ranked = True
        found.ranked_rows_at = (most_rows.start(2), most_rows.start(5))
        return
    money = "|".join(sorted(MONEY_WORDS))
    superlative = re.search(
        r"\b(?:the\s+)?(most|highest|biggest|largest|least|lowest|smallest)\s+(" + money + r")\b", lowered
    )
    if not superlative:
        return
    lead = re.match(r"\s*(?:which|what)\s+(?:(" + money + r")\s+)?([a-z]\w*)\b", lowered) or re.match(
        r"\s*(?:the\s+)?(?:(" + money + r")\s+)?([a-z]\w*)\s+(?:with|that|which)\b", lowered
    )
    if not lead or lead.end(2) > superlative.start():
        return
    noun = lead.group(2)
    if noun in MONEY_WORDS or not re.fullmatch(r"[a-z]+", noun) or noun.endswith("s"):
        return  # plural or not a noun: every row, ranked, is another shape
    start = superlative.start()
    verb = re.search(r"\b(?:" + EARNING_VERBS + r")(?:\s+in)?\s+$", lowered[:start])
    if verb:
        start = verb.start()  # "brought in the most revenue"
    found.top_n, found.top_ascending = 1, superlative.group(1) in ("least", "lowest", "smallest")
    found.top_span = lead.span(2)
    found.rank_word, found.rank_span = superlative.group(2), (start, superlative.end())
    found.spans += [found.rank_span]
    found.group_words.append((lead.start(2), noun))
    found.group_starts[lead.start(2)] = lead.start(1) if lead.group(1) else lead.start(2)
    if lead.group(1):
        found.spans.append(lead.span(1))  # "sales channel": the money word qualifies the noun; it names no table
    found.single_ranked = True


def _stripped(match: re.Match) -> tuple[int, int]:
    """The span of a match without its surrounding spaces."""
    text = match.group(0)
    return match.start() + (len(text) - len(text.lstrip())), match.end() - (len(text) - len(text.rstrip()))


def read_phrases(text: str) -> Phrases:
    lowered = text.lower()
    found = Phrases()
    for pattern, why in UNSUPPORTED:
        if re.search(pattern, lowered):
            found.unsupported = why
            break

    def take(match: re.Match) -> None:
        found.spans.append(match.span())

    # Time windows.
    # "in the past week" is the seven days up to today ("last week" is the calendar week before this one).
    match = re.search(
        r"\b(?:(?:in|within|during|over|for)\s+)?(?:the\s+)?(?:(?:last|past|previous|recent)\s+(\d+)\s+"
        r"|past\s+)(day|week|month|year)s?\b",
        lowered,
    )
    if match:
        amount, unit = int(match.group(1) or 1), match.group(2)
        if unit == "week":
            amount, unit = amount * 7, "day"
        found.window = TimeWindow(
            kind="rolling", phrase=match.group(0).strip(), unit=unit, amount=amount, span=_stripped(match)
        )
        take(match)
    if found.window is None:
        match = re.search(
            r"\b(?:(?:in|during|for|over)\s+)?(?:the\s+)?(last|previous|this|current)\s+(week|month|quarter|year)\b",
            lowered,
        )
        if match:
            found.window = TimeWindow(
                kind="period",
                phrase=match.group(0).strip(),
                period=match.group(2),
                previous=match.group(1) in ("last", "previous"),
                span=_stripped(match),
            )
            take(match)
    if found.window is None:
        match = re.search(r"\b(year|month|quarter)[- ]to[- ]date\b|\b(ytd|mtd|qtd)\b", lowered)
        if match:
            period = match.group(1) or {"ytd": "year", "mtd": "month", "qtd": "quarter"}[match.group(2)]
            found.window = TimeWindow(kind="period", phrase=match.group(0), period=period, span=match.span())
            take(match)
    if found.window is None:
        match = re.search(r"\bbetween\s+(\d{4}-\d{2}-\d{2})\s+and\s+(\d{4}-\d{2}-\d{2})\b", lowered)
        if match:
            found.window = TimeWindow(
                kind="between", phrase=match.group(0), since=match.group(1), until=match.group(2), span=match.span()
            )
            take(match)
    if found.window is None:
        match = re.search(
            r"\b(?:since|after|from|starting)\s+(?:on\s+)?(?:a|an|any|the|some)\s+"
            r"(?:given|specific|particular|certain|selected|chosen|specified)\s+(?:date|day)\b",
            lowered,
        )
        if match:
            found.window = TimeWindow(kind="since", phrase=match.group(0), given=True, span=match.span())
            take(match)
    if found.window is None:
        match = re.search(r"\b(since|after|from|starting)\s+(?:on\s+)?(\d{4}-\d{2}-\d{2})\b", lowered)
        if match:
            found.window = TimeWindow(kind="since", phrase=match.group(0), since=match.group(2), span=match.span())
            take(match)
    if found.window is None:
        # "older than a week", "opened more than 3 days ago": rows from before a rolling cut-off.
        # "been with us for more than five years": a state lasting that long began before the cut-off; with a
        # negation ("inactive for more than 30 days") it is a lack of activity, another shape, so it is not read.
        lasting = r"|for\s+(?:more than|over|at least)\s+(a|an|" + NUM[1:-1] + r")\s+(day|week|month|year)s?"
        if re.search(r"\b(?:no|not|never|without|nobody|inactive|idle|dormant|lapsed)\b|n't\b", lowered):
            lasting = ""
        match = re.search(
            r"\b(?:older than\s+(a|an|" + NUM[1:-1] + r")\s+(day|week|month|year)s?(?:\s+ago)?|"
            r"(?:more than|over|at least)\s+(a|an|"
            + NUM[1:-1]
            + r")\s+(day|week|month|year)s?\s+ago"
            + lasting
            + r")\b",
            lowered,
        )
        if match:
            written, unit = next(
                (match.group(n), match.group(n + 1)) for n in (1, 3, 5) if n < len(match.groups()) and match.group(n)
            )
            amount = 1 if written in ("a", "an") else int(number_value(written) or 0)
            if amount > 0:
                if unit == "week":
                    amount, unit = amount * 7, "day"
                found.window = TimeWindow(
                    kind="before", phrase=match.group(0).strip(), unit=unit, amount=amount, span=_stripped(match)
                )
                take(match)
    if found.window is None:
        match = re.search(r"\b(before|until|up to)\s+(\d{4}-\d{2}-\d{2})\b", lowered)
        if match:
            found.window = TimeWindow(kind="until", phrase=match.group(0), until=match.group(2), span=match.span())
            take(match)

    if found.window is not None:
        # "signed up this year", "placed last month": the verb saying when the row came to be is the window's.
        verb = re.search(
            r"\b(?:(?:who|that|which)\s+(?:(?:have|has|had|were|was)\s+)?(?:" + "|".join(sorted(EVENT_VERBS)) + r")"
            r"|(?:" + "|".join(sorted(EVENT_VERBS)) + r")\s+(?:" + "|".join(sorted(VERB_PARTICLES)) + r"))"
            r"(?:\s+(?:" + "|".join(sorted(VERB_PARTICLES)) + r"))?\s+$",
            lowered[: found.window.span[0]],
        )
        if verb:
            start = verb.start() + len(
                re.match(r"(?:(?:who|that|which)\s+(?:(?:have|has|had|were|was)\s+)?)?", verb.group(0)).group(0)
            )
            found.window.span = (start, found.window.span[1])
            found.spans.append(found.window.span)

    # Recency: "the four most recent orders", "the latest orders", "last 5 orders".
    match = re.search(r"\b(?:the\s+)?(?:" + NUM + r"\s+)?(most recent|latest|newest|oldest|earliest)\b", lowered)
    if match:
        found.recency = RECENT_WORDS[match.group(2)]
        found.recency_span = match.span(2)
        take(match)
        if match.group(1):
            found.top_n = int(number_value(match.group(1)) or 0) or None
            found.top_span = match.span(1)
    else:
        match = re.search(
            r"\blast\s+" + NUM + r"\s+(?!(?:day|week|month|quarter|year|hour|minute)s?\b)(?=[a-z])", lowered
        )
        if match:
            found.recency, found.recency_span = "desc", _stripped(match)
            found.top_n = int(number_value(match.group(1)) or 0) or None
            found.top_span = _stripped(match)
            take(match)

    # The verbs of asking: "look up", "looked up by", "search for".
    for match in re.finditer(r"\b(?:look(?:ed|ing)?\s+up|search(?:ed|ing)?\s+for)\b", lowered):
        take(match)
        found.structure_spans.append(match.span())
    # "by first and last name": a person looked up by both names.
    match = re.search(
        r"\bby\s+(?:(?:their|its|the|his|her)\s+)?(?:first|given)\s+(?:name\s+)?and\s+(?:last|family|sur)\s*names?\b",
        lowered,
    )
    if match:
        found.name_lookup_span = match.span()

    # "a given country", "a specific customer": a value the caller gives.
    for match in re.finditer(
        r"\b(?:a|an|any|one|some|the)\s+(?:given|specific|particular|certain|selected|chosen|specified)\s+([a-z]\w*)",
        lowered,
    ):
        window = found.window
        if window is not None and window.given and window.span[0] <= match.start() < window.span[1]:
            continue  # "since a given date" is the window's first day
        found.given.append(((match.start(), match.end(1)), match.start(1)))

    # Thresholds: "more than 30", "above 50 dollars", "at least 20%", "over $1,000".
    for match in re.finditer(
        r"\b(" + "|".join(sorted(COMPARATIVES, key=len, reverse=True)) + r")\s+(?:[$€£]\s?)?" + NUM + r"(%)?"
        r"(?:\s+(?:(?:different|distinct|separate)\s+)?([a-z][\w-]*))?",
        lowered,
    ):
        unit, unit_span = match.group(4), match.span(4)
        partitive = re.match(r"\s+(?:(?:our|the|their|your|its)\s+)?([a-z][\w-]*)", lowered[match.end() :])
        if unit == "of" and partitive and not match.group(3):
            # "more than one of our customers": a count of customers, like "more than one customer"
            unit = partitive.group(1)
            unit_span = (match.end() + partitive.start(1), match.end() + partitive.end(1))
        durations = r"(?:second|minute|hour|day|week|month|quarter|year)s?|times?|ago"
        if unit and (re.fullmatch(durations, unit) or unit in QUANTITY_UNITS):
            continue  # durations, quantities in a unit (units.py) and counts of occurrences are other shapes
        value = number_value(match.group(2))
        if value is None:
            continue
        end = match.end(3) if match.group(3) else match.end(2)
        found.thresholds.append(
            Threshold(
                op=COMPARATIVES[match.group(1)],
                value=value,
                span=(match.start(), end),
                percent=bool(match.group(3)),
                unit=unit,
                unit_span=unit_span if unit else None,
            )
        )

    # Repeats: "twice", "more than once", "at least twice", "three times": how many rows something has.
    for match in re.finditer(
        r"\b(?:(more than|at least)\s+)?(?:(once|twice)|" + NUM + r"\s+times)\b",
        lowered,
    ):
        count = {"once": 1, "twice": 2}.get(match.group(2) or "") or number_value(match.group(3) or "")
        if count is None or count != int(count):
            continue
        op = {"more than": "gt", "at least": "gte"}.get(match.group(1) or "", "gte")
        if match.group(2) == "once" and op != "gt":
            continue  # "once" alone is not a repeat
        found.repeats.append(Threshold(op=op, value=count, span=match.span()))

    # Top N.
    match = re.search(r"\b(top|bottom|first|best|worst)\s+" + NUM + r"\b", lowered) or re.search(
        r"\b" + NUM + r"\s+(most|best|biggest|largest|highest|least|lowest|smallest)\b(?!\s+recent)", lowered
    )
    apart = re.search(
        r"\bthe\s+" + NUM + r"\s+(?:[a-z][\w'-]*\s+){1,5}?((?:the\s+)?(most|least|fewest|highest|lowest|biggest|"
        r"largest|smallest))\b(?!\s+recent)(?:\s+(?!of\b|in\b|for\b|by\b|with\b|and\b)([a-z]\w*))?",
        lowered,
    )
    if found.top_n is not None:
        pass  # "the five latest orders": the number belongs to the recency
    elif match:
        number = next(int(number_value(g)) for g in match.groups() if g and number_value(g) is not None)
        word = next(g for g in match.groups() if g and number_value(g) is None)
        found.top_n = number
        found.top_ascending = word in ("bottom", "worst", "least", "lowest", "smallest")
        found.top_span = match.span()
        take(match)
    elif apart and number_value(apart.group(1)) is not None:
        # "the five customers who spent the most", "the three countries that bring in the most revenue"
        found.top_n = int(number_value(apart.group(1)) or 0) or None
        found.top_ascending = apart.group(3) in ("least", "fewest", "lowest", "smallest")
        found.top_span = apart.span(1)
        take_span = found.spans.append
        take_span(apart.span(1))
        start, end = apart.span(2)
        lifetime = re.compile(r"\s+(" + LIFETIME_MONEY + r")\b").match(lowered, end)
        if lifetime:
            found.rank_word, end = lifetime.group(1), lifetime.end(1)
        elif apart.group(4) and apart.group(4) in MONEY_WORDS:
            found.rank_word, end = apart.group(4), apart.end(4)
            verb = re.search(r"\b(?:" + EARNING_VERBS + r")(?:\s+in)?\s+$", lowered[:start])
            if verb:
                start = verb.start()  # "bring in the most revenue"
        else:
            before = re.search(r"([a-z]\w*)\s+$", lowered[:start])
            if before and before.group(1) in MONEY_WORDS:
                found.rank_word, start = before.group(1), before.start(1)
        found.rank_span = (start, end)
        take_span(found.rank_span)
    elif re.search(r"\btop\b", lowered):
        match = re.search(r"\btop\b", lowered)
        found.top_n = 10
        found.top_span = match.span()
        take(match)
    if found.top_n is None:
        _read_single_superlative(lowered, found)
    if found.top_n is not None and found.rank_span is None:
        rank = re.search(
            r"\b(?:by|in terms of|ranked by|with the (?:most|highest))\s+(?:total\s+)?(" + LIFETIME_MONEY + r"|\w+)",
            lowered,
        )
        if rank:
            found.rank_word = rank.group(1)
            found.rank_span = rank.span()
            found.spans.append(rank.span())

    # Metrics.
    ranked_count = found.metric if found.rank_verb else None
    match = re.search(r"\b(?:total\s+)?(?:number|count|counts|amount)\s+of\b|\bhow many\b|\bcount\b", lowered)
    if match:
        found.metric = Metric(func="count", word=None, phrase=match.group(0), span=match.span())
        take(match)
    else:
        match = re.search(
            r"\b(average|avg|mean|total|sum of|sum|maximum|max|minimum|min)\s+(?:of\s+)?(?:the\s+)?(\w+)"
            r"(?:\s+(?!by\b|per\b|for\b|in\b|of\b|from\b|over\b|during\b|since\b|this\b|last\b)(\w+))?",
            lowered,
        )
        if match:
            func = {"average": "avg", "avg": "avg", "mean": "avg", "total": "sum", "sum of": "sum", "sum": "sum"}.get(
                match.group(1), "max" if match.group(1).startswith("max") else "min"
            )
            word, next_word = match.group(2), match.group(3)
            money = word in MONEY_WORDS or (next_word or "") in MONEY_WORDS
            found.metric = Metric(
                func=func, word=word, money=money, phrase=match.group(0), next_word=next_word, span=match.span()
            )
            take(match)
        else:
            # "which sales channel brought in the most revenue": the money word ranked, not the one naming the group
            after = found.rank_span[0] if found.single_ranked and found.rank_span else 0
            words = "|".join(sorted(MONEY_WORDS))
            # "sales revenue": two money words are one measure, named by the last
            money = re.compile(r"\b(" + words + r")(?:\s+(" + words + r"))?\b").search(lowered, after)
            if money and (found.top_n is None or found.rank_word in (money.group(1), money.group(2))):
                found.metric = Metric(
                    func="sum",
                    word=money.group(2) or money.group(1),
                    money=True,
                    phrase=money.group(0),
                    span=money.span(),
                )
                take(money)
    if found.top_n is not None and found.metric is None and is_money_word(found.rank_word or ""):
        found.metric = Metric(func="sum", word=found.rank_word, money=True, phrase=found.rank_word)

    if ranked_count is not None:
        found.metric = ranked_count  # "rented the most" counts the rows the verb names
    # Time grain.
    match = re.search(r"\b(daily|weekly|monthly|quarterly|yearly|annual|annually)\b", lowered)
    if match:
        found.grain = GRAIN_WORDS[match.group(1)]
        found.grain_span = match.span()
        take(match)
    else:
        match = re.search(r"\b(?:by|per|each|every)\s+(day|week|month|quarter|year)\b", lowered)
        if match:
            found.grain = UNIT_WORDS[match.group(1)]
            found.grain_span = match.span()
            take(match)

    # "No activity": the entity is kept only when no related row exists (in the window).
    match = re.search(
        r"\b(no one|nobody|no|without|zero|never|not any|haven't|hasn't|have not|has not|did not|didn't|no recent)\s+",
        lowered,
    )
    if match:
        found.negation_at = match.end()
        found.negation_span = (match.start(), match.end() - (len(match.group(0)) - len(match.group(0).rstrip())))
        take(match)
    match = re.search(r"\b(inactive|dormant|idle|lapsed)\b", lowered)
    if match:
        found.negation_implicit = True
        found.negation_at = found.negation_at or match.end()
        found.negation_span = found.negation_span or match.span()
        take(match)

    # Lookup by key.
    for match in re.finditer(
        r"\b(?:by|with|for|given|having)\s+(?:(?:a|an|the|its|their|given)\s+)?(?:([a-z]\w*)\s+)??"
        r"(id|key|code|number|\w+_id)\b(?:\s+(\d+))?",
        lowered,
    ):
        if found.explains(*match.span(2)) or lowered[match.end(2) :].lstrip().startswith("of "):
            continue
        found.lookup_word, found.lookup_value, found.lookup_at = match.group(2), match.group(3), match.start()
        found.lookup_qualifier = match.group(1)  # "by their customer number": must name the entity itself
        found.lookup_span = match.span()
        take(match)
        break

    # Group-by phrases (the word after them is resolved later: a column, a table or a metric).
    for match in re.finditer(
        r"\b(?:grouped by|broken down by|split by|by|per|for each|for every|each)\s+(?:the\s+)?(\w+)", lowered
    ):
        if found.explains(*match.span(1)):
            continue
        found.group_words.append((match.start(1), match.group(1)))
        found.group_starts[match.start(1)] = match.start()
    for match in re.finditer(r"\b(?:with|and|including|plus)\s+(?:all\s+)?(?:its|their|the)?\s*(?=\w)", lowered):
        found.child_at.append(match.end())
    return found
