"""Changes between periods: "customers whose activity dropped in the last 90 days, with their lifetime spend".

Per row of the entity, a figure of its related rows (a count of the rows the noun names, or the sum of a
money measure when the noun is a money word) in the last N units against the N units before; "dropped"
keeps the rows whose figure fell, "grew" those whose figure rose. Both figures are returned beside the
entity's key and naming columns, as a `comparisons` element of the interpretation. "with their lifetime
spend" adds the money measure over all time. Money words are resolved the way every other requirement
resolves them (the glossary, or the questions about which column and which statuses count).

Calendar periods compared ("revenue this month compared with last month", "orders this year vs last
year", "sales per category, this quarter versus the previous quarter"): the requirement without its second
period is designed as any other, and each of its measures becomes two, one per period, each counting only
the rows of its own period (calendar_comparison_design).

Nothing here knows a particular schema: tables are found by their names and foreign keys, dates by
their types and names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from endpoints.interpretation import Interpretation, Question, TimeWindow

from .dates import date_candidates
from .intent import NUMBER_WORDS
from .schema_index import Column, ForeignKey, Key, SchemaIndex, Table
from .vocabulary import ACTIVITY_WORDS, MONEY_WORDS, Token, singular, tokenize, word_score

DOWN_VERBS = ("dropped", "fell", "declined", "decreased", "shrank", "shrunk", "slowed", "dipped")
UP_VERBS = ("grew", "rose", "increased", "climbed", "jumped")
NUM = r"(\d+|" + "|".join(NUMBER_WORDS) + r")"
UNIT = r"(day|week|month|year)s?"
# "<entity> whose <noun> dropped in the last N units (compared with the previous N units)".
CHANGE = re.compile(
    r"\b(?P<rel>whose|where\s+(?:their|the)|with\s+(?:their|the))\s+(?P<noun>[a-z][a-z-]*(?:\s+[a-z][a-z-]*)?)\s+"
    r"(?:(?:has|have|had)\s+)?(?P<verb>" + "|".join(DOWN_VERBS + UP_VERBS) + r")\s+"
    r"(?P<window>(?:(?:in|over|during|within)\s+)?(?:the\s+)?(?:last|past)\s+(?P<n>"
    + NUM
    + r")\s+(?P<unit>"
    + UNIT
    + r"))(?P<against>\s*,?\s*(?:as\s+)?compared\s+(?:with|to)\s+the\s+(?:previous|prior|preceding)\s+"
    r"(?P<n2>" + NUM + r")\s+(?P<unit2>" + UNIT + r"))?"
)
# What may follow: ", with their lifetime spend".
LIFETIME = re.compile(
    r"^\s*,?\s*(?:and\s+)?(?:with|showing|including)\s+(?:their|its|the)\s+"
    r"(?P<phrase>(?:(?:lifetime|total|all[- ]time|overall)\s+)?(?P<word>[a-z]+))\s*\.?\s*$"
)
# "this month compared with last month", "this year vs last year", "this quarter versus the previous quarter".
CALENDAR_PERIOD = r"(?:the\s+)?(?P<{rel}>this|current|last|previous|prior|past)\s+(?P<{unit}>week|month|quarter|year)"
CALENDAR_VERSUS = re.compile(
    r"\b(?P<first>" + CALENDAR_PERIOD.format(rel="rel1", unit="unit1") + r")\s*,?\s*"
    r"(?P<against>(?:vs\.?|versus|(?:as\s+)?compared\s+(?:with|to)|against)\s+"
    r"(?P<second>" + CALENDAR_PERIOD.format(rel="rel2", unit="unit2") + r"))(?![a-z'])"
)
CURRENT_WORDS = frozenset({"this", "current"})
LEAD_WORDS = frozenset({"show", "list", "find", "get", "give", "return", "me", "all", "the", "which", "our", "every"})


class Unresolved(Exception):
    """What a requirement needs before it can be designed; `questions` when it can be asked."""

    def __init__(self, why: str, *, questions: list[Question] | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.questions = list(questions or [])


@dataclass
class Design:
    """An interpretation designed outside the planner's analysis, with what it is made of."""

    interpretation: Interpretation
    shape: tuple[str, ...]
    objects: list[Key]
    steps: list[str] = field(default_factory=list)


# A requirement designed by the planner: its interpretation and the objects it reads (PlanningError when it cannot).
Planned = Callable[[str], tuple[Interpretation | None, list[Key]]]

# A money measure as the planner resolves it ("Total spend per customer"), or PlanningError with questions.
MoneyMeasure = Callable[[str], Interpretation | None]


@dataclass
class _Reading:
    """The words a date scorer looks at (dates.date_candidates reads `tokens` and `avoid_columns`)."""

    tokens: list[Token]
    avoid_columns: set[str] = field(default_factory=set)


def number(text: str) -> int:
    text = text.strip()
    return NUMBER_WORDS[text] if text in NUMBER_WORDS else int(text)


def _unit(text: str) -> str:
    return text.strip().rstrip("s")


def object_ref(index: SchemaIndex, table: Table) -> str:
    return table.name if not table.schema or table.schema == index.default_schema else f"{table.schema}.{table.name}"


def table_named(index: SchemaIndex, words: list[str]) -> Table | None:
    """The one table the last word (or last two words) of `words` names, or None."""
    words = [w for w in words if w not in LEAD_WORDS]
    for size in (2, 1):
        if len(words) < size:
            continue
        tail = words[-size:]
        found = []
        for table in index.tables.values():
            name = list(table.tokens)
            if len(name) == size and all(word_score(w, n) >= 1.0 for w, n in zip(tail, name, strict=True)):
                found.append(table)
        tables = [t for t in found if t.kind == "table"] or found
        if len(tables) == 1:
            return tables[0]
    return None


def child_chains(index: SchemaIndex, entity: Table, *, depth: int = 2) -> list[list[ForeignKey]]:
    """Chains of foreign keys pointing at the entity, then at those tables (its orders, their lines)."""
    chains: list[list[ForeignKey]] = []
    frontier: list[list[ForeignKey]] = [[]]
    for _ in range(depth):
        nxt = []
        for chain in frontier:
            node = chain[-1].child if chain else entity.key
            seen = {entity.key, *(fk.child for fk in chain)}
            for fk in index.children(node):
                if fk.child in seen:
                    continue
                nxt.append([*chain, fk])
        chains += nxt
        frontier = nxt
    return chains


def when_column(table: Table, reading: _Reading) -> Column | None:
    """The date that says when a row happened (never one that says when it changed or ended)."""
    ranked = [(score, c) for score, c in date_candidates(table, reading) if score > 0]
    return ranked[0][1] if ranked else None


def activity_chain(
    index: SchemaIndex, entity: Table, noun: list[str], reading: _Reading
) -> tuple[list[ForeignKey], Column]:
    """The rows a noun names among the entity's related rows, and their date: a table of that name, or, for
    'activity' and its kin, the dated child table whose name says it records events."""
    named: list[tuple[list[ForeignKey], Column]] = []
    events: list[tuple[float, str, list[ForeignKey], Column]] = []
    for chain in child_chains(index, entity):
        table = index.tables[chain[-1].child]
        date = when_column(table, reading)
        if date is None:
            continue
        tokens = list(table.tokens)
        if len(noun) <= len(tokens) and all(
            word_score(w, t) >= 1.0 for w, t in zip(noun, tokens[-len(noun) :], strict=True)
        ):
            named.append((chain, date))
        if len(chain) == 1 and set(noun) & ACTIVITY_WORDS:
            score = max((1.0 if w in ACTIVITY_WORDS else 0.0) for w in tokens)
            score += max((word_score(w, t) for w in noun for t in tokens), default=0.0)
            events.append((score, table.name, chain, date))
    said = " ".join(noun)
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        names = ", ".join(sorted(index.tables[c[-1].child].name for c, _ in named))
        raise Unresolved(f"'{said}' could be the rows of {names}; name the one meant")
    events.sort(key=lambda e: (-e[0], e[1]))
    if events and events[0][0] > 0 and (len(events) == 1 or events[0][0] > events[1][0]):
        return events[0][2], events[0][3]
    if events:
        names = ", ".join(e[1] for e in events)
        raise Unresolved(f"'{said}' could be recorded in any of {names}; name the table that records it")
    raise Unresolved(f"no table with a date and a foreign key to {entity.name} records its '{said}'")


def chain_entities(index: SchemaIndex, chain: list[ForeignKey], *, start: str, prefix: str, phrase: str = ""):
    """Entities along a chain of child foreign keys from the entity `start`, aliased prefix1, prefix2 ..."""
    entities: list[dict[str, Any]] = []
    aliases: dict[Key, str] = {}
    here = start
    for n, fk in enumerate(chain, start=1):
        alias = f"{prefix}{n}"
        entities.append(
            {
                "alias": alias,
                "object": object_ref(index, index.tables[fk.child]),
                "join": {"to": here, "on": [list(p) for p in zip(fk.child_columns, fk.parent_columns, strict=True)]},
                **({"phrase": phrase} if n == len(chain) and phrase else {}),
            }
        )
        aliases[fk.child] = alias
        here = alias
    return entities, aliases


def entity_columns(entity: Table) -> list[dict]:
    """The entity's key and the columns that name its rows for people."""
    names = list(entity.primary_key) + [c.name for c in entity.label_columns() if c.name not in entity.primary_key]
    return [{"column": {"entity": "r", "column": name}} for name in names]


def _money(
    index: SchemaIndex, entity: Table, word: str, money: MoneyMeasure
) -> tuple[list[ForeignKey], str, str | None, list[tuple[Key, dict]]]:
    """A money word per entity: the chain to its fact, the column summed (times another), its conditions."""
    interp = money(f"Total {word} per {singular(entity.name).replace('_', ' ')}")
    measure = next((m for m in (interp.measures if interp else []) if m.func == "sum" and m.column), None)
    if interp is None or measure is None or measure.column is None:
        raise Unresolved(f"'{word}' is not a sum this database can compute per {singular(entity.name)}")

    def key_of(alias: str) -> Key | None:
        found = interp.entity(alias)
        if found is None:
            return None
        schema = found.object_schema or index.default_schema or ""
        key = (schema, found.object_name)
        return key if key in index.tables else next((k for k in index.tables if k[1] == found.object_name), None)

    fact = key_of(measure.column.entity)
    chain = next((c for c in child_chains(index, entity) if fact is not None and c[-1].child == fact), None)
    if fact is None or chain is None or (measure.times and measure.times.entity != measure.column.entity):
        raise Unresolved(f"'{word}' is measured on rows that do not belong to one {singular(entity.name)}")
    conditions = []
    for f in [*interp.filters, *measure.filters]:
        owner = key_of(f.column.entity)
        if owner not in {fk.child for fk in chain} or f.other is not None or f.param:
            raise Unresolved(f"'{word}' is defined with a condition on {f.column.column} this design cannot keep")
        conditions.append((owner, f.model_dump(exclude_none=True, exclude={"column", "phrase"}) | {"c": f.column}))
    return chain, measure.column.column, measure.times.column if measure.times else None, conditions


def _filters(aliases: dict[Key, str], conditions: list[tuple[Key, dict]], phrase: str) -> list[dict]:
    out = []
    for owner, condition in conditions:
        spec = {k: v for k, v in condition.items() if k != "c"}
        out.append({"column": {"entity": aliases[owner], "column": condition["c"].column}, **spec, "phrase": phrase})
    return out


def comparison_design(*, requirement: str, index: SchemaIndex, money: MoneyMeasure) -> Design | None:
    """The design of a change between periods, None when the requirement says none; Unresolved when it
    says one this design cannot read."""
    text = requirement.lower()
    match = CHANGE.search(text)
    if match is None:
        return None
    amount, unit = number(match.group("n")), _unit(match.group("unit"))
    if match.group("against") and (number(match.group("n2")), _unit(match.group("unit2"))) != (amount, unit):
        raise Unresolved("the two periods compared have different lengths")
    rest = text[match.end() :]
    lifetime = LIFETIME.match(rest) if rest.strip(" .") else None
    if rest.strip(" .") and (lifetime is None or lifetime.group("word") not in MONEY_WORDS):
        raise Unresolved(f"I could not read '{requirement[match.end() :].strip(' ,.')}' beside the change")
    lead = re.findall(r"[a-z]+", text[: match.start()])
    entity = table_named(index, lead)
    if entity is None:
        raise Unresolved(f"'{' '.join(lead) or 'the rows'}' names no one table whose rows could change")
    if not entity.primary_key:
        raise Unresolved(f"{entity.name} has no key to tell its rows apart")
    reading = _Reading(tokenize(requirement))
    noun = [w for w in match.group("noun").split() if w not in ("total", "number", "of")]
    steps = []
    comparison: dict[str, Any] = {"from": "r", "amount": amount, "unit": unit}
    comparison["direction"] = "down" if match.group("verb") in DOWN_VERBS else "up"
    words = set(noun) & MONEY_WORDS
    if words:
        word = next(iter(words))
        chain, column, times, conditions = _money(index, entity, word, money)
        fact = index.tables[chain[-1].child]
        date = when_column(fact, reading)
        if date is None or times is not None:
            raise Unresolved(f"'{word}' has no date of its own to say in which period it happened")
        entities, aliases = chain_entities(index, chain, start="r", prefix="p", phrase="")
        comparison |= {"func": "sum", "column": {"entity": aliases[fact.key], "column": column}}
        comparison["filters"] = _filters(aliases, conditions, "")
        figure = re.sub(r"[^a-z0-9]+", "_", word)
        steps.append(f"'{word}' is the sum of {fact.name}.{column}.")
    else:
        chain, date = activity_chain(index, entity, noun, reading)
        fact = index.tables[chain[-1].child]
        entities, aliases = chain_entities(
            index, chain, start="r", prefix="p", phrase=requirement[match.start("noun") : match.end("noun")]
        )
        comparison["func"] = "count"
        figure = fact.name.lower()
    comparison["entities"] = entities
    comparison["date"] = {"entity": aliases[fact.key], "column": date.name}
    comparison["current"] = f"recent_{figure}"[:30]
    comparison["previous"] = f"previous_{figure}"[:30]
    start = match.start("noun") if words else match.start("verb")
    end = match.end("against") if match.group("against") else match.end("window")
    comparison["phrase"] = requirement[start:end]
    data: dict[str, Any] = {
        "entities": [
            {"alias": "r", "object": object_ref(index, entity), "phrase": requirement[: match.start()].strip()}
        ],
        "select": entity_columns(entity),
        "comparisons": [comparison],
    }
    objects = [entity.key, *(fk.child for fk in chain)]
    steps.insert(
        0,
        f"Compare, per {singular(entity.name)}, the {'sum' if words else 'count'} of {fact.name} in the last "
        f"{amount} {unit}s with the {amount} {unit}s before ({date.name}); keep those whose figure "
        f"{'fell' if comparison['direction'] == 'down' else 'rose'}.",
    )
    if lifetime is not None:
        word = lifetime.group("word")
        chain, column, times, conditions = _money(index, entity, word, money)
        # Left joins: a row with nothing to sum still counts, with a total of 0.
        joined, aliases = chain_entities(index, chain, start="r", prefix="m")
        for e in joined:
            e["join"]["kind"] = "left"
        data["entities"] += joined
        fact = index.tables[chain[-1].child]
        said = lifetime.group("phrase")
        measure = {
            "id": re.sub(r"[^a-z0-9]+", "_", said)[:30],
            "func": "sum",
            "column": {"entity": aliases[fact.key], "column": column},
            "filters": _filters(aliases, conditions, ""),
            "phrase": requirement[match.end() + lifetime.start("phrase") : match.end() + lifetime.end("phrase")],
        }
        if times:
            measure["times"] = {"entity": aliases[fact.key], "column": times}
        data["measures"] = [measure]
        objects += [fk.child for fk in chain if fk.child not in objects]
        steps.append(f"'{said}' is the sum of {fact.name}.{column} over all time, 0 when there is none.")
    interpretation = Interpretation.model_validate(data)
    shape = ("period_comparison", "aggregate" if lifetime is not None else "list", "join")
    return Design(interpretation=interpretation, shape=shape, objects=objects, steps=steps)


def _calendar_window(column: Any, unit: str, first: int, last: int, phrase: str) -> TimeWindow:
    """From the calendar unit `first` units from the current one to the end of unit `last`; the current
    one runs on to today."""
    end = None if last == 0 else {"calendar": {"unit": unit, "offset": last + 1}}
    return TimeWindow.model_validate(
        {"column": column, "start": {"calendar": {"unit": unit, "offset": first}}, "end": end, "phrase": phrase}
    )


def _offset(relation: str) -> int:
    return 0 if relation in CURRENT_WORDS else -1


def _label(phrase: str) -> str:
    return "_".join(w for w in re.findall(r"[a-z]+", phrase.lower()) if w != "the")


def calendar_comparison_design(*, requirement: str, index: SchemaIndex, plan: Planned) -> Design | None:
    """Calendar periods compared: every measure of the requirement once per period, side by side.

    None when the requirement compares no two calendar periods; Unresolved when it does in a way this
    design cannot read (two lengths, the same period twice, a ranking or a condition on the figures).
    """
    match = CALENDAR_VERSUS.search(requirement.lower())
    if match is None:
        return None
    unit, other = match.group("unit1"), match.group("unit2")
    offsets = (_offset(match.group("rel1")), _offset(match.group("rel2")))
    if unit != other:
        raise Unresolved(f"a {unit} is compared with a {other}; compare periods of the same length")
    if offsets[0] == offsets[1]:
        raise Unresolved(f"'{requirement[match.start() : match.end()]}' compares a period with itself")
    rest = requirement[: match.end("first")] + requirement[match.end() :]
    interp, objects = plan(rest)
    first = requirement[match.start("first") : match.end("first")]
    second = requirement[match.start("second") : match.end("second")]
    against = requirement[match.start("against") : match.end("against")]  # "compared with last month"
    if interp is None or not interp.measures:
        raise Unresolved(f"'{requirement[match.start() : match.end()]}' compares figures, and I found none to compare")
    if len(interp.windows) != 1 or interp.windows[0].phrase.strip().lower() != first.strip().lower():
        raise Unresolved(f"I could not tell which dates '{first}' and '{second}' apply to")
    window = interp.windows[0]
    start = window.start.calendar if window.start is not None else None
    if start is None or (start.unit, start.offset) != (unit, offsets[0]) or interp.having or interp.comparisons:
        raise Unresolved(f"I could not read '{requirement[match.start() : match.end()]}' as two {unit}s side by side")
    if any(m.window is not None for m in interp.measures) or interp.limit is not None:
        raise Unresolved(f"a ranking or a figure of its own period cannot be compared {unit} by {unit} yet")
    periods = [(first, _label(first), offsets[0]), (against, _label(second), offsets[1])]
    column = window.column.model_dump()
    measures, renamed = [], {}
    for m in interp.measures:
        for n, (phrase, label, offset) in enumerate(periods):
            name = f"{m.id[: 29 - len(label)].rstrip('_')}_{label}"  # output names hold 30 characters
            if n == 0:
                renamed[m.id] = name
            own = _calendar_window(column, unit, offset, offset, phrase)
            measures.append(m.model_copy(update={"id": name, "window": own, "phrase": m.phrase if n == 0 else ""}))
    span = _calendar_window(column, unit, min(offsets), max(offsets), "")  # only rows of the two periods
    order = [
        o.model_copy(update={"measure": renamed[o.measure]}) if o.measure in renamed else o for o in interp.order_by
    ]
    compared = interp.model_copy(update={"windows": [span], "measures": measures, "order_by": order})
    compared = Interpretation.model_validate(compared.model_dump(by_alias=True, exclude_none=True))
    table = ", ".join(sorted({m.id for m in measures}))
    steps = [f"Compare {first} with {second}: each figure once per {unit} ({table}), on {window.column.column}."]
    return Design(interpretation=compared, shape=("period_comparison", "aggregate", "time_window"),
                  objects=objects, steps=steps)  # fmt: skip


def design_problems(*, requirement: str, design: Design, schema: dict, dialect: str) -> list[str]:
    """What the platform's checks would refuse in a design: it must compile, and account for every word."""
    from endpoints.compiler import Catalog, CompileError, interpretation_compile
    from endpoints.verification.coverage import coverage_check, shape_check
    from endpoints.verification.findings import failed

    catalog = Catalog(schema)
    try:
        interpretation_compile(design.interpretation, catalog=catalog, dialect=dialect)
    except CompileError as error:
        return [error.message]
    findings = coverage_check(requirement=requirement, interpretation=design.interpretation)
    findings += shape_check(requirement=requirement, interpretation=design.interpretation, catalog=catalog)
    return [f.message for f in failed(findings)]
