"""People who handle rows ('agents', 'reps', 'assignees') and states a word negates ('unresolved', 'unpaid').

No table is named after such people: they are a text column of the rows they handle (`assigned_to`,
`owner`, `handled_by`), so the planner asks which column, offering the text columns whose name says a
person and whose sampled values look like people's names or handles. A negated state ('unresolved')
is every value but the ones that end the state: asked about (choices from the column's values) when
more than one value could, and `column NOT IN (...)` either way. Nothing here knows a schema: the words
are English words for roles and for a row's life ending.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from endpoints.interpretation import Choice, Question

from .questions import MAX_CHOICES, _negates, _object, _slug, leave_out_choice
from .schema_index import Column, SchemaIndex, Table
from .vocabulary import STOPWORDS, variants

if TYPE_CHECKING:  # pragma: no cover
    from .planner import Analysis

# Words for a person by the work they do on rows; none names a table of its own in most databases.
PERSON_WORDS = frozenset(
    {"agent", "rep", "representative", "assignee", "owner", "handler", "staffer", "operator", "technician",
     "clerk", "officer", "attendant", "advisor", "adviser", "consultant", "specialist", "associate"}
)  # fmt: skip
# Words of a column name that say it holds a person.
PERSON_COLUMN_WORDS = frozenset(
    {"assign", "assigned", "assignee", "owner", "owned", "handle", "handled", "handler", "agent", "rep", "user",
     "staff", "operator", "responsible", "person", "worker", "technician", "advisor", "specialist"}
)  # fmt: skip
# Values that end a row's life (closed, done): another of them may be what a negated state excludes too.
ENDING_WORDS = frozenset(
    {"closed", "resolved", "done", "completed", "complete", "finished", "cancelled", "canceled", "shipped",
     "delivered", "paid", "settled", "archived", "rejected", "refunded", "fulfilled", "solved", "fixed", "ended",
     "expired", "returned", "approved", "declined"}
)  # fmt: skip

_FULL_NAME = re.compile(r"^[A-Z][\w'\u2019.-]+(?: [A-Z][\w'\u2019.-]+){1,3}$")
_HANDLE = re.compile(r"^[a-z][a-z0-9]*[._-][a-z0-9._-]+$|^[\w.+-]+@[\w-]+\.[\w.]+$")


def is_person_word(word: str) -> bool:
    return bool(variants(word.lower()) & PERSON_WORDS)


def looks_like_people(values: list) -> bool:
    """Whether most sampled values are people's names ('Ada Lovelace') or handles ('a.lovelace', an email)."""
    texts = [str(v).strip() for v in values if isinstance(v, str) and str(v).strip()]
    if not texts:
        return False
    people = sum(1 for t in texts if _FULL_NAME.match(t) or _HANDLE.match(t))
    return people >= 0.6 * len(texts)


def person_columns(tables: list[Table]) -> list[tuple[Table, Column]]:
    """Text columns whose name says a person and whose sampled values (when any) look like people."""
    found = []
    for table in tables:
        for column in table.columns.values():
            if not column.is_string or column.primary_key or column.name in table.fk_columns:
                continue
            if not any(variants(t) & PERSON_COLUMN_WORDS for t in column.tokens):
                continue
            if column.known_values and not looks_like_people(column.known_values):
                continue
            found.append((table, column))
    return found


def person_phrase(a: Analysis, word: str, tables: list[Table], unknown: list[str]) -> tuple[str, str | None]:
    """The words naming the people: 'Support agents' when 'support' is a word of a table's name, else the word.

    Returns (phrase, the word before that joined it, if any).
    """
    index = next((i for i, t in enumerate(a.tokens) if t.text == word), None)
    if not index:
        return word, None
    before = a.tokens[index - 1]
    if before.text in unknown and any(variants(before.lower) & set(t.tokens) for t in tables):
        return a.requirement[before.start : a.tokens[index].end], before.text
    return word, None


def person_question(phrase: str, index: SchemaIndex, columns: list[tuple[Table, Column]], *, qid: str) -> Question:
    """ "'agents': which column says who they are?", with the person-like columns and leaving the word out."""
    taken: set[str] = set()
    choices = []
    for table, column in columns[:MAX_CHOICES]:
        shown = [str(v) for v in column.known_values[:3] if isinstance(v, str)]
        example = f" (e.g. {', '.join(shown)})" if shown else ""
        choices.append(
            Choice(
                id=_slug(f"{table.name}_{column.name}", taken),
                label=f"the column {table.name}.{column.name}{example}",
                mapping={"term": phrase, "kind": "column", "object": _object(index, table), "column": column.name},
            )
        )
    choices.append(leave_out_choice(phrase, taken))
    return Question(
        id=qid,
        phrase=phrase,
        text=f"'{phrase}': which column says who they are?",
        kind="column",
        choices=choices,
        allow_other=True,
    )


def negated_state(word: str, tables: list[Table]) -> tuple[Table, Column, list[str]] | None:
    """The column whose value the word negates ('unresolved' -> status 'resolved'), with its values."""
    for table in tables:
        for column in table.columns.values():
            if not column.is_string:
                continue
            values = [v for v in column.known_values if isinstance(v, str) and v.strip()]
            matched = [v for v in values if _negates(word, v)]
            if matched:
                return table, column, values
    return None


def ending_values(word: str, values: list[str]) -> list[str]:
    """Values that may end the state the word negates: the negated value and every other ending value."""
    negated = [v for v in values if _negates(word, v)]
    others = [v for v in values if v not in negated and variants(v.lower()) & ENDING_WORDS]
    return negated + others


def negated_state_question(
    word: str, index: SchemaIndex, table: Table, column: Column, values: list[str], *, qid: str
) -> Question:
    """ "'unresolved': which status values count as resolved?": one choice per value, several may be chosen."""
    base = next(v for v in values if _negates(word, v))
    ordered = ending_values(word, values)
    ordered += [v for v in values if v not in ordered]
    taken: set[str] = set()
    choices = [
        Choice(
            id=_slug(value, taken),
            label=f"{table.name}.{column.name} = '{value}'",
            mapping={
                "term": word,
                "kind": "filter",
                "object": _object(index, table),
                "filters": [{"column": column.name, "op": "not_in", "values": [value]}],
            },
        )
        for value in ordered[:MAX_CHOICES]
    ]
    return Question(
        id=qid,
        phrase=word,
        text=f"'{word}': which {table.name}.{column.name} values count as {base}? Choose one or more; "
        f"'{word}' is every other value.",
        kind="filter",
        choices=choices,
        allow_other=True,
        multiple=True,
    )


def negated_state_mapping(word: str, index: SchemaIndex, table: Table, column: Column, values: list[str]) -> dict:
    """'unresolved' when only 'resolved' could end it: status NOT IN ('resolved')."""
    return {
        "term": word,
        "kind": "filter",
        "object": _object(index, table),
        "filters": [{"column": column.name, "op": "not_in", "values": ending_values(word, values)}],
    }


RANKED_AFTER = re.compile(r"\s*(?:with|who have|who has|that have|that has|having)\s+(?:the\s+)?(most|fewest|least)\b")


def rank_term_groups(a: Analysis) -> tuple[str, tuple[int, int]] | None:
    """'Support agents with the most unresolved tickets': the term column that heads the requirement, grouped.

    Returns (direction, span of 'with the most') when a column term comes first (after stopwords only)
    and a superlative follows it; the term's column then groups the rows, counted and ordered that way.
    """
    for mapping, (start, end) in a.terms:
        if mapping.get("kind") != "column":
            continue
        lead = re.findall(r"[a-z']+", a.requirement[:start].lower())
        if any(w not in STOPWORDS for w in lead):
            continue
        match = RANKED_AFTER.match(a.requirement.lower(), end)
        if match is None:
            continue
        direction = "desc" if match.group(1) == "most" else "asc"
        text = a.requirement[match.start() : match.end()]
        offset = match.start() + len(text) - len(text.lstrip())
        return direction, (offset, match.end())
    return None


def people_questions(a: Analysis, index: SchemaIndex, scope: list[Table], *, first: int = 0) -> list[Question]:
    """Questions about people words ('agents': which column?) and negated states ('unresolved': which values?)."""
    questions: list[Question] = []
    for word in a.unknown_words:
        qid = f"term_{first + len(questions) + 1}_{_slug(word, set())}"[:40]
        if is_person_word(word):
            columns = person_columns(scope)
            if columns:
                phrase, _joined = person_phrase(a, word, scope, a.unknown_words)
                questions.append(person_question(phrase, index, columns, qid=qid))
                continue
        state = negated_state(word, scope)
        if state is not None:
            table, column, values = state
            questions.append(negated_state_question(word, index, table, column, values, qid=qid))
    return questions


def resolve_people(a: Analysis, index: SchemaIndex, scope: list[Table], *, make_filter: Callable) -> None:
    """Apply what needs no question: a negated state only one value can end, and groups a people term heads.

    `make_filter` builds the planner's own filter (table key, column, value, phrase=, op=, values=, fixed=).
    """
    for word in list(a.unknown_words):
        state = negated_state(word, scope)
        if state is None:
            continue
        table, column, values = state
        ending = ending_values(word, values)
        if len(ending) != 1 or not column.enum:
            # 'unresolved' where 'closed' ends a ticket too, or values only sampled (another may end it): asked
            continue
        a.filters.append(make_filter(table.key, column.name, None, phrase=word, op="not_in", values=ending, fixed=True))
        a.unknown_words.remove(word)
        a.steps.append(f"'{word}' is every {table.name}.{column.name} but '{ending[0]}'.")
    ranked = rank_term_groups(a)
    for mapping, span in a.terms:
        if mapping.get("kind") != "column":
            continue
        key = next((k for k in index.tables if _object(index, index.tables[k]) == mapping.get("object")), None)
        if key is None or mapping.get("column") not in index.tables[key].columns:
            continue
        table, column = index.tables[key], index.tables[key].columns[mapping["column"]]
        if ranked is not None and (key, column.name) in a.mentioned_columns:
            a.mentioned_columns.discard((key, column.name))
            a.group_columns.append((table, column))
            direction, (start, end) = ranked
            a.measure_order = (direction, a.requirement[start:end])
            a.phrases.spans.append((start, end))
            a.steps.append(f"Count rows per {table.name}.{column.name}, ordered by the count ({direction}).")
        phrase = a.requirement[span[0] : span[1]]
        grouped = any(t is table and c.name == column.name for t, c in a.group_columns)
        if grouped and column.nullable and any(is_person_word(w) for w in re.findall(r"[A-Za-z]+", phrase)):
            # "each agent": rows that have one; a row nobody handles is no agent's.
            a.filters.append(make_filter(key, column.name, None, phrase="", op="not_null", fixed=True))
        if grouped:
            _with_verb_after(a, key, column.name, span)


# Verbs by which people come to hold rows: "how many tickets each agent got", "orders each rep handled".
HOLDING_VERBS = frozenset(
    {"got", "gets", "get", "received", "receives", "handled", "handles", "took", "takes", "owns", "owned", "has",
     "had", "have", "holds", "held", "worked", "manages", "managed"}
)  # fmt: skip


def _with_verb_after(a: Analysis, key, column: str, span: tuple[int, int]) -> None:
    """'each support agent got': the verb after the people term belongs to the group's phrase."""
    after = next((t for t in a.tokens if t.start >= span[1]), None)
    if after is None or after.lower not in HOLDING_VERBS or a.requirement[span[1] : after.start].strip():
        return
    a.column_phrases[(key, column)] = a.requirement[span[0] : after.end]
