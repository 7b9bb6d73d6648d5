"""The offline provider: answers the six agents deterministically from the planner, with no key and no network.

It behaves like a model that follows the same reasoning every time, and answers in exactly the
contracts every provider must meet (agents.contracts): the platform checks its designs like any
other's. Every call says which agent is asking through `context` (the real providers ignore it):

    context = {
        "agent": "explorer" | "architect" | "security" | "implementer" | "tester" | "documenter",
        "step": "think" (default) | "reflect" | "synthesize" (no more tool calls),
        "requirement": str,
        "schema": dict (roles.introspection shape, the objects described so far),
        "samples": {table: {column: [distinct values]}} (what describe_object and sample_rows showed),
        "catalog": [search_objects results] (explorer),
        "grants": [Grant or permission dict] (optional),
        "memories": [{"id", "type", "content", "similarity"}] (optional; see agents/planner/README.md),
        "glossary": [glossary mappings] (learning.glossary),
        "dialect": "postgres" | "mysql" | "sqlite",
        "design": the architect's answer (security, implementer, tester, documenter),
        "exploration": {"schema", "samples", ...} (architect, implementer),
        "called": [tool names already called] (tool calls in `messages` count too),
    }

The explorer uses the Role's fixed toolset: search_objects for the objects the requirement's words
name (all of them when none matches), describe_object for those and the objects joined to them,
then sample_rows probes of text columns for the requirement's value-like words. The architect
returns a design whose SQL is the platform's compilation of the planner's interpretation, or the
planner's questions. A requirement the planner cannot design raises LLMError with the planner's
plain-words reason. Usage is estimated as characters // 4 so token accounting works as with a
real model.
"""

from __future__ import annotations

import json
from typing import Any

from agents.planner import Plan, PlanningError, plan_requirement
from agents.planner.intent import NUMBER_WORDS, read_phrases
from agents.planner.planner import _memory_content
from agents.planner.questions import negated_base
from agents.planner.relations import key_role_words
from agents.planner.schema_index import SchemaIndex
from agents.planner.vocabulary import (
    FILLER_WORDS,
    MONEY_WORDS,
    STOPWORDS,
    derives,
    name_tokens,
    tokenize,
    variants,
    word_score,
)
from endpoints.compiler import Catalog, CompileError, interpretation_compile
from endpoints.verification.policy import PERSONAL, SECRET
from endpoints.verification.wording import interpretation_describe

from .base import Completion, LLMError, Message, ToolCall, ToolSpec, Usage

AGENTS = ("explorer", "architect", "security", "implementer", "tester", "documenter")


def _declined(message: str) -> LLMError:
    """A request the built-in designer cannot build, in words written for the person who asked."""
    declined = LLMError(message, retryable=False)
    declined.plain = True
    return declined


MAX_EXPLORED_TABLES = 8
MAX_MEASURED_TABLES = 16
MAX_PROBE_WORDS = 4
MAX_PROBES_PER_STEP = 24
MAX_PROBES = 48
MAX_CATALOG_PAGES = 20  # in all: words nothing explains are asked about, not searched for everywhere
LONG_TEXT = 40  # sampled values longer than this on average are free text, not categories
# The local embedder scores "Customers in the EU" against "... in the UK" near 0.48; shape and tables guard the rest.
PATTERN_SIMILARITY = 0.4


class OfflineProvider:
    """A deterministic stand-in for a model, built on agents.planner; see the module docstring for the protocol."""

    name = "offline"

    def __init__(self, *, model: str = "nectar-offline", **_: Any) -> None:
        self.model = model

    def complete(
        self,
        *,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        response_schema: dict[str, Any] | None = None,
        temperature: float = 0.2,
        max_tokens: int = 2000,
        context: dict[str, Any] | None = None,
    ) -> Completion:
        context = dict(context or {})
        agent = str(context.get("agent") or "").lower()
        if agent not in AGENTS:
            raise LLMError(
                f"the offline provider needs context['agent'] (one of {', '.join(AGENTS)}), got {agent or 'nothing'!r}",
                retryable=False,
            )
        tool_names = [t.name for t in tools] if tools else _names(context.get("tools") or [])
        if context.get("step") == "reflect":
            text, structured, calls = self._reflect(agent, context, messages, tool_names)
        else:
            handler = getattr(self, f"_{agent}")
            text, structured, calls = handler(context, messages, tool_names)
        prompt_chars = sum(len(m.content) for m in messages) + sum(
            len(t.name) + len(t.description) + len(json.dumps(t.input_schema)) for t in tools or []
        )
        output_chars = (
            len(text)
            + len(json.dumps(structured, default=str))
            + sum(len(json.dumps(c.arguments)) + len(c.name) for c in calls)
        )
        return Completion(
            text=text,
            tool_calls=tuple(calls),
            structured=None if calls else structured,
            usage=Usage(input_tokens=max(1, prompt_chars // 4), output_tokens=max(1, output_chars // 4)),
            model=self.model,
            stop_reason="tool_use" if calls else "end_turn",
        )

    # Explorer -----------------------------------------------------------------------------------

    def _explorer(self, context, messages, tool_names):
        calls = [] if context.get("step") == "synthesize" else _explorer_calls(context, messages, tool_names)
        candidates = _candidates(context)
        if calls:
            reasoning = (
                f"Next I call {', '.join(sorted({c.name for c in calls}))} for '{context.get('requirement', '')}'."
            )
        else:
            reasoning = f"Described {', '.join(candidates) or 'nothing'}; that is all the request needs."
        structured = {
            "relevant_objects": [
                {"object": t, "reason": "named by, or joined to what is named by, the requirement"} for t in candidates
            ],
            "summary": reasoning,
        }
        return reasoning, structured, calls

    # Architect ----------------------------------------------------------------------------------

    def _architect(self, context, messages, tool_names):
        try:
            plan = _plan(context)
        except PlanningError as error:
            if error.questions:
                structured = {"questions": [q.model_dump() for q in error.questions]}
                return str(error), structured, []
            raise _declined(str(error)) from error
        if plan.interpretation is None:
            raise _declined(
                f"I understood the request as {plan.description or 'a query'}, but could not state exactly what it "
                "means, so I cannot check it. Rephrase it, or name the tables and columns you mean."
            )
        interpretation = plan.interpretation
        catalog = Catalog(_schema(context) or {})
        dialect = context.get("dialect") or "postgres"
        try:
            sql = interpretation_compile(interpretation, catalog=catalog, dialect=dialect).sql
        except CompileError as error:
            raise _declined(
                f"I understood the request, but the design cannot be written as a query: {error.message}. "
                "Rephrase it, or name the tables and columns you mean."
            ) from error
        structured = {
            "path": plan.path,
            "description": plan.description,
            "interpretation": interpretation.model_dump(by_alias=True, exclude_none=True),
            "sql": sql,
            "rationale": list(plan.rationale),
        }
        text = f"Design: GET /{plan.path}: {interpretation_describe(interpretation)}"
        return text, structured, []

    # Security -----------------------------------------------------------------------------------

    def _security(self, context, messages, tool_names):
        issues = [str(i) for i in context.get("automated_issues") or []]
        approved = not issues
        notes = (
            "Approved: the platform's checks passed (read-only, granted objects and columns, bound values, no "
            "unrequested personal data)."
            if approved
            else "Rejected: " + "; ".join(issues)
        )
        return notes, {"approved": approved, "issues": [], "notes": notes}, []

    # Implementer --------------------------------------------------------------------------------

    def _implementer(self, context, messages, tool_names):
        design = context.get("design") or {}
        sql = str(design.get("sql") or "")
        if not sql:
            raise _declined("There is no design to build yet. Submit the requirement again.")
        notes = "Implemented the design as its verified query."
        if context.get("failures"):
            notes = "The design's query is the platform's own compilation; the failures need a different design."
        return notes + "\n\n" + sql, {"sql": sql, "notes": notes}, []

    # Tester -------------------------------------------------------------------------------------

    def _tester(self, context, messages, tool_names):
        design = context.get("design") or {}
        interpretation = design.get("interpretation") or {}
        limit = interpretation.get("limit") or {}
        required = [p["name"] for p in interpretation.get("parameters") or [] if p.get("required")]
        cases = []
        if not required:
            cases.append({"name": "the defaults answer with rows or none", "params": {}, "expect": {"status": 200}})
            if limit.get("param"):
                cases.append(
                    {
                        "name": f"{limit['param']}=1 returns at most one row",
                        "params": {limit["param"]: 1},
                        "expect": {"status": 200, "max_rows": 1},
                    }
                )
            if limit:
                cases.append(
                    {
                        "name": f"at most {limit['n']} rows by default",
                        "params": {},
                        "expect": {"status": 200, "max_rows": int(limit["n"])},
                    }
                )
        else:
            cases.append(
                {"name": "a call without its required values is refused", "params": {}, "expect": {"status": 400}}
            )
        text = "Test cases:\n" + "\n".join(f"- {c['name']}" for c in cases)
        return text, {"cases": cases}, []

    # Documenter ---------------------------------------------------------------------------------

    def _documenter(self, context, messages, tool_names):
        design = context.get("design") or {}
        tests = context.get("test_results") or {}
        lines = [f"# {design.get('description') or design.get('path') or 'Endpoint'}", ""]
        if context.get("meaning"):
            lines += ["## What it answers", "", str(context["meaning"]), ""]
        if design.get("rationale"):
            lines += ["## How it works", "", *[f"- {step}" for step in design["rationale"]], ""]
        if tests:
            lines += [
                "## How it was checked",
                "",
                f"{tests.get('passed', 0)} of {tests.get('passed', 0) + tests.get('failed', 0)} test cases passed "
                "against the live database, and the platform's meaning tests checked that it returns what the "
                "request means.",
                "",
            ]
        markdown = "\n".join(lines)
        return markdown, {"summary": design.get("description") or "", "markdown": markdown}, []

    # Reflection ---------------------------------------------------------------------------------

    def _reflect(self, agent, context, messages, tool_names):
        if agent == "explorer":
            pending = _explorer_calls(context, messages, tool_names)
            structured = {
                "goal_achieved": not pending,
                "progress": f"described {len((_schema(context) or {}).get('objects') or [])} objects",
                "next_steps": sorted({f"{c.name} {json.dumps(c.arguments)}" for c in pending})[:10],
                "blockers": [],
            }
        else:
            structured = {"goal_achieved": True, "progress": f"{agent} answered", "next_steps": [], "blockers": []}
        text = ("Goal achieved." if structured["goal_achieved"] else "Not yet: ") + "; ".join(structured["next_steps"])
        return text, structured, []


# Helpers --------------------------------------------------------------------------------------------


def _names(tools: list) -> list[str]:
    return [str(t.get("name")) if isinstance(t, dict) else str(getattr(t, "name", t)) for t in tools]


def _schema(context: dict) -> dict | None:
    exploration = context.get("exploration") or {}
    schema = context.get("schema") or exploration.get("schema")
    return schema if schema and schema.get("objects") is not None else None


def _sensitive(name: str) -> bool:
    return bool(set(name_tokens(name)) & (PERSONAL | SECRET))


def _calls_made(messages: list[Message]) -> list[ToolCall]:
    return [call for message in messages for call in message.tool_calls]


def _requirement_words(context: dict) -> list[str]:
    return [t.lower for t in tokenize(str(context.get("requirement") or "")) if t.lower not in STOPWORDS]


def _described(context: dict) -> dict[str, dict]:
    return {o["name"]: o for o in (_schema(context) or {}).get("objects") or []}


def _measured(context: dict) -> bool:
    """Whether what is asked may live in an object the requirement does not name (a measure, an absence)."""
    p = read_phrases(str(context.get("requirement") or ""))
    return bool(p.metric or p.top_n is not None or p.grain or p.negation_at is not None)


def _pattern_tables(context: dict) -> list[str]:
    """Tables of the most similar learned pattern (all of them), when it reads like this requirement."""
    for memory in context.get("memories") or []:
        if memory.get("type") not in ("SUCCESS_PATTERN", "API_PATTERN"):
            continue
        if float(memory.get("similarity") or 0.0) < PATTERN_SIMILARITY:
            continue
        content = _memory_content(memory)
        objects = [str(o).split(".")[-1] for o in content.get("objects") or []]
        if objects and _same_subject(str(context.get("requirement") or ""), str(content.get("requirement") or "")):
            return objects
    return []


def _subject(requirement: str) -> str | None:
    """The first word that names something ("Customers" in "Customers who placed ..."), not a word of asking."""
    for token in tokenize(requirement):
        word = token.lower
        if word in STOPWORDS or word in FILLER_WORDS or word in NUMBER_WORDS or token.is_number:
            continue
        return word
    return None


def _same_subject(requirement: str, learned: str) -> bool:
    """A learned pattern stands in for searching only when it is about the same thing: "Products supplied from
    ..." still searches for products after a pattern about orders."""
    mine, theirs = _subject(requirement), _subject(learned)
    return bool(mine and theirs and variants(mine) & variants(theirs))


def _candidates(context: dict) -> list[str]:
    """Objects worth describing: those the requirement's words name, then the ones joined to them."""
    names = [o["name"] for o in context.get("catalog") or []]
    described = _described(context)
    names += [n for n in described if n not in names]
    words = _requirement_words(context)
    scored, by_column = [], []
    for name in names:
        tokens = name_tokens(name) or (name.lower(),)
        score = max(
            (
                max(word_score(w, n), 0.8 if derives(w, n) else 0.0) * (1.0 if n == tokens[-1] else 0.5)
                for w in words
                for n in tokens
            ),
            default=0.0,
        )  # "rented" names rentals as surely as a synonym
        found = next((o for o in context.get("catalog") or [] if o["name"] == name), {})
        if score >= 0.4:
            scored.append((-score, name))
        elif found.get("matched_columns"):
            by_column.append(name)
    chosen = [n for _, n in sorted(scored)]
    for table in _pattern_tables(context):
        if table in names and table not in chosen:
            chosen.append(table)
    # The tables the named ones belong to first (the path to a far parent runs through them: customer -> address
    # -> city -> country), then the ones only a column's name matches and theirs, then the children of both.
    named = list(chosen)
    matched = [n for n in by_column if n not in chosen]
    for kind, tables in (("parents", named), ("columns", matched), ("parents", matched), ("children", named + matched)):
        if kind == "columns":
            chosen += tables
            continue
        for table in tables:
            obj = described.get(table)
            if obj is None:
                continue
            if kind == "parents":
                related = [fk["ref_table"] for fk in obj.get("foreign_keys") or []]
            else:
                related = [str(r.get("object") or "").rpartition(".")[2] for r in obj.get("referenced_by") or []]
            for name in related:
                # a foreign key's parent is on the path even when the search did not list it (address between
                # customers and their city)
                if name and (name in names or (kind == "parents" and tables is named)) and name not in chosen:
                    chosen.append(name)
    if not chosen:
        chosen = sorted(names)
    bound = MAX_MEASURED_TABLES if _measured(context) else MAX_EXPLORED_TABLES
    if _measured(context):
        # A measure may live in an object the requirement does not name (the orders behind "customers by
        # revenue"): describe every object, named ones first, up to a bound.
        chosen += [n for n in sorted(names) if n not in chosen]
    return chosen[:bound]


def _value_words(context: dict, objects: list[dict]) -> list[str]:
    """Words of the requirement that may be values (EU, enterprise, open) rather than names of things."""
    requirement = str(context.get("requirement") or "")
    phrases = read_phrases(requirement)
    described = _described(context)
    names = {t for o in described.values() for t in name_tokens(o["name"])}
    names |= {t for o in objects for c in o.get("columns") or [] for t in name_tokens(c["name"])}
    heads = {name_tokens(o["name"])[-1] for o in described.values() if name_tokens(o["name"])}
    # 'manager' beside a key named reports_to or manager_id names the row above, not a value
    names |= key_role_words(SchemaIndex(_schema(context) or {}))
    known = {str(v).lower() for o in objects for c in o.get("columns") or [] for v in c.get("enum") or []}
    samples = context.get("samples") or {}
    for obj in objects:
        for values in (samples.get(obj["name"]) or {}).values():
            known |= {str(v).lower() for v in values or []}
    words: list[str] = []
    for token in tokenize(requirement):
        lower = token.lower
        if token.is_number or phrases.explains(token.start, token.end) or lower in words:
            continue
        if lower in STOPWORDS and not (token.text.isupper() and len(token.text) > 1) and not token.quoted:
            continue
        if lower in FILLER_WORDS or lower in MONEY_WORDS or variants(lower) & names or lower in known:
            continue
        if any(word_score(lower, n) >= 0.8 for n in heads):
            continue
        words.append(token.text)
        base = negated_base(lower)
        if base and base not in words and base not in known:
            words.append(base)  # 'unresolved': look for 'resolved', the state it negates
    return words[:MAX_PROBE_WORDS]


def _probe_columns(obj: dict, context: dict) -> list[str]:
    """Text columns whose values are categories worth probing (not keys, free text or personal data)."""
    sampled = (context.get("samples") or {}).get(obj["name"]) or {}
    out = []
    for column in obj.get("columns") or []:
        name = column["name"]
        if (column.get("json_type") or "string") != "string" or column.get("format") or column.get("enum"):
            continue
        if column.get("primary_key") or name.lower().endswith("_id") or _sensitive(name):
            continue
        values = [str(v) for v in sampled.get(name) or []]
        if values and sum(len(v) for v in values) / len(values) > LONG_TEXT:
            continue
        out.append(name)
    return out


def _pattern_suffices(context: dict) -> bool:
    """Whether the learned pattern's tables, described, do not leave the requirement declined for want of others.

    "Customers who ordered the same product more than once" after a pattern over customers and orders needs the
    products too: a search finds them.
    """
    if any(t not in _described(context) for t in _pattern_tables(context)):
        return True
    try:
        _plan(context)
    except PlanningError as error:
        # A question whose only answer is leaving the word out ('rented' with no rentals described) says
        # a table is missing, not that the user must choose.
        return bool(error.questions) and all(
            any((choice.mapping or {}).get("kind") != "ignore" for choice in question.choices)
            for question in error.questions
        )
    except LLMError:
        return False
    return True


def _explorer_calls(context: dict, messages: list[Message], tool_names: list[str]) -> list[ToolCall]:
    """The explorer's next calls: search, then describe the candidates, then probe values; none when done."""
    made = _calls_made(messages)
    done = {(c.name, json.dumps(c.arguments, sort_keys=True)) for c in made}

    def fresh(name: str, arguments: dict) -> bool:
        return name in tool_names and (name, json.dumps(arguments, sort_keys=True)) not in done

    searches = [c for c in made if c.name == "search_objects"]
    words = " ".join(w for w in _requirement_words(context) if not w.isdigit())
    learned = [t for t in _pattern_tables(context) if t not in _described(context)]
    if not made and learned and "describe_object" in tool_names:
        # A learned pattern names the objects: describe them at once, no search needed.
        return [
            ToolCall(id=f"call_describe_{i + 1}", name="describe_object", arguments={"object": name})
            for i, name in enumerate(learned)
        ]
    if _pattern_tables(context) and not searches and _pattern_suffices(context):
        searches = [ToolCall(id="learned", name="search_objects", arguments={})]
        context = {**context, "catalog": [{"name": t} for t in _pattern_tables(context)]}
    if not searches and "search_objects" in tool_names:
        arguments = {"query": words, "limit": 50} if words else {"limit": 50}
        return [ToolCall(id="call_search_1", name="search_objects", arguments=arguments)]
    listed = any("query" not in c.arguments for c in searches)
    if not listed and (not context.get("catalog") or _measured(context)) and "search_objects" in tool_names:
        # Nothing matched the words, or what is asked may live elsewhere: list every object.
        offset = 0
        return [ToolCall(id="call_list_1", name="search_objects", arguments={"limit": 50, "offset": offset})]
    pages = [c for c in searches if "query" not in c.arguments]
    if pages and context.get("catalog_next") is not None and len(pages) < MAX_CATALOG_PAGES:
        arguments = {"limit": 50, "offset": int(context["catalog_next"])}
        if fresh("search_objects", arguments):
            return [ToolCall(id=f"call_list_{len(pages) + 1}", name="search_objects", arguments=arguments)]
    described = _described(context)
    describe = [
        ToolCall(id=f"call_describe_{i + 1}", name="describe_object", arguments={"object": name})
        for i, name in enumerate(n for n in _candidates(context) if n not in described)
        if fresh("describe_object", {"object": name})
    ]
    if describe:
        return describe
    objects = [described[n] for n in _candidates(context) if n in described]
    named = {n for n in _candidates(context)[:3]}
    probes_made = sum(1 for c in made if c.name == "sample_rows")
    budget = MAX_PROBES - probes_made
    if budget <= 0:
        return []
    for tier, words_of in (
        ([o for o in objects if o["name"] in named], lambda ws: ws),
        # Beyond the objects the requirement names, only words written like values (EU, 'Berlin', Q3).
        (objects, lambda ws: [w for w in ws if w[:1].isupper() or any(ch.isdigit() for ch in w)]),
    ):
        value_words = words_of(_value_words(context, tier))
        probes = []
        for obj in tier:
            for column in _probe_columns(obj, context):
                for word in value_words:
                    arguments = {
                        "object": obj["name"],
                        "columns": [column],
                        "filters": [{"column": column, "op": "ilike", "value": word}],
                        "limit": 1,
                    }
                    if fresh("sample_rows", arguments):
                        probes.append(ToolCall(id=f"probe_{len(probes) + 1}", name="sample_rows", arguments=arguments))
        if probes:
            return probes[: min(MAX_PROBES_PER_STEP, budget)]
    return []


def _plan(context: dict) -> Plan:
    schema = _schema(context)
    if not schema or not schema.get("objects"):
        raise _declined(
            "No table or view this Role can read fits the request. Name the things or columns you mean, "
            "or ask an admin to grant the Role the tables you need."
        )
    exploration = context.get("exploration") or {}
    memories = [
        m for m in list(context.get("memories") or []) + list(context.get("rules") or []) if isinstance(m, dict)
    ]
    return plan_requirement(
        requirement=str(context.get("requirement") or ""),
        schema=schema,
        grants=context.get("grants"),
        memories=memories,
        dialect=context.get("dialect") or schema.get("engine") or "postgres",
        samples=context.get("samples") or exploration.get("samples"),
        glossary=[g for g in context.get("glossary") or [] if isinstance(g, dict)],
    )
