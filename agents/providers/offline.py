"""The offline provider: answers the six agents deterministically from the planner, with no key and no network.

It behaves like an LLM that always follows the same reasoning. Every call says which agent is
asking through `context` (the real providers ignore it):

    context = {
        "agent": "explorer" | "architect" | "security" | "implementer" | "tester" | "documenter",
        "step": "think" (default) | "reflect" | "synthesize" (no more tool calls),
        "requirement": str,
        "schema": dict (roles.introspection shape; the explorer may not have it yet),
        "samples": {table: {column: [distinct values]}} (optional, from the explorer),
        "grants": [Grant or permission dict] (optional),
        "memories": [{"id", "type", "content"}] (optional; see agents/planner/README.md),
        "dialect": "postgres" | "mysql" | "sqlite" (default: schema["engine"]),
        "plan" or "design": Plan.to_dict() / the architect's output (security, implementer, tester, documenter),
        "implementation": {"sql", "parameters", ...} (tester, documenter; overrides the design's SQL),
        "exploration": {"schema", "samples", ...} (architect: used when "schema" is absent),
        "tools": [tool names or {"name": ...}] (optional; the `tools` argument wins when given),
        "explored" or "called": [tool names already called] (tool calls in `messages` count too),
        "test_failures": [{"name", "message"}] (implementer's fix round),
        "base_url": str, "endpoint_url": str (documenter, optional),
    }

`structured` of the Completion, per agent (always a dict; matches what each agent needs):

- explorer, think/synthesize: {"reasoning", "summary", "relevant_objects": [{"schema", "name", "reason"}],
  "tools_needed": [tool names], "goal_achieved": bool}; `tool_calls` asks for analyze_<table>_schema of each
  candidate table first, then query_<table> with {"limit": 5}; no tool calls once everything relevant is seen.
- any agent, step "reflect": {"goal_achieved": bool, "progress": str, "next_steps": [str], "blockers": [str]}
  (the explorer's goal is achieved when every candidate table has been analysed and sampled;
  the other agents finish in one step).
- architect: Plan.to_dict() flattened (method, path, description, shape, objects as [{"schema", "name"}],
  parameters, sql, response_columns, rationale, confidence, steps, steps_saved, reused_memory_id) plus
  "reasoning" and "thoughts".
- security: {"approved": bool, "issues": ["rule: message"], "checks": [{"rule", "passed", "detail"}],
  "notes": str}. Rules: read_only, bounded, parameters_bound, granted_objects, denied_columns,
  pii_columns (PII only when the requirement asks for it).
- implementer: {"sql", "parameters", "response_columns", "response_schema", "method", "path", "changes": [str],
  "notes"}; with "test_failures" (or "failures") it makes one fix (re-plan without a failing column, or a
  smaller limit).
- tester: {"cases": [{"name", "params", "expect": {"status", "min_rows", "max_rows", "columns"}}], "notes"}.
- documenter: {"title", "summary", "markdown"}; `text` is the Markdown too.

A requirement the planner cannot design raises LLMError whose message says, in plain words, what was
understood, what was not and what to do next; when the planner can ask instead, the error's `questions`
holds them (endpoints.interpretation.Question as dicts: id, phrase, text, kind, choices, allow_other).
`context["glossary"]` (a list of glossary mappings, learning.glossary) is passed to the planner.
Usage is estimated as characters // 4 so token accounting works as with a real model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agents.planner import Plan, PlanningError, plan_requirement
from agents.planner.intent import read_phrases
from agents.planner.planner import _memory_content
from agents.planner.sql import ROW_LIMIT_PARAM, bind_names, normalize_dialect, sql_parses
from agents.planner.vocabulary import (
    FILLER_WORDS,
    MONEY_WORDS,
    SECRET_WORDS,
    SENSITIVE_WORDS,
    STOPWORDS,
    name_tokens,
    tokenize,
    variants,
    word_score,
)

from .base import Completion, LLMError, Message, ToolCall, ToolSpec, Usage

AGENTS = ("explorer", "architect", "security", "implementer", "tester", "documenter")
MAX_EXPLORED_TABLES = 8
MAX_MEASURED_TABLES = 16
SAMPLE_ROWS = 5
MAX_SAFE_LIMIT = 1000
WRITE_WORDS = re.compile(r"\b(insert|update|delete|merge|drop|alter|create|truncate|grant|revoke|call|exec)\b", re.I)


class OfflineProvider:
    """A deterministic stand-in for an LLM, built on agents.planner; see the module docstring for the protocol."""

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
            structured=structured,
            usage=Usage(input_tokens=max(1, prompt_chars // 4), output_tokens=max(1, output_chars // 4)),
            model=self.model,
            stop_reason="tool_use" if calls else "end_turn",
        )

    # Explorer -----------------------------------------------------------------------------------

    def _explorer(self, context, messages, tool_names):
        learned = _pattern_tables(context, tool_names)
        candidates = learned or _explorer_candidates(context, tool_names)
        done = _called_tools(context, messages)
        pending = [f"analyze_{t}_schema" for t in candidates if f"analyze_{t}_schema" not in done]
        pending = [n for n in pending if n in tool_names]
        if learned:
            # A learned pattern names the objects: describe and sample them in one step.
            pending += [f"query_{t}" for t in candidates if f"query_{t}" not in done and f"query_{t}" in tool_names]
        if context.get("step") == "synthesize":
            pending = []
        elif not pending:
            pending = [f"query_{t}" for t in candidates if f"query_{t}" not in done and f"query_{t}" in tool_names]
        calls = [
            ToolCall(
                id=f"call_{i + 1}_{name}",
                name=name,
                arguments={"limit": SAMPLE_ROWS} if name.startswith("query_") else {},
            )
            for i, name in enumerate(pending)
        ]
        if learned and calls:
            # The pattern's SQL says which columns its values filter: look for this requirement's values there now.
            calls += [
                ToolCall(id=f"probe_{i + 1}_{name}", name=name, arguments=arguments)
                for i, (name, arguments) in enumerate(_pattern_probes(context, messages, tool_names, learned))
            ]
        if not calls and context.get("step") != "synthesize":
            calls = [
                ToolCall(id=f"probe_{i + 1}_{name}", name=name, arguments=arguments)
                for i, (name, arguments) in enumerate(_value_probes(context, messages, tool_names, candidates))
            ]
        if calls:
            reasoning = (
                f"To answer '{context.get('requirement', '')}' the relevant objects look like {', '.join(candidates)}; "
                f"next I call {', '.join(c.name for c in calls)}."
            )
        else:
            reasoning = f"Analysed and sampled {', '.join(candidates) or 'nothing'}; exploration is complete."
        schema_of = {o["name"]: o.get("schema") for o in (_schema(context) or {}).get("objects") or []}
        structured = {
            "reasoning": reasoning,
            "summary": reasoning,
            "relevant_objects": [
                {
                    "schema": schema_of.get(t),
                    "name": t,
                    "reason": "named by, or joined to what is named by, the requirement",
                }
                for t in candidates
            ],
            "tools_needed": [c.name for c in calls],
            "goal_achieved": not calls,
        }
        return reasoning, structured, calls

    # Architect ----------------------------------------------------------------------------------

    def _architect(self, context, messages, tool_names):
        plan = _plan(context)
        structured = {
            **plan.to_dict(),
            "objects": [{"schema": schema, "name": name} for schema, name in plan.objects],
            "reasoning": " ".join(plan.rationale),
            "thoughts": list(plan.rationale),
        }
        text = f"Design: {plan.method} /{plan.path} ({' + '.join(plan.shape)}).\n" + "\n".join(
            f"- {step}" for step in plan.rationale
        )
        return text, structured, []

    # Security -----------------------------------------------------------------------------------

    def _security(self, context, messages, tool_names):
        plan = _plan_dict(context)
        checks = security_checks(
            plan=plan,
            requirement=str(context.get("requirement") or plan.get("requirement") or ""),
            grants=context.get("grants"),
            dialect=normalize_dialect(context.get("dialect") or plan.get("dialect")),
        )
        issues = [f"{c['rule']}: {c['detail']}" for c in checks if not c["passed"]]
        approved = not issues
        reasoning = (
            "Approved: read-only, bounded, every value bound, only granted objects and columns, no unrequested PII."
            if approved
            else "Rejected: " + "; ".join(issues)
        )
        structured = {"approved": approved, "issues": issues, "checks": checks, "notes": reasoning}
        return reasoning, structured, []

    # Implementer --------------------------------------------------------------------------------

    def _implementer(self, context, messages, tool_names):
        plan = _plan_dict(context)
        failures = list(context.get("test_failures") or context.get("failures") or [])
        changes: list[str] = []
        if failures:
            plan, changes = _fix(plan, failures, context)
        structured = {
            "sql": plan["sql"],
            "parameters": plan["parameters"],
            "response_columns": plan.get("response_columns", []),
            "response_schema": _row_schema(plan.get("response_columns") or []),
            "method": plan.get("method", "GET"),
            "path": plan.get("path", ""),
            "changes": changes,
            "notes": (
                "Implemented the design as one parameterised SELECT."
                if not failures
                else "Fix round: " + ("; ".join(changes) if changes else "no change found for these failures")
            ),
        }
        return structured["notes"] + "\n\n" + plan["sql"], structured, []

    # Tester -------------------------------------------------------------------------------------

    def _tester(self, context, messages, tool_names):
        plan = _plan_dict(context)
        cases = endpoint_test_cases(plan)
        text = "Test cases:\n" + "\n".join(f"- {c['name']}: {json.dumps(c['params'])}" for c in cases)
        return text, {"cases": cases, "notes": f"{len(cases)} cases: defaults, bounds and bad input."}, []

    # Documenter ---------------------------------------------------------------------------------

    def _documenter(self, context, messages, tool_names):
        plan = _plan_dict(context)
        markdown = documentation_for(
            plan,
            base_url=context.get("endpoint_url") or context.get("base_url"),
            reference=not context.get("reference_docs"),
            tests=context.get("test_results"),
        )
        title = plan.get("description") or plan.get("path", "")
        return markdown, {"title": title, "summary": title, "markdown": markdown}, []

    # Reflection ---------------------------------------------------------------------------------

    def _reflect(self, agent, context, messages, tool_names):
        if agent == "explorer":
            candidates = _pattern_tables(context, tool_names) or _explorer_candidates(context, tool_names)
            done = _called_tools(context, messages)
            pending = [
                (t, name)
                for t in candidates
                for name in (f"analyze_{t}_schema", f"query_{t}")
                if name in tool_names and name not in done
            ]
            missing = [name for _, name in pending]
            unexplored = {t for t, _ in pending}
            if not missing:
                missing = [
                    f"{name} {json.dumps(arguments['filters'][0])}"
                    for name, arguments in _value_probes(context, messages, tool_names, candidates)
                ]
            achieved = not missing
            structured = {
                "goal_achieved": achieved,
                "progress": f"explored {len(candidates) - len(unexplored)} of {len(candidates)} relevant objects",
                "next_steps": missing,
                "blockers": [],
            }
        else:
            structured = {"goal_achieved": True, "progress": f"{agent} answered", "next_steps": [], "blockers": []}
        text = ("Goal achieved." if structured["goal_achieved"] else "Not yet: ") + "; ".join(structured["next_steps"])
        return text, structured, []


# Helpers used by the agents too -------------------------------------------------------------------


def _names(tools: list) -> list[str]:
    return [str(t.get("name")) if isinstance(t, dict) else str(getattr(t, "name", t)) for t in tools]


def _schema(context: dict) -> dict | None:
    exploration = context.get("exploration") or {}
    schema = context.get("schema") or exploration.get("schema")
    return schema if schema and schema.get("objects") else None


def _row_schema(columns: list[dict]) -> dict:
    properties = {}
    for column in columns:
        spec = {"type": column.get("json_type", "string")}
        if column.get("format"):
            spec["format"] = column["format"]
        properties[column["name"]] = spec
    return {"type": "object", "properties": properties}


def _called_tools(context: dict, messages: list[Message]) -> set[str]:
    done = {str(n) for n in list(context.get("explored") or []) + list(context.get("called") or [])}
    for message in messages:
        for call in message.tool_calls:
            done.add(call.name)
    return done


# The local embedder scores "Customers in the EU" against "... in the UK" near 0.48; shape and tables guard the rest.
PATTERN_SIMILARITY = 0.4


def _shape_hint(shape: set[str]) -> set[str]:
    """The kind of question a design answers, coarsely: measured or listed, windowed, anti-joined."""
    hint = {"measured" if shape & {"aggregate", "top_n"} else "listed"}
    return hint | (shape & {"time_window", "no_activity_since"})


def _requirement_hint(requirement: str) -> set[str]:
    p = read_phrases(requirement)
    shape = set()
    if p.metric or p.top_n is not None or p.grain:
        shape.add("aggregate")
    if p.window:
        shape.add("time_window")
    if p.negation_at is not None:
        shape.add("no_activity_since")
    return _shape_hint(shape)


def _pattern_tables(context: dict, tool_names: list[str]) -> list[str]:
    """Tables of the most similar learned pattern, when all of them are still reachable with these tools."""

    for memory in context.get("memories") or []:
        if memory.get("type") not in ("SUCCESS_PATTERN", "API_PATTERN"):
            continue
        if float(memory.get("similarity") or 0.0) < PATTERN_SIMILARITY:
            continue
        content = _memory_content(memory)
        if _shape_hint(set(content.get("shape") or [])) != _requirement_hint(str(context.get("requirement") or "")):
            continue  # a list pattern does not say where the revenue of a ranking lives
        objects = content.get("objects") or []
        tables = [str(o).split(".")[-1] for o in objects]
        words = [t.lower for t in tokenize(str(context.get("requirement") or "")) if t.lower not in STOPWORDS]
        named = [
            t
            for t in _explorer_candidates(context, tool_names, expand=False)
            if any(word_score(w, name_tokens(t)[-1]) == 1.0 for w in words)
        ]
        # Only when the pattern covers every table the requirement names outright: otherwise explore afresh.
        if tables and all(f"analyze_{t}_schema" in tool_names for t in tables) and set(named) <= set(tables):
            return tables
    return []


MAX_PROBE_WORDS = 4
MAX_PROBES_PER_STEP = 40
LONG_TEXT = 40  # sampled values longer than this on average are free text, not categories


def _value_words(context: dict, tables: list[dict]) -> list[str]:
    """Words of the requirement that may be values (EU, enterprise, open) rather than names of things.

    Not: stopwords (unless written in capitals, like US), words explained by a phrase (a time window,
    a metric...), numbers, ordinary filler, names of tables or columns, and values already known.
    """

    requirement = str(context.get("requirement") or "")
    phrases = read_phrases(requirement)
    schema = _schema(context) or {}
    # Names as written: "opened" (opened_at) names a column, "open" may still be a value of another.
    names = {t for o in schema.get("objects") or [] for t in name_tokens(o["name"])}
    names |= {t for o in tables for c in o.get("columns") or [] for t in name_tokens(c["name"])}
    name_heads = {name_tokens(o["name"])[-1] for o in schema.get("objects") or [] if name_tokens(o["name"])}
    known = {str(v).lower() for o in tables for c in o.get("columns") or [] for v in c.get("enum") or []}
    samples = context.get("samples") or {}
    for obj in tables:
        for values in (samples.get(f"query_{obj['name']}") or {}).values():
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
        if any(word_score(lower, n) >= 0.8 for n in name_heads):
            continue
        words.append(token.text)
    return words[:MAX_PROBE_WORDS]


def _probe_columns(obj: dict, context: dict) -> list[str]:
    """Text columns of a table whose values are categories worth probing (not keys, free text or personal data)."""
    key = f"query_{obj['name']}"
    sampled = ((context.get("samples") or {}).get(key) or {}) if isinstance(context.get("samples"), dict) else {}
    out = []
    for column in obj.get("columns") or []:
        name = column["name"]
        if (column.get("json_type") or "string") != "string" or column.get("format") or column.get("enum"):
            continue
        if column.get("primary_key") or name in (obj.get("primary_key") or []) or name.lower().endswith("_id"):
            continue
        if _sensitive(name):
            continue
        values = [str(v) for v in sampled.get(name) or []]
        if values and sum(len(v) for v in values) / len(values) > LONG_TEXT:
            continue
        out.append(name)
    return out


def _pattern_probes(
    context: dict, messages: list[Message], tool_names: list[str], tables: list[str]
) -> list[tuple[str, dict]]:
    """Probes of the columns a learned pattern filters on (alias.column = :param), for this requirement's words."""

    memory = next(
        (
            m
            for m in context.get("memories") or []
            if m.get("type") in ("SUCCESS_PATTERN", "API_PATTERN")
            and float(m.get("similarity") or 0.0) >= PATTERN_SIMILARITY
        ),
        None,
    )
    sql = str(_memory_content(memory).get("sql") or "") if memory else ""
    aliases = {a: t.split(".")[-1] for t, a in re.findall(r"\b(?:FROM|JOIN)\s+([\w.\"]+)\s+(\w+)", sql, re.I)}
    columns = [(aliases.get(a), c) for a, c, _ in re.findall(r"\b(\w+)\.\"?(\w+)\"?\s*=\s*:(\w+)", sql)]
    requirement = str(context.get("requirement") or "")
    phrases = read_phrases(requirement)
    names = {t for name in tool_names for t in name_tokens(name)}
    words = [
        t.text
        for t in tokenize(requirement)
        if not t.is_number
        and not phrases.explains(t.start, t.end)
        and (t.lower not in STOPWORDS or (t.text.isupper() and len(t.text) > 1))
        and t.lower not in FILLER_WORDS | MONEY_WORDS
        and not any(word_score(t.lower, n) >= 0.8 for n in names)
    ][:MAX_PROBE_WORDS]
    probes = []
    for table, column in columns:
        tool = f"query_{table}"
        if table in tables and tool in tool_names and not _sensitive(column):
            for word in words:
                condition = {"column": column, "op": "ilike", "value": word}
                probes.append((tool, {"filters": [condition], "columns": [column], "limit": 1}))
    return probes[:MAX_PROBES_PER_STEP]


def _value_probes(
    context: dict, messages: list[Message], tool_names: list[str], candidates: list[str]
) -> list[tuple[str, dict]]:
    """Query-tool calls that look for requirement words among the values of likely text columns.

    A word that matches is then among the samples the planner reads (query_<table>: {column: [value]});
    the tables the requirement names are probed first, their neighbours only for words still unmatched.
    """
    schema = _schema(context) or {}
    by_name = {o["name"]: o for o in schema.get("objects") or []}
    explored = [by_name[t] for t in candidates if t in by_name]
    if not explored:
        return []
    probed = set()
    for message in messages:
        for call in message.tool_calls:
            for condition in (call.arguments or {}).get("filters") or []:
                if isinstance(condition, dict) and condition.get("op") == "ilike":
                    probed.add((call.name, condition.get("column"), str(condition.get("value")).lower()))
    named = set(_explorer_candidates(context, tool_names, expand=False)) or {explored[0]["name"]}
    for tier in ([o for o in explored if o["name"] in named], explored):
        words = _value_words(context, tier)
        probes = []
        for obj in tier:
            tool = f"query_{obj['name']}"
            if tool not in tool_names:
                continue
            for column in _probe_columns(obj, context):
                for word in words:
                    if (tool, column, word.lower()) not in probed:
                        condition = {"column": column, "op": "ilike", "value": word}
                        probes.append((tool, {"filters": [condition], "columns": [column], "limit": 1}))
        if probes:
            return probes[:MAX_PROBES_PER_STEP]
    return []


def _explorer_candidates(context: dict, tool_names: list[str], *, expand: bool = True) -> list[str]:
    """Tables worth exploring: those the requirement names, their FK neighbours, else all (up to a bound).

    With expand=False only the tables the requirement itself names.
    """
    tables: list[str] = []
    for name in tool_names:
        match = re.fullmatch(r"analyze_(.+)_schema", name) or re.fullmatch(r"query_(.+)", name)
        if match and match.group(1) not in tables:
            tables.append(match.group(1))
    schema = _schema(context) or {}
    for obj in schema.get("objects") or []:
        if obj.get("kind", "table") in ("table", "view") and obj["name"] not in tables and not tool_names:
            tables.append(obj["name"])
    words = [t.lower for t in tokenize(str(context.get("requirement") or "")) if t.lower not in STOPWORDS]
    scored = []
    for table in tables:
        tokens = name_tokens(table)
        score = max((word_score(w, n) * (1.0 if n == tokens[-1] else 0.5) for w in words for n in tokens), default=0.0)
        # Without expansion, only tables whose head noun the requirement names.
        if score >= (0.5 if expand else 0.75):
            scored.append((-score, table))
    chosen = [t for _, t in sorted(scored)]
    if not expand:
        return chosen
    by_name = {o["name"]: o for o in schema.get("objects") or []}
    for table in list(chosen):
        for obj in by_name.values():
            related = obj["name"] == table and [fk["ref_table"] for fk in obj.get("foreign_keys") or []]
            related = related or (
                [obj["name"]] if any(fk["ref_table"] == table for fk in obj.get("foreign_keys") or []) else []
            )
            for name in related:
                if name in tables and name not in chosen:
                    chosen.append(name)
    if not chosen:
        chosen = sorted(tables)
    if _requirement_hint(str(context.get("requirement") or "")) & {"measured", "no_activity_since"}:
        # A measure may live in a table the requirement does not name (the orders behind "customers by revenue"),
        # activity in a table it does not name ("no activity"), and a table's children are only known once they
        # are described: look at every table, named ones first.
        chosen += [t for t in sorted(tables) if t not in chosen]
        return chosen[:MAX_MEASURED_TABLES]
    return chosen[:MAX_EXPLORED_TABLES]


def _plan(context: dict) -> Plan:
    schema = _schema(context)
    if not schema:
        raise LLMError(
            "the offline architect needs the explored schema (context['schema'] or ['exploration'])", retryable=False
        )
    exploration = context.get("exploration") or {}
    memories = [
        m for m in list(context.get("memories") or []) + list(context.get("rules") or []) if isinstance(m, dict)
    ]
    try:
        return plan_requirement(
            requirement=str(context.get("requirement") or ""),
            schema=schema,
            grants=context.get("grants"),
            memories=memories,
            dialect=context.get("dialect") or schema.get("engine") or "postgres",
            samples=context.get("samples") or exploration.get("samples"),
            glossary=[g for g in context.get("glossary") or [] if isinstance(g, dict)],
        )
    except PlanningError as error:
        failure = LLMError(str(error), retryable=False)
        failure.questions = [q.model_dump() for q in error.questions]  # type: ignore[attr-defined]
        raise failure from error


def _plan_dict(context: dict) -> dict:
    """The design under review: context['plan'] or ['design'], with ['implementation'] (sql, parameters) on top."""
    plan = context.get("plan") or context.get("design")
    if isinstance(plan, Plan):
        plan = plan.to_dict()
    elif isinstance(plan, dict) and not plan.get("sql") and isinstance(plan.get("design"), dict):
        plan = dict(plan["design"])
    elif not (isinstance(plan, dict) and plan.get("sql")):
        plan = _plan(context).to_dict()
    plan = dict(plan)
    implementation = context.get("implementation") or {}
    if isinstance(implementation, dict) and implementation.get("sql"):
        plan["sql"] = implementation["sql"]
        plan["parameters"] = implementation.get("parameters") or plan.get("parameters") or {}
        if implementation.get("response_columns"):
            plan["response_columns"] = implementation["response_columns"]
        elif (implementation.get("response_schema") or {}).get("properties") and not plan.get("response_columns"):
            plan["response_columns"] = [
                {"name": n, "json_type": s.get("type", "string")}
                for n, s in implementation["response_schema"]["properties"].items()
            ]
    return plan


def _sensitive(name: str) -> bool:
    tokens = set(name_tokens(name))
    return bool(tokens & (SENSITIVE_WORDS | SECRET_WORDS))


def security_checks(*, plan: dict, requirement: str, grants: list | None, dialect: str) -> list[dict]:
    """The security review's rules applied to a design; each check says whether it passed and why."""
    sql = str(plan.get("sql") or "")
    properties = (plan.get("parameters") or {}).get("properties") or {}
    checks = []

    def check(rule: str, passed: bool, detail: str) -> None:
        checks.append({"rule": rule, "passed": bool(passed), "detail": detail})

    read_only = sql_parses(sql, dialect) and not WRITE_WORDS.search(re.sub(r"'(?:[^']|'')*'", "''", sql))
    check("read_only", read_only, "one SELECT statement" if read_only else "the SQL is not a single read-only SELECT")

    limit_spec = properties.get(ROW_LIMIT_PARAM) or {}
    literal_limit = re.search(r"\bLIMIT\s+(\d+)\s*$", sql, re.I)
    bounded = (f":{ROW_LIMIT_PARAM}" in sql and 0 < int(limit_spec.get("maximum") or 0) <= MAX_SAFE_LIMIT) or bool(
        literal_limit and int(literal_limit.group(1)) <= MAX_SAFE_LIMIT
    )
    check(
        "bounded",
        bounded,
        f"at most {limit_spec.get('maximum') or (literal_limit and literal_limit.group(1))} rows"
        if bounded
        else f"no LIMIT with a maximum of at most {MAX_SAFE_LIMIT}",
    )

    binds = bind_names(sql)
    unbound = [b for b in binds if b not in properties]
    literals = re.findall(r"=\s*'((?:[^']|'')*)'", sql)
    spoken = {t.lower for t in tokenize(requirement)}
    inlined = [v for v in literals if v.lower() in spoken]
    check(
        "parameters_bound",
        not unbound and not inlined,
        "every value is a named bind with a declared parameter"
        if not unbound and not inlined
        else f"undeclared binds {unbound} or values written into the SQL {inlined}",
    )

    objects = [_object_key(o) for o in plan.get("objects") or []]
    if grants is not None:
        granted = _granted(grants)
        ungranted = [f"{s}.{n}" for s, n in objects if n not in granted]
        check(
            "granted_objects",
            not ungranted,
            "every object is granted" if not ungranted else f"not granted: {ungranted}",
        )
        denied = []
        for _, name in objects:
            rule = granted.get(name)
            if rule is None:
                continue
            allow, deny = rule
            for column in deny:
                if re.search(rf"\.{re.escape(column)}\b|\b{re.escape(column)}\b", sql):
                    denied.append(f"{name}.{column}")
            if allow is not None and len(objects) == 1:
                denied += [f"{name}.{c['name']}" for c in plan.get("response_columns") or [] if c["name"] not in allow]
        check("denied_columns", not denied, "no denied column is read" if not denied else f"denied columns: {denied}")
    else:
        check("granted_objects", True, "no grants given; the executor checks them at run time")
        check("denied_columns", True, "no grants given; the executor checks them at run time")

    mentioned = {v for t in tokenize(requirement) for v in (t.lower, t.lower.rstrip("s"))}
    pii = [
        c["name"]
        for c in plan.get("response_columns") or []
        if _sensitive(c["name"]) and not (set(name_tokens(c["name"])) & mentioned)
    ]
    check("pii_columns", not pii, "no personal data beyond what was asked" if not pii else f"unrequested PII: {pii}")
    return checks


def _object_key(value: Any) -> tuple[str | None, str]:
    if isinstance(value, dict):
        return value.get("schema"), value["name"]
    if isinstance(value, (list, tuple)):
        return value[0], value[1]
    schema, _, name = str(value).rpartition(".")
    return schema or None, name


def _granted(grants: list) -> dict[str, tuple[set[str] | None, set[str]]]:
    out: dict[str, tuple[set[str] | None, set[str]]] = {}
    for grant in grants:
        if isinstance(grant, dict):
            if "SELECT" not in {str(a).upper() for a in grant.get("actions") or []}:
                continue
            columns = grant.get("columns") or {}
            allow = set(columns["allow"]) if columns.get("allow") else None
            out[grant.get("objectName") or grant.get("object_name")] = (allow, set(columns.get("deny") or []))
        else:
            if "SELECT" not in {str(a).upper() for a in getattr(grant, "actions", ())}:
                continue
            allowed = getattr(grant, "allowed_columns", None)
            out[grant.object_name] = (set(allowed) if allowed is not None else None, set())
    return out


def _fix(plan: dict, failures: list, context: dict) -> tuple[dict, list[str]]:
    """One fix round: drop a column the database rejected, or shrink the limit when results were too large."""
    text = " ".join(str(f.get("message", f)) if isinstance(f, dict) else str(f) for f in failures)
    changes: list[str] = []
    missing = re.search(r"(?:no such column|unknown column|column)[:\s]+['\"`]?(?:\w+\.)?(\w+)['\"`]?", text, re.I)
    if missing and context.get("schema") and context.get("requirement"):
        column = missing.group(1)
        memories = [
            *list(context.get("memories") or []),
            {"id": "fix-round", "type": "ANTI_PATTERN", "content": f"exposes column {column}"},
        ]
        try:
            replanned = _plan({**context, "memories": memories}).to_dict()
        except LLMError:
            replanned = None
        if replanned and replanned["sql"] != plan["sql"]:
            changes.append(f"re-planned without column {column}")
            plan = replanned
    at_most = [int(n) for n in re.findall(r"expected at most (\d+)", text, re.I)]
    if at_most or re.search(r"too many rows|timeout|timed out|row cap|truncated|max_rows", text, re.I):
        properties = dict((plan.get("parameters") or {}).get("properties") or {})
        if ROW_LIMIT_PARAM in properties:
            spec = dict(properties[ROW_LIMIT_PARAM])
            current = int(spec.get("default") or 100)
            spec["default"] = max(1, min(at_most)) if at_most else max(1, current // 2)
            properties[ROW_LIMIT_PARAM] = spec
            plan = {**plan, "parameters": {**plan["parameters"], "properties": properties}}
            if at_most:
                changes.append(f"set the default {ROW_LIMIT_PARAM} to {spec['default']}, the most rows a test allows")
            else:
                changes.append(f"halved the default limit to {spec['default']}")
    return plan, changes


def endpoint_test_cases(plan: dict) -> list[dict]:
    """Concrete calls of the endpoint with the properties each answer must have."""
    properties = (plan.get("parameters") or {}).get("properties") or {}
    defaults = {name: spec.get("default") for name, spec in properties.items()}
    columns = [c["name"] for c in plan.get("response_columns") or []]
    limit = (properties.get(ROW_LIMIT_PARAM) or {}).get("default")
    shape = set(plan.get("shape") or [])
    max_rows = limit if limit is not None else (1 if "lookup" in shape else None)
    cases = [
        {
            "name": "defaults return the documented columns",
            "params": defaults,
            "expect": {"status": 200, "min_rows": 0, "max_rows": max_rows, "columns": columns},
        }
    ]
    if ROW_LIMIT_PARAM in properties:
        cases.append(
            {
                "name": f"{ROW_LIMIT_PARAM}=1 returns at most one row",
                "params": {**defaults, ROW_LIMIT_PARAM: 1},
                "expect": {"status": 200, "min_rows": 0, "max_rows": 1, "columns": columns},
            }
        )
        maximum = properties[ROW_LIMIT_PARAM].get("maximum")
        if maximum:
            cases.append(
                {
                    "name": f"a {ROW_LIMIT_PARAM} above the maximum is refused",
                    "params": {**defaults, ROW_LIMIT_PARAM: int(maximum) + 1},
                    "expect": {"status": 400},
                }
            )
    for name, spec in properties.items():
        if spec.get("type") == "integer" and name != ROW_LIMIT_PARAM:
            cases.append(
                {
                    "name": f"a non-integer {name} is refused",
                    "params": {**defaults, name: "not-a-number"},
                    "expect": {"status": 400},
                }
            )
        enum = spec.get("enum") or []
        others = [v for v in enum if v != spec.get("default")]
        if others:
            cases.append(
                {
                    "name": f"{name}={others[0]} is accepted",
                    "params": {**defaults, name: others[0]},
                    "expect": {"status": 200, "min_rows": 0, "max_rows": max_rows, "columns": columns},
                }
            )
    return cases


def documentation_for(
    plan: dict, *, base_url: str | None = None, reference: bool = True, tests: dict | None = None
) -> str:
    """Markdown for an endpoint: what it returns, its parameters, response columns, curl and Python calls.

    With reference=False only the narrative (what it answers, how it works, how it was tested) is
    written, for when the platform appends its own reference section with the live URLs.
    """
    properties = (plan.get("parameters") or {}).get("properties") or {}
    if not reference:
        narrative = [f"# {plan.get('description') or plan.get('path', '')}", ""]
        narrative += ["## How it works", "", *[f"- {step}" for step in plan.get("rationale") or []], ""]
        if tests:
            narrative += [
                "## How it was tested",
                "",
                f"{tests.get('passed', 0)} of {tests.get('passed', 0) + tests.get('failed', 0)} generated test cases "
                "passed against the live database.",
                "",
            ]
        return "\n".join(narrative)
    url = (base_url or "https://nectar.example.com/api/endpoints").rstrip("/") + "/" + plan.get("path", "")
    defaults = {n: s.get("default") for n, s in properties.items() if s.get("default") is not None}
    query = "&".join(f"{n}={v}" for n, v in defaults.items())
    lines = [
        f"# {plan.get('method', 'GET')} /{plan.get('path', '')}",
        "",
        plan.get("description") or "",
        "",
        "## Parameters",
        "",
        "| Name | Type | Default | Description |",
        "| --- | --- | --- | --- |",
    ]
    for name, spec in properties.items():
        kind = spec.get("type", "string") + (f" ({spec['format']})" if spec.get("format") else "")
        if spec.get("enum"):
            kind += " one of " + ", ".join(map(str, spec["enum"]))
        lines.append(f"| `{name}` | {kind} | `{spec.get('default')}` | {spec.get('description', '')} |")
    if not properties:
        lines.append("| (none) | | | |")
    lines += ["", "## Response", "", "A JSON list of rows with these fields:", ""]
    for column in plan.get("response_columns") or []:
        fmt = f", {column['format']}" if column.get("format") else ""
        lines.append(f"- `{column['name']}` ({column.get('json_type', 'string')}{fmt})")
    lines += [
        "",
        "## Examples",
        "",
        "```bash",
        f'curl -H "Authorization: Bearer $NECTAR_API_KEY" "{url}{"?" + query if query else ""}"',
        "```",
        "",
        "```python",
        "import httpx",
        "",
        "response = httpx.get(",
        f'    "{url}",',
        f"    params={json.dumps(defaults)},",
        '    headers={"Authorization": f"Bearer {NECTAR_API_KEY}"},',
        ")",
        "response.raise_for_status()",
        "rows = response.json()",
        "```",
        "",
        "## How it works",
        "",
        *[f"- {step}" for step in plan.get("rationale") or []],
        "",
    ]
    return "\n".join(lines)
