"""The planner's reading of a requirement as an endpoints.interpretation.Interpretation.

Every element carries `phrase`, the exact words of the requirement it accounts for, so that the
platform can check that nothing the user said was dropped. The interpretation is built from the
same analysis that chooses tables, joins, filters and measures, element by element.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from endpoints.interpretation import Interpretation, interpretation_parse

from .dates import fact_date
from .schema_index import Column, ForeignKey, Key, SchemaIndex, Table
from .sql import ROW_LIMIT_PARAM, SINCE_PARAM
from .vocabulary import variants

AMOUNT_WORDS = frozenset(["amount", "total", "revenue", "subtotal"])


def _sole_amount(table: Table) -> Column | None:
    """The one money amount of a table's rows (payments.amount, orders.total_amount), if it has exactly one."""
    found = [
        c
        for c in table.columns.values()
        if c.is_numeric
        and not c.primary_key
        and c.name not in table.fk_columns
        and not c.name.lower().endswith("_id")
        and set(c.tokens) & AMOUNT_WORDS
    ]
    return found[0] if len(found) == 1 else None


if TYPE_CHECKING:  # pragma: no cover
    from .planner import Analysis

RESERVED_ALIASES = frozenset({"as", "at", "by", "do", "if", "in", "is", "no", "of", "on", "or", "to"})
# Date parameters travel as ISO text; the interpretation says what they hold.
PARAM_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}


def param_type(column: Column) -> str:
    if column.format == "date":
        return "date"
    if column.format == "date-time":
        return "datetime"
    return PARAM_TYPES.get(column.json_type, "string")


class _Builder:
    """Entities with unique aliases, joined along foreign keys, and the elements that name their columns."""

    def __init__(self, index: SchemaIndex, requirement: str) -> None:
        self.index = index
        self.requirement = requirement
        self.aliases: dict[Key, str] = {}
        self.entities: list[dict] = []
        self.data: dict[str, Any] = {
            "select": [],
            "filters": [],
            "windows": [],
            "group_by": [],
            "measures": [],
            "having": [],
            "exists": [],
            "order_by": [],
            "parameters": [],
            "assumptions": [],
        }

    def text(self, span: tuple[int, int] | None) -> str:
        if not span or span[1] <= span[0]:
            return ""
        return self.requirement[span[0] : span[1]].strip()

    def new_alias(self, table: Table, taken: set[str]) -> str:
        base = "".join(w[0] for w in table.tokens if w[:1].isalpha()) or "t"
        if not base[0].isalpha():
            base = "t" + base
        base = base[:20]
        if base in RESERVED_ALIASES:
            base += "_"
        alias, n = base, 2
        while alias in taken:
            alias, n = f"{base}{n}", n + 1
        return alias

    def object_name(self, table: Table) -> str:
        if table.schema and table.schema != self.index.default_schema:
            return f"{table.schema}.{table.name}"
        return table.name

    def alias(self, key: Key) -> str:
        return self.aliases[key]

    def root(self, table: Table, phrase: str = "") -> str:
        alias = self.new_alias(table, set(self.aliases.values()))
        self.aliases[table.key] = alias
        self.entities.append({"alias": alias, "object": self.object_name(table), "phrase": phrase})
        return alias

    def join(self, fk: ForeignKey, *, to: Key, phrase: str = "", left: bool = False) -> str:
        """Add the table `to` joined to the other end of `fk` (already in the query)."""
        if to in self.aliases:
            return self.aliases[to]
        other = fk.parent if to == fk.child else fk.child
        table = self.index.tables[to]
        alias = self.new_alias(table, set(self.aliases.values()))
        self.aliases[to] = alias
        if to == fk.parent:
            on = [[p, c] for p, c in zip(fk.parent_columns, fk.child_columns, strict=True)]
        else:
            on = [[c, p] for c, p in zip(fk.child_columns, fk.parent_columns, strict=True)]
        self.entities.append(
            {
                "alias": alias,
                "object": self.object_name(table),
                "phrase": phrase,
                "join": {"to": self.aliases[other], "on": on, "kind": "left" if left else "inner"},
            }
        )
        return alias

    def join_path(self, start: Key, goal: Key) -> None:
        node = start
        for fk in self.index.path(start, goal) or []:
            nxt = fk.parent if fk.child == node else fk.child
            self.join(fk, to=nxt)
            node = nxt

    def col(self, key: Key, column: str) -> dict:
        return {"entity": self.aliases[key], "column": column}

    def parameter(
        self,
        name: str,
        type_: str,
        *,
        default: Any = None,
        required: bool = False,
        phrase: str = "",
        enum: list | None = None,
    ) -> None:
        if any(p["name"] == name for p in self.data["parameters"]):
            return
        spec: dict[str, Any] = {"name": name, "type": type_, "required": required, "phrase": phrase}
        if enum:
            spec["enum"] = enum
        if not required and default is not None:
            spec["default"] = default
        self.data["parameters"].append(spec)

    def build(self) -> Interpretation:
        return interpretation_parse({"entities": self.entities, **self.data})


def window_bounds(window, builder: _Builder) -> dict:
    """start/end bounds of a recognised time window; date parameters are declared on the builder."""
    if window.kind == "rolling":
        return {"start": {"relative": {"amount": -int(window.amount), "unit": window.unit}}}
    if window.kind == "before":
        return {"end": {"relative": {"amount": -int(window.amount), "unit": window.unit}}}
    if window.kind == "period":
        if window.previous:
            return {
                "start": {"calendar": {"unit": window.period, "offset": -1}},
                "end": {"calendar": {"unit": window.period, "offset": 0}},
            }
        return {"start": {"calendar": {"unit": window.period, "offset": 0}}}
    bounds: dict[str, Any] = {}
    if window.given:
        builder.parameter(SINCE_PARAM, "date", required=True, phrase=window.phrase)
        bounds["start"] = {"param": SINCE_PARAM}
    if window.since:
        bounds["start"] = {"date": window.since}
    if window.until:
        bounds["end"] = {"date": window.until}
    return bounds


def negation_span(a: Analysis, span: tuple[int, int] | None) -> tuple[int, int] | None:
    """'no activity', 'without orders': the negation and the word after it that names what is absent."""
    if not span:
        return span
    after = [t for t in a.tokens if t.start >= span[1]]
    if after and not a.phrases.explains(after[0].start, after[0].end):
        return (span[0], after[0].end)
    return span


def ranking_span(p) -> tuple[int, int] | None:
    """'Top 10 products by revenue': from the ranking word to what ranks them."""
    if p.top_span and p.rank_span:
        first, second = sorted((p.top_span, p.rank_span))
        if second[0] - first[1] > 1:
            return p.rank_span  # "the five customers who spent the most": the number is the limit's own phrase
        return (min(p.top_span[0], p.rank_span[0]), max(p.top_span[1], p.rank_span[1]))
    return p.top_span or p.rank_span


def window_span(a: Analysis, span: tuple[int, int], column: Column) -> tuple[int, int]:
    """The window's words, with the word before them that names its date column ("hired since ...")."""
    before = [t for t in a.tokens if t.end <= span[0]]
    words = {v for token in column.tokens for v in variants(token)}
    for token in reversed(before[-2:]):
        if variants(token.lower) & words:
            return (token.start, span[1])
    return span


def interpretation_from_analysis(a: Analysis, index: SchemaIndex, *, labels: dict[str, Any]) -> Interpretation:
    """The Interpretation of an analysed requirement; `labels` names the output columns the design uses."""

    b = _Builder(index, a.requirement)
    p = a.phrases

    def mention_phrase(key: Key, role: str | None = None) -> str:
        for mention in a.mentions:
            if mention.best()[1] == key and (role is None or mention.role == role) and mention.role != "given":
                return b.text((a.tokens[mention.start].start, a.tokens[mention.end - 1].end))
        return a.verb_phrases.get(key, "") if role is None else ""

    def add_filters(where: str = "filters") -> None:
        for f in a.filters:
            column = index.tables[f.table].columns[f.column]
            if f.other is not None:
                b.data[where].append(
                    {
                        "column": b.col(f.table, f.column),
                        "op": f.op,
                        "other": b.col(f.table, f.other),
                        "phrase": f.phrase,
                    }
                )
                continue
            if f.fixed and f.op in ("gt", "gte", "lt", "lte", "ne", "contains"):
                b.data[where].append(
                    {"column": b.col(f.table, f.column), "op": f.op, "value": f.value, "phrase": f.phrase}
                    | ({"expression": f.expression} if f.expression else {})
                )
                continue
            if f.fixed and f.op in ("is_null", "not_null"):
                b.data[where].append({"column": b.col(f.table, f.column), "op": f.op, "phrase": f.phrase})
                continue
            if f.fixed and f.op == "not_in":
                values = list(f.values or [f.value])
                b.data[where].append(
                    {"column": b.col(f.table, f.column), "op": "not_in", "values": values, "phrase": f.phrase}
                )
                continue
            if f.fixed:
                values = list(f.values or [f.value])
                b.data[where].append(
                    {"column": b.col(f.table, f.column), "op": "in", "values": values, "phrase": f.phrase}
                )
                continue
            b.data[where].append({"column": b.col(f.table, f.column), "op": "eq", "param": f.param, "phrase": f.phrase})
            b.parameter(
                f.param,
                param_type(column),
                default=None if f.required else f.value,
                required=f.required,
                phrase=f.phrase,
                enum=f.enum,
            )

    def add_window(table: Table, column: Column) -> dict:
        return {
            "column": b.col(table.key, column.name),
            **window_bounds(p.window, b),
            "phrase": b.text(window_span(a, p.window.span, column)),
        }

    if a.fact is not None and a.rank_column is None:
        fact = a.fact
        b.root(fact, mention_phrase(fact.key))
        targets = [t.key for t, _ in a.group_columns] + ([a.group_entity.key] if a.group_entity else [])
        targets += [f.table for f in a.filters]
        dated = a.window_column or (fact_date(a, index, fact) if p.grain else None)
        if dated is not None:
            targets.append(dated[0].key)
        for target in targets:
            b.join_path(fact.key, target)
        for entity in b.entities[1:]:
            key = next(k for k, alias in b.aliases.items() if alias == entity["alias"])
            entity["phrase"] = entity["phrase"] or mention_phrase(key)
        group_keys: list[dict] = []
        if p.grain and dated is not None:
            date_table, date = dated
            group_keys.append(
                {
                    "column": b.col(date_table.key, date.name),
                    "bucket": p.grain,
                    "label": p.grain,
                    "phrase": b.text(p.grain_span),
                }
            )
        if a.group_entity is not None:
            g = a.group_entity
            phrase = a.group_phrase or mention_phrase(g.key)
            naming = {c.name for c in g.label_columns()}
            # "with their names": the words that ask for the group's naming columns
            names_phrase = ""
            for n, t in enumerate(a.tokens):
                if t.lower not in ("name", "names", "titles", "title"):
                    continue
                start = t.start
                # "company names" for company_name: the word before belongs to the name it qualifies
                before = a.tokens[n - 1].lower.removesuffix("'s") if n else ""
                if before and (
                    any(before in c.tokens for c in g.label_columns())
                    or any(variants(before) & variants(w) for w in g.tokens)
                ):
                    start = a.tokens[n - 1].start
                names_phrase = b.text((start, t.end))
                break
            for name, label in labels.get("group_entity", []):
                own = names_phrase if name in naming and not phrase else phrase
                group_keys.append({"column": b.col(g.key, name), "label": label, "phrase": own})
                phrase = ""
        for table, column in a.group_columns:
            phrase = a.column_phrases.get((table.key, column.name)) or next(
                (text for (_key, name), text in a.column_phrases.items() if name == column.name), ""
            )
            group_keys.append({"column": b.col(table.key, column.name), "label": column.name, "phrase": phrase})
        b.data["group_by"] = group_keys
        measure_id = labels["measure"]
        metric = a.metric
        measure: dict[str, Any] = {"id": measure_id, "phrase": b.text(metric.span) if metric else ""}
        if (metric is None or metric.func == "count") and a.counted_key is not None:
            measure.update(func="count_distinct", column=b.col(fact.key, a.counted_key))
        elif metric is None or metric.func == "count":
            measure["func"] = "count"
        else:
            _kind, columns = a.measure or ("column", [])
            measure["func"] = metric.func
            measure["column"] = b.col(fact.key, columns[0])
            if _kind == "duration" and a.duration is not None:
                measure["until"] = b.col(fact.key, columns[1])
                measure["unit"] = a.duration[2]
                measure["phrase"] = a.duration[3]
            elif _kind == "expression" and a.measure_expression:
                measure["expression"] = a.measure_expression
            elif len(columns) > 1:
                measure["times"] = b.col(fact.key, columns[1])
        if a.share is not None and a.share_filters:
            (start, end), unit = a.share
            measure.update(share=True, phrase=b.text((start, end)), filters=[])
            every, a.filters = a.filters, list(a.share_filters)
            b.data["share_filters"] = []
            add_filters("share_filters")
            a.filters = every
            measure["filters"] = b.data.pop("share_filters")
            if unit is not None:
                b.data["assumptions"].append({"text": "the share is a percentage (0 to 100)", "phrase": b.text(unit)})
        b.data["measures"].append(measure)
        if (
            a.share is None
            and a.counted_key is None
            and (metric is None or (metric.func == "count" and metric.word is None and not metric.phrase))
        ):
            # A breakdown that names no measure ("refunds by payment method"): how many, and how much
            # when the counted rows carry one money amount, since either may be what was meant.
            amount = _sole_amount(fact)
            taken = {k["label"] for k in group_keys} | {measure_id}
            if amount is not None:
                amount_id = amount.name if "total" in amount.name.lower() else f"total_{amount.name}"
                if amount_id not in taken and len(amount_id) <= 63:
                    b.data["measures"].append(
                        {"id": amount_id, "func": "sum", "column": b.col(fact.key, amount.name), "phrase": ""}
                    )
        for h in a.having:
            b.data["having"].append({"measure": measure_id, "op": h["op"], "value": h["value"], "phrase": h["phrase"]})
        add_filters()
        if a.window_column is not None:
            b.data["windows"].append(add_window(*a.window_column))
        if p.top_n is not None:
            b.data["order_by"].append(
                {
                    "measure": measure_id,
                    "direction": "asc" if p.top_ascending else "desc",
                    "phrase": b.text(ranking_span(p)),
                }
            )
            b.data["limit"] = {"n": p.top_n, "param": ROW_LIMIT_PARAM, "phrase": b.text(p.top_span)}
            b.parameter(ROW_LIMIT_PARAM, "integer", default=p.top_n, phrase=b.text(p.top_span))
        elif a.measure_order is not None:
            direction, phrase = a.measure_order
            b.data["order_by"].append({"measure": measure_id, "direction": direction, "phrase": phrase})
            for key in group_keys:
                b.data["order_by"].append({"column": key["column"], "direction": "asc", "phrase": ""})
        else:
            for key in group_keys:
                b.data["order_by"].append(
                    {"column": key["column"], "bucket": key.get("bucket"), "direction": "asc", "phrase": ""}
                )
        return b.build()

    entity = a.entity
    assert entity is not None
    b.root(entity, mention_phrase(entity.key))
    for name, label in labels.get("entity", []):
        b.data["select"].append(
            {
                "column": b.col(entity.key, name),
                "label": label if label != name else "",
                "phrase": a.column_phrases.get((entity.key, name), ""),
            }
        )
    for fk, _columns in a.parents:
        parent = index.tables[fk.parent]
        nullable = any(entity.columns[c].nullable for c in fk.child_columns)
        b.join(fk, to=parent.key, phrase=mention_phrase(parent.key), left=nullable)
        for name, label in labels.get(("parent", parent.key), []):
            b.data["select"].append(
                {
                    "column": b.col(parent.key, name),
                    "label": label,
                    "phrase": a.column_phrases.get((parent.key, name), ""),
                }
            )
    for chain in a.chains:
        for fk in chain:
            b.join(fk, to=fk.parent, phrase=mention_phrase(fk.parent))
    for fk in a.children:
        child = index.tables[fk.child]
        b.join(fk, to=child.key, phrase=mention_phrase(child.key), left=True)
        for name, label in labels.get(("child", child.key), []):
            b.data["select"].append(
                {"column": b.col(child.key, name), "label": label if label != name else "", "phrase": ""}
            )
    add_filters()
    if a.lookup is not None:
        name = labels["lookup_param"]
        phrase = b.text(p.lookup_span) or a.lookup_phrase
        b.data["filters"].append(
            {"column": b.col(entity.key, a.lookup.name), "op": "eq", "param": name, "phrase": phrase}
        )
        b.parameter(name, param_type(a.lookup), required=True, phrase=phrase)
    if a.window_column is not None:
        b.data["windows"].append(add_window(*a.window_column))
    for chain, f in a.related_given:
        taken = set(b.aliases.values()) | {e["alias"] for x in b.data["exists"] for e in x["entities"]}
        node, previous, entities = entity.key, b.alias(entity.key), []
        for fk in chain:
            nxt = fk.parent if fk.child == node else fk.child
            table = index.tables[nxt]
            alias = b.new_alias(table, taken)
            taken.add(alias)
            if nxt == fk.parent:
                on = [[p_, c] for p_, c in zip(fk.parent_columns, fk.child_columns, strict=True)]
            else:
                on = [[c, p_] for c, p_ in zip(fk.child_columns, fk.parent_columns, strict=True)]
            entities.append(
                {"alias": alias, "object": b.object_name(table), "phrase": "", "join": {"to": previous, "on": on}}
            )
            node, previous = nxt, alias
        column = index.tables[f.table].columns[f.column]
        b.data["exists"].append(
            {
                "negated": False,
                "from": b.alias(entity.key),
                "entities": entities,
                "filters": [
                    {
                        "column": {"entity": previous, "column": f.column},
                        "op": "eq",
                        "param": f.param,
                        "phrase": f.phrase,
                    }
                ],
                "phrase": f.phrase,
            }
        )
        b.parameter(f.param, param_type(column), required=True, phrase=f.phrase, enum=f.enum)
    if a.activity is not None:
        act, fks, date = a.activity
        taken = set(b.aliases.values())
        chain, previous = [], b.alias(entity.key)
        for fk in fks:
            table = index.tables[fk.child]
            alias = b.new_alias(table, taken)
            taken.add(alias)
            chain.append(
                {
                    "alias": alias,
                    "object": b.object_name(table),
                    "phrase": (mention_phrase(act.key, "activity") or mention_phrase(act.key)) if table is act else "",
                    "join": {
                        "to": previous,
                        "on": [[c, p_] for c, p_ in zip(fk.child_columns, fk.parent_columns, strict=True)],
                    },
                }
            )
            previous = alias
        exists: dict[str, Any] = {
            "negated": True,
            "from": b.alias(entity.key),
            "entities": chain,
            "phrase": b.text(a.activity_span or negation_span(a, p.negation_span)),
        }
        if p.window is not None and date is not None:
            exists["window"] = {
                "column": {"entity": alias, "column": date.name},
                **window_bounds(p.window, b),
                "phrase": b.text(p.window.span),
            }
        b.data["exists"].append(exists)
    if a.rank_column is not None and a.recency is not None:
        b.data["order_by"].append(
            {"column": b.col(entity.key, a.rank_column.name), "direction": a.recency, "phrase": b.text(p.recency_span)}
        )
        if p.top_n is not None:
            b.data["limit"] = {"n": p.top_n, "param": ROW_LIMIT_PARAM, "phrase": b.text(p.top_span)}
            b.parameter(ROW_LIMIT_PARAM, "integer", default=p.top_n, phrase=b.text(p.top_span))
    elif a.rank_column is not None:
        b.data["order_by"].append(
            {
                "column": b.col(entity.key, a.rank_column.name),
                "direction": "asc" if p.top_ascending else "desc",
                "phrase": b.text(ranking_span(p)),
            }
        )
        n = p.top_n or 10
        b.data["limit"] = {"n": n, "param": ROW_LIMIT_PARAM, "phrase": b.text(p.top_span)}
        b.parameter(ROW_LIMIT_PARAM, "integer", default=n, phrase=b.text(p.top_span))
    for column in entity.primary_key:
        b.data["order_by"].append({"column": b.col(entity.key, column), "direction": "asc", "phrase": ""})
    return b.build()
