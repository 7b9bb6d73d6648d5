"""Questions the planner asks instead of guessing, with choices drawn from the schema and the data.

Each choice's `mapping` is a glossary mapping (learning.glossary): choosing it defines the term
for this Service, so the next requirement that uses it asks nothing.
"""

from __future__ import annotations

import difflib
import re

from endpoints.interpretation import Choice, Question

from .schema_index import Column, SchemaIndex, Table
from .vocabulary import semantic_similarity, variants, word_score

MAX_CHOICES = 8


def leave_out_choice(term: str, taken: set[str]) -> Choice:
    """The choice of a question that the word changes nothing ('kind': 'ignore')."""
    return Choice(
        id=_slug("leave it out", taken),
        label=f"'{term}' adds nothing to the question: leave it out",
        mapping={"term": term, "kind": "ignore"},
    )


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:34] or "choice"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}_{n}", n + 1
    taken.add(slug)
    return slug


def _similar(word: str, name: str) -> float:
    """How alike a requirement word and a name or value are, in spelling and inflection (0..1)."""
    word, name = word.lower(), name.lower()
    if not word or not name:
        return 0.0
    if variants(word) & variants(name):
        return 1.0
    if word_score(word, name):
        return 0.8
    if len(word) >= 4 and (name.startswith(word) or word.startswith(name)) and min(len(word), len(name)) >= 3:
        return 0.75
    return difflib.SequenceMatcher(None, word, name).ratio()


NEGATING_PREFIXES = ("un", "non", "not", "in", "dis")


def _negates(word: str, value: str) -> bool:
    """Whether the word is the value with a negating prefix ('unresolved', 'non-paid', 'inactive')."""
    word, value = word.lower().replace("-", ""), value.lower()
    return any(
        word.startswith(prefix) and len(word) > len(prefix) + 2 and variants(word[len(prefix) :]) & variants(value)
        for prefix in NEGATING_PREFIXES
    )


def negated_base(word: str) -> str | None:
    """The word a negating prefix is put on ('unresolved' -> 'resolved', 'non-paid' -> 'paid'), if any."""
    word = word.lower().replace("-", "")
    for prefix in ("un", "non"):  # 'in' and 'dis' begin too many plain words (invoice, discount)
        if word.startswith(prefix) and len(word) > len(prefix) + 3:
            return word[len(prefix) :]
    return None


def _object(index: SchemaIndex, table: Table) -> str:
    if table.schema and table.schema != index.default_schema:
        return f"{table.schema}.{table.name}"
    return table.name


def value_choices(word: str, index: SchemaIndex, tables: list[Table]) -> list[tuple[float, str, dict]]:
    """Values of the data that the word may mean ('high-priority' -> priority = 'high')."""
    parts = [p for p in re.split(r"[-_\s]+", word.lower()) if p]
    out = []
    for table in tables:
        for column in table.columns.values():
            if not column.is_string:
                continue
            for value in column.known_values:
                if not isinstance(value, str) or not value.strip():
                    continue
                if any(_negates(part, value) for part in parts):
                    continue  # 'unresolved' is anything but resolved: never the value itself
                score = max(_similar(part, value) for part in parts)
                if score >= 0.75:
                    mapping = {
                        "term": word,
                        "kind": "value",
                        "object": _object(index, table),
                        "column": column.name,
                        "op": "eq",
                        "value": value,
                    }
                    out.append((score, f"{table.name}.{column.name} = '{value}'", mapping))
    return out


def column_choices(word: str, index: SchemaIndex, tables: list[Table], *, numeric: bool = False):
    out = []
    for table in tables:
        for column in table.columns.values():
            if numeric and not column.is_numeric:
                continue
            score = max((_similar(word, t) for t in column.tokens), default=0.0)
            score = max(score, _similar(word, column.name))
            if score >= 0.7:
                mapping = {"term": word, "kind": "column", "object": _object(index, table), "column": column.name}
                out.append((score, f"the column {table.name}.{column.name}", mapping))
    return out


def _ranked(candidates: list[tuple[float, str, dict]]) -> list[tuple[float, str, dict]]:
    seen: set[str] = set()
    out = []
    for score, label, mapping in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if label in seen:
            continue
        seen.add(label)
        out.append((score, label, mapping))
    return out[:MAX_CHOICES]


def entity_choices(word: str, index: SchemaIndex) -> list[tuple[float, str, dict]]:
    """Tables the word may mean by sense, not spelling ('clients' -> customers), ranked by the embedder."""

    tables = list(index.tables.values())
    matrix = semantic_similarity([word], [" ".join(t.tokens) for t in tables])
    if matrix is None:
        return []
    ranked = sorted(zip(matrix[0], tables, strict=True), key=lambda item: (-item[0], item[1].name))
    return [
        (score, f"the table {table.name}", {"term": word, "kind": "entity", "object": _object(index, table)})
        for score, table in ranked[:3]
        if score >= 0.3
    ]


def question_unknown_word(
    word: str, phrase: str, index: SchemaIndex, tables: list[Table], *, qid: str | None = None
) -> Question:
    """'What does X mean here?': values, columns and tables that look like it, or leaving it out."""
    taken: set[str] = set()
    candidates = _ranked(
        value_choices(word, index, tables) + column_choices(word, index, tables) + entity_choices(word, index)
    )
    choices = [Choice(id=_slug(label, taken), label=label, mapping=mapping) for _, label, mapping in candidates]
    choices.append(leave_out_choice(word, taken))
    return Question(
        id=qid or _slug(f"term_{word}", set()),
        phrase=phrase,
        text=f"What does '{phrase}' mean in this database?"
        + (" Choose what it refers to." if len(choices) > 1 else " Describe it in other words, or leave it out."),
        kind="value" if candidates and candidates[0][2]["kind"] == "value" else "other",
        choices=choices,
        allow_other=True,
    )


def question_confirm_value(
    phrase: str, index: SchemaIndex, table: Table, column: Column, value: str, *, qid: str
) -> Question:
    """'status shipped': status = 'shipped'? (a value no sample has shown yet)."""
    mapping = {
        "term": phrase,
        "kind": "value",
        "object": _object(index, table),
        "column": column.name,
        "op": "eq",
        "value": value,
    }
    return Question(
        id=qid,
        phrase=phrase,
        text=f"'{phrase}': {table.name}.{column.name} = '{value}'?",
        kind="confirm",
        choices=[
            Choice(id="yes", label=f"yes, {table.name}.{column.name} = '{value}'", mapping=mapping),
        ],
        allow_other=True,
    )


def question_which(
    phrase: str, text: str, kind: str, options: list[tuple[str, dict]], *, qid: str, allow_other: bool = True
) -> Question:
    """A choice among candidates the planner found close in score."""
    taken: set[str] = set()
    choices = [Choice(id=_slug(label, taken), label=label, mapping=mapping) for label, mapping in options]
    return Question(
        id=qid, phrase=phrase, text=text, kind=kind, choices=choices[: MAX_CHOICES + 4], allow_other=allow_other
    )


def measure_choices(term: str, index: SchemaIndex, tables: list[Table]) -> list[tuple[str, dict]]:
    """Ways of measuring a business word such as revenue: the sum of one money column."""
    options: list[tuple[str, dict]] = []
    for table in tables:
        for column in table.columns.values():
            if not column.is_numeric or column.primary_key or column.name.lower().endswith("_id"):
                continue
            if not (column.format == "decimal" or column.json_type == "number"):
                continue
            mapping = {
                "term": term,
                "kind": "measure",
                "func": "sum",
                "object": _object(index, table),
                "column": column.name,
            }
            options.append((f"the sum of {table.name}.{column.name}", mapping))
    return options


def status_question(term: str, index: SchemaIndex, table: Table, status: Column, *, qid: str) -> Question:
    """'Which statuses count?': one choice per value of a status-like column (several may be chosen)."""
    taken: set[str] = set()
    values = [v for v in status.known_values if isinstance(v, str)]
    choices = [
        Choice(
            id=_slug(f"all_{status.name}", taken),
            label=f"every {status.name} counts",
            mapping={"term": term, "kind": "filter", "object": _object(index, table), "filters": []},
        )
    ]
    for value in values[:MAX_CHOICES]:
        choices.append(
            Choice(
                id=_slug(value, taken),
                label=f"{table.name}.{status.name} = '{value}'",
                mapping={
                    "term": term,
                    "kind": "filter",
                    "object": _object(index, table),
                    "filters": [{"column": status.name, "op": "in", "values": [value]}],
                },
            )
        )
    return Question(
        id=qid,
        phrase=term,
        text=f"'{term}': which {table.name}.{status.name} values count? Choose one or more.",
        kind="filter",
        choices=choices,
        allow_other=True,
        multiple=True,
    )
