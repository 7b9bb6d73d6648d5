"""The glossary of business terms of a Service: what a word of the business means in its database.

A term is a BUSINESS_RULE memory of the Service, tagged "glossary", whose content is JSON:

    {"term": "high-priority", "mapping": {"kind": "filter", "object": "tickets", "column": "priority",
                                          "op": "eq", "value": "high"}, "note": "..."}

Mapping kinds:
- entity:  the term names a table or view ({"object"});
- column:  the term names a column ({"object", "column", "unit"?}), e.g. 'live' -> customers.city; "unit" says what
           a number in it counts (film.length in "minute", a discount as a "fraction" of 1 or in "percent");
- value:   the term is a value of a column ({"object", "column", "value"}), e.g. 'gold' -> tier = 'gold';
- filter:  the term is a condition ({"object", "column", "op", "value" | "values"}, or {"object", "filters":
           [conditions]}, where an empty list says no condition applies: "every status counts");
- measure: the term is an aggregate ({"func", "object", "column", "times"?, "expression"?, "filters"?: [conditions]}),
           e.g. 'revenue' -> sum of orders.total_amount over orders whose status is not cancelled/refunded, or the
           sum of an arithmetic of one table's columns ("expression": "unit_price * quantity * (1 - discount)",
           learning.arithmetic; "column" is then its first column); 'margin' -> "(price - cost) / price" is a
           measure of each row (func "avg" of one row is the row's own value);
- definition: the term is a judgement about rows, defined by their related activity ({"shape", "object",
           "column", "func"}): "lapsed" (none in the requirement's last N units but some before, the latest
           `column` before the cut-off), "dropped" (fewer in the last N units than in the N before), e.g.
           'churn risk' -> lapsed activity_events by occurred_at;
- formula: the term is a number computed from each row's columns ({"object", "column", "expression"}), e.g.
           'margin' -> "(price - cost) / price" of products ("column" is the expression's first column);
- ignore:  the term changes nothing in this database (e.g. 'please', 'our').

A term may have one mapping of each kind: 'revenue' is a measure (the sum of which column) and a
filter (which statuses count).

Answers to a run's questions fill it (the next requirement that uses the term asks nothing), and
owners and admins edit it on the glossary page and in admin.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from learning.arithmetic import ExpressionError, arithmetic_columns, arithmetic_normalize
from learning.grammar import is_grammatical
from learning.models import AgentMemory, MemoryType
from learning.services import LearningInputError, memory_create, memory_embed
from roles.selectors import membership_get

GLOSSARY_TAG = "glossary"
MAX_TERM_CHARS = 80
Scalar = str | int | float | bool
UnitName = Literal[
    "second", "minute", "hour", "day", "gram", "kilogram", "pound", "ounce", "millimetre", "centimetre", "metre",
    "kilometre", "inch", "foot", "mile", "fraction", "percent",
]  # fmt: skip


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str = Field(min_length=1, max_length=128)
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "is_null", "not_null", "contains"] = "eq"
    value: Scalar | None = None
    values: list[Scalar] | None = None


class Mapping(BaseModel):
    """What a term means; see the module docstring."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["entity", "column", "value", "filter", "measure", "formula", "definition", "ignore"]
    shape: Literal["lapsed", "dropped"] | None = Field(default=None, description="a definition's shape")
    object: str | None = Field(default=None, max_length=255)
    column: str | None = Field(default=None, max_length=128)
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "is_null", "not_null", "contains"] | None = None
    value: Scalar | None = None
    values: list[Scalar] | None = None
    func: Literal["count", "count_distinct", "sum", "avg", "min", "max"] | None = None
    times: str | None = Field(default=None, max_length=128)
    filters: list[Condition] = Field(default_factory=list)
    expression: str | None = Field(default=None, max_length=300, description="an arithmetic of the object's columns")
    unit: UnitName | None = Field(default=None, description="what a number in the column counts")
    text: str = Field(default="", max_length=500, description="the user's own words, when no choice fitted")

    @model_validator(mode="after")
    def _complete(self) -> Mapping:
        need = {
            "entity": ("object",),
            "column": ("object", "column"),
            "value": ("object", "column"),
            "filter": ("object",),
            "measure": ("func",),
            "definition": ("shape", "object", "column"),
            "formula": ("object", "column", "expression"),
            "ignore": (),
        }[self.kind]
        missing = [name for name in need if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} mapping needs {', '.join(missing)}")
        if self.kind == "value" and self.value is None and not self.values:
            raise ValueError("a value mapping needs the value")
        if self.kind == "filter" and not self.column and "filters" not in self.model_fields_set:
            raise ValueError("a filter mapping needs a column, or filters (an empty list: no condition)")
        if self.kind == "measure" and self.func != "count" and not self.column:
            raise ValueError(f"a {self.func} measure needs the column it aggregates")
        if self.expression is not None:
            if self.kind not in ("measure", "formula"):
                raise ValueError("only a measure or a formula is defined by an expression")
            try:
                columns = arithmetic_columns(self.expression)
            except ExpressionError as exc:
                raise ValueError(str(exc)) from None
            if self.column not in columns:
                raise ValueError("a measure's expression reads its column")
            self.expression = arithmetic_normalize(self.expression)
        if self.unit is not None and self.kind != "column":
            raise ValueError("only a column has a unit")
        return self

    def describe(self) -> str:
        """The mapping in plain words."""
        where = f"{self.object}." if self.object else ""
        if self.kind == "entity":
            return f"the table {self.object}"
        if self.kind == "formula":
            return f"{self.expression} of each {self.object} row"
        if self.kind == "column":
            unit = f" (in {self.unit}s)" if self.unit and self.unit not in ("fraction", "percent") else ""
            unit = {"fraction": " (a fraction: 20% is 0.2)", "percent": " (in percent: 20% is 20)"}.get(
                self.unit or "", unit
            )
            return f"the column {where}{self.column}{unit}"
        if self.kind == "filter" and not self.column:
            if not self.filters:
                return f"no condition on {self.object}: every row counts"
            return f"{self.object} where " + "; ".join(_condition_words(c) for c in self.filters)
        if self.kind in ("value", "filter"):
            op = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}.get(self.op or "eq", self.op)
            value = self.values if self.values else self.value
            return (
                f"{where}{self.column} {op} {value!r}"
                if op not in ("is_null", "not_null")
                else f"{where}{self.column} {op}"
            )
        if self.kind == "measure":
            what = f"{where}{self.column}" if self.column else f"rows of {self.object or 'the table'}"
            if self.expression:
                what = f"{self.expression} of {self.object}"
            elif self.times:
                what += f" times {self.times}"
            conditions = "; ".join(_condition_words(c) for c in self.filters)
            return f"{self.func} of {what}" + (f" where {conditions}" if conditions else "")
        if self.kind == "definition":
            if self.shape == "lapsed":
                return f"no {self.object} in the period, but some before (the latest {self.column} is before it)"
            return f"fewer {self.object} in the period than in the one before it (by {self.column})"
        return "nothing in this database (ignored)"


_OP_WORDS = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "in": "in", "not_in": "not in"}


def _condition_words(condition: Condition) -> str:
    if condition.op in ("is_null", "not_null"):
        return f"{condition.column} {'is empty' if condition.op == 'is_null' else 'is set'}"
    value = condition.values if condition.values else condition.value
    return f"{condition.column} {_OP_WORDS.get(condition.op, condition.op)} {value!r}"


@dataclass(frozen=True)
class Term:
    term: str
    mapping: Mapping
    memory_id: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "mapping": self.mapping.model_dump(exclude_none=True, exclude_defaults=True) | {"kind": self.mapping.kind},
            "memory_id": self.memory_id,
            "note": self.note,
            "meaning": self.mapping.describe(),
        }


def term_normalize(term: str) -> str:
    text = re.sub(r"[^a-z0-9 \-']+", " ", (term or "").lower())
    return re.sub(r"\s+", " ", text).strip(" -'")


def mapping_parse(data: Any) -> Mapping:
    """A mapping from its JSON; a "term" key (the flat form choices carry) is left out."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("term", "meaning", "memory_id", "note")}
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'mapping'}: {e.get('msg')}" for e in exc.errors()
        )
        raise LearningInputError("mapping", problems) from exc


def _parse_content(memory: AgentMemory) -> tuple[str, Mapping, str] | None:
    try:
        data = json.loads(memory.content)
        return term_normalize(data["term"]), Mapping.model_validate(data["mapping"]), str(data.get("note") or "")
    except (ValueError, KeyError, TypeError, ValidationError):
        return None


def glossary_term_read(*, memory: AgentMemory) -> Term | None:
    """The term a glossary memory defines (term, mapping, note), or None when its content is not a term."""
    parsed = _parse_content(memory)
    if parsed is None:
        return None
    return Term(parsed[0], parsed[1], str(memory.pk), parsed[2])


def _glossary_memories(*, service):
    return AgentMemory.objects.filter(
        service=service, type=MemoryType.BUSINESS_RULE, tags__contains=[GLOSSARY_TAG], is_active=True
    ).order_by("-updated_at")


def glossary_terms(*, service) -> list[Term]:
    """Every term of the Service's glossary, newest definition first (one per term and kind)."""
    seen: set[tuple[str, str]] = set()
    terms: list[Term] = []
    for memory in _glossary_memories(service=service).defer("embedding"):
        parsed = _parse_content(memory)
        if parsed is None or (parsed[0], parsed[1].kind) in seen:
            continue
        seen.add((parsed[0], parsed[1].kind))
        terms.append(Term(parsed[0], parsed[1], str(memory.pk), parsed[2]))
    return terms


def glossary_lookup(*, service, term: str, kind: str | None = None) -> Term | None:
    wanted = term_normalize(term)
    return next(
        (t for t in glossary_terms(service=service) if t.term == wanted and kind in (None, t.mapping.kind)), None
    )


def _ensure_manager(*, user, organization) -> None:
    if user is None or user.is_superuser:
        return
    membership = membership_get(user=user, organization=organization)
    if membership is None or not membership.can_manage:
        raise PermissionDenied("Only owners and admins of the organization may edit its glossary.")


def glossary_define(
    *, service, term: str, mapping: Any, user=None, note: str = "", source_execution=None, check_user: bool = True
) -> Term:
    """Define (or redefine) a term of the Service; its previous definition of the same kind is retired.

    `check_user` is false when the definition is the requester's own answer to a run's question:
    any member who may run requirements on the Service answers for their own run.
    """
    normalized = term_normalize(term)
    if not normalized:
        raise LearningInputError("term", "the term is empty")
    if len(normalized) > MAX_TERM_CHARS:
        raise LearningInputError("term", f"keep a term under {MAX_TERM_CHARS} characters")
    if is_grammatical(normalized):
        raise LearningInputError(
            "term",
            f"'{normalized}' is an ordinary word of a request (time, comparison, counting or asking), "
            "not a business term: every requirement already reads it the same way",
        )
    parsed = mapping_parse(mapping) if not isinstance(mapping, Mapping) else mapping
    if check_user:
        _ensure_manager(user=user, organization=service.organization)
    content = json.dumps(
        {
            "term": normalized,
            "mapping": parsed.model_dump(exclude_none=True, exclude_unset=False),
            "note": (note or "").strip()[:500],
        },
        sort_keys=True,
    )
    previous = []
    for m in _glossary_memories(service=service):
        old = _parse_content(m)
        if old is not None and old[0] == normalized and old[1].kind == parsed.kind:
            previous.append(m)
    memory = memory_create(
        organization=service.organization,
        type=MemoryType.BUSINESS_RULE,
        content=content,
        tags=[GLOSSARY_TAG, "business-rule", normalized],
        relevance_score=0.8,
        service=service,
        source_execution=source_execution,
        role=None,
    )
    with transaction.atomic():
        for old in previous:
            old.is_active = False
            old.retired_reason = "redefined"
            old.save(update_fields=["is_active", "retired_reason", "updated_at"])
    return Term(normalized, parsed, str(memory.pk), (note or "").strip())


def glossary_update(*, memory: AgentMemory, mapping: Any, user, note: str | None = None) -> Term:
    """Change the meaning of an existing term in place (admin edit)."""
    parsed = _parse_content(memory)
    if parsed is None:
        raise LearningInputError("memory", "this memory is not a glossary term")
    _ensure_manager(user=user, organization=memory.organization)
    mapping = mapping_parse(mapping)
    memory.content = json.dumps(
        {
            "term": parsed[0],
            "mapping": mapping.model_dump(exclude_none=True),
            "note": note if note is not None else parsed[2],
        },
        sort_keys=True,
    )
    memory.save(update_fields=["content", "updated_at"])
    memory_embed(memory=memory)
    return Term(parsed[0], mapping, str(memory.pk), note or parsed[2])


def glossary_remove(*, memory: AgentMemory, user) -> None:
    _ensure_manager(user=user, organization=memory.organization)
    memory.is_active = False
    memory.retired_reason = "removed from the glossary"
    memory.save(update_fields=["is_active", "retired_reason", "updated_at"])


def glossary_for_prompt(*, service) -> list[dict[str, Any]]:
    """The glossary as the planner and the agents receive it: flat mappings {"term", "kind", ..., "meaning"}.

    A term made only of ordinary words of a request (kept from before such terms were refused) is left
    out: it would change how every later requirement reads "last", "more" or "given".
    """
    return [
        {
            "term": t.term,
            **t.mapping.model_dump(exclude_none=True, exclude_defaults=True),
            "kind": t.mapping.kind,
            "meaning": t.mapping.describe(),
        }
        for t in glossary_terms(service=service)
        if not is_grammatical(t.term)
    ]
