"""The six specialists of the spec: explorer, architect, security, implementer, tester, documenter.

Each has its prompts, the few tools of the Role's MCP server it may use (search_objects,
describe_object, sample_rows, try_sql) and its typed contract (agents.contracts). What the
prompts ask for is exactly what the contracts and the endpoint layer accept (a test renders
every prompt and checks it).
"""

from __future__ import annotations

import json
from typing import Any

from agents.base import AgentFailed, AgentRecord, BaseAgent
from agents.contracts import Design, Docs, Exploration, Implementation, Review, TestPlan
from agents.models import AgentType, Phase
from agents.toolbox import ToolOutcome
from endpoints.interpretation import RESERVED_PARAMETERS

MEMORY_CHARS = 1800
PATTERN_BLOCK = "```json"  # where a learned API pattern's machine-readable design begins


def memory_lines(memories: list[dict], *, patterns: bool = True) -> str:
    """Memories as an agent reads them: the prose, then the reusable pattern whole (not cut before it).

    Without `patterns` (the explorer, which looks for objects and values, not for a design to reuse) a memory
    is its prose alone: the designs of earlier requests would otherwise be read again at every one of its
    steps, and a request asked after many others would use up its budget reading them.
    """
    if not memories:
        return "(none yet)"
    lines = []
    for m in memories:
        content = m.get("content")
        text = json.dumps(content, default=str) if isinstance(content, dict) else str(content or "")
        if not patterns:
            text = text.split(PATTERN_BLOCK, 1)[0].rstrip()
        if len(text) > MEMORY_CHARS:
            text = text[:MEMORY_CHARS] + " ..."
        lines.append(f"- [{m.get('type')}] {text}")
    return "\n".join(lines)


def glossary_lines(glossary: list[dict]) -> str:
    if not glossary:
        return "(no terms defined yet)"
    return "\n".join(f"- '{g.get('term')}': {g.get('meaning') or json.dumps(g, default=str)}" for g in glossary)


def schema_lines(schema: dict) -> str:
    lines = []
    for obj in schema.get("objects", []):
        cols = ", ".join(f"{c['name']} {c.get('type', '')}".strip() for c in obj.get("columns", []))
        fks = "; ".join(
            f"{','.join(fk['columns'])} -> {fk['ref_table']}({','.join(fk['ref_columns'])})"
            for fk in obj.get("foreign_keys", [])
        )
        name = f"{obj.get('schema')}.{obj['name']}" if obj.get("schema") else obj["name"]
        lines.append(f"- {obj.get('kind', 'table')} {name}({cols})" + (f" FK: {fks}" if fks else ""))
    return "\n".join(lines) or "(nothing discovered)"


def samples_lines(samples: dict) -> str:
    lines = []
    for table, columns in (samples or {}).items():
        for column, values in (columns or {}).items():
            shown = ", ".join(repr(v) for v in list(values)[:8])
            lines.append(f"- {table}.{column}: {shown}")
    return "\n".join(lines[:80]) or "(none)"


def feedback_lines(feedback: list[str]) -> str:
    return "\n".join(f"- {f}" for f in feedback)


def _from_describe(data: dict) -> dict:
    """describe_object's answer in the introspected-schema shape the planner and the prompts use."""
    fks = []
    for fk in data.get("foreign_keys") or []:
        ref_schema, _, ref_table = str(fk.get("references") or "").rpartition(".")
        fks.append(
            {
                "columns": list(fk.get("columns") or []),
                "ref_schema": ref_schema or data.get("schema"),
                "ref_table": ref_table,
                "ref_columns": list(fk.get("ref_columns") or []),
            }
        )
    columns = [
        {
            "name": c["name"],
            "type": c.get("type") or "",
            "json_type": c.get("json_type") or "string",
            "format": c.get("format"),
            "nullable": bool(c.get("nullable", True)),
            "primary_key": bool(c.get("primary_key")),
            "comment": c.get("comment"),
            "enum": c.get("enum"),
        }
        for c in data.get("columns") or []
    ]
    return {
        "schema": data.get("schema"),
        "name": data["name"],
        "kind": data.get("kind", "table"),
        "comment": data.get("comment"),
        "columns": columns,
        "primary_key": [c["name"] for c in columns if c["primary_key"]],
        "foreign_keys": fks,
        "referenced_by": data.get("referenced_by") or [],
        "row_count": data.get("row_count"),
    }


class ExplorerAgent(BaseAgent):
    name = "explorer"
    agent_type = AgentType.EXPLORER
    phase = Phase.EXPLORATION
    tool_names = ("search_objects", "describe_object", "sample_rows")
    contract = Exploration

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a database exploration agent. Find the tables and views relevant to the requirement: "
            "search_objects finds objects by words, describe_object gives an object's columns, keys, foreign keys "
            "and sample values, sample_rows shows a few rows (filters look for a value in a column). Describe every "
            "object the requirement may need, including the tables that join them, and look for the values the "
            "requirement names in the text columns. You may only read.\n"
            f"Business terms of this database:\n{glossary_lines(context.get('glossary', []))}\n"
            f"Relevant learned memories:\n{memory_lines(context.get('memories', []), patterns=False)}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return f"{goal}\nRequirement: {context['requirement']}"

    def synthesis_prompt(self, context: dict) -> str:
        return (
            "List the relevant objects (their names as describe_object gave them) with the reason each matters, "
            "and summarise what you found.\n"
            f"Described so far:\n{schema_lines(context['schema'])}"
        )

    def observe(self, outcome: ToolOutcome, context: dict, record: AgentRecord) -> dict:
        data = outcome.structured or {}
        if outcome.ok and outcome.name == "describe_object" and "columns" in data:
            described = _from_describe(data)
            objects = context["schema"]["objects"]
            if not any(o["name"] == described["name"] and o.get("schema") == described.get("schema") for o in objects):
                objects.append(described)
                record.discovery(
                    {
                        "object": f"{described.get('schema')}.{described['name']}",
                        "kind": described["kind"],
                        "columns": [c["name"] for c in described["columns"]],
                    }
                )
            for column, values in (data.get("sample_values") or {}).items():
                bucket = context["samples"].setdefault(described["name"], {}).setdefault(column, [])
                bucket.extend(v for v in values if v not in bucket)
            return {
                "tool": outcome.name,
                "described": described["name"],
                "columns": [c["name"] for c in described["columns"]],
                "foreign_keys": described["foreign_keys"],
                "referenced_by": described["referenced_by"],
                "sample_values": data.get("sample_values") or {},
            }
        if outcome.ok and outcome.name == "sample_rows" and isinstance(data.get("rows"), list):
            table = str(outcome.arguments.get("object") or "").rpartition(".")[2]
            samples = context["samples"].setdefault(table, {})
            for row in data["rows"]:
                for column, value in row.items():
                    bucket = samples.setdefault(column, [])
                    if value is not None and value not in bucket and len(bucket) < 20:
                        bucket.append(value)
            return {"tool": outcome.name, "object": table, "rows": len(data["rows"]), "sample": data["rows"][:3]}
        if outcome.ok and outcome.name == "search_objects":
            catalog = context.setdefault("catalog", [])
            known = {(o.get("schema"), o.get("name")) for o in catalog}
            catalog += [o for o in data.get("objects") or [] if (o.get("schema"), o.get("name")) not in known]
            if "query" not in outcome.arguments:
                context["catalog_next"] = data.get("next_offset")
            return {
                "tool": outcome.name,
                "objects": [o.get("name") for o in data.get("objects") or []],
                "total": data.get("total"),
                "next_offset": data.get("next_offset"),
            }
        return super().observe(outcome, context, record)

    def postprocess(self, output: Exploration, context: dict, record: AgentRecord) -> dict:
        described = {o["name"] for o in context["schema"]["objects"]}
        for obj in output.relevant_objects:
            name = obj.object.rpartition(".")[2]
            if name in described:
                continue
            # Describe what the model named but did not look at, so later agents work from facts.
            outcome = self.runtime.toolbox.call(
                "describe_object", {"object": obj.object}, allowed=self.available_tools()
            )
            record.tool(outcome, duration_ms=0.0)
            self.observe(outcome, context, record)
        if not context["schema"]["objects"]:
            raise AgentFailed("no table or view this role may read fits the requirement")
        return {
            "schema": context["schema"],
            "samples": context["samples"],
            "relevant_objects": [o.model_dump() for o in output.relevant_objects],
            "summary": output.summary,
        }


INTERPRETATION_GUIDE = (
    "The interpretation says what the endpoint means, element by element, and every element carries `phrase`: "
    "the exact words of the requirement it accounts for. Every word of the requirement that is not a plain "
    "function word must lie in some element's phrase, and the platform checks that (and that the SQL does what "
    "the interpretation says) before anything is offered. Entities are table instances with an alias; an entity "
    "other than the first joins an earlier one along a foreign key (`on`: pairs of [its column, the other's "
    "column]). Columns are always {entity alias, column}. 'a given X' or 'a specific X' is a required parameter "
    "used by a filter; a year or a period is a time window (start inclusive, end exclusive); 'never', 'no' or "
    "'without' related rows is an exists element with negated true; 'most recent' or 'latest' orders by a date "
    "descending; 'each month' or 'monthly' is a group key with bucket 'month'; 'top N' is a limit of N with an "
    "ordering; 'more than N' on a count or total is a having condition; people's names are their first and last "
    "name columns. Parameters are named after what they mean, never "
    + ", ".join(sorted(RESERVED_PARAMETERS))
    + " (the platform keeps those for paging), and every parameter is used by some element. Put what you had to "
    "assume into assumptions."
)


class ArchitectAgent(BaseAgent):
    name = "architect"
    agent_type = AgentType.ARCHITECT
    phase = Phase.ARCHITECTURE
    tool_names = ("describe_object", "try_sql")
    contract = Design

    def system_prompt(self, context: dict) -> str:
        return (
            "You are an API architect. Design one read-only GET endpoint that answers the requirement with a single "
            "SQL SELECT over the discovered objects, and say exactly what it means.\n"
            f"{INTERPRETATION_GUIDE}\n"
            "The SQL uses named binds (:name) for the parameters, reads only columns the role can see, and does not "
            "page the rows itself (no LIMIT unless the requirement asks for a number of rows). The path is "
            "kebab-case (lowercase words and digits joined by hyphens). You may try your SQL with try_sql. "
            "If you cannot tell what a phrase means in this database, do not guess: answer with questions "
            "(each with choices drawn from the schema and the data) instead of a design.\n"
            f"Business terms of this database:\n{glossary_lines(context.get('glossary', []))}\n"
            "Learned patterns (reuse what fits exactly; avoid anti-patterns):\n"
            f"{memory_lines(context.get('memories', []))}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        text = (
            f"{goal}\nRequirement: {context['requirement']}\nSQL dialect: {self.runtime.dialect}\n"
            f"Discovered objects:\n{schema_lines(context['exploration']['schema'])}\n"
            f"Sample values:\n{samples_lines(context['exploration'].get('samples') or {})}"
        )
        if context.get("feedback"):
            text += "\nThe previous design was not accepted, for these reasons; fix every one:\n" + feedback_lines(
                context["feedback"]
            )
        return text

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the endpoint design (path, description, interpretation, sql, rationale), or questions."

    def postprocess(self, output: Design, context: dict, record: AgentRecord) -> dict:
        return output.model_dump(by_alias=True, exclude_none=True)


class SecurityAgent(BaseAgent):
    name = "security"
    agent_type = AgentType.SECURITY
    phase = Phase.SECURITY
    contract = Review

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a security reviewer of generated database APIs. Reject a design that reads objects or columns "
            "the role may not read, writes anything, builds SQL from caller input instead of binding parameters, or "
            "exposes personal data the requirement does not ask for. The platform's own checks found: "
            + (feedback_lines(context.get("automated_issues") or []) or "nothing")
            + f"\nBusiness rules to enforce:\n{memory_lines(context.get('rules', []))}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        design = {k: v for k, v in context["design"].items() if k in ("path", "description", "sql", "interpretation")}
        return f"{goal}\nRequirement: {context['requirement']}\nDesign:\n{json.dumps(design, indent=1, default=str)}"

    def synthesis_prompt(self, context: dict) -> str:
        return "Approve or reject the design, listing every issue."

    def postprocess(self, output: Review, context: dict, record: AgentRecord) -> dict:
        issues = list(output.issues) + list(context.get("automated_issues") or [])
        approved = output.approved and not context.get("automated_issues")
        return {"approved": approved, "issues": issues, "notes": output.notes}


class ImplementerAgent(BaseAgent):
    name = "implementer"
    agent_type = AgentType.IMPLEMENTER
    phase = Phase.IMPLEMENTATION
    tool_names = ("try_sql",)
    contract = Implementation

    def system_prompt(self, context: dict) -> str:
        return (
            "You are an implementer. Turn the approved design into the final read-only SQL: the same meaning as its "
            "interpretation, the same named binds (:name), valid in the given dialect, and no LIMIT for paging "
            "(the platform pages the rows). You may run it with try_sql. Reuse code snippets from memory where they "
            f"fit.\nLearned code snippets and patterns:\n{memory_lines(context.get('memories', []))}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        design = {k: v for k, v in context["design"].items() if k in ("path", "sql", "interpretation")}
        text = (
            f"{goal}\nSQL dialect: {self.runtime.dialect}\n"
            f"Schema:\n{schema_lines(context['exploration']['schema'])}\n"
            f"Design:\n{json.dumps(design, default=str)}"
        )
        if context.get("failures"):
            text += (
                f"\nThe previous implementation failed these checks; fix them:\n{feedback_lines(context['failures'])}"
            )
        return text

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the implementation (sql, notes)."


class TesterAgent(BaseAgent):
    name = "tester"
    agent_type = AgentType.TESTER
    phase = Phase.TESTING
    tool_names = ("sample_rows", "try_sql")
    contract = TestPlan

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a tester. Write concrete test cases for the endpoint: query parameters and what the answer must "
            "be: status (200, 400 or 404), min_rows and max_rows bounds, the columns, a sample of values some row "
            "has, or the exact rows, computed independently with sample_rows or try_sql. Include a case with a bad "
            "parameter (status 400). The platform adds its own meaning tests derived from the interpretation."
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return f"{goal}\nEndpoint:\n{json.dumps(context['implementation'], default=str)}"

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the test cases."

    def observe(self, outcome: ToolOutcome, context: dict, record: AgentRecord) -> dict:
        data = outcome.structured or {}
        if outcome.ok and isinstance(data.get("rows"), list):
            context.setdefault("observed", []).append({"tool": outcome.name, "rows": data["rows"][:20]})
            return {"tool": outcome.name, "rows": len(data["rows"]), "sample": data["rows"][:5]}
        return super().observe(outcome, context, record)

    def postprocess(self, output: TestPlan, context: dict, record: AgentRecord) -> dict:
        return {"cases": [c.model_dump(exclude_none=True) for c in output.cases]}


class DocumenterAgent(BaseAgent):
    name = "documenter"
    agent_type = AgentType.DOCUMENTER
    phase = Phase.DOCUMENTATION
    contract = Docs

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a technical writer. Explain for business users what the endpoint answers, how it works and how "
            "it was checked, in Markdown. The platform adds the reference part (parameters, fields, live URLs, "
            "examples) itself: do not repeat it."
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return (
            f"{goal}\nWhat it means: {context.get('meaning', '')}\n"
            f"Design:\n{json.dumps({k: context['design'].get(k) for k in ('description', 'rationale')}, default=str)}\n"
            f"Test results:\n{json.dumps(context.get('test_results', {}), default=str)}"
        )

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the documentation (summary, markdown)."


AGENTS: dict[str, type[BaseAgent]] = {
    cls.name: cls
    for cls in (ExplorerAgent, ArchitectAgent, SecurityAgent, ImplementerAgent, TesterAgent, DocumenterAgent)
}


def agent_for_task(task: str) -> str:
    """Pick the specialist best suited to a request for help, by what the task asks for."""
    words = task.lower()
    table: list[tuple[tuple[str, ...], str]] = [
        (("explore", "describe", "column", "table", "schema", "find"), "explorer"),
        (("test", "verify", "check rows"), "tester"),
        (("review", "security", "safe"), "security"),
        (("document", "docs"), "documenter"),
        (("design", "endpoint shape"), "architect"),
    ]
    for keywords, agent in table:
        if any(k in words for k in keywords):
            return agent
    return "implementer"


__all__: list[Any] = ["AGENTS", "agent_for_task"]
