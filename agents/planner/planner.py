"""The deterministic planner: a requirement plus an introspected schema -> an endpoint design and its SQL."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import Interpretation, Question
from endpoints.sqldialect import duration_sql
from learning.arithmetic import ExpressionError, arithmetic_columns, arithmetic_normalize
from learning.grammar import is_grammatical

from .bridges import bridge_to
from .dates import date_candidates, date_column, fact_date
from .definitions import definition_design
from .durations import DurationError, read_duration
from .formulas import FormulaQuestion, expression_choices, expression_sql, percent_formula
from .intent import Metric, Phrases, TimeWindow, read_phrases
from .meaning import interpretation_from_analysis
from .people import people_questions, resolve_people
from .periods import Unresolved, calendar_comparison_design, comparison_design, design_problems
from .questions import (
    measure_choices,
    question_confirm_value,
    question_unknown_word,
    question_which,
    status_question,
)
from .rankings import read_ranking_adjective, top_per_group
from .relations import design_passes, is_link, relation_reading
from .row_dates import names_table, row_date_of
from .schema_index import Column, ForeignKey, Key, SchemaIndex, Table
from .shares import ShareError, read_share, take_share_filters
from .sql import (
    ROW_LIMIT_PARAM,
    SINCE_PARAM,
    bind_names,
    date_param,
    normalize_dialect,
    period_start,
    quote,
    rolling_cutoff,
    sql_parses,
    sql_tables,
    time_bucket,
)
from .units import UnitQuestion, percent_value, resolve_quantities
from .vocabulary import (
    ACTIVITY_WORDS,
    FILLER_WORDS,
    LOCATION_WORDS,
    MEASURE_NAME_QUALITY,
    MONEY_WORDS,
    QUANTITY_WORDS,
    SECRET_WORDS,
    SENSITIVE_WORDS,
    STOPWORDS,
    Token,
    derives,
    semantic_similarity,
    singular,
    tokenize,
    variants,
    word_score,
)

NAME_WORDS = frozenset({"name", "names", "title", "titles", "label", "labels"})
BE_WORDS = frozenset(["is", "are", "was", "were"])
# Verbs that say where a row is ("customers living in a given city"): part of the location's phrase.
LOCATION_VERBS = frozenset(
    ["living", "live", "lives", "located", "based", "residing", "reside", "resides", "situated", "headquartered"]
)
SHAPE_ORDER = ("list", "lookup", "aggregate", "top_n", "time_window", "join", "no_activity_since")
DEFAULT_LIMIT = 100
LIST_COLUMNS = 8  # columns a list shows besides those the request names
MAX_LIMIT = 1000
STRICT_LIMIT = 50
STRICT_MAX_LIMIT = 200
# The bound parameter that caps how many rows a generated query returns. Not "limit": generated
# endpoints reserve limit/offset/page for paging through those rows.
# Date parameters travel as ISO text checked by a pattern and are cast in SQL (CAST(:since AS DATE)).
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
REUSABLE_TYPES = ("SUCCESS_PATTERN", "API_PATTERN")


NEXT_STEP = "Rephrase it with the names of the things, columns or values it is about, or describe it in other words."
ANSWER_STEP = "Answer the question below, or describe it in other words."


class PlanningError(Exception):
    """The planner cannot design this requirement; the message says what was understood, what not, what next.

    `questions` (endpoints.interpretation.Question) are asked instead of failing when the planner
    found candidates for what it could not resolve; answering them defines glossary terms.
    """

    retryable = False

    def __init__(self, why: str, *, understood: str = "", questions: list[Question] | None = None) -> None:
        self.why = why
        self.understood = understood
        self.questions = list(questions or [])
        super().__init__(self._message())

    def _message(self) -> str:
        parts = []
        if self.understood:
            parts.append(f"I understood: {self.understood}.")
        why = self.why.strip().rstrip(".")
        parts.append(why[:1].upper() + why[1:] + ".")
        parts.append(ANSWER_STEP if self.questions else NEXT_STEP)
        return " ".join(parts)

    def understanding(self, understood: str) -> PlanningError:
        """The same error, saying what was understood before it happened (kept when already said)."""
        if not self.understood and understood:
            self.understood = understood
            self.args = (self._message(),)
        return self


@dataclass(frozen=True)
class Plan:
    """An endpoint design: what it returns, how it is called and the SQL that answers it.

    `path` is a kebab-case slug without a leading slash; `parameters` is the JSON schema of the
    query parameters (every property has a default); `sql` uses named binds (:name) only.
    """

    requirement: str
    shape: tuple[str, ...]
    objects: tuple[tuple[str, str], ...]
    method: str
    path: str
    description: str
    parameters: dict
    sql: str
    response_columns: tuple[dict, ...]
    rationale: tuple[str, ...]
    confidence: float
    dialect: str
    steps: int
    steps_saved: int = 0
    reused_memory_id: str | None = None
    avoided: tuple[str, ...] = ()
    interpretation: Interpretation | None = None

    def defaults(self) -> dict[str, Any]:
        """The default value of every parameter: what the endpoint runs with when called bare."""
        return {name: spec.get("default") for name, spec in (self.parameters.get("properties") or {}).items()}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["objects"] = [list(o) for o in self.objects]
        data["response_columns"] = list(self.response_columns)
        data["rationale"] = list(self.rationale)
        data["avoided"] = list(self.avoided)
        data["interpretation"] = (
            self.interpretation.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False)
            if self.interpretation is not None
            else None
        )
        return data

    def memory_content(self) -> dict[str, Any]:
        """What a SUCCESS_PATTERN / API_PATTERN memory stores so that a later plan can reuse this one."""
        return {
            "requirement": self.requirement,
            "shape": list(self.shape),
            "objects": [f"{schema}.{name}" for schema, name in self.objects],
            "sql": self.sql,
            "parameters": self.parameters,
            "path": self.path,
            "response_columns": list(self.response_columns),
            "dialect": self.dialect,
            "steps": self.steps,
        }


# Analysis ---------------------------------------------------------------------------------------


@dataclass
class Mention:
    start: int  # token index
    end: int  # exclusive
    offset: int  # character offset
    candidates: list[tuple[float, Key]]
    role: str = "entity"  # entity | group | activity | child | parent
    guessed: bool = False  # found by meaning (the embedder), not by name: asked about, never used silently

    def best(self) -> tuple[float, Key]:
        return self.candidates[0]


@dataclass
class Filter:
    table: Key
    column: str
    value: Any
    param: str = ""
    guessed: bool = False
    phrase: str = ""
    op: str = "eq"
    values: list | None = None
    fixed: bool = False  # a defined term's value, not a parameter the caller may change
    required: bool = False  # "a given X": the caller must say which
    enum: list | None = None  # the values the database's type allows, when it says
    other: str | None = None  # compared with this column of the same table ("over their credit limit")
    expression: str | None = None  # compare this arithmetic of the table's columns ("(price - cost) / price")


@dataclass
class Analysis:
    requirement: str
    tokens: list[Token]
    phrases: Phrases
    shape: list[str] = field(default_factory=list)
    entity: Table | None = None
    mentions: list[Mention] = field(default_factory=list)
    qualified: dict[int, Key] = field(default_factory=dict)  # token index of a column word -> its table
    unknown_words: list[str] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    parents: list[tuple[ForeignKey, list[str]]] = field(default_factory=list)  # joined parent and its columns
    children: list[ForeignKey] = field(default_factory=list)
    mentioned_columns: set[tuple[Key, str]] = field(default_factory=set)
    # the table whose rows must be absent, the foreign keys from the entity down to it, and its date
    activity: tuple[Table, list[ForeignKey], Column | None] | None = None
    activity_span: tuple[int, int] | None = None  # "never been rented": the negation and the verb
    negated_column: bool = False  # "haven't shipped yet": the negation is a date left empty
    fact: Table | None = None
    measure: tuple[str, list[str]] | None = None  # (kind "column" | "product" | "expression", column names on fact)
    # "share of orders placed on mobile, as a percentage": (share words span, unit words span or None)
    share: tuple[tuple[int, int], tuple[int, int] | None] | None = None
    share_filters: list[Filter] = field(default_factory=list)  # the rows the share counts (channel = 'mobile')
    measure_expression: str | None = None  # the arithmetic a glossary measure sums ('unit_price * quantity')
    metric: Metric | None = None
    group_columns: list[tuple[Table, Column]] = field(default_factory=list)
    group_entity: Table | None = None
    rank_column: Column | None = None  # top N by a plain column of the entity
    lookup: Column | None = None
    lookup_default: Any = None
    window_column: tuple[Table, Column] | None = None
    objects: list[Key] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    confidence: float = 0.95
    avoid_columns: set[str] = field(default_factory=set)
    strict_tables: set[str] = field(default_factory=set)
    avoided_notes: list[str] = field(default_factory=list)
    group_phrase: str = ""  # "by region", "per product"
    column_phrases: dict[tuple[Key, str], str] = field(default_factory=dict)
    lookup_phrase: str = ""
    glossary: list[dict] = field(default_factory=list)  # the Service's business terms (learning.glossary mappings)
    terms: list[tuple[dict, tuple[int, int]]] = field(default_factory=list)  # glossary terms found, with spans
    term_measure: tuple[dict, str] | None = None  # a measure the glossary defines, and its phrase
    term_dates: dict[Key, Column] = field(default_factory=dict)  # the date a glossary term's rows happen at
    row_dates: dict[Key, Column] = field(default_factory=dict)  # a table's rows happen at (asked, row_dates.py)
    needs_compiler: list[str] = field(default_factory=list)  # elements only the interpretation compiler renders
    confirms: list[tuple[Table, Column, str, str]] = field(default_factory=list)  # (table, column, value, phrase)
    chains: list[list[ForeignKey]] = field(default_factory=list)  # many-to-one joins from the entity to far tables
    having: list[dict] = field(default_factory=list)  # conditions on the count: {"op", "value", "phrase"}
    counted: Table | None = None  # "more than 20 orders": the rows counted per entity
    counted_key: str | None = None  # "more than 4 different products": the column of `counted` counted distinct
    recency: str | None = None  # order by the entity's date: "desc" for "most recent", "asc" for "oldest"
    verb_phrases: dict[Key, str] = field(default_factory=dict)  # "supplied" for the joined suppliers
    # "films in a given category" across a link table: rows that have a related row with the given value.
    related_given: list[tuple[list[ForeignKey], Filter]] = field(default_factory=list)
    # "agents with the most unresolved tickets": groups ordered by their count, every group kept (direction, phrase)
    measure_order: tuple[str, str] | None = None
    duration: tuple[Column, Column, str, str] | None = None  # "time to close, in hours": (start, end, unit, phrase)

    def text(self, first: int, last: int) -> str:
        """The requirement's own words from token `first` to token `last` (inclusive)."""
        lo, hi = sorted((first, last))
        return self.requirement[self.tokens[lo].start : self.tokens[hi].end]


def plan_requirement(
    *,
    requirement: str,
    schema: dict,
    grants: list | None = None,
    memories: list[dict] | None = None,
    dialect: str = "postgres",
    samples: dict | None = None,
    glossary: list[dict] | None = None,
) -> Plan:
    """Design a read-only GET endpoint for a plain-English requirement over the given schema.

    `samples` optionally gives distinct values seen per column, keyed by table ("schema.name" or
    "name"): {"customers": {"region": ["EU", "US"]}}; columns may also carry "enum" or "samples".
    `glossary` lists the Service's business terms as glossary mappings ({"term", "kind", ...}, see
    learning.glossary); a term found in the requirement means what its mapping says, before any guess.
    Raises PlanningError (with `questions` when it can ask instead) when it cannot design it.
    """
    requirement = (requirement or "").strip()
    if not requirement:
        raise PlanningError("the requirement is empty")
    dialect = normalize_dialect(dialect)
    index = SchemaIndex(schema or {}, grants=grants, samples=samples, dialect=dialect)
    if not index.tables:
        raise PlanningError("this Role can read no table or view of the database")
    designed = _shape_design(requirement, index, schema, grants, samples, glossary or [], dialect)
    if designed is not None:
        return designed
    memories = memories or []
    try:
        analysis = _analyse(requirement, index, memories, glossary or [])
    except PlanningError:
        # Rows related through a key's own name, a second instance of a table, a link table, or the same
        # related row more than once: read another way, kept only when the platform's checks pass on it.
        related = _relation_plan(requirement, index, schema or {}, dialect)
        if related is None:
            raise
        return related
    reused = _reuse_memory(analysis, index, memories, dialect)
    if reused is not None:
        return reused
    plan = _design(analysis, index, dialect)
    if plan.interpretation is not None and not design_passes(requirement, plan.interpretation, schema or {}, dialect):
        return _relation_plan(requirement, index, schema or {}, dialect) or plan
    return plan


def _shape_design(
    requirement: str,
    index: SchemaIndex,
    schema: dict,
    grants: list | None,
    samples: dict | None,
    glossary: list[dict],
    dialect: str,
) -> Plan | None:
    """Shapes designed by their own modules: changes between periods, terms that need a definition."""

    def planned(text: str) -> tuple[Interpretation | None, list[Key]]:
        try:
            plan = plan_requirement(
                requirement=text, schema=schema, grants=grants, samples=samples, glossary=glossary, dialect=dialect
            )
        except PlanningError as error:  # said of these words alone, not of the words they were asked with
            raise PlanningError(error.why, questions=error.questions) from None
        return plan.interpretation, list(plan.objects)

    def money(text: str) -> Interpretation | None:
        return planned(text)[0]

    try:
        design = definition_design(requirement=requirement, index=index, glossary=glossary)
        if design is None:
            design = comparison_design(requirement=requirement, index=index, money=money)
        if design is None:
            design = calendar_comparison_design(requirement=requirement, index=index, plan=planned)
    except Unresolved as error:
        raise PlanningError(error.why, questions=error.questions) from None
    if design is None:
        return None
    problems = design_problems(requirement=requirement, design=design, schema=schema, dialect=dialect)
    if problems:
        raise PlanningError("; ".join(problems))
    compiled = interpretation_compile(design.interpretation, catalog=Catalog(schema), dialect=dialect)
    return _compiled_plan(
        requirement, design.interpretation, compiled, shape=design.shape, objects=tuple(design.objects),
        rationale=tuple(design.steps), confidence=0.8, dialect=dialect,
    )  # fmt: skip


def requirement_questions(
    *,
    requirement: str,
    schema: dict,
    grants: list | None = None,
    samples: dict | None = None,
    glossary: list[dict] | None = None,
    dialect: str = "postgres",
) -> list[Question]:
    """The questions a requirement raises over a catalog (objects with their columns), before any exploring.

    Words that no table, column, known value or glossary term explains come back as questions with
    choices from the schema and the data; an empty list means nothing is unresolved at this stage.
    """
    try:
        plan_requirement(
            requirement=requirement, schema=schema, grants=grants, samples=samples, glossary=glossary, dialect=dialect
        )
    except PlanningError as error:
        return error.questions
    return []


def unresolved_words(
    *, requirement: str, schema: dict, grants: list | None = None, samples: dict | None = None, glossary=None
) -> list[str]:
    """Words of the requirement nothing explains yet: worth probing the data's text columns for."""
    return [
        q.phrase
        for q in requirement_questions(
            requirement=requirement, schema=schema, grants=grants, samples=samples, glossary=glossary
        )
        if q.kind in ("value", "other")
    ]


def _understood(a: Analysis) -> str:
    """What the planner recognised so far, in the requirement's own words."""
    parts: list[str] = []
    if a.entity is not None:
        parts.append(a.entity.name.replace("_", " "))
    elif a.mentions:
        parts.append(a.tokens[a.mentions[0].start].text)
    for f in a.filters:
        parts.append(f"{f.column.replace('_', ' ')} = '{f.value}'")
    for term, _span in a.terms:
        parts.append(f"'{term['term']}' as defined in the glossary")
    if a.phrases.metric is not None:
        parts.append(a.phrases.metric.phrase.strip())
    if a.phrases.window is not None:
        parts.append(a.requirement[a.phrases.window.span[0] : a.phrases.window.span[1]].strip())
    if a.phrases.grain_span:
        parts.append(a.requirement[a.phrases.grain_span[0] : a.phrases.grain_span[1]].strip())
    return ", ".join(p for p in parts if p)


def _analyse(requirement: str, index: SchemaIndex, memories: list[dict], glossary: list[dict]) -> Analysis:
    phrases = read_phrases(requirement)
    if phrases.unsupported:
        raise PlanningError(f"I cannot build this: {phrases.unsupported}; an endpoint only reads data as it is")
    tokens = tokenize(requirement)
    a = Analysis(requirement=requirement, tokens=tokens, phrases=phrases, glossary=list(glossary))
    try:
        return _analyse_steps(a, index, memories)
    except PlanningError as error:
        raise error.understanding(_understood(a)) from None


def _analyse_steps(a: Analysis, index: SchemaIndex, memories: list[dict]) -> Analysis:
    phrases = a.phrases
    _apply_anti_patterns(a, memories)
    _find_terms(a, index)
    a.mentions = sorted(_table_mentions(a, index) + _term_mentions(a, index), key=lambda m: m.offset)
    _assign_roles(a, index)
    _resolve_entity(a, index)
    _resolve_name_lookup(a, index)
    _resolve_given(a, index)
    _resolve_thresholds(a, index)
    try:
        resolve_quantities(a, index, make_filter=Filter)
    except UnitQuestion as asked:
        raise PlanningError(str(asked), questions=[asked.question]) from None
    _resolve_repeats(a, index)
    _resolve_column_comparisons(a, index)
    try:
        read_duration(a, make_filter=Filter)
    except DurationError as error:
        raise PlanningError(str(error)) from None
    if a.activity is None and a.entity is not None and a.phrases.negation_at is not None:
        _resolve_negated_verb(a, index)
    read_ranking_adjective(a, index)
    if (reason := top_per_group(a)) is not None:
        raise PlanningError(reason)
    read_share(a)
    _resolve_values_and_columns(a, index)
    _apply_terms(a, index)
    scope = _scope(a, index) if a.entity is not None or a.mentions else list(index.tables.values())
    resolve_people(a, index, scope, make_filter=Filter)
    _name_parameters(a, index)
    if a.unknown_words or a.confirms:
        _ask_unknown_words(a, index)
    if a.phrases.window:
        a.shape.append("time_window")
    if a.activity is not None or (a.entity is not None and _resolve_activity(a, index)):
        a.shape.append("no_activity_since")
        if _window_before_negation(a):
            # "signed up this year but never placed an order": the window is the entity's, not the absent rows'.
            a.activity = (a.activity[0], a.activity[1], None)
    if phrases.top_n is not None:
        a.shape.append("top_n")
    _resolve_recency(a, index)
    if a.phrases.rank_verb and a.entity is not None and a.counted is None:
        _resolve_ranked_verb(a, index)
    if a.phrases.ranked_rows_at is not None:
        _check_ranked_rows(a, index)
    if a.rank_column is None and (
        phrases.metric or phrases.top_n is not None or a.group_columns or a.group_entity is not None or phrases.grain
    ):
        _resolve_aggregate(a, index)
    if a.lookup is not None:
        a.shape.append("lookup")
    if not {"aggregate", "top_n", "lookup"} & set(a.shape):
        a.shape.append("list")
    _resolve_window_column(a, index)
    _merge_values_of_one_column(a)
    if a.share is not None:
        if a.metric is not None and a.metric.func != "count":
            raise PlanningError("a share counts rows; it is not a share of a sum or an average")
        try:
            take_share_filters(a)
        except ShareError as error:
            raise PlanningError(str(error)) from None
    a.objects = _objects(a, index)
    if len(a.objects) > 1:
        a.shape.append("join")
    a.shape = [s for s in SHAPE_ORDER if s in a.shape]
    names = ", ".join(f"{s}.{n}" for s, n in a.objects)
    a.steps.insert(0, f"Read the requirement as a {' + '.join(a.shape)} request over {names}.")
    return a


def _object_ref(index: SchemaIndex, key: Key) -> str:
    return key[1] if not key[0] or key[0] == index.default_schema else f"{key[0]}.{key[1]}"


def _term_key(index: SchemaIndex, name: str | None) -> Key | None:
    """The table a glossary mapping names ("schema.table" or "table"), if this Role can read it."""
    if not name:
        return None
    schema, _, table = str(name).rpartition(".")
    for key in index.tables:
        if key[1] == table and (not schema or key[0] == schema):
            return key
    return None


def _grammar_spans(phrases: Phrases) -> list[tuple[int, int]]:
    """Where the grammar has read a time window, a comparison, recency, a count, a ranking or 'a given X'."""
    spans = [t.span for t in phrases.thresholds] + [span for span, _ in phrases.given]
    for span in (
        phrases.window.span if phrases.window else None,
        phrases.recency_span,
        phrases.top_span,
        phrases.grain_span,
        phrases.negation_span,
        phrases.name_lookup_span,
        *phrases.structure_spans,
    ):
        if span:
            spans.append(span)
    return spans


def _find_terms(a: Analysis, index: SchemaIndex) -> None:
    """Glossary terms in the requirement (whole words, through inflections): their words are explained by the term.

    A term never takes a word the grammar has read: a term made only of grammar words is not a
    term, and a match is refused where one of its grammar words lies in a window, comparison,
    recency or other phrase the grammar understood ("last name" never catches "the last 3 orders").
    """
    words = [t for t in a.tokens]
    grammar = _grammar_spans(a.phrases)
    for mapping in a.glossary:
        term = str(mapping.get("term") or "").strip()
        if not term or is_grammatical(term):
            continue
        parts = [t.lower for t in tokenize(term)]
        n = len(parts)
        for i in range(len(words) - n + 1):
            window = words[i : i + n]
            if all(variants(w.lower) & variants(p) for w, p in zip(window, parts, strict=True)):
                if any(
                    is_grammatical(w.lower) and any(s <= w.start and w.end <= e for s, e in grammar) for w in window
                ):
                    continue
                span = (window[0].start, window[-1].end)
                if any(s <= span[0] < e and m.get("term") != mapping.get("term") for m, (s, e) in a.terms):
                    continue
                a.terms.append((mapping, span))
                if row_date_of(mapping, _term_key(index, mapping.get("object")), index) is None:
                    a.phrases.spans.append(span)  # a table's date leaves its word naming the table
                a.steps.append(f"'{a.requirement[span[0] : span[1]]}' is a glossary term: {mapping.get('kind')}.")
                break
    a.terms.sort(key=lambda item: item[1][0])


def _term_mentions(a: Analysis, index: SchemaIndex) -> list[Mention]:
    """Glossary terms that name a table are mentions of it, as sure as its own name."""
    out = []
    for mapping, (start, end) in a.terms:
        if mapping.get("kind") != "entity":
            continue
        key = _term_key(index, mapping.get("object"))
        if key is None:
            continue
        first = next(i for i, t in enumerate(a.tokens) if t.start >= start)
        last = max(i for i, t in enumerate(a.tokens) if t.end <= end)
        out.append(Mention(first, last + 1, a.tokens[first].start, [(1.0, key)]))
    return out


def _apply_terms(a: Analysis, index: SchemaIndex) -> None:
    """Glossary values, filters, columns and measures found in the requirement, applied before any guess."""
    for mapping, span in a.terms:
        kind = mapping.get("kind")
        phrase = a.requirement[span[0] : span[1]]
        key = _term_key(index, mapping.get("object"))
        if kind in ("entity", "ignore"):
            continue
        if kind == "filter" and any(
            m.get("kind") == "measure" and m.get("term") == mapping.get("term") for m, _ in a.terms
        ):
            continue  # part of the measure's definition
        if key is None:
            raise PlanningError(
                f"the glossary defines '{phrase}' on {mapping.get('object')}, which this Role cannot read"
            )
        table = index.tables[key]
        if kind in ("value", "filter"):
            conditions = list(mapping.get("filters") or [])
            if kind == "value" or mapping.get("column"):
                conditions.insert(0, mapping)
            for condition in conditions:
                column = condition.get("column")
                if column not in table.columns:
                    raise PlanningError(f"the glossary defines '{phrase}' with {column}, which this Role cannot read")
                op = condition.get("op") or ("in" if condition.get("values") else "eq")
                if op == "eq" and condition.get("value") is not None:
                    a.filters.append(Filter(key, column, condition["value"], phrase=phrase))
                else:
                    a.filters.append(
                        Filter(
                            key,
                            column,
                            condition.get("value"),
                            phrase=phrase,
                            op=op,
                            values=condition.get("values"),
                            fixed=True,
                        )
                    )
                    a.needs_compiler.append(f"the condition {op} on {table.name}.{column}")
        elif kind == "column":
            column = mapping.get("column")
            if column not in table.columns:
                raise PlanningError(f"the glossary maps '{phrase}' to {column}, which this Role cannot read")
            if row_date_of(mapping, key, index) is not None:
                a.row_dates[key] = table.columns[column]
                continue
            if table.columns[column].is_temporal and a.phrases.window is not None:
                a.term_dates[key] = table.columns[column]  # "refunds" happen at paid_at: the window's date
                continue
            grouped = any(
                a.phrases.group_starts.get(offset, -1) < span[0] <= offset for offset in a.phrases.group_starts
            ) or a.requirement[: span[0]].rstrip().lower().endswith((" by", " per", " each"))
            first = _token_at(a, span[0])
            if not grouped and first is not None and _flag_before_entity(a, first, table, table.columns[column]):
                # "active customers", 'active' being the column customer.active: only rows where it is set
                a.filters.append(Filter(key, column, _flag_true(table.columns[column]), phrase=phrase))
                continue
            if grouped:
                a.group_columns.append((table, table.columns[column]))
            else:
                a.mentioned_columns.add((key, column))
                if a.entity is not None and key != a.entity.key:
                    fk = next((fk for fk in a.entity.foreign_keys if fk.parent == key), None)
                    if fk is not None and all(p[0] != fk for p in a.parents):
                        a.parents.append((fk, [column]))
            a.column_phrases[(key, column)] = phrase
        elif kind == "measure":
            a.term_measure = (mapping, phrase)


def _ask_unknown_words(a: Analysis, index: SchemaIndex) -> None:
    """Words nothing explains: ask what each means, with the values and columns that look like it."""
    unread = [w for w in a.unknown_words if is_grammatical(w)]
    if unread:
        # A word of the grammar is not a business term: asking would store it in the glossary.
        names = ", ".join(f"'{w}'" for w in unread)
        raise PlanningError(
            f"I could not tell how {names} applies here; say it with the names of the things it is about"
        )
    scope = _scope(a, index) if a.entity is not None or a.mentions else list(index.tables.values())
    questions = []
    for n, (table, column, value, phrase) in enumerate(a.confirms[:4]):
        questions.append(question_confirm_value(phrase, index, table, column, value, qid=f"value_{n + 1}"))
    people = people_questions(a, index, scope, first=len(questions))
    questions += people
    # "Support agents": one question for the words of its phrase
    asked = {w for q in people for w in q.phrase.split()}
    rest = [w for w in a.unknown_words if w not in asked]
    for n, word in enumerate(rest[: 8 - len(questions)]):
        questions.append(question_unknown_word(word, word, index, scope, qid=f"term_{n + 1}"))
    questions += _window_date_questions(a, index, questions)[: 8 - len(questions)]
    if not a.unknown_words:
        phrases = ", ".join(f"'{c[3]}'" for c in a.confirms)
        raise PlanningError(
            f"I am not sure {phrases} names a value; nothing I have seen confirms it", questions=questions
        )
    named = [q.phrase for q in people] + rest
    names = ", ".join(f"'{w}'" for w in named)
    verb = "means" if len(named) == 1 else "mean"
    raise PlanningError(
        f"I don't know what {names} {verb} in this database (no table, column, value or glossary term matches)",
        questions=questions,
    )


DATED_TERM_KINDS = ("value", "filter", "measure")  # a term of these kinds stands for rows that happen at a date


def _dates_too_close(found: tuple[Table, Column], ranked: list[tuple[float, Column]]) -> bool:
    """Whether two dates of the window's table say about as well when a row happened, none named."""
    return len(ranked) > 1 and ranked[0][1] is found[1] and ranked[0][0] < 2.0 and ranked[0][0] - ranked[1][0] < 0.5


def _window_applies(a: Analysis) -> bool:
    return a.phrases.window is not None and (a.activity is None or _window_before_negation(a))


def _window_date_question(
    a: Analysis, index: SchemaIndex, phrase: str, term: str, tables: list[Table], *, qid: str
) -> Question | None:
    """'Refunds last month': which date says when they happen, among the dates of each table the term may be on.

    Asked only when, on one of those tables, two dates say about as well when a row happened; a table
    whose date is clear offers that one date, so whichever table the term turns out to mean has its choice.
    """
    options: list[tuple[str, dict]] = []
    unclear = False
    for table in tables:
        found = fact_date(a, index, table)
        if found is None:
            continue
        ranked = date_candidates(found[0], a)
        close = _dates_too_close(found, ranked)
        unclear = unclear or close
        for _, column in ranked[:2] if close else [(0.0, found[1])]:
            mapping = {
                "term": term,
                "kind": "column",
                "object": _object_ref(index, found[0].key),
                "column": column.name,
            }
            if all(m != mapping for _, m in options):
                options.append((f"{found[0].name}.{column.name}", mapping))
    if not unclear:
        return None
    window = a.phrases.window.phrase
    return question_which(
        phrase, f"'{phrase} {window}': which date says when {phrase} happen?", "column", options, qid=qid
    )


def _window_date_questions(a: Analysis, index: SchemaIndex, asked: list[Question]) -> list[Question]:
    """With the words asked about, the date a window applies to on each table their choices could be on.

    So one round of answers is enough: what 'refunds' are, and which of their dates 'last month' is by.
    With a table named already, only the choices on that table would carry the window.
    """
    if not _window_applies(a):
        return []
    out = []
    for question in asked:
        keys = []
        for choice in question.choices:
            key = _term_key(index, choice.mapping.get("object"))
            if choice.mapping.get("kind") in DATED_TERM_KINDS and key is not None and key not in keys:
                keys.append(key)
        if a.entity is not None:
            keys = [k for k in keys if k == a.entity.key]
        term = next((str(c.mapping["term"]) for c in question.choices if c.mapping.get("term")), question.phrase)
        tables = [index.tables[k] for k in keys]
        asked_date = _window_date_question(a, index, question.phrase, term, tables, qid=f"window_date_{len(out) + 1}")
        if asked_date is not None:
            out.append(asked_date)
    return out


def _apply_anti_patterns(a: Analysis, memories: list[dict]) -> None:
    for memory in memories:
        if str(memory.get("type", "")).upper() != "ANTI_PATTERN":
            continue
        content = _memory_content(memory)
        text = " ".join(
            str(part) for part in (content.get("reason"), content.get("text"), content.get("content")) if part
        )
        avoid = content.get("avoid") or {}
        columns = set(avoid.get("columns") or [])
        tables = set(avoid.get("unbounded") or [])
        for match in re.finditer(r"expos\w*\s+(?:the\s+)?(?:sensitive\s+)?(?:column\s+)?([A-Za-z_][\w.]*)", text, re.I):
            columns.add(match.group(1))
        for match in re.finditer(
            r"unbounded\s+(?:query|select|scan|result|read)s?\s+(?:on|of|over|from|against)\s+(?:table\s+)?([A-Za-z_][\w.]*)",
            text,
            re.I,
        ):
            tables.add(match.group(1))
        for column in columns:
            a.avoid_columns.add(column.split(".")[-1].lower())
            a.avoided_notes.append(f"column {column} (anti-pattern {memory.get('id', '?')})")
        for table in tables:
            a.strict_tables.add(table.split(".")[-1].lower())
            a.avoided_notes.append(f"unbounded reads of {table} (anti-pattern {memory.get('id', '?')})")


def _content_tokens(a: Analysis) -> list[int]:
    return [
        i
        for i, t in enumerate(a.tokens)
        if t.lower not in STOPWORDS and not a.phrases.explains(t.start, t.end) and not t.is_number
    ]


def _table_score(words: list[str], table: Table) -> float:
    name = [w for w in table.tokens if w not in ("tbl", "dim", "fact", "vw", "v", "t")] or list(table.tokens)
    if len(words) == len(name):
        scores = [word_score(w, n) for w, n in zip(words, name, strict=True)]
        if len(scores) > 1 and all(x == 1.0 for x in scores[:-1]) and scores[-1] == 0.8:
            return 0.9  # "order lines" for order_details: the head a synonym, the words before exact
        return min(scores) if all(scores) else 0.0
    if len(words) == 1 and len(name) > 1:
        head = word_score(words[0], name[-1])
        if head:
            return 0.6 * head
        return 0.4 * max(word_score(words[0], n) for n in name)
    return 0.0


def _table_mentions(a: Analysis, index: SchemaIndex) -> list[Mention]:
    content = set(_content_tokens(a))
    mentions: list[Mention] = []
    i = 0
    while i < len(a.tokens):
        if i not in content:
            i += 1
            continue
        taken = False
        pair = [a.tokens[j].lower for j in (i, i + 1) if j in content]
        if len(pair) == 2 and any(
            _column_score(pair, c) >= 1.0 for t in index.tables.values() for c in t.columns.values()
        ):
            i += 2  # "event type" is the column event_type, not the table events
            continue
        if len(pair) == 2:
            # "product category": the column category of the table products, not the table itself.
            owners = [
                t
                for t in index.tables.values()
                if _table_score(pair[:1], t) >= 0.9
                and (
                    any(_column_score(pair[1:], c) >= 1.0 for c in t.columns.values())
                    or (pair[1] in NAME_WORDS and t.label_columns())
                )
            ]
            if owners:
                owners.sort(key=lambda t: (-_table_score(pair[:1], t), t.kind != "table", t.name))
                a.qualified[i + 1] = owners[0].key
                i += 2
                continue
        for length in (3, 2, 1):
            span = list(range(i, i + length))
            if any(j not in content for j in span):
                continue
            words = [a.tokens[j].lower for j in span]
            scored = sorted(
                ((round(_table_score(words, t), 3), t.key) for t in index.tables.values()),
                key=lambda item: (-item[0], item[1]),
            )
            scored = [s for s in scored if s[0] >= (0.9 if length > 1 else 0.5)]
            if scored:
                mentions.append(Mention(i, i + length, a.tokens[i].start, scored))
                i += length
                taken = True
                break
        if not taken:
            i += 1
    if not mentions:
        qualifiers = {j for i in a.qualified for j in (i - 1, i)}
        mentions = _semantic_mentions(a, index, content - qualifiers)
    return mentions


def _semantic_mentions(a: Analysis, index: SchemaIndex, content: set[int]) -> list[Mention]:
    """When no word names a table, try the local embedder (paraphrases of table names)."""
    words = [i for i in sorted(content) if a.tokens[i].lower not in ACTIVITY_WORDS]
    tables = list(index.tables.values())
    if not words:
        return []
    matrix = semantic_similarity([a.tokens[i].lower for i in words], [" ".join(t.tokens) for t in tables])
    if matrix is None:
        return []
    mentions = []
    for row, i in zip(matrix, words, strict=True):
        scored = sorted(
            ((round(s, 3), t.key) for s, t in zip(row, tables, strict=True) if s >= 0.6),
            key=lambda item: (-item[0], item[1]),
        )
        if scored:
            mentions.append(Mention(i, i + 1, a.tokens[i].start, [(min(0.7, s), k) for s, k in scored], guessed=True))
    return mentions


def _assign_roles(a: Analysis, index: SchemaIndex) -> None:
    p = a.phrases
    group_offsets = {offset for offset, _ in p.group_words}
    counted_at = {t.unit_span[0] for t in p.thresholds if t.unit_span}
    given_at = {offset for _span, offset in p.given}
    for mention in a.mentions:
        if mention.offset in counted_at:
            mention.role = "counted"
        elif mention.offset in given_at:
            mention.role = "given"
        elif p.negation_at is not None and 0 <= mention.offset - p.negation_at <= 12 and not p.negation_implicit:
            mention.role = "activity"
        elif mention.offset in group_offsets:
            mention.role = "group"
        elif any(0 <= mention.offset - at <= 1 for at in p.child_at):
            mention.role = "related"
    # "top 10 customers by revenue": the ranked entity is the entity, even after "by".
    if all(m.role != "entity" for m in a.mentions) and (p.metric is None or p.top_n is not None):
        for mention in a.mentions:
            if mention.role in ("group", "related"):
                mention.role = "entity"
                break


def _resolve_entity(a: Analysis, index: SchemaIndex) -> None:
    guessed = [m for m in a.mentions if m.guessed]
    if guessed:
        questions = []
        for n, mention in enumerate(guessed[:4]):
            word = _span_text(a, mention)
            options = [
                (k[1], {"term": word, "kind": "entity", "object": _object_ref(index, k)})
                for _, k in mention.candidates[:4]
            ]
            options.append((f"'{word}' adds nothing to the question: leave it out", {"term": word, "kind": "ignore"}))
            questions.append(
                question_which(
                    word, f"'{word}': which of these does it mean?", "entity", options, qid=f"entity_{n + 1}"
                )
            )
        names = ", ".join(f"'{_span_text(a, m)}'" for m in guessed)
        raise PlanningError(f"no table is named {names}; I found some that may be meant", questions=questions)
    entities = [m for m in a.mentions if m.role == "entity"]
    if not entities:
        groups = [m for m in a.mentions if m.role == "group"]
        if groups:
            score, key = groups[0].best()
            a.group_entity = index.tables[key]
            a.group_phrase = _group_phrase(a, groups[0])
            a.steps.append(f"One row per '{_span_text(a, groups[0])}': {key[0]}.{key[1]} (score {score:.2f}).")
        return
    first = entities[0]
    if (
        len(first.candidates) > 1
        and first.candidates[0][0] - first.candidates[1][0] < 0.05
        and first.candidates[0][0] < 1
    ):
        word = _span_text(a, first)
        close = [k for score, k in first.candidates if first.candidates[0][0] - score < 0.05]
        names = " or ".join(k[1] for k in close)
        options = [(f"{k[1]}", {"term": word, "kind": "entity", "object": _object_ref(index, k)}) for k in close]
        raise PlanningError(
            f"'{word}' could mean {names}, and the schema does not say which",
            questions=[
                question_which(word, f"'{word}': which of these does it mean?", "entity", options, qid="entity")
            ],
        )
    score, key = first.best()
    a.entity = index.tables[key]
    a.confidence -= (1 - score) * 0.3
    a.steps.append(f"Matched '{_span_text(a, first)}' to {key[0]}.{key[1]} (score {score:.2f}).")
    # Other mentions prefer tables joined to the entity by a foreign key.
    for mention in a.mentions:
        if mention is first:
            continue
        rescored = []
        for score, key in mention.candidates:
            distance = index.distance(a.entity.key, key)
            bonus = 0.35 if distance == 1 else 0.15 if distance == 2 else 0.0
            rescored.append((round(score + bonus, 3), key))
        mention.candidates = sorted(rescored, key=lambda item: (-item[0], item[1]))
    for mention in a.mentions:
        if mention is first:
            continue
        score, key = mention.best()
        if mention.role == "entity" and key == a.entity.key:
            continue
        if mention.role in ("counted", "given"):
            continue  # resolved with their phrase (_resolve_thresholds, _resolve_given)
        table = index.tables[key]
        if mention.role == "activity":
            fk = _fk_to(index, table, a.entity)
            # "films never rented": rentals reach films through the copies they are of
            chain = [fk] if fk is not None else list(reversed(index.up_path(table.key, a.entity.key) or []))
            if not chain:
                raise PlanningError(
                    f"{table.name} has no foreign key to {a.entity.name}, so 'no {table.name}' is unclear"
                )
            a.activity = (table, chain, date_column(table, a))
            end = mention.end
            if end < len(a.tokens) and a.tokens[end].lower in ("anything", "any", "something"):
                end += 1
            if a.phrases.negation_span:
                a.activity_span = (a.phrases.negation_span[0], a.tokens[end - 1].end)
            a.steps.append(
                f"'{_span_text(a, mention)}' names the activity table {table.name} (joined on "
                f"{', '.join(c for fk in chain for c in fk.child_columns)})."
            )
        elif mention.role == "group":
            a.group_entity = _link_group(a, table, mention)
            a.group_phrase = _group_phrase(a, mention)
        else:
            _relate(a, index, table, mention)


def _link_group(a: Analysis, table: Table, mention: Mention) -> Table:
    """The table a group names. A link table keyed by its two foreign keys is a pair of rows: "per film
    category" (film_category linking films and categories) is per category, reached through the link, which this
    reading does not build (a path to categories may run elsewhere): declined rather than grouped per pair."""
    if is_link(table) and len(table.primary_key) == 2 and set(table.primary_key) <= set(table.fk_columns):
        raise PlanningError(
            f"'{_span_text(a, mention)}' pairs two kinds of rows ({table.name}); grouping by one of them through "
            "it is not something I can build yet"
        )
    return table


def _relate(a: Analysis, index: SchemaIndex, table: Table, mention: Mention) -> None:
    entity = a.entity
    assert entity is not None
    for fk in index.children(entity.key):
        if fk.child == table.key:
            if fk not in a.children:
                a.children.append(fk)
                a.steps.append(
                    f"'{_span_text(a, mention)}' are rows of {table.name} that reference {entity.name} "
                    f"through {', '.join(fk.child_columns)}."
                )
            return
    for fk in entity.foreign_keys:
        if fk.parent == table.key:
            if all(existing[0] != fk for existing in a.parents):
                a.parents.append((fk, []))
            return
    if a.metric is None and a.phrases.top_n is None:
        raise PlanningError(f"{entity.name} and {table.name} are not joined by a foreign key")


def _token_at(a: Analysis, offset: int) -> int | None:
    return next((i for i, t in enumerate(a.tokens) if t.start == offset), None)


def _reachable(a: Analysis, index: SchemaIndex) -> list[tuple[Table, list[ForeignKey]]]:
    """The entity and the tables it belongs to (child-to-parent chains, nearest first)."""
    entity = a.entity
    assert entity is not None
    out = [(entity, [])]
    for key, table in index.tables.items():
        if key == entity.key:
            continue
        chain = index.up_path(entity.key, key)
        if chain:
            out.append((table, chain))
    out.sort(key=lambda item: (len(item[1]), item[0].name))
    return out


def _add_chain(a: Analysis, chain: list[ForeignKey]) -> None:
    """Join a far table the entity belongs to; one step is an ordinary parent join."""
    if len(chain) == 1:
        if all(p[0] != chain[0] for p in a.parents):
            a.parents.append((chain[0], []))
    elif chain and chain not in a.chains:
        a.chains.append(chain)


def _resolve_given(a: Analysis, index: SchemaIndex) -> None:
    """'a given country', 'a given customer': a required parameter on the column or key it names.

    The column is the entity's own, or one of a table the entity belongs to (many-to-one, so the
    filter never repeats rows); a table named this way is filtered by its key.
    """
    if a.entity is None:
        return
    reachable = _reachable(a, index)
    for (start, end), offset in a.phrases.given:
        i = _token_at(a, offset)
        if i is None:
            continue
        mention = next((m for m in a.mentions if m.offset == offset), None)
        phrase_start = start
        if mention is not None:
            key = mention.best()[1]
            if key == a.entity.key:
                continue
            found = next(((t, c) for t, c in reachable if t.key == key), None)
            if found is None:
                _relate_given(a, index, index.tables[key], i, (start, a.tokens[mention.end - 1].end))
                continue
            table, chain = found
            end = a.tokens[mention.end - 1].end
            given = _given_column(table, a.tokens[i].lower)
            if given is None:
                continue
            if not given.primary_key:
                # "a given country" where a country is known by its name: the name, not the key.
                target, column = table, given
                _add_chain(a, chain)
            elif len(chain) == 1 and len(chain[0].child_columns) == 1:
                # The entity's own foreign key holds the value: no join needed.
                target, column = a.entity, a.entity.columns[chain[0].child_columns[0]]
            else:
                target, column = table, table.columns[table.primary_key[0]]
                _add_chain(a, chain)
        else:
            words = [a.tokens[i].lower]
            prev = [j for j in range(i - 1, -1, -1) if a.tokens[j].start < start and a.tokens[j].lower not in STOPWORDS]
            best = None
            for rank, (table, chain) in enumerate(reachable):
                for column in table.columns.values():
                    score = _column_score(words, column)
                    if prev and len(column.tokens) == 2 and _column_score([a.tokens[prev[0]].lower, *words], column):
                        score = 1.2  # "shipped to a given city": ship_city
                    if score >= 1.0 or (score >= 0.6 and table is a.entity):
                        candidate = (-score, rank, column.name, table, column, chain)
                        if best is None or candidate[:3] < best[:3]:
                            best = candidate
            if best is None:
                continue
            _score, _rank, _name, target, column, chain = best
            if -_score > 1.0 and prev:
                phrase_start = a.tokens[prev[0]].start
            if chain:
                _add_chain(a, chain)
        end = _with_relating_verb(a, end)
        located = re.search(
            r"\b(?:" + "|".join(sorted(LOCATION_VERBS)) + r")\s+(?:in|at)\s+$", a.requirement[:phrase_start].lower()
        )
        if located and column.name.lower() in LOCATION_WORDS:
            phrase_start = located.start()  # "living in a given city": where the row is, the city's filter
        phrase = a.requirement[phrase_start:end]
        a.filters.append(
            Filter(target.key, column.name, None, phrase=phrase, required=True, enum=list(column.enum or []) or None)
        )
        a.phrases.spans.append((phrase_start, end))
        a.steps.append(f"'{phrase}' is a value the caller gives: {target.name}.{column.name}.")


def _with_relating_verb(a: Analysis, end: int) -> int:
    """'orders a given customer placed': the verb that relates the given row to the entity belongs to its phrase."""
    following = [t for t in a.tokens if t.start >= end][:2]
    if following and following[0].lower in ("has", "have", "had") and len(following) > 1:
        following = following[1:]  # "a given customer has bought"
    after = following[0] if following else None
    if (
        after is not None
        and after.lower in FILLER_WORDS
        and (after.lower.endswith("ed") or after.lower in ("made", "bought", "sold", "got"))
        and not a.phrases.explains(after.start, after.end)
    ):
        return after.end
    return end


def _given_column(table: Table, word: str) -> Column | None:
    """How a caller names a row of a table: a column named like the word, the label of a small lookup table
    (a category by its name), else the key."""
    named = [c for c in table.columns.values() if c.is_string and not c.primary_key and _column_score([word], c) >= 1.0]
    if named:
        return named[0]
    plain = [c for c in table.columns.values() if not c.primary_key and c.name not in table.fk_columns]
    plain = [c for c in plain if not c.is_temporal]
    label = table.label_column()
    if label is not None and len(plain) <= 2 and label in plain:
        return label
    if len(table.primary_key) == 1:
        return table.columns[table.primary_key[0]]
    return None


def _relate_given(a: Analysis, index: SchemaIndex, table: Table, i: int, span: tuple[int, int]) -> None:
    """'films in a given category' (through film_category): an exists chain to the table, filtered by the value."""
    chain = index.path(a.entity.key, table.key)
    if not chain or len(chain) > 3:
        return
    column = _given_column(table, a.tokens[i].lower)
    if column is None:
        return
    span = (span[0], _with_relating_verb(a, span[1]))
    phrase = a.requirement[span[0] : span[1]]
    f = Filter(table.key, column.name, None, phrase=phrase, required=True, enum=list(column.enum or []) or None)
    if not column.primary_key and not _column_score([a.tokens[i].lower], column):
        f.param = singular(a.tokens[i].lower)  # "a given category" is its name: the parameter is "category"
    a.related_given.append((chain, f))
    a.phrases.spans.append(span)
    a.steps.append(f"'{phrase}': {a.entity.name} with a related {table.name}.{column.name} the caller gives.")


def _resolve_name_lookup(a: Analysis, index: SchemaIndex) -> None:
    """'by first and last name': both of a person's names, each a required parameter."""
    span = a.phrases.name_lookup_span
    if span is None or a.entity is None:
        return
    names = a.entity.label_columns()
    if len(names) != 2:
        return
    phrase = a.requirement[span[0] : span[1]]
    for column in names:
        a.filters.append(Filter(a.entity.key, column.name, None, phrase=phrase, required=True))
    a.phrases.spans.append(span)
    a.steps.append(f"'{phrase}': {a.entity.name}.{names[0].name} and {names[1].name}, given by the caller.")


def _resolve_thresholds(a: Analysis, index: SchemaIndex) -> None:
    """'more than 20 orders' (a count per entity), 'priced above 50 dollars' (a comparison on a column)."""
    if a.entity is None:
        return
    for t in a.phrases.thresholds:
        counted = next((m for m in a.mentions if t.unit_span and m.offset == t.unit_span[0]), None)
        if counted is not None:
            table = index.tables[counted.best()[1]]
            if table is a.entity or a.counted is not None:
                continue
            far = None
            if index.up_path(table.key, a.entity.key) is None:
                bridge = bridge_to(index, a.entity, table)
                if bridge is None:
                    continue
                far, (table, key) = table, bridge
                a.counted_key = key.child_columns[0]
            # The verb that relates them ("placed", "wrote") is part of the phrase.
            first = _token_at(a, t.span[0])
            start = t.span[0]
            if (
                first
                and a.tokens[first - 1].lower not in STOPWORDS
                and not any(m.start <= first - 1 < m.end for m in a.mentions)
            ):
                start = a.tokens[first - 1].start
            end = a.tokens[counted.end - 1].end
            verb = counted.end + (counted.end < len(a.tokens) and a.tokens[counted.end].lower in BE_WORDS)
            if verb < len(a.tokens) and a.tokens[verb].lower in LOCATION_VERBS:
                end = a.tokens[verb].end  # "cities where more than one of our customers lives / is based"
            a.counted, a.group_entity = table, a.entity
            a.having.append(
                {
                    "op": t.op,
                    "value": int(t.value) if t.value == int(t.value) else t.value,
                    "phrase": a.requirement[start:end],
                }
            )
            a.phrases.spans.append((start, end))
            what = f"distinct {far.name} of {table.name}" if far is not None else f"{table.name} rows"
            a.steps.append(f"Count {what} per {singular(a.entity.name)}: {t.op} {t.value:g}.")
            continue
        numeric = [
            c
            for c in a.entity.columns.values()
            if c.is_numeric and not c.primary_key and c.name not in a.entity.fk_columns
        ]
        first = _token_at(a, t.span[0])
        before = [
            j
            for j in range((first or 0) - 1, max(-1, (first or 0) - 4), -1)
            if a.tokens[j].lower not in STOPWORDS and not a.phrases.explains(a.tokens[j].start, a.tokens[j].end)
        ]
        money = (
            (t.unit or "") in MONEY_UNITS
            or a.requirement[t.span[0] : t.span[1]].strip()[-1:] in "$€£"
            or any(ch in a.requirement[t.span[0] : t.span[1]] for ch in "$€£")
        )
        column, start = None, t.span[0]
        defined = _term_column_before(a, first, numeric)
        if defined is not None:
            column, start = defined
        for j in before[:1] if defined is None else []:
            hits = sorted(
                ((_word_hits_column(a.tokens[j].lower, c), c.name, c) for c in numeric), key=lambda h: (-h[0], h[1])
            )
            hits = [h for h in hits if h[0] >= 0.8]
            if hits and (len(hits) == 1 or hits[0][0] > hits[1][0]):
                column, start = hits[0][2], a.tokens[j].start
                _ask_if_another_column_is_named(a, index, t, j, column, _money_columns(a.entity) if money else numeric)
        end = t.unit_span[1] if t.unit_span and (t.unit or "") in MONEY_UNITS else t.span[1]
        if column is None and money:
            candidates = _money_columns(a.entity)
            if len(candidates) == 1:
                column = candidates[0]
            elif candidates and defined is None and before and before[0] == (first or 0) - 1:
                _ask_which_money_column(a, index, t, before[0], candidates)
        nearest = _nearest_word_before(a, first) if first else None
        if column is None and t.percent and nearest is not None:
            try:
                formula = percent_formula(a, index, a.entity, nearest, t.op, t.value, t.span[1])
            except FormulaQuestion as asked:
                question = question_which(
                    asked.phrase,
                    f"'{a.tokens[nearest].text}': how is it computed?",
                    "measure",
                    asked.options,
                    qid="formula",
                )
                raise PlanningError(str(asked), questions=[question]) from None
            if formula is not None:
                expression, first_column, value, start = formula
                a.filters.append(
                    Filter(
                        a.entity.key,
                        first_column,
                        value,
                        phrase=a.requirement[start : t.span[1]],
                        op=t.op,
                        fixed=True,
                        expression=expression,
                    )
                )
                a.needs_compiler.append(f"the comparison of {expression}")
                a.phrases.spans.append((start, t.span[1]))
                a.steps.append(f"'{a.requirement[start : t.span[1]]}': {expression} {t.op} {value:g}.")
                continue
        if column is None:
            continue
        end = _phrase_end_naming(a, end, column)
        value = int(t.value) if t.value == int(t.value) and column.json_type == "integer" else t.value
        if t.percent:  # 20% is 0.2 or 20, as the column holds it
            try:
                scaled = percent_value(a, index, a.entity, column, t.value, t.op, a.requirement[start:end])
            except UnitQuestion as asked:
                raise PlanningError(str(asked), questions=[asked.question]) from None
            if scaled is None:
                continue
            value = scaled
        a.filters.append(Filter(a.entity.key, column.name, value, phrase=a.requirement[start:end], op=t.op, fixed=True))
        a.needs_compiler.append(f"the comparison on {a.entity.name}.{column.name}")
        a.phrases.spans.append((start, end))
        a.steps.append(f"'{a.requirement[start:end]}': {a.entity.name}.{column.name} {t.op} {t.value:g}.")


def _resolve_repeats(a: Analysis, index: SchemaIndex) -> None:
    """'orders that were paid twice', 'customers who ordered more than once': the rows of the table the verb just
    before names, counted per entity along foreign keys, with a HAVING condition on the count.

    Anything between the verb and the count ("rented the same film more than once" counts per entity and
    film) is not this shape and is left unexplained. Rows that a status of their own could exclude (a failed
    payment) are asked about, unless the glossary defines the verb on that table.
    """
    if a.entity is None or a.counted is not None:
        return
    for r in a.phrases.repeats:
        first = _token_at(a, r.span[0])
        if not first:
            continue
        verb = first - 1
        token = a.tokens[verb]
        if token.lower in STOPWORDS or token.is_number:
            continue
        named = [m.best()[1] for m in a.mentions if m.start <= verb < m.end]
        if named and (len(named) > 1 or named[0] == a.entity.key or not a.tokens[verb].lower.endswith("ed")):
            continue  # a noun before the count ("the same film more than once") is another shape
        found = []
        for table in index.tables.values():
            if table is a.entity or not any(
                derives(token.lower, n) or word_score(token.lower, n) == 1.0 for n in table.tokens
            ):
                continue
            up = index.up_path(table.key, a.entity.key)
            if up:
                found.append((len(up), table.name, table))
        found.sort(key=lambda f: (f[0], f[1]))
        if not found:
            continue
        if len(found) > 1 and found[0][0] == found[1][0]:
            names = " or ".join(f[1] for f in found[:2])
            raise PlanningError(f"'{token.text}' could mean rows of {names}; name the one you mean")
        table = found[0][2]
        termed = a.phrases.explains(token.start, token.end) and any(
            s <= token.start and token.end <= e for _, (s, e) in a.terms
        )
        defined = any(
            m.get("kind") in ("value", "filter") and _term_key(index, m.get("object")) == table.key for m, _ in a.terms
        )
        statuses = [
            c
            for c in table.columns.values()
            if set(c.tokens) & STATUS_WORDS and len([v for v in c.known_values if isinstance(v, str)]) >= 2
        ]
        if statuses and not defined:
            raise PlanningError(
                f"'{token.text}' counts {table.name} rows, and {table.name}.{statuses[0].name} could leave some out "
                f"(one that failed or was cancelled may not count); say which count",
                questions=[
                    status_question(token.text, index, table, c, qid=f"statuses_{n + 1}")
                    for n, c in enumerate(statuses[:2])
                ],
            )
        start = r.span[0] if termed else token.start
        a.counted, a.group_entity = table, a.entity
        a.having.append({"op": r.op, "value": int(r.value), "phrase": a.requirement[start : r.span[1]]})
        a.phrases.spans.append((start, r.span[1]))
        a.steps.append(f"Count {table.name} rows per {singular(a.entity.name)}: {r.op} {r.value:g}.")
        return


COLUMN_COMPARATIVES = {
    "more than": "gt",
    "greater than": "gt",
    "higher than": "gt",
    "over": "gt",
    "above": "gt",
    "exceeding": "gt",
    "beyond": "gt",
    "less than": "lt",
    "lower than": "lt",
    "under": "lt",
    "below": "lt",
    "within": "lte",
}


def _comparable(column: Column, other: Column) -> bool:
    """Two columns whose values can be compared: numbers of the same kind (money with money), or dates."""
    if column.is_temporal or other.is_temporal:
        return column.is_temporal and other.is_temporal
    return (
        column.is_numeric and other.is_numeric and (column.json_type, column.format) == (other.json_type, other.format)
    )


def _resolve_column_comparisons(a: Analysis, index: SchemaIndex) -> None:
    """'over their credit limit': a column of the entity compared with another of the same row.

    The column compared is named by the word before the comparison ("a balance over their credit limit")
    or, when nothing names it, is the entity's only other column of the same kind; with several it is
    declined with their names, never guessed.
    """
    if a.entity is None:
        return
    lowered = a.requirement.lower()
    pattern = (
        r"\b(" + "|".join(sorted(COLUMN_COMPARATIVES, key=len, reverse=True)) + r")\s+(?:their|its|his|her|the)\s+"
    )
    for match in re.finditer(pattern, lowered):
        if a.phrases.explains(*match.span(1)):
            continue
        after = [i for i, t in enumerate(a.tokens) if t.start >= match.end()]
        target, last = None, None
        for width in (2, 1):
            words = [a.tokens[i].lower for i in after[:width]]
            if len(words) < width:
                continue
            hits = [c for c in a.entity.columns.values() if _column_score(words, c) >= 1.0]
            if len(hits) == 1 and (hits[0].is_numeric or hits[0].is_temporal) and not hits[0].primary_key:
                target, last = hits[0], after[width - 1]
                break
        if target is None:
            continue
        candidates = [
            c
            for c in a.entity.columns.values()
            if c is not target
            and not c.primary_key
            and c.name not in a.entity.fk_columns
            and not c.name.lower().endswith("_id")
            and _comparable(c, target)
        ]
        start = match.start()
        first = _token_at(a, match.start()) or 0
        column = None
        # "whose stock has fallen below their reorder level": the nearest word before that names a column.
        for j in range(first - 1, max(-1, first - 5), -1):
            token = a.tokens[j]
            if token.lower in STOPWORDS or a.phrases.explains(token.start, token.end):
                continue
            if any(m.start <= j < m.end for m in a.mentions):
                break
            named = [c for c in candidates if _word_hits_column(token.lower, c) >= 0.8]
            if len(named) == 1:
                column, start = named[0], token.start
                break
        if column is None:
            if len(candidates) != 1:
                names = ", ".join(f"{a.entity.name}.{c.name}" for c in candidates) or "no other column"
                said = a.requirement[match.start() : a.tokens[last].end]
                raise PlanningError(
                    f"'{said}' compares {target.name} with another column ({names}); say which one, "
                    f"for example '{candidates[0].tokens[-1] if candidates else 'the value'} {said}'"
                )
            column = candidates[0]
        end = a.tokens[last].end
        phrase = a.requirement[start:end]
        op = COLUMN_COMPARATIVES[match.group(1)]
        a.filters.append(Filter(a.entity.key, column.name, None, phrase=phrase, op=op, fixed=True, other=target.name))
        a.phrases.spans.append((start, end))
        a.mentioned_columns.update({(a.entity.key, column.name), (a.entity.key, target.name)})
        a.steps.append(f"'{phrase}': {a.entity.name}.{column.name} {op} {a.entity.name}.{target.name}.")


def _phrase_end_naming(a: Analysis, end: int, column: Column) -> int:
    """'cost more than 4 dollars to rent': a word just after the comparison that names its column belongs to it."""
    after = [t for t in a.tokens if t.start >= end][:2]
    after = after[1:] if after and after[0].lower in STOPWORDS else after[:1]
    if after and any(word_score(after[0].lower, n) == 1.0 or derives(after[0].lower, n) for n in column.tokens):
        return after[0].end
    return end


def _nearest_word_before(a: Analysis, first: int | None) -> int | None:
    """The token nearest before a comparison, past 'a', 'an', 'the' and 'of' ("a margin of below 30%")."""
    j = (first or 0) - 1
    while j > 0 and a.tokens[j].lower in ("of", "a", "an", "the"):
        j -= 1
    return j if j >= 0 else None


def _term_column_before(a: Analysis, first: int | None, numeric: list[Column]) -> tuple[Column, int] | None:
    """A glossary column term just before a comparison ("cost" defined as rental_rate): the column it compares."""
    if not first:
        return None
    j = first - 1
    while j > 0 and a.tokens[j].lower in ("of", "a", "an", "the"):
        j -= 1  # "a discount of at least 20%"
    start = a.tokens[j].start
    for mapping, (s, e) in a.terms:
        if mapping.get("kind") == "column" and s <= start < e:
            column = next((c for c in numeric if c.name == mapping.get("column")), None)
            if column is not None:
                return column, s
    return None


def _ask_which_money_column(a: Analysis, index: SchemaIndex, t, j: int, candidates: list[Column]) -> None:
    """'orders worth more than $1,000' where several money columns could be meant: ask which the word names."""
    word = a.tokens[j]
    if is_grammatical(word.lower) or _filler(word.lower) or any(m.start <= j < m.end for m in a.mentions):
        return
    phrase = a.requirement[word.start : t.span[1]]
    options = [
        (
            f"the column {a.entity.name}.{c.name}",
            {"term": word.text, "kind": "column", "object": _object_ref(index, a.entity.key), "column": c.name},
        )
        for c in candidates
    ]
    raise PlanningError(
        f"'{phrase}' may compare {', '.join(c.name for c in candidates)}",
        questions=[
            question_which(phrase, f"'{phrase}': which column is compared?", "column", options, qid="compared_column")
        ],
    )


def _ask_if_another_column_is_named(
    a: Analysis, index: SchemaIndex, t, j: int, column: Column, numeric: list[Column]
) -> None:
    """'cost more than 4 dollars to rent': when another word names another numeric column, ask which one compares."""
    others = []
    for k, token in enumerate(a.tokens):
        if k == j or token.lower in STOPWORDS or a.phrases.explains(token.start, token.end) or token.is_number:
            continue
        if t.span[0] <= token.start < t.span[1]:
            continue
        for c in numeric:
            if (
                c is not column
                and c not in others
                and (any(word_score(token.lower, n) == 1.0 or derives(token.lower, n) for n in c.tokens))
            ):
                others.append(c)
    if not others:
        return
    word = a.tokens[j].text
    phrase = a.requirement[a.tokens[j].start : t.span[1]]
    options = [
        (
            f"the column {a.entity.name}.{c.name}",
            {"term": word, "kind": "column", "object": _object_ref(index, a.entity.key), "column": c.name},
        )
        for c in [column, *others]
    ]
    raise PlanningError(
        f"'{phrase}' may compare {' or '.join(c.name for c in [column, *others])}",
        questions=[
            question_which(phrase, f"'{phrase}': which column is compared?", "column", options, qid="compared_column")
        ],
    )


def _resolve_recency(a: Analysis, index: SchemaIndex) -> None:
    """'the four most recent orders', 'latest': the entity's own date, newest first (N rows when a number is given)."""
    p = a.phrases
    if p.recency is None or a.entity is None or p.metric is not None or a.group_entity is not None:
        return
    column = date_column(a.entity, a)
    if column is None:
        raise PlanningError(f"{a.entity.name} has no date to tell which are the {p.recency_span and 'most recent'}")
    a.rank_column, a.recency = column, p.recency
    a.steps.append(f"Order {a.entity.name} by {column.name}, {'newest' if p.recency == 'desc' else 'oldest'} first.")


def _fk_to(index: SchemaIndex, child: Table, parent: Table) -> ForeignKey | None:
    for fk in child.foreign_keys:
        if fk.parent == parent.key:
            return fk
    return None


def _group_phrase(a: Analysis, mention: Mention) -> str:
    """'per product': the group marker and the words that name what is grouped."""
    start = a.phrases.group_starts.get(mention.offset, mention.offset)
    return a.requirement[start : a.tokens[mention.end - 1].end]


def _span_text(a: Analysis, mention: Mention) -> str:
    return " ".join(a.tokens[i].text for i in range(mention.start, mention.end))


def _resolve_activity(a: Analysis, index: SchemaIndex) -> bool:
    """Negated activity without a named table ("no activity", "inactive"): the entity's event-like child."""
    p = a.phrases
    if p.negation_at is None or a.entity is None:
        return False
    follows = a.requirement.lower()[p.negation_at : p.negation_at + 40]
    if not p.negation_implicit and not any(w in ACTIVITY_WORDS for w in re.findall(r"\w+", follows)[:3]):
        return False
    candidates = []
    for fk in index.children(a.entity.key):
        table = index.tables[fk.child]
        date = date_column(table, a)
        if date is None:
            continue
        score = max((1.0 if w in ACTIVITY_WORDS else 0.0) for w in table.tokens) + max(
            (word_score("activity", w) for w in table.tokens), default=0.0
        )
        candidates.append((score, table.name, table, fk, date))
    if not candidates:
        raise PlanningError(f"no table with a date and a foreign key to {a.entity.name} records its activity")
    candidates.sort(key=lambda c: (-c[0], c[1]))
    if candidates[0][0] == 0 and len(candidates) > 1:
        names = ", ".join(c[1] for c in candidates)
        raise PlanningError(f"'activity' could be any of {names}; name the table that records it")
    _, _, table, fk, date = candidates[0]
    a.activity = (table, [fk], date)
    a.steps.append(
        f"Activity of {a.entity.name} is recorded in {table.name}.{date.name} "
        f"(foreign key {', '.join(fk.child_columns)})."
    )
    return True


def _unset_date(a: Analysis, verb: int) -> Column | None:
    """'orders that haven't shipped yet': the entity's own date the verb names is empty (shipped_date IS NULL)."""
    p = a.phrases
    word = a.tokens[verb].lower
    columns = [
        c
        for c in a.entity.columns.values()
        if c.is_temporal and c.nullable and any(word_score(word, t) == 1.0 for t in c.tokens)
    ]
    if len(columns) != 1:
        return None
    end = verb + 1
    if end < len(a.tokens) and a.tokens[end].lower in ("yet", "so", "ever"):
        end += 1  # "so far" is not read
    start = p.negation_span[0] if p.negation_span else a.tokens[verb].start
    span = (start, a.tokens[end - 1].end)
    phrase = a.requirement[span[0] : span[1]]
    a.filters.append(Filter(a.entity.key, columns[0].name, None, phrase=phrase, op="is_null", fixed=True))
    a.phrases.spans.append(span)
    a.negated_column = True
    a.steps.append(f"'{phrase}': {a.entity.name}.{columns[0].name} is empty.")
    return columns[0]


NEGATION_AUXILIARIES = frozenset(["been", "be", "being", "has", "have", "had", "ever", "yet", "even", "once", "got"])


def _resolve_negated_verb(a: Analysis, index: SchemaIndex) -> bool:
    """'never been rented', 'nobody has rented', 'haven't ordered': no row of the table the verb names.

    The table is one whose name the verb derives (rented -> rentals), reached from the entity through
    foreign keys pointing at it (films <- copies <- rentals); two such tables equally near are asked about.
    """
    p = a.phrases
    if p.negation_implicit or any(m.role == "activity" for m in a.mentions):
        return False
    after = [i for i, t in enumerate(a.tokens) if t.start >= (p.negation_at or 0)]
    verb = None
    for i in after[:3]:
        token = a.tokens[i]
        if token.lower in NEGATION_AUXILIARIES:
            continue
        verb = i
        break
    if verb is None or any(m.start <= verb < m.end for m in a.mentions):
        return False
    word = a.tokens[verb].lower
    unset = _unset_date(a, verb)
    if unset is not None:
        return False
    found = []
    for table in index.tables.values():
        if table is a.entity or not any(derives(word, n) for n in table.tokens):
            continue
        up = index.up_path(table.key, a.entity.key)
        if up:
            found.append((len(up), table.name, table, list(reversed(up))))
    if not found:
        return False
    found.sort(key=lambda f: (f[0], f[1]))
    if len(found) > 1 and found[0][0] == found[1][0]:
        names = " or ".join(f[1] for f in found if f[0] == found[0][0])
        raise PlanningError(f"'{a.tokens[verb].text}' could mean rows of {names}; name the one you mean")
    (
        _,
        _,
        table,
        chain,
    ) = found[0]
    end = verb + 1
    if end < len(a.tokens) and a.tokens[end].lower in ("anything", "any", "something", "one"):
        end += 1  # "haven't rented anything"
    a.activity = (table, chain, date_column(table, a) if p.window is not None else None)
    a.activity_span = (p.negation_span[0] if p.negation_span else a.tokens[after[0]].start, a.tokens[end - 1].end)
    a.phrases.spans.append(a.activity_span)
    a.verb_phrases.setdefault(table.key, a.tokens[verb].text)
    a.steps.append(
        f"'{a.requirement[a.activity_span[0] : a.activity_span[1]]}': {a.entity.name} with no {table.name} row"
        + (f" (through {', '.join(index.tables[fk.child].name for fk in chain[:-1])})" if len(chain) > 1 else "")
        + "."
    )
    return True


def _check_ranked_rows(a: Analysis, index: SchemaIndex) -> None:
    """'Which shipper carried the most orders?': both nouns must be tables, the counted one reaching the ranked one."""
    ranked_at, counted_at = a.phrases.ranked_rows_at or (0, 0)
    ranked = next((m for m in a.mentions if m.start <= _token_at(a, ranked_at) < m.end), None)
    counted = next((m for m in a.mentions if m.offset == counted_at), None)
    if ranked is None or counted is None or ranked.best()[1] == counted.best()[1]:
        raise PlanningError("I could not tell which rows are counted for which thing; name both tables")
    if a.entity is None or a.entity.key != ranked.best()[1]:
        raise PlanningError("I could not tell which rows are counted for which thing; name both tables")
    if index.up_path(counted.best()[1], ranked.best()[1]) is None:
        raise PlanningError(
            f"{index.tables[counted.best()[1]].name} do not belong to {index.tables[ranked.best()[1]].name} "
            "along foreign keys, so they cannot be counted per one"
        )


def _resolve_ranked_verb(a: Analysis, index: SchemaIndex) -> None:
    """'Which film was rented the most?': count the rows of the table the verb names, reached along foreign keys."""
    word = a.phrases.rank_verb or ""
    found = []
    for table in index.tables.values():
        if table is a.entity or not any(derives(word, n) or word_score(word, n) == 1.0 for n in table.tokens):
            continue
        up = index.up_path(table.key, a.entity.key)
        if up:
            found.append((len(up), table.name, table))
    found.sort(key=lambda f: (f[0], f[1]))
    if not found or (len(found) > 1 and found[0][0] == found[1][0]):
        names = " or ".join(f[1] for f in found) or "no table"
        raise PlanningError(f"'{word}' could mean rows of {names}; name the one you mean")
    table = found[0][2]
    a.counted, a.group_entity = table, a.entity
    a.verb_phrases.setdefault(table.key, word)
    a.steps.append(f"'{word}': count {table.name} rows per {singular(a.entity.name)}.")


def _scope(a: Analysis, index: SchemaIndex) -> list[Table]:
    keys: list[Key] = []
    # With no table named, the tables the glossary's terms are defined on ("revenue" on orders) come first.
    defined = [_term_key(index, m.get("object")) for m, _ in a.terms] if not a.mentions else []
    for key in [a.entity.key if a.entity else None] + [m.best()[1] for m in a.mentions] + defined:
        if key and key not in keys:
            keys.append(key)
    for key in list(keys):
        for other, _ in index.neighbors(key):
            if other not in keys:
                keys.append(other)
    if not keys:
        keys = sorted(index.tables)
    return [index.tables[k] for k in keys]


def _is_flag(column: Column) -> bool:
    """A yes/no column: boolean, or whole numbers whose known values are only 0 and 1 (both seen)."""
    if column.json_type == "boolean":
        return True
    values = {v for v in column.known_values if not isinstance(v, bool)}
    return column.json_type == "integer" and values == {0, 1}


def _flag_true(column: Column) -> bool | int:
    return True if column.json_type == "boolean" else 1


def _flag_before_entity(a: Analysis, i: int, table: Table, column: Column) -> bool:
    """'active customers': the word is the whole name of a yes/no column of the entity, right before its name."""
    if a.entity is None or table.key != a.entity.key or not _is_flag(column) or column.tokens != (a.tokens[i].lower,):
        return False
    return any(m.start == i + 1 and m.candidates and m.best()[1] == a.entity.key for m in a.mentions)


def _column_score(words: list[str], column: Column) -> float:
    name = list(column.tokens)
    if len(words) == len(name):
        scores = [word_score(w, n) for w, n in zip(words, name, strict=True)]
        if len(scores) > 1 and all(x == 1.0 for x in scores[:-1]) and scores[-1] == 0.8:
            return 0.9  # "order lines" for order_details: the head a synonym, the words before exact
        return min(scores) if all(scores) else 0.0
    if len(words) == 1 and len(name) > 1 and any(variants(words[0]) & variants(n) for n in name[-1:]):
        return 0.6
    return 0.0


def _resolve_values_and_columns(a: Analysis, index: SchemaIndex) -> None:
    mentioned = {j for m in a.mentions for j in range(m.start, m.end)}
    mentioned |= {i - 1 for i in a.qualified}  # the table word of "product category"
    content = [i for i in _content_tokens(a) if i not in mentioned]
    scope = _scope(a, index)
    entity_key = a.entity.key if a.entity else None
    group_offsets = {offset for offset, _ in a.phrases.group_words}
    used: set[int] = set()

    def column_candidates(words: list[str]) -> list[tuple[float, Table, Column]]:
        out = []
        for rank, table in enumerate(scope):
            for column in table.columns.values():
                score = _column_score(words, column)
                if score >= 0.6:
                    bonus = 0.2 if table.key == entity_key else 0.1 if rank < 3 else 0.0
                    out.append((round(score + bonus, 3), table, column))
        out.sort(key=lambda item: (-item[0], item[1].name, item[2].name))
        return out

    # 1. Values that appear among a column's known values (enum or samples); two words may be one value
    #    ("in transit" is in_transit).
    reachable_tables = (
        [t for t in scope if t.key == entity_key or any(fk.parent == t.key for fk in a.entity.foreign_keys)]
        if a.entity is not None
        else scope
    )
    for i in range(len(a.tokens) - 1):
        pair = a.tokens[i : i + 2]
        if any(j in mentioned or j in used for j in (i, i + 1)) or a.phrases.explains(pair[1].start, pair[1].end):
            continue
        joined = {f"{pair[0].lower}{sep}{pair[1].lower}" for sep in ("_", " ", "-")}
        hits = [
            (0 if table.key == entity_key else 1, len(column.known_values), table.name, column.name, table, column, v)
            for table in reachable_tables
            for column in table.columns.values()
            for v in column.known_values
            if isinstance(v, str) and v.lower() in joined
        ]
        if hits:
            hits.sort(key=lambda h: h[:4])
            *_, table, column, value = hits[0]
            a.filters.append(Filter(table.key, column.name, value, phrase=a.text(i, i + 1)))
            used.update({i, i + 1})
            a.steps.append(f"'{a.text(i, i + 1)}' is a value of {table.name}.{column.name}: filter on it.")
    for i, token in enumerate(a.tokens):
        if i in mentioned or i in used or a.phrases.explains(token.start, token.end):
            continue
        if token.lower in STOPWORDS and not token.quoted and not (token.text.isupper() and len(token.text) > 1):
            continue  # "US" and "IT" are values, "us" and "it" are not
        hits = []
        # A value filters the entity or a table it belongs to; a value found only elsewhere is not a filter here.
        reachable = (
            [t for t in scope if t.key == entity_key or any(fk.parent == t.key for fk in a.entity.foreign_keys)]
            if a.entity is not None
            else scope
        )
        for table in reachable:
            for column in table.columns.values():
                for value in column.known_values:
                    if isinstance(value, str) and value.lower() == token.lower:
                        # Same value in several columns: the entity's first, then the coarser category.
                        rank = (0 if table.key == entity_key else 1, len(column.known_values), table.name, column.name)
                        hits.append((rank, table, column, value))
        if not hits and "-" in token.lower:
            # "high-priority": a value joined to the name of its own column by a hyphen.
            value_part, _, column_part = token.lower.partition("-")
            for table in reachable:
                for column in table.columns.values():
                    if _column_score([column_part], column) < 1.0:
                        continue
                    for value in column.known_values:
                        if isinstance(value, str) and value.lower() == value_part:
                            rank = (
                                0 if table.key == entity_key else 1,
                                len(column.known_values),
                                table.name,
                                column.name,
                            )
                            hits.append((rank, table, column, value))
        if hits:
            hits.sort(key=lambda h: h[0])
            _, table, column, value = hits[0]
            # "status shipped", "high priority", "the Electronics category": the column's name beside its value.
            first, last = i, i
            for j in (i - 1, i + 1):
                if 0 <= j < len(a.tokens) and j not in mentioned and _column_score([a.tokens[j].lower], column) >= 1.0:
                    first, last = min(first, j), max(last, j)
                    used.add(j)
            a.filters.append(Filter(table.key, column.name, value, phrase=a.text(first, last)))
            used.add(i)
            a.steps.append(f"'{token.text}' is a value of {table.name}.{column.name}: filter on it.")
    # 2. Column words: group-by targets, "<column> <value>", "<value> <column>", lookups, parent columns.
    for i in content:
        if i in used:
            continue
        token = a.tokens[i]
        candidates = []
        if i + 1 in content and i + 1 not in used:
            candidates = [c for c in column_candidates([token.lower, a.tokens[i + 1].lower]) if c[0] >= 1.0]
            if candidates:
                used.update({i, i + 1})  # a two-word column name ("event type")
                i += 1
        grouped = token.start in group_offsets
        if i in a.qualified and token.lower in NAME_WORDS and index.tables[a.qualified[i]].label_columns():
            # "employee name": the owner's naming columns (a person's first and last name).
            owner = index.tables[a.qualified[i]]
            for column in owner.label_columns():
                a.mentioned_columns.add((owner.key, column.name))
                a.column_phrases[(owner.key, column.name)] = a.text(i - 1, i)
            if a.entity is not None and owner.key != a.entity.key:
                fk = next((fk for fk in a.entity.foreign_keys if fk.parent == owner.key), None)
                if fk is not None and all(p[0] != fk for p in a.parents):
                    a.parents.append((fk, [c.name for c in owner.label_columns()]))
            used.add(i)
            continue
        if i in a.qualified:
            owner = index.tables[a.qualified[i]]
            candidates = sorted(
                ((_column_score([token.lower], c), owner, c) for c in owner.columns.values()),
                key=lambda item: (-item[0], item[2].name),
            )[:1]
            grouped = grouped or a.tokens[i - 1].start in group_offsets
        if not candidates:
            candidates = column_candidates([token.lower])
        if not candidates:
            continue
        _score, table, column = candidates[0]
        if any(f.table == table.key and f.column == column.name for f in a.filters):
            used.add(i)  # "status shipped": the value already chose this column
            continue
        if grouped:
            if column.is_numeric and (a.metric is None or a.metric.word == token.lower):
                continue  # "by revenue" ranks; it does not group
            a.group_columns.append((table, column))
            start = a.phrases.group_starts.get(token.start)
            if start is None and i in a.qualified:
                start = a.phrases.group_starts.get(a.tokens[i - 1].start)
            a.column_phrases[(table.key, column.name)] = a.requirement[
                (start if start is not None else token.start) : a.tokens[i].end
            ]
            used.add(i)
            a.steps.append(f"Group by {table.name}.{column.name} ('{token.text}').")
            continue
        if (a.phrases.lookup_word and token.lower == a.phrases.lookup_word and column.primary_key) or (
            a.phrases.lookup_word == token.lower and a.entity is not None and table.key == a.entity.key
        ):
            continue  # resolved below
        nxt = a.tokens[i + 1] if i + 1 < len(a.tokens) else None
        prev = a.tokens[i - 1] if i > 0 else None
        if column.is_string and nxt is not None and nxt.lower in ("is", "=", "of", "equals") and i + 2 < len(a.tokens):
            nxt = a.tokens[i + 2]
        # "status shipped", "city 'Leeds'": a word beside a column name may be its value. Known values
        # were matched above, so a column with known values does not take a word that is none of them;
        # without known values, a quoted or capitalised word is taken and a plain word is confirmed first.
        neighbour = None
        if (
            column.is_string
            and nxt is not None
            and (nxt.lower not in STOPWORDS or nxt.quoted)
            and not any(m.start <= a.tokens.index(nxt) < m.end for m in a.mentions)
            and not a.phrases.explains(nxt.start, nxt.end)
        ):
            neighbour = (nxt, a.text(i, a.tokens.index(nxt)))
        elif (
            column.is_string
            and prev is not None
            and a.tokens.index(prev) in content
            and a.tokens.index(prev) not in used
            and not column_candidates([prev.lower])
        ):
            neighbour = (prev, a.text(a.tokens.index(prev), i))
        if neighbour is not None and not column.known_values:
            word, phrase = neighbour
            if word.quoted or word.text[:1].isupper() or word.is_number:
                a.filters.append(Filter(table.key, column.name, word.text, phrase=phrase))
                a.steps.append(f"Filter {table.name}.{column.name} = '{word.text}' (named in the requirement).")
            else:
                a.confirms.append((table, column, word.text, phrase))
            used.update({i, a.tokens.index(word)})
            continue
        if _flag_before_entity(a, i, table, column):
            # "active customers": the entity's yes/no column named by the word before it, set
            a.filters.append(Filter(table.key, column.name, _flag_true(column), phrase=token.text))
            used.add(i)
            a.steps.append(
                f"'{token.text}' is the yes/no column {table.name}.{column.name}: only rows where it is set."
            )
            continue
        a.mentioned_columns.add((table.key, column.name))
        a.column_phrases[(table.key, column.name)] = a.text(i - 1, i) if i in a.qualified else a.text(i, i)
        used.add(i)
        if a.entity is not None and table.key != a.entity.key:
            fk = next((fk for fk in a.entity.foreign_keys if fk.parent == table.key), None)
            if fk is not None:
                entry = next((p for p in a.parents if p[0] == fk), None)
                if entry is None:
                    a.parents.append((fk, [column.name]))
                else:
                    entry[1].append(column.name)
    # 3. Proper nouns after "in"/"from" with no known value: a location column of the entity, flagged as a guess.
    for i in content:
        if i in used:
            continue
        token = a.tokens[i]
        prev = a.tokens[i - 1].lower if i > 0 else ""
        if prev in ("in", "from", "at") and (token.text[:1].isupper() or token.quoted) and a.entity is not None:
            for table in [a.entity, *[index.tables[fk.parent] for fk in a.entity.foreign_keys]]:
                column = next((table.columns[n] for n in LOCATION_WORDS if n in table.columns), None)
                if column is not None and column.is_string:
                    a.filters.append(Filter(table.key, column.name, token.text, guessed=True, phrase=a.text(i - 1, i)))
                    used.add(i)
                    a.confidence -= 0.15
                    a.steps.append(f"'{token.text}' reads as a place: guessed filter on {table.name}.{column.name}.")
                    break
    # 4. Lookup by key ("by id", "with id 42", or a number right after the entity: "order 42").
    if not a.phrases.lookup_word and a.entity is not None and a.entity.primary_key:
        first = next((m for m in a.mentions if m.role == "entity"), None)
        after = a.tokens[first.end] if first is not None and first.end < len(a.tokens) else None
        if after is not None and after.is_number and not a.phrases.explains(after.start, after.end):
            a.phrases.lookup_word, a.phrases.lookup_value = "id", after.text
            a.lookup_phrase = a.text(first.start, first.end)
            used.add(first.end)
    if a.phrases.lookup_word and a.entity is not None:
        word = a.phrases.lookup_word
        column = None
        qualifier = a.phrases.lookup_qualifier
        named = next(
            (
                c
                for c in a.entity.columns.values()
                if qualifier
                and len(c.tokens) == 2
                and word_score(qualifier, c.tokens[0]) == 1.0
                and word_score(word, c.tokens[1]) == 1.0
            ),
            None,
        )
        if named is not None:
            column = named  # "by their order number": the column order_number
        elif qualifier and not any(word_score(qualifier, t) == 1.0 for t in a.entity.tokens):
            column = None  # "by phone number" is not the key of the entity
        elif word in ("id", "key", "number") and a.entity.primary_key:
            column = a.entity.columns[a.entity.primary_key[0]]
        else:
            column = next((c for c in a.entity.columns.values() if c.name.lower() == word), None)
        if column is not None and (column.primary_key or a.phrases.lookup_value or word in ("id", "key", "code")):
            a.lookup = column
            value = a.phrases.lookup_value
            if value is None and column.known_values:
                value = column.known_values[0]
            a.lookup_default = _typed(value if value is not None else 1, column)
            a.steps.append(f"Look up one {singular(a.entity.name)} by {column.name}.")
    # A word that is neither explained nor ordinary filler may be a filter the planner did not find:
    # designing without it would silently answer another question.
    explained = used | mentioned
    leftover = [a.tokens[i] for i in content if i not in explained]
    # Words of column names as written: "opened" (opened_at) does not explain "open", a value of a status.
    column_words = {t for table in scope for c in table.columns.values() for t in c.tokens}
    joined = [index.tables[fk.parent] for fk, _ in a.parents] + [
        index.tables[fk.parent] for chain in a.chains for fk in chain
    ]
    for token in leftover:
        # "supplied from": the suppliers the entity is joined to; "rented": its rentals.
        table = next((t for t in joined if any(derives(token.lower, n) for n in t.tokens)), None)
        if table is not None and table.key not in a.verb_phrases:
            a.verb_phrases[table.key] = token.text
            explained.add(a.tokens.index(token))
    leftover = [a.tokens[i] for i in content if i not in explained]
    unknown = [t.text for t in leftover if not _filler(t.lower) and not (variants(t.lower) & column_words)]
    # Personal data the Role cannot see (its column is hidden from this schema) is left out, with a note.
    hidden = [w for w in unknown if variants(w.lower()) & (SENSITIVE_WORDS | SECRET_WORDS)]
    if hidden:
        a.steps.append(
            f"Left out {', '.join(repr(w) for w in hidden)}: no column this Role may read holds it, "
            "and personal data stays hidden."
        )
    a.unknown_words = [w for w in unknown if w not in hidden]
    a.confidence -= 0.03 * len(leftover)


def _merge_values_of_one_column(a: Analysis) -> None:
    """'Gold and platinum accounts': values of one column said together are one list, never two equalities.

    A row holds one value of a column, so two equalities on it would select nothing; values apart
    from each other ("gold accounts of platinum customers") are declined rather than guessed.
    """
    groups: dict[tuple[Key, str], list[Filter]] = {}
    for f in a.filters:
        if f.op == "eq" and not f.fixed and not f.required and f.value is not None and f.other is None:
            groups.setdefault((f.table, f.column), []).append(f)
    lowered = a.requirement.lower()
    for (table, column), same in groups.items():
        if len(same) < 2:
            continue
        spans = []
        for f in same:
            at = lowered.find(f.phrase.lower())
            if at < 0:
                break
            spans.append((at, at + len(f.phrase), f))
        spans.sort(key=lambda item: item[0])
        between = [lowered[e1:s2] for (_, e1, _), (s2, _, _) in itertools.pairwise(spans)]
        if len(spans) != len(same) or not all(re.fullmatch(r"\s*(?:,\s*)?(?:and|or)?\s*", gap) for gap in between):
            names = " and ".join(f"'{f.phrase}'" for f in same)
            raise PlanningError(f"{names} are values of {table[1]}.{column}, which a row has only one of")
        phrase = a.requirement[spans[0][0] : spans[-1][1]]
        values = [f.value for _, _, f in spans]
        merged = Filter(table, column, None, param=column.lower(), phrase=phrase, op="in", values=values, fixed=True)
        a.filters = [f for f in a.filters if f not in same]
        a.filters.append(merged)
        a.steps.append(f"'{phrase}': {table[1]}.{column} is one of {', '.join(repr(v) for v in merged.values)}.")


def _name_parameters(a: Analysis, index: SchemaIndex) -> None:
    """Parameter names of the filters: the column name, unique; values typed like their column."""
    taken: set[str] = set()
    for f in [*a.filters, *(f for _, f in a.related_given)]:
        name = f.param or f.column.lower()
        if name in taken:
            name = f"{singular(f.table[1])}_{name}"
        taken.add(name)
        f.param = name
        column = index.tables[f.table].columns[f.column]
        f.value = _typed(f.value, column)


def _filler(word: str) -> bool:
    return (
        word in FILLER_WORDS
        or word in STOPWORDS
        or word in MONEY_WORDS
        or word in ACTIVITY_WORDS
        or any(v in ("day", "week", "month", "quarter", "year", "time", "date") for v in variants(word))
    )


def _typed(value: Any, column: Column) -> Any:
    if column.json_type == "integer":
        if isinstance(value, float) and not value.is_integer():
            return value  # 1.5 minutes is not 1: an integer column compared with a fraction keeps it
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    if column.json_type == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return value


MEASURE_MODIFIERS = frozenset(
    [
        "discount",
        "tax",
        "shipping",
        "freight",
        "fee",
        "fees",
        "refund",
        "refunded",
        "cost",
        "balance",
        "credit",
        "limit",
    ]
)


def _word_hits_column(word: str, column: Column) -> float:
    """How well one requirement word names a column: the whole name, its head word, or another of its words."""
    tokens = list(column.tokens)
    if len(tokens) == 1:
        return word_score(word, tokens[0])
    head = word_score(word, tokens[-1])
    if head:
        return 0.8 * head
    return 0.6 * max((word_score(word, t) for t in tokens), default=0.0)


def _metric_words(metric: Metric, index: SchemaIndex) -> tuple[list[str], set[Key]]:
    """The words that name the measure, and the tables a word names instead ("order total": orders, "total")."""
    words, hinted = [], set()
    for word in (metric.word, metric.next_word):
        if not word or word in STOPWORDS:
            continue
        tables = [t.key for t in index.tables.values() if _table_score([word], t) >= 0.9]
        if tables and not any(
            _word_hits_column(word, c) >= 0.8 for t in index.tables.values() for c in t.columns.values() if c.is_numeric
        ):
            hinted.update(tables)
            continue
        words.append(word)
    return words, hinted


def _measure_candidates(a: Analysis, index: SchemaIndex, metric: Metric) -> list[tuple[float, Table, str, list[str]]]:
    words, hinted = _metric_words(metric, index)
    money = metric.money or any(w in MONEY_WORDS for w in words)
    out = []
    for table in index.tables.values():
        numeric = [
            c
            for c in table.columns.values()
            if c.is_numeric
            and not c.primary_key
            and c.name not in table.fk_columns
            and c.name.lower() not in a.avoid_columns
            and not c.name.lower().endswith("_id")
        ]
        quantity = next((c for c in numeric if set(c.tokens) & QUANTITY_WORDS), None)
        bonus = 0.3 if table.key in hinted else 0.0
        for column in numeric:
            tokens = set(column.tokens)
            modified = bool(tokens & MEASURE_MODIFIERS)
            quality = 0.0
            if money:
                quality = max(
                    (MEASURE_NAME_QUALITY.get(w, 0.0) for t in column.tokens for w in variants(t)), default=0.0
                )
                if quality and tokens & {"price", "cost"} and not modified:
                    if quantity is not None and quantity is not column:
                        out.append((0.9 + bonus, table, "product", [column.name, quantity.name]))
                    quality = 0.5
            for word in words:
                if word in MONEY_WORDS and money:
                    continue
                quality = max(quality, _word_hits_column(word, column))
            if not quality:
                continue
            if modified and not any(w in tokens for w in words):
                quality -= 0.5  # "discount_amount" is an amount, but not what "revenue" or "amount" means
            out.append((round(quality + bonus, 3), table, "column", [column.name]))
    return out


def _safe_path(index: SchemaIndex, start: Key, goal: Key) -> list[ForeignKey] | None:
    """The FK chain from a fact to a table it may be grouped or filtered by without multiplying its rows.

    Every step must go from a child to its parent (many-to-one); a step from a parent to its
    children would repeat the fact's value once per child row (fan-out).
    """
    chain = index.path(start, goal)
    if chain is None:
        return None
    node = start
    for fk in chain:
        if fk.child != node:
            return None
        node = fk.parent
    return chain


def _rebase_groups(a: Analysis, fact: Table) -> list[tuple[Table, Column]]:
    """Group columns moved onto the fact when it has a column of the same name (a view that carries it)."""
    out = []
    for table, column in a.group_columns:
        own = fact.columns.get(column.name)
        out.append((fact, own) if own is not None else (table, column))
    return out


def _resolve_aggregate(a: Analysis, index: SchemaIndex) -> None:
    p = a.phrases
    metric = a.metric = p.metric
    if a.group_entity is None and p.top_n is not None and a.entity is not None:
        a.group_entity = a.entity
    if metric is None and p.top_n is not None and p.rank_word and a.entity is not None:
        column = next((c for c in a.entity.columns.values() if c.is_numeric and _column_score([p.rank_word], c)), None)
        if column is not None:
            a.rank_column = column
            a.group_entity = None
            a.steps.append(f"Rank {a.entity.name} by {column.name}.")
            return
        metric = a.metric = Metric(func="sum", word=p.rank_word, money=False)
    if metric is None and a.term_measure is not None:
        mapping, _phrase = a.term_measure
        metric = a.metric = Metric(func=mapping.get("func") or "count", word=mapping.get("term"))
    if metric is None:
        metric = a.metric = Metric(func="count", word=None)
    needs_date = bool(p.grain or p.window)
    if metric.func == "count":
        fact = a.counted or (a.entity if (a.entity is not None and a.entity is not a.group_entity) else None)
        if fact is None and a.group_entity is not None and a.mentions:
            fact = a.group_entity
            others = [index.tables[m.best()[1]] for m in a.mentions if index.tables[m.best()[1]] is not a.group_entity]
            if others:
                fact = others[0]
        anchors = [t for t, _ in a.group_columns] + ([a.group_entity] if a.group_entity else [])
        if fact is None and anchors:
            fact = anchors[0]
        if fact is None:
            raise PlanningError("it is not clear what to count")
        a.fact = fact
        a.group_columns = _rebase_groups(a, fact)
        a.steps.append(f"Count rows of {fact.name}.")
    elif a.duration is not None and a.entity is not None:
        start, end, _unit, _phrase = a.duration
        a.fact = a.entity
        a.measure = ("duration", [start.name, end.name])
        a.group_columns = _rebase_groups(a, a.entity)
    elif a.term_measure is not None:
        mapping, phrase = a.term_measure
        key = _term_key(index, mapping.get("object"))
        table = index.tables.get(key) if key else None
        columns = [c for c in (mapping.get("column"), mapping.get("times")) if c]
        if mapping.get("expression"):
            try:
                columns = arithmetic_columns(str(mapping["expression"]))
            except ExpressionError:
                raise PlanningError(
                    f"the glossary defines '{phrase}' with an expression that is not arithmetic"
                ) from None
        if table is None or not columns or any(c not in table.columns for c in columns):
            raise PlanningError(f"the glossary defines '{phrase}' with a table or column this Role cannot read")
        metric.func = mapping.get("func") or metric.func
        a.fact = table
        a.measure = ("product" if len(columns) > 1 else "column", columns)
        if mapping.get("expression"):
            a.measure = ("expression", columns)
            a.measure_expression = arithmetic_normalize(str(mapping["expression"]))
        a.group_columns = _rebase_groups(a, table)
        # A measure's answer may come in parts: the column, then which statuses count (filter mappings of the term).
        # Each condition is on its own mapping's table (the statuses of orders for a sum of order lines).
        conditions = [(key, c) for c in mapping.get("filters") or []]
        for other, _span in a.terms:
            if other is not mapping and other.get("kind") == "filter" and other.get("term") == mapping.get("term"):
                owner = _term_key(index, other.get("object")) or key
                conditions += [(owner, c) for c in other.get("filters") or []]
        for owner, condition in conditions:
            column = condition.get("column")
            holder = index.tables.get(owner)
            if holder is None or column not in holder.columns:
                raise PlanningError(f"the glossary defines '{phrase}' with {column}, which this Role cannot read")
            values = list(
                condition.get("values") or ([condition["value"]] if condition.get("value") is not None else [])
            )
            a.filters.append(
                Filter(owner, column, values[0] if values else None, phrase=phrase, op="in", values=values, fixed=True)
            )
        _name_parameters(a, index)
        a.steps.append(f"'{phrase}' is defined in the glossary: {metric.func.upper()}({', '.join(columns)}).")
    else:
        best = None
        for quality, table, kind, columns in _measure_candidates(a, index, metric):
            groups = _rebase_groups(a, table)
            anchors = [t for t, _ in groups] + ([a.group_entity] if a.group_entity else [])
            anchors += [index.tables[f.table] for f in a.filters if f.table != table.key]
            score = quality
            for anchor in anchors:
                chain = _safe_path(index, table.key, anchor.key)
                if chain is None:
                    score = -1
                    break
                score -= 0.15 * len(chain)
            if score > 0 and needs_date:
                dated = fact_date(a, index, table)
                if dated is None:
                    score = -1
                elif dated[0] is not table:
                    score -= 0.1
            if score > 0 and a.entity is not None and table.key == a.entity.key and a.entity is not a.group_entity:
                score += 0.1
            candidate = (round(score, 3), table.name, kind, columns, table)
            if best is None or candidate[0] > best[0]:
                best = candidate
        if best is None or best[0] <= 0:
            raise PlanningError(
                f"no numeric column measures '{metric.word}' at the grain the requirement groups or filters by"
            )
        _, _, kind, columns, table = best
        if metric.money:
            _ask_business_measure(a, index, metric, table, columns)
        a.fact = table
        a.measure = (kind, columns)
        a.group_columns = _rebase_groups(a, table)
        label = " * ".join(f"{table.name}.{c}" for c in columns)
        a.steps.append(f"Measure '{metric.word}' as {metric.func.upper()}({label}).")
    for table in [t for t, _ in a.group_columns] + ([a.group_entity] if a.group_entity else []):
        if index.path(a.fact.key, table.key) is None:
            raise PlanningError(f"{a.fact.name} and {table.name} are not joined by foreign keys")
    if a.group_entity is not None and a.group_entity is not a.fact:
        a.steps.append(f"One row per {singular(a.group_entity.name)}.")
    if p.grain:
        a.steps.append(f"One row per {p.grain}.")
    if p.top_n is None or a.group_entity is None or a.group_entity is not a.fact or a.group_columns:
        a.shape.append("aggregate")


STATUS_WORDS = frozenset({"status", "state", "stage"})
MONEY_UNITS = frozenset({"dollar", "dollars", "euro", "euros", "pound", "pounds", "usd", "eur", "gbp", "bucks"})


def _status_columns(index: SchemaIndex, table: Table) -> list[tuple[Table, Column]]:
    """Columns of a fact (or of the header it belongs to) whose values could exclude rows from a business total."""
    out = []
    for owner in [table, *(index.tables[fk.parent] for fk in table.foreign_keys)]:
        for column in owner.columns.values():
            values = [v for v in column.known_values if isinstance(v, str)]
            if set(column.tokens) & STATUS_WORDS and len(values) >= 2:
                out.append((owner, column))
    return out


def _money_columns(table: Table) -> list[Column]:
    return [
        c
        for c in table.columns.values()
        if c.is_numeric
        and not c.primary_key
        and c.name not in table.fk_columns
        and not c.name.lower().endswith("_id")
        and (c.format == "decimal" or c.json_type == "number")
    ]


def _ask_business_measure(a: Analysis, index: SchemaIndex, metric: Metric, table: Table, columns: list[str]) -> None:
    """'revenue', 'sales', 'spend' are business definitions: a view that carries it, or an unambiguous schema
    (one money column, no status that could exclude rows); otherwise ask which column and which statuses count."""
    if table.kind == "view":
        a.steps.append(f"'{metric.word}' is defined by the view {table.name}.")
        return
    statuses = _status_columns(index, table)
    money = _money_columns(table)
    if not statuses and len(money) <= 1:
        return
    word = metric.word or metric.phrase
    questions = []
    if len(money) > 1:
        object_name = next((m["object"] for _, m in measure_choices(word, index, [table])), table.name)
        options = expression_choices(word, index, table, object_name=object_name) + measure_choices(
            word, index, [table]
        )
        questions.append(
            question_which(
                word, f"'{word}': the sum of which column?", "measure", options, qid="measure", allow_other=True
            )
        )
    for n, (owner, status) in enumerate(statuses[:2]):
        questions.append(status_question(word, index, owner, status, qid=f"statuses_{n + 1}"))
    raise PlanningError(
        f"'{word}' is a business definition this database does not spell out "
        f"({', '.join(f'{o.name}.{c.name}' for o, c in statuses) or 'several money columns'} could change it)",
        questions=questions,
    )


def _window_before_negation(a: Analysis) -> bool:
    """Whether the window is said before the negation, so it dates the entity ("joined this year but never ...")."""
    window, negation = a.phrases.window, a.phrases.negation_span
    return window is not None and negation is not None and window.span[1] <= negation[0]


def _resolve_window_column(a: Analysis, index: SchemaIndex) -> None:
    if not _window_applies(a):
        return
    table = a.fact or a.entity
    if table is None:
        raise PlanningError("a time window was given but no table was named")
    found = fact_date(a, index, table)
    if found is None:
        for child in a.children:
            child_table = index.tables[child.child]
            column = date_column(child_table, a)
            if column is not None:
                found = (child_table, column)
                break
    if found is None:
        raise PlanningError(f"{table.name} has no date or timestamp column for '{a.phrases.window.phrase}'")
    ranked = date_candidates(found[0], a)
    unsettled = _dates_too_close(found, ranked)
    if found[0].key in a.term_dates:
        found = (found[0], a.term_dates[found[0].key])
    elif unsettled and found[0].key in a.row_dates:
        found = (found[0], a.row_dates[found[0].key])  # answered before: 'which date says when payments happen?'
    elif unsettled:
        # Nothing in the requirement names the date, and two say about as well when a row happened.
        names = " or ".join(f"{found[0].name}.{c.name}" for _, c in ranked[:2])
        why = (
            f"'{a.phrases.window.phrase}' could be by {names}; say which date is meant "
            f"(for example '{ranked[1][1].tokens[0]} {a.phrases.window.phrase}')"
        )
        # A business term of these rows ('refunds') can say when they happen; the answer goes to the glossary.
        term = next(
            (
                (m, span)
                for m, span in a.terms
                if m.get("kind") in DATED_TERM_KINDS and _term_key(index, m.get("object")) == found[0].key
            ),
            None,
        )
        if term is None:
            # Only the table's own word can hold the answer: any other would lose the word's meaning.
            words = (_span_text(a, m) for m in a.mentions if m.best()[1] == found[0].key)
            word = next((w for w in words if names_table(w, found[0])), "")
            if not word:
                raise PlanningError(why)
            question = _window_date_question(a, index, word, word.lower(), [found[0]], qid="row_date")
            raise PlanningError(why, questions=[question] if question is not None else [])
        phrase = a.requirement[term[1][0] : term[1][1]]
        question = _window_date_question(a, index, phrase, term[0]["term"], [found[0]], qid="window_date")
        raise PlanningError(why, questions=[question] if question is not None else [])
    a.window_column = found
    # "paid last month": the word naming the window's date is the window's, not a value of another column.
    named = [t for t in a.tokens if t.end <= a.phrases.window.span[0]][-1:]
    if named and variants(named[0].lower) & {v for t in found[1].tokens for v in variants(t)}:
        a.filters = [f for f in a.filters if f.fixed or f.phrase.lower() != named[0].lower]
    if a.fact is None and found[0] is not table and not any(fk.child == found[0].key for fk in a.children):
        fk = next((fk for fk in table.foreign_keys if fk.parent == found[0].key), None)
        if fk is None:
            raise PlanningError(f"the date of '{a.phrases.window.phrase}' is not on {table.name} or a table it joins")
        if all(p[0] != fk for p in a.parents):
            a.parents.append((fk, []))
    a.steps.append(f"'{a.phrases.window.phrase}' applies to {found[0].name}.{found[1].name}.")


def _objects(a: Analysis, index: SchemaIndex) -> list[Key]:
    keys: list[Key] = []

    def add(key: Key | None) -> None:
        if key is not None and key not in keys:
            keys.append(key)

    base = a.fact or a.entity
    if base is None:
        raise PlanningError("no table or view in the schema matches the requirement's words")
    add(base.key)
    if a.fact is not None:
        targets = [t.key for t, _ in a.group_columns] + ([a.group_entity.key] if a.group_entity else [])
        targets += [f.table for f in a.filters]
        if a.window_column is not None:
            targets.append(a.window_column[0].key)
        for target in targets:
            for fk in index.path(a.fact.key, target) or []:
                add(fk.child)
                add(fk.parent)
    else:
        for fk, _ in a.parents:
            add(fk.parent)
        for chain in a.chains:
            for fk in chain:
                add(fk.parent)
        chained = {fk.parent for chain in a.chains for fk in chain}
        for f in a.filters:
            if f.table != base.key and f.table not in chained:
                fk = next((fk for fk in base.foreign_keys if fk.parent == f.table), None)
                if fk is None:
                    raise PlanningError(
                        f"the filter on {f.table[1]}.{f.column} is on a table that no foreign key joins to the rest"
                    )
                if all(p[0] != fk for p in a.parents):
                    a.parents.append((fk, []))
                add(fk.parent)
        for fk in a.children:
            add(fk.child)
    if a.activity is not None:
        for fk in a.activity[1]:
            add(fk.child)
    return keys


# Memories ---------------------------------------------------------------------------------------


_JSON_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.S)


def _memory_content(memory: dict) -> dict:
    """A memory's content as a dict: JSON, or prose followed by a fenced ```json pattern block."""
    content = memory.get("content")
    if isinstance(content, dict):
        return content
    if isinstance(content, str):
        try:
            parsed = json.loads(content)
        except ValueError:
            block = _JSON_BLOCK.search(content)
            if block:
                try:
                    parsed = json.loads(block.group(1))
                except ValueError:
                    return {"text": content}
                return {**parsed, "text": content[: block.start()].strip()} if isinstance(parsed, dict) else {}
            return {"text": content}
        return parsed if isinstance(parsed, dict) else {"text": content}
    return {}


def _needed_params(a: Analysis) -> dict[str, Any]:
    params: dict[str, Any] = {f.param: f.value for f in a.filters}
    window = a.phrases.window
    if window is not None:
        if window.kind in ("rolling", "before"):
            params[f"{window.unit}s"] = window.amount
        if window.since:
            params["since"] = window.since
        if window.until:
            params["until"] = window.until
    if a.lookup is not None:
        params[_lookup_param(a)] = a.lookup_default
    if a.phrases.top_n is not None:
        params[ROW_LIMIT_PARAM] = a.phrases.top_n
    return params


def _lookup_param(a: Analysis) -> str:
    return a.lookup.name.lower() if a.lookup is not None else "id"


def _reuse_memory(a: Analysis, index: SchemaIndex, memories: list[dict], dialect: str) -> Plan | None:
    wanted_objects = {f"{s}.{n}".lower() for s, n in a.objects}
    needed = _needed_params(a)
    for memory in memories:
        if str(memory.get("type", "")).upper() not in REUSABLE_TYPES:
            continue
        content = _memory_content(memory)
        sql = content.get("sql")
        parameters = content.get("parameters") or {}
        properties = dict(parameters.get("properties") or {})
        if not sql or sorted(content.get("shape") or []) != sorted(a.shape):
            continue
        if {_object_name(o, index) for o in content.get("objects") or []} != wanted_objects:
            continue
        if normalize_dialect(content.get("dialect") or dialect) != dialect or not sql_parses(sql, dialect):
            continue
        if not set(bind_names(sql)) <= set(properties) or not set(needed) <= set(properties):
            continue
        lowered_sql = sql.lower()
        if any(re.search(rf"\b{re.escape(c)}\b", lowered_sql) for c in a.avoid_columns):
            continue
        if not _same_question(a, index, sql, needed):
            continue
        for table in sql_tables(sql, dialect):
            if not any(t.name == table[1] for t in index.tables.values()):
                break
        else:
            changed = []
            for name, value in needed.items():
                spec = dict(properties[name])
                if spec.get("default") != value:
                    changed.append(f"{name}={value!r}")
                spec["default"] = value
                if "enum" in spec and value not in spec["enum"]:
                    spec.pop("enum")
                properties[name] = spec
            # The analysis is summarised by its first step; the rest of the design comes from the memory.
            rationale = a.steps[:1]
            rationale.append(
                f"Reused the design of memory {memory.get('id', '?')} ('{content.get('requirement', '')}'): same "
                f"shape and objects, so joins, filters and SQL need no new design"
                + (f"; new defaults {', '.join(changed)}." if changed else ".")
            )
            previous_steps = int(content.get("steps") or len(rationale) + 3)
            columns = tuple(content.get("response_columns") or ())
            return Plan(
                requirement=a.requirement,
                shape=tuple(a.shape),
                objects=tuple(a.objects),
                method="GET",
                path=_slug(a.requirement),
                description=_description(a),
                parameters={**parameters, "properties": properties},
                sql=sql,
                response_columns=columns,
                rationale=tuple(rationale),
                confidence=round(max(0.1, min(0.99, a.confidence + 0.03)), 2),
                dialect=dialect,
                steps=len(rationale),
                steps_saved=max(1, previous_steps - len(rationale)),
                reused_memory_id=str(memory.get("id")) if memory.get("id") is not None else None,
                avoided=tuple(a.avoided_notes),
            )
    return None


def _same_question(a: Analysis, index: SchemaIndex, sql: str, needed: dict[str, Any]) -> bool:
    """Whether a remembered SQL answers this requirement up to parameter values.

    Same shape and objects are not enough: the filters (its binds), the measure and its function,
    and the grouping must be the same too ("orders per status" is not "average order total by channel").
    """
    if set(bind_names(sql)) - {ROW_LIMIT_PARAM} != set(needed) - {ROW_LIMIT_PARAM}:
        return False
    lowered = sql.lower()
    wanted: set[str] = {c.name.lower() for _, c in a.group_columns}
    if a.measure is not None:
        wanted |= {c.lower() for c in a.measure[1]}
    if a.window_column is not None:
        wanted.add(a.window_column[1].name.lower())
    if any(not re.search(rf"\b{re.escape(c)}\b", lowered) for c in wanted):
        return False
    functions = {f for f in ("count", "sum", "avg", "min", "max") if re.search(rf"\b{f}\s*\(", lowered)}
    mine = {a.metric.func} if a.fact is not None and a.metric is not None else set()
    if functions != mine:
        return False
    grouped = re.search(r"\bgroup by\b(.*?)(?:\border by\b|\blimit\b|$)", lowered, re.S)
    theirs = set(re.findall(r"\.\"?(\w+)", grouped.group(1))) if grouped else set()
    ours = {c.name.lower() for _, c in a.group_columns}
    if a.group_entity is not None:
        ours |= {c.lower() for c in a.group_entity.primary_key}
        ours |= {c.name.lower() for c in a.group_entity.label_columns()}
    if a.phrases.grain and a.fact is not None:
        dated = a.window_column or fact_date(a, index, a.fact)
        if dated is not None:
            ours.add(dated[1].name.lower())
    return theirs <= ours


def _object_name(value: Any, index: SchemaIndex) -> str:
    if isinstance(value, (list, tuple)):
        return f"{value[0]}.{value[1]}".lower()
    text = str(value)
    if "." not in text:
        text = f"{index.default_schema}.{text}"
    return text.lower()


# Design ------------------------------------------------------------------------------------------


class _Query:
    def __init__(self, index: SchemaIndex, dialect: str) -> None:
        self.index = index
        self.dialect = dialect
        self.aliases: dict[Key, str] = {}
        self.from_: str = ""
        self.joins: list[str] = []
        self.select: list[tuple[str, str, str, str | None]] = []  # expression, alias, json_type, format
        self.where: list[str] = []
        self.group_by: list[str] = []
        self.having: list[str] = []
        self.order_by: list[str] = []
        self.limit: str | None = None

    def q(self, name: str) -> str:
        return quote(name, self.dialect)

    def table_ref(self, table: Table) -> str:
        if table.schema and table.schema != self.index.default_schema:
            return f"{self.q(table.schema)}.{self.q(table.name)}"
        return self.q(table.name)

    def alias(self, table: Table) -> str:
        if table.key in self.aliases:
            return self.aliases[table.key]
        base = "".join(w[0] for w in table.tokens) or "t"
        if base in RESERVED_ALIASES:
            base += "_"
        alias, n = base, 2
        while alias in self.aliases.values():
            alias, n = f"{base}{n}", n + 1
        self.aliases[table.key] = alias
        return alias

    def col(self, table: Table, column: str) -> str:
        return f"{self.alias(table)}.{self.q(column)}"

    def start(self, table: Table) -> None:
        self.from_ = f"{self.table_ref(table)} {self.alias(table)}"
        self.alias(table)

    def join_fk(self, fk: ForeignKey, *, to: Key, left: bool = False) -> None:
        if to in self.aliases and any(f" {self.aliases[to]} ON" in j for j in self.joins):
            return
        table = self.index.tables[to]
        other = self.index.tables[fk.parent if to == fk.child else fk.child]
        alias = self.alias(table)
        conditions = " AND ".join(
            f"{self.col(self.index.tables[fk.child], c)} = {self.col(self.index.tables[fk.parent], p)}"
            for c, p in zip(fk.child_columns, fk.parent_columns, strict=True)
        )
        del other
        self.joins.append(f"{'LEFT JOIN' if left else 'JOIN'} {self.table_ref(table)} {alias} ON {conditions}")

    def join_path(self, start: Key, goal: Key) -> None:
        node = start
        for fk in self.index.path(start, goal) or []:
            nxt = fk.parent if fk.child == node else fk.child
            self.join_fk(fk, to=nxt)
            node = nxt

    def render(self) -> str:
        lines = [
            "SELECT "
            + ",\n       ".join(
                expr if expr.split(".")[-1] == self.q(alias) else f"{expr} AS {self.q(alias)}"
                for expr, alias, _, _ in self.select
            )
        ]
        lines.append(f"FROM {self.from_}")
        lines.extend(self.joins)
        if self.where:
            lines.append("WHERE " + "\n  AND ".join(self.where))
        if self.group_by:
            lines.append("GROUP BY " + ", ".join(self.group_by))
        if self.having:
            lines.append("HAVING " + " AND ".join(self.having))
        if self.order_by:
            lines.append("ORDER BY " + ", ".join(self.order_by))
        if self.limit:
            lines.append(f"LIMIT {self.limit}")
        return "\n".join(lines)


RESERVED_ALIASES = frozenset({"as", "at", "by", "do", "if", "in", "is", "no", "of", "on", "or", "to"})


COMPARISON_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _design(a: Analysis, index: SchemaIndex, dialect: str) -> Plan:
    q = _Query(index, dialect)
    params: dict[str, dict] = {}
    steps: list[str] = []
    selected_sensitive: list[str] = []
    labels: dict[Any, Any] = {}

    def add_param(name: str, spec: dict) -> None:
        params[name] = spec

    def column_param(f: Filter) -> dict:
        column = index.tables[f.table].columns[f.column]
        spec: dict[str, Any] = {
            "type": column.json_type,
            "default": f.value,
            "description": f"Only rows whose {f.table[1]}.{f.column} equals this value.",
        }
        if column.format:
            spec["format"] = column.format
        values = column.enum or ([v for v in column.samples if isinstance(v, str)] if len(column.samples) <= 20 else [])
        if values and f.value in values:
            spec["enum"] = sorted(set(values), key=str)
        return spec

    def entity_columns(
        table: Table, *, prefix: str = "", skip: set[str] | frozenset = frozenset(), into: list | None = None
    ) -> None:
        # A list shows the row's first LIST_COLUMNS columns and every column the request names or uses.
        used = {f.column for f in a.filters if f.table == table.key}
        used |= {c.name for c in (a.rank_column,) if c is not None and table is a.entity}
        used |= {c.name for t, c in ([a.window_column] if a.window_column else []) if t is table}
        shown = 0
        for column in table.columns.values():
            if column.name in skip:
                continue
            named = (table.key, column.name) in a.mentioned_columns
            if shown >= LIST_COLUMNS and not named and column.name not in used:
                continue
            if not (column.is_secret or (column.is_sensitive and not named)):
                shown += 1
            if column.name.lower() in a.avoid_columns:
                continue
            if column.is_secret or (column.is_sensitive and not named):
                selected_sensitive.append(f"{table.name}.{column.name}")
                continue
            alias = f"{prefix}{column.name}" if prefix else column.name
            if any(alias == s[1] for s in q.select):
                alias = f"{singular(table.name)}_{column.name}"
            q.select.append((q.col(table, column.name), alias, column.json_type, column.format))
            if into is not None:
                into.append((column.name, alias))

    def window_conditions(expr: str, window: TimeWindow) -> list[str]:
        if window.kind in ("rolling", "before"):
            name = f"{window.unit}s"
            add_param(
                name,
                {
                    "type": "integer",
                    "default": window.amount,
                    "minimum": 1,
                    "maximum": 36500,
                    "description": f"How many {window.unit}s back from today."
                    if window.kind == "rolling"
                    else f"Only rows older than this many {window.unit}s.",
                },
            )
            operator = ">=" if window.kind == "rolling" else "<"
            return [f"{expr} {operator} {rolling_cutoff(window.unit, name, dialect)}"]
        if window.kind == "period":
            start = period_start(window.period, dialect, previous=window.previous)
            if window.previous:
                return [f"{expr} >= {start}", f"{expr} < {period_start(window.period, dialect)}"]
            return [f"{expr} >= {start}"]
        out = []
        if window.given:
            add_param(
                SINCE_PARAM,
                {"type": "string", "pattern": DATE_PATTERN, "description": "Earliest date included (YYYY-MM-DD)."},
            )
            out.append(f"{expr} >= {date_param(SINCE_PARAM, dialect)}")
        if window.since:
            add_param(
                "since",
                {
                    "type": "string",
                    "pattern": DATE_PATTERN,
                    "default": window.since,
                    "description": "Earliest date included (YYYY-MM-DD).",
                },
            )
            out.append(f"{expr} >= {date_param('since', dialect)}")
        if window.until:
            add_param(
                "until",
                {
                    "type": "string",
                    "pattern": DATE_PATTERN,
                    "default": window.until,
                    "description": "First date excluded (YYYY-MM-DD).",
                },
            )
            out.append(f"{expr} < {date_param('until', dialect)}")
        return out

    def where_filter(f: Filter) -> str:
        expr = q.col(index.tables[f.table], f.column)
        if f.expression is not None:
            expr = expression_sql(f.expression, index.tables[f.table], q.col, dialect)
        if f.other is not None:
            return f"{expr} {COMPARISON_SQL.get(f.op, '=')} {q.col(index.tables[f.table], f.other)}"
        if f.fixed and f.op in COMPARISON_SQL:
            return f"{expr} {COMPARISON_SQL[f.op]} :{f.param}_1"
        if f.fixed and f.op in ("is_null", "not_null"):
            return f"{expr} IS {'NOT ' if f.op == 'not_null' else ''}NULL"
        if f.fixed:
            names = [f":{f.param}_{n}" for n in range(1, len(f.values or [f.value]) + 1)]
            return f"{expr} {'NOT IN' if f.op == 'not_in' else 'IN'} ({', '.join(names)})"
        return f"{expr} = :{f.param}"

    def bounded(default: int) -> None:
        strict = any(t[1].lower() in a.strict_tables for t in a.objects)
        maximum = STRICT_MAX_LIMIT if strict else MAX_LIMIT
        default = min(default, maximum)
        if strict:
            default = min(default, STRICT_LIMIT)
            steps.append(
                f"An anti-pattern warns against unbounded reads of "
                f"{', '.join(sorted(a.strict_tables))}: limit defaults to {default}, at most {maximum}."
            )
        add_param(
            ROW_LIMIT_PARAM,
            {
                "type": "integer",
                "default": default,
                "minimum": 1,
                "maximum": maximum,
                "description": "Most rows returned.",
            },
        )
        q.limit = f":{ROW_LIMIT_PARAM}"

    for f in [*a.filters, *a.share_filters]:
        if f.fixed and f.op in ("is_null", "not_null"):
            continue  # a condition with no value
        if f.fixed:
            for n, value in enumerate(f.values or [f.value], start=1):
                spec = {**column_param(f), "default": value, "enum": [value]}
                if f.expression is not None:
                    spec["type"] = "number"  # a ratio of integer columns is no integer
                spec["description"] = f"Fixed by the definition of '{f.phrase}'."
                add_param(f"{f.param}_{n}", spec)
        else:
            add_param(f.param, column_param(f))

    if a.fact is not None and a.rank_column is None:
        fact = a.fact
        q.start(fact)
        targets = [t.key for t, _ in a.group_columns] + ([a.group_entity.key] if a.group_entity else [])
        targets += [f.table for f in a.filters]
        dated = a.window_column or (fact_date(a, index, fact) if a.phrases.grain else None)
        if dated is not None:
            targets.append(dated[0].key)
        for target in targets:
            q.join_path(fact.key, target)
        group_exprs: list[str] = []
        if a.phrases.grain:
            if dated is None:
                raise PlanningError(f"{fact.name} has no date column to group by {a.phrases.grain}")
            date_table, date = dated
            bucket = time_bucket(q.col(date_table, date.name), a.phrases.grain, dialect)
            q.select.append((bucket, a.phrases.grain, "string", None))
            group_exprs.append(bucket)
            steps.append(f"Bucket {date_table.name}.{date.name} by {a.phrases.grain}.")
        if a.group_entity is not None:
            g = a.group_entity
            keys = list(g.primary_key) or [next(iter(g.columns))]
            names = [c.name for c in g.label_columns() if c.name not in keys]
            if a.window_column is not None and a.window_column[0] is g and a.window_column[1].name not in names:
                names.append(a.window_column[1].name)  # "orders from the last 7 days ...": when each one was
            for name in keys + names:
                column = g.columns[name]
                prefix = singular(g.name)
                alias = name if g is fact or name.lower().startswith(prefix) else f"{prefix}_{name}"
                q.select.append((q.col(g, name), alias, column.json_type, column.format))
                labels.setdefault("group_entity", []).append((name, alias))
                group_exprs.append(q.col(g, name))
        for table, column in a.group_columns:
            q.select.append((q.col(table, column.name), column.name, column.json_type, column.format))
            group_exprs.append(q.col(table, column.name))
        metric = a.metric or Metric(func="count", word=None)
        if metric.func == "count" and a.share_filters:
            counted = " AND ".join(where_filter(f) for f in a.share_filters)
            expr = f"100.0 * SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) / COUNT(*)"
            name, json_type = "share", "number"
        elif metric.func == "count" and a.counted_key is not None:
            far = next(fk.parent for fk in fact.foreign_keys if fk.child_columns == (a.counted_key,))
            expr = f"COUNT(DISTINCT {q.col(fact, a.counted_key)})"
            name, json_type = f"{singular(index.tables[far].name)}_count", "integer"
        elif metric.func == "count":
            expr, name, json_type = "COUNT(*)", f"{singular(fact.name)}_count", "integer"
        else:
            _kind, columns = a.measure or ("column", [])
            inner = " * ".join(q.col(fact, c) for c in columns)
            name = "_".join(metric.word.split()) if metric.money else f"{metric.func}_{columns[0]}"
            if metric.func == "sum" and not metric.money:
                name = f"total_{columns[0]}"
            if metric.func == "avg":
                name = f"average_{columns[0]}"
            if _kind == "expression" and a.measure_expression:
                inner = expression_sql(a.measure_expression, fact, q.col, dialect)
            if _kind == "duration" and a.duration is not None:
                unit = a.duration[2]
                dates = all(fact.columns[c].format == "date" for c in columns)
                inner = duration_sql(q.col(fact, columns[0]), q.col(fact, columns[1]), unit, dialect, dates=dates)
                prefix = {"avg": "average", "sum": "total"}.get(metric.func, metric.func)
                name = f"{prefix}_{unit}s"
            expr, json_type = f"{metric.func.upper()}({inner})", "number"
            if metric.func in ("min", "max") and _kind not in ("duration", "expression"):
                json_type = fact.columns[columns[0]].json_type
        q.select.append((expr, name, json_type, None))
        labels["measure"] = name
        q.group_by = group_exprs
        for h in a.having:
            q.having.append(f"{expr} {COMPARISON_SQL.get(h['op'], '=')} {h['value']}")
        for f in a.filters:
            q.where.append(where_filter(f))
        if a.window_column is not None:
            q.where.extend(window_conditions(q.col(*_table_and_name(a.window_column)), a.phrases.window))
        if a.phrases.top_n is not None:
            direction = "ASC" if a.phrases.top_ascending else "DESC"
            q.order_by = [f"{q.q(name)} {direction}", *group_exprs]
            steps.append(f"Rank by {name} {direction.lower()} and keep the top {a.phrases.top_n}.")
            bounded(a.phrases.top_n)
        elif a.measure_order is not None:
            q.order_by = [f"{q.q(name)} {a.measure_order[0].upper()}", *group_exprs]
            bounded(DEFAULT_LIMIT)
        else:
            q.order_by = list(group_exprs) or []
            bounded(DEFAULT_LIMIT)
        steps.append(f"Aggregate {expr} as {name}" + (f" grouped by {', '.join(group_exprs)}." if group_exprs else "."))
    else:
        entity = a.entity
        assert entity is not None
        q.start(entity)
        entity_columns(entity, into=labels.setdefault("entity", []))
        for fk, columns in a.parents:
            parent = index.tables[fk.parent]
            nullable = any(entity.columns[c].nullable for c in fk.child_columns)
            q.join_fk(fk, to=parent.key, left=nullable)
            wanted = columns or [c.name for c in parent.label_columns()]
            if any(w in {c.name for c in parent.label_columns()} for w in columns) and len(columns) == 1:
                # "customer name": a person's name is their first and last name together.
                wanted = [c.name for c in parent.label_columns()]
            for name in wanted:
                column = parent.columns[name]
                if name.lower() in a.avoid_columns:
                    continue
                q.select.append(
                    (q.col(parent, name), f"{singular(parent.name)}_{name}", column.json_type, column.format)
                )
                labels.setdefault(("parent", parent.key), []).append((name, f"{singular(parent.name)}_{name}"))
            if wanted:
                steps.append(f"Join {parent.name} on {', '.join(fk.child_columns)} for {', '.join(wanted)}.")
        for chain in a.chains:
            for fk in chain:
                q.join_fk(fk, to=fk.parent)
        for fk in a.children:
            child = index.tables[fk.child]
            q.join_fk(fk, to=child.key, left=True)
            entity_columns(
                child, prefix="", skip=set(fk.child_columns), into=labels.setdefault(("child", child.key), [])
            )
            steps.append(
                f"Left-join {child.name} on {', '.join(fk.child_columns)} (one row per {singular(child.name)})."
            )
        for f in a.filters:
            q.where.append(where_filter(f))
        if a.lookup is not None:
            name = _lookup_param(a)
            labels["lookup_param"] = name
            spec: dict[str, Any] = {
                "type": a.lookup.json_type,
                "default": a.lookup_default,
                "description": f"The {singular(entity.name)}'s {a.lookup.name}.",
            }
            add_param(name, spec)
            q.where.append(f"{q.col(entity, a.lookup.name)} = :{name}")
        if a.window_column is not None:
            table, column = a.window_column
            q.where.extend(window_conditions(q.col(table, column.name), a.phrases.window))
        for chain, f in a.related_given:
            add_param(f.param or f.column, {"type": index.tables[f.table].columns[f.column].json_type})
            node, parts, conditions = entity.key, [], []
            for fk in chain:
                nxt = fk.parent if fk.child == node else fk.child
                alias = f"x{len(parts) + 1}"
                parts.append(f"{q.table_ref(index.tables[nxt])} {alias}")
                here = f"x{len(parts) - 1}" if len(parts) > 1 else q.alias(entity)
                for c, p_ in zip(fk.child_columns, fk.parent_columns, strict=True):
                    left, right = (c, p_) if nxt == fk.child else (p_, c)
                    conditions.append(f"{alias}.{q.q(left)} = {here}.{q.q(right)}")
                node = nxt
            conditions.append(f"x{len(parts)}.{q.q(f.column)} = :{f.param or f.column}")
            q.where.append(f"EXISTS (SELECT 1 FROM {', '.join(parts)} WHERE {' AND '.join(conditions)})")
        if a.activity is not None:
            act, chain, date = a.activity
            parts, conditions, here = [], [], q.alias(entity)
            for n, fk in enumerate(chain):
                table = index.tables[fk.child]
                alias = q.alias(act) if n == len(chain) - 1 else f"n{n + 1}"
                parts.append(f"{q.table_ref(table)} {alias}")
                conditions += [
                    f"{alias}.{q.q(c)} = {here}.{q.q(p)}"
                    for c, p in zip(fk.child_columns, fk.parent_columns, strict=True)
                ]
                here = alias
            if a.phrases.window is not None and date is not None:
                conditions += window_conditions(f"{here}.{q.q(date.name)}", a.phrases.window)
            q.where.append(f"NOT EXISTS (SELECT 1 FROM {', '.join(parts)} WHERE " + " AND ".join(conditions) + ")")
            steps.append(
                f"Keep {entity.name} with no {act.name} row"
                + (f" in '{a.phrases.window.phrase}'" if a.phrases.window else "")
                + " (NOT EXISTS anti-join)."
            )
        if a.rank_column is not None:
            ascending = a.recency == "asc" if a.recency else a.phrases.top_ascending
            direction = "ASC" if ascending else "DESC"
            q.order_by = [f"{q.col(entity, a.rank_column.name)} {direction}"]
        q.order_by += [q.col(entity, c) for c in entity.primary_key]
        for fk in a.children:
            q.order_by += [q.col(index.tables[fk.child], c) for c in index.tables[fk.child].primary_key]
        if a.lookup is not None and a.lookup.primary_key and not a.children:
            q.limit = "1"
        elif a.rank_column is not None and (a.recency is None or a.phrases.top_n is not None):
            bounded(a.phrases.top_n or 10)
        else:
            bounded(DEFAULT_LIMIT)
        if selected_sensitive:
            steps.append(f"Left out sensitive columns not asked for: {', '.join(selected_sensitive)}.")
    if a.avoided_notes:
        steps.append(f"Steered away from {'; '.join(a.avoided_notes)}.")
    sql = q.render()
    if not sql_parses(sql, dialect):
        raise PlanningError("the query for this request could not be written; it is beyond what I can build")
    steps.append(
        f"Composed one read-only SELECT for {dialect} with bound parameters "
        f"{', '.join(':' + n for n in bind_names(sql)) or '(none)'}."
    )
    rationale = a.steps + steps
    parameters = {"type": "object", "properties": params, "required": []}

    interpretation = interpretation_from_analysis(a, index, labels=labels)
    columns = tuple(
        {"name": alias, "json_type": json_type, **({"format": fmt} if fmt else {})}
        for _, alias, json_type, fmt in q.select
    )
    return Plan(
        requirement=a.requirement,
        shape=tuple(a.shape),
        objects=tuple(a.objects),
        method="GET",
        path=_slug(a.requirement),
        description=_description(a),
        parameters=parameters,
        sql=sql,
        response_columns=columns,
        rationale=tuple(rationale),
        confidence=round(max(0.1, min(0.99, a.confidence)), 2),
        dialect=dialect,
        steps=len(rationale),
        avoided=tuple(a.avoided_notes),
        interpretation=interpretation,
    )


def _relation_plan(requirement: str, index: SchemaIndex, schema: dict, dialect: str) -> Plan | None:
    """The Plan of the design relations.relation_reading reads, if any: its SQL is the platform's compilation."""
    reading = relation_reading(requirement=requirement, index=index, schema=schema, dialect=dialect)
    if reading is None:
        return None
    interpretation = reading.interpretation
    compiled = interpretation_compile(interpretation, catalog=Catalog(schema), dialect=dialect)
    rationale = (
        f"Read the requirement as a {' + '.join(reading.shape)} request over "
        f"{', '.join(f'{s}.{n}' for s, n in reading.objects)}.",
        *reading.steps,
        f"Composed one read-only SELECT for {dialect} with bound parameters "
        f"{', '.join(':' + n for n in bind_names(compiled.sql)) or '(none)'}.",
    )
    return _compiled_plan(
        requirement, interpretation, compiled, shape=reading.shape, objects=reading.objects, rationale=rationale,
        confidence=0.85, dialect=dialect,
    )  # fmt: skip


def _compiled_plan(
    requirement: str, interpretation, compiled, *, shape, objects, rationale: tuple, confidence: float, dialect: str
) -> Plan:
    """The Plan whose SQL, parameters and columns are the platform's compilation of `interpretation`."""
    return Plan(
        requirement=requirement,
        shape=shape,
        objects=objects,
        method="GET",
        path=_slug(requirement),
        description=_sentence(requirement),
        parameters=compiled.parameters,
        sql=compiled.sql,
        response_columns=tuple(compiled.columns),
        rationale=rationale,
        confidence=confidence,
        dialect=dialect,
        steps=len(rationale),
        interpretation=interpretation,
    )


def _table_and_name(pair: tuple[Table, Column]) -> tuple[Table, str]:
    return pair[0], pair[1].name


def _slug(requirement: str) -> str:
    words = [
        w
        for w in re.findall(r"[a-z0-9]+", requirement.lower())
        if w not in {"the", "a", "an", "its", "their", "all", "please", "show", "me", "list", "get", "give", "return"}
    ]
    return "-".join(words[:8]) or "query"


def _description(a: Analysis) -> str:
    return _sentence(a.requirement)


def _sentence(requirement: str) -> str:
    text = requirement.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


__all__ = ["Plan", "PlanningError", "plan_requirement"]
