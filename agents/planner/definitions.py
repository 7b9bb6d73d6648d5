"""Business terms that need a definition ("churn risk", "at risk", "lapsed", "engaged", "loyal", "VIP").

Such a word names no table, column or value: it is a judgement the business makes about its rows. Instead
of a dead end, the planner asks what it means, with the definitions it can build and check from the
schema around the requirement's entity and window:

- "lapsed": no related activity in the last N units, but some before (the latest date is before the cut-off);
- "dropped": less related activity in the last N units than in the N units before (a period comparison);
- or leaving the word out.

Each choice's mapping is a glossary `definition` ({"kind": "definition", "shape", "object", "column",
"func"}), so the next requirement with the term asks nothing; its window is the requirement's own.
"""

from __future__ import annotations

import re
from typing import Any

from endpoints.interpretation import Choice, Interpretation, Question

from .periods import (
    NUM,
    UNIT,
    Design,
    Unresolved,
    _Reading,
    activity_chain,
    chain_entities,
    entity_columns,
    number,
    object_ref,
    table_named,
)
from .questions import leave_out_choice
from .schema_index import SchemaIndex, Table
from .vocabulary import ACTIVITY_WORDS, singular, tokenize, variants

DEFINED_TERMS = re.compile(
    r"\b(churn(?:ing)?[- ]risk|risk of churn(?:ing)?|at[- ]risk|churned|churning|lapsed|dormant|disengaged|engaged|"
    r"loyal|vip|vips)\b"
)
WINDOW = re.compile(
    r"\b(?:(?:in|over|during|within|for)\s+)?(?:the\s+)?(?:last|past)\s+(?P<n>" + NUM + r")\s+(?P<unit>" + UNIT + ")"
)
# Words that join the term to what it is computed from ("churn risk based on their last 90 days").
BASIS = re.compile(r"^\s+(?:based\s+on|according\s+to|judged\s+by|measured\s+by|from)\b")
SHAPES = ("lapsed", "dropped")


def _known_value(index: SchemaIndex, term: str) -> bool:
    """Whether some column holds the term as a value ('VIP' as a segment): then it is a value, not a definition."""
    wanted = variants(term.replace("-", " ").split()[-1])
    for table in index.tables.values():
        for column in table.columns.values():
            for value in column.known_values:
                if isinstance(value, str) and variants(value.lower()) & wanted:
                    return True
    return False


def _definition(glossary: list[dict], term: str) -> tuple[str, dict | None]:
    """What the glossary says of the term: ('definition', mapping), ('other', None) or ('none', None)."""
    said = term.lower().replace("-", " ")
    for mapping in glossary:
        if str(mapping.get("term") or "").lower().replace("-", " ") != said:
            continue
        if mapping.get("kind") == "definition":
            return "definition", mapping
        return "other", None
    return "none", None


def _entity(index: SchemaIndex, words: list[str], reading: _Reading, noun: list[str]):
    """The first table the requirement names whose rows have dated related rows, with those rows."""
    for word in words:
        table = table_named(index, [word])
        if table is None or not table.primary_key:
            continue
        try:
            chain, date = activity_chain(index, table, noun, reading)
        except Unresolved:
            continue
        return table, chain, date
    return None


def definition_design(*, requirement: str, index: SchemaIndex, glossary: list[dict]) -> Design | None:
    """The design of a requirement that uses a term needing a definition (None when it uses none, or when the
    glossary or the data already say what it is); Unresolved with the question when it is not defined yet."""
    text = requirement.lower()
    match = DEFINED_TERMS.search(text)
    if match is None:
        return None
    term = requirement[match.start() : match.end()]
    known, mapping = _definition(glossary, term)
    if known == "other" or (known == "none" and _known_value(index, match.group(1))):
        return None
    window = WINDOW.search(text)
    if window is None:
        return None  # judged over no period said: nothing to offer, the requirement reads as before
    amount, unit = number(window.group("n")), window.group("unit").rstrip("s")
    reading = _Reading(tokenize(requirement))
    words = re.findall(r"[a-z]+", text)
    noun = [w for w in words if w in ACTIVITY_WORDS] or ["activity"]
    found = _entity(index, [w for w in words if w not in noun], reading, noun)
    if found is None:
        return None  # no rows with dated activity of their own: no definition to offer
    entity, chain, date = found
    activity = index.tables[chain[-1].child]
    basis = BASIS.match(text[match.end() :])
    phrase_end = match.end() + (basis.end() if basis else 0)
    if mapping is None:
        raise Unresolved(
            f"'{term}' is a business definition this database does not spell out",
            questions=[_question(index, term, entity, activity, date.name, amount, unit)],
        )
    shape = mapping.get("shape")
    if shape not in SHAPES or mapping.get("object") not in (activity.name, object_ref(index, activity)):
        raise Unresolved(f"the glossary defines '{term}' over a table this requirement's rows have no activity in")
    if mapping.get("column") != date.name:
        date = activity.columns.get(str(mapping.get("column"))) or date
        if not date.is_temporal:
            raise Unresolved(f"the glossary defines '{term}' with a column that is not a date")
    noun_at = next((t for t in reading.tokens if t.lower in noun), None)
    entity_at = next(t for t in reading.tokens if table_named(index, [t.lower]) is entity)
    data: dict[str, Any] = {
        "entities": [{"alias": "r", "object": object_ref(index, entity), "phrase": entity_at.text}],
        "select": entity_columns(entity),
    }
    window_phrase = requirement[window.start() : window.end()]
    window_phrase = re.sub(r"^(?:in|over|during|within|for)\s+(?:the\s+)?", "", window_phrase, flags=re.I)
    noun_phrase = noun_at.text if noun_at is not None else ""
    if shape == "lapsed":
        joined, aliases = chain_entities(index, chain, start="r", prefix="a", phrase=noun_phrase)
        absent, inner = chain_entities(index, chain, start="r", prefix="x")
        data["entities"] += joined
        data["measures"] = [
            {
                "id": f"latest_{date.name}"[:30],
                "func": "max",
                "column": {"entity": aliases[activity.key], "column": date.name},
            }
        ]
        data["exists"] = [
            {
                "negated": True,
                "from": "r",
                "entities": absent,
                "window": {
                    "column": {"entity": inner[activity.key], "column": date.name},
                    "start": {"relative": {"amount": -amount, "unit": unit}},
                    "phrase": window_phrase,
                },
                "phrase": requirement[match.start() : phrase_end],
            }
        ]
        step = (
            f"'{term}' is defined as no {activity.name} row in the last {amount} {unit}s but some before "
            f"(the latest {date.name} is before the cut-off)."
        )
    else:
        entities, aliases = chain_entities(index, chain, start="r", prefix="p", phrase=noun_phrase)
        start, end = sorted((match.start(), window.start()))[0], max(phrase_end, window.end())
        data["comparisons"] = [
            {
                "from": "r",
                "entities": entities,
                "func": "count",
                "date": {"entity": aliases[activity.key], "column": date.name},
                "amount": amount,
                "unit": unit,
                "direction": "down",
                "current": f"recent_{activity.name}"[:30],
                "previous": f"previous_{activity.name}"[:30],
                "phrase": requirement[start:end],
            }
        ]
        step = (
            f"'{term}' is defined as fewer {activity.name} rows in the last {amount} {unit}s than in the ones before."
        )
    interpretation = Interpretation.model_validate(data)
    objects = [entity.key, *(fk.child for fk in chain)]
    shape_names = ("definition", "aggregate" if shape == "lapsed" else "period_comparison", "join")
    return Design(interpretation=interpretation, shape=shape_names, objects=objects, steps=[step])


def _question(index: SchemaIndex, term: str, entity: Table, activity: Table, date: str, amount: int, unit: str):
    period = f"{amount} {unit}{'s' if amount != 1 else ''}"
    rows = singular(entity.name).replace("_", " ")
    base = {"term": term, "kind": "definition", "object": object_ref(index, activity), "column": date}
    choices = [
        Choice(
            id="lapsed",
            label=f"a {rows} with no {activity.name} in the last {period}, but some before "
            f"(their latest {date} is before the cut-off)",
            mapping=base | {"shape": "lapsed", "func": "max"},
        ),
        Choice(
            id="dropped",
            label=f"a {rows} with fewer {activity.name} in the last {period} than in the {period} before",
            mapping=base | {"shape": "dropped", "func": "count"},
        ),
        leave_out_choice(term, set()),
    ]
    return Question(
        id="definition",
        phrase=term,
        text=f"What does '{term}' mean here? Choose the definition to use from now on.",
        kind="other",
        choices=choices,
        allow_other=True,
    )
