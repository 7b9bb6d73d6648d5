"""The glossary term form shared by the glossary page and the admin: a mapping as fields, never raw JSON."""

from __future__ import annotations

import re
from typing import Any, get_args

from django import forms

from learning.glossary import Mapping, UnitName
from nectar.forms import TextSafeFormMixin

KINDS = [
    ("column", "a column (e.g. 'live' → customers.city)"),
    ("value", "a value of a column (e.g. 'gold' → tier = gold)"),
    ("filter", "a condition (e.g. 'open' → status in new, open)"),
    ("measure", "a measure (e.g. 'revenue' → sum of orders.total_amount)"),
    ("formula", "a number computed from each row (e.g. 'margin' → (price - cost) / price of products)"),
    ("entity", "a table or view (e.g. 'buyers' → customers)"),
    ("definition", "a judgement from related activity (e.g. 'churn risk' → none lately in activity_events)"),
    ("ignore", "nothing in this database"),
]
SHAPES = [
    ("", "—"),
    ("lapsed", "none in the period, but some before"),
    ("dropped", "fewer in the period than in the one before"),
]
OPS = [
    ("", "—"),
    ("eq", "="),
    ("ne", "≠"),
    ("lt", "<"),
    ("lte", "≤"),
    ("gt", ">"),
    ("gte", "≥"),
    ("in", "is one of"),
    ("not_in", "is none of"),
    ("contains", "contains"),
    ("is_null", "is empty"),
    ("not_null", "is set"),
]
FUNCS = [
    ("", "—"),
    ("sum", "sum"),
    ("count", "count"),
    ("count_distinct", "count of distinct"),
    ("avg", "average"),
    ("min", "minimum"),
    ("max", "maximum"),
]
_CONDITION_OPS = {
    "=": "eq",
    "!=": "ne",
    "≠": "ne",
    "<": "lt",
    "<=": "lte",
    ">": "gt",
    ">=": "gte",
    "in": "in",
    "not in": "not_in",
    "contains": "contains",
    "is empty": "is_null",
    "is set": "not_null",
}
_CONDITION = re.compile(
    r"^\s*(?P<column>[\w.]+)\s+(?P<op>not in|is empty|is set|contains|in|<=|>=|!=|≠|=|<|>)\s*(?P<value>.*)$", re.I
)
_OP_TEXT = {v: k for k, v in _CONDITION_OPS.items() if k != "≠"}


def _scalar(text: str) -> Any:
    text = text.strip().strip("'\"")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return text


def _values(text: str) -> list[Any]:
    return [_scalar(part) for part in text.split(",") if part.strip()]


def conditions_text(mapping: Mapping) -> str:
    """The mapping's conditions, one a line: "status in delivered, shipped"."""
    lines = []
    for c in mapping.filters:
        value = ", ".join(str(v) for v in c.values) if c.values else ("" if c.value is None else str(c.value))
        lines.append(f"{c.column} {_OP_TEXT.get(c.op, c.op)} {value}".rstrip())
    return "\n".join(lines)


class GlossaryTermForm(TextSafeFormMixin, forms.Form):
    """A business term and what it means in one Service's database."""

    term = forms.CharField(max_length=80, help_text="The word or phrase people use, e.g. 'high-priority'.")
    kind = forms.ChoiceField(choices=KINDS, label="It means")
    object = forms.CharField(
        max_length=255, required=False, label="Table or view", help_text="e.g. orders or public.orders"
    )
    column = forms.CharField(max_length=128, required=False)
    op = forms.ChoiceField(choices=OPS, required=False, label="Comparison")
    value = forms.CharField(
        max_length=500, required=False, help_text="One value, or several separated by commas with 'is one of'."
    )
    func = forms.ChoiceField(choices=FUNCS, required=False, label="Aggregate")
    times = forms.CharField(max_length=128, required=False, label="Times column", help_text="e.g. quantity")
    shape = forms.ChoiceField(choices=SHAPES, required=False, label="Definition", help_text="for a definition")
    expression = forms.CharField(
        max_length=300,
        required=False,
        help_text="Arithmetic of the table's columns, e.g. unit_price * quantity * (1 - discount).",
    )
    unit = forms.ChoiceField(
        choices=[("", "—")] + [(u, u) for u in get_args(UnitName)],
        required=False,
        help_text="What a number in the column counts, e.g. minute for a film's length.",
    )
    conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Conditions, one a line: status in delivered, shipped (an empty filter means every row counts).",
    )
    note = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    @classmethod
    def initial_for(cls, term: str, mapping: Mapping, note: str = "") -> dict:
        value = mapping.values if mapping.values else mapping.value
        return {
            "term": term,
            "kind": mapping.kind,
            "object": mapping.object or "",
            "column": mapping.column or "",
            "op": mapping.op or "",
            "value": ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else value),
            "func": mapping.func or "",
            "times": mapping.times or "",
            "shape": mapping.shape or "",
            "expression": mapping.expression or "",
            "unit": mapping.unit or "",
            "conditions": conditions_text(mapping),
            "note": note,
        }

    def clean_conditions(self) -> list[dict]:
        conditions = []
        for number, line in enumerate((self.cleaned_data.get("conditions") or "").splitlines(), start=1):
            if not line.strip():
                continue
            found = _CONDITION.match(line)
            if found is None:
                raise forms.ValidationError(
                    f"Line {number}: write a column, a comparison and a value, e.g. status in delivered, shipped."
                )
            op = _CONDITION_OPS[found["op"].lower()]
            condition: dict[str, Any] = {"column": found["column"], "op": op}
            if op in ("in", "not_in"):
                condition["values"] = _values(found["value"])
            elif op not in ("is_null", "not_null"):
                condition["value"] = _scalar(found["value"])
            conditions.append(condition)
        return conditions

    def mapping(self) -> dict:
        """The mapping as learning.glossary takes it (checked there)."""
        data = self.cleaned_data
        mapping: dict[str, Any] = {"kind": data["kind"]}
        for name in ("object", "column", "op", "func", "times", "shape", "expression", "unit"):
            if data.get(name):
                mapping[name] = data[name].strip()
        raw = (data.get("value") or "").strip()
        if raw:
            if data.get("op") in ("in", "not_in") or "," in raw:
                mapping["values"] = _values(raw)
            else:
                mapping["value"] = _scalar(raw)
        if data.get("conditions") or (data["kind"] == "filter" and not mapping.get("column")):
            mapping["filters"] = data.get("conditions") or []
        return mapping
