"""The six specialists of the spec: explorer, architect, security, implementer, tester, documenter."""

from __future__ import annotations

import json
from typing import Any

from agents.base import AgentFailed, AgentRecord, BaseAgent
from agents.models import AgentType, Phase
from agents.toolbox import ToolOutcome

_OBJECT_REF = {
    "type": "object",
    "properties": {"schema": {"type": ["string", "null"]}, "name": {"type": "string"}},
    "required": ["name"],
}

EXPLORATION_SCHEMA = {
    "type": "object",
    "properties": {
        "relevant_objects": {
            "type": "array",
            "items": {**_OBJECT_REF, "properties": {**_OBJECT_REF["properties"], "reason": {"type": "string"}}},
        },
        "summary": {"type": "string"},
    },
    "required": ["relevant_objects", "summary"],
}

DESIGN_SCHEMA = {
    "type": "object",
    "properties": {
        "method": {"type": "string", "enum": ["GET"]},
        "path": {"type": "string", "description": "kebab-case slug of the endpoint"},
        "description": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "string"}},
        "objects": {"type": "array", "items": _OBJECT_REF},
        "parameters": {"type": "object", "description": "JSON schema of the query parameters"},
        "response_columns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "json_type": {"type": "string"}},
                "required": ["name"],
            },
        },
        "sql": {"type": "string", "description": "read-only SQL with named binds written :name"},
        "rationale": {"type": "array", "items": {"type": "string"}},
        "reused_memory_id": {"type": ["string", "null"]},
    },
    "required": ["method", "path", "description", "objects", "parameters", "sql"],
}

REVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "issues": {"type": "array", "items": {"type": "string"}},
        "notes": {"type": "string"},
    },
    "required": ["approved", "issues"],
}

IMPLEMENTATION_SCHEMA = {
    "type": "object",
    "properties": {
        "sql": {"type": "string"},
        "parameters": {"type": "object"},
        "response_schema": {"type": "object"},
        "notes": {"type": "string"},
    },
    "required": ["sql", "parameters"],
}

TEST_PLAN_SCHEMA = {
    "type": "object",
    "properties": {
        "cases": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "params": {"type": "object"},
                    "expect": {"type": "object"},
                },
                "required": ["name", "params", "expect"],
            },
        }
    },
    "required": ["cases"],
}

DOCS_SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "markdown": {"type": "string"}},
    "required": ["markdown"],
}


def _memory_lines(memories: list[dict]) -> str:
    if not memories:
        return "(none yet)"
    return "\n".join(f"- [{m['type']}] {m['content'][:400]}" for m in memories)


def _schema_lines(schema: dict) -> str:
    lines = []
    for obj in schema.get("objects", []):
        cols = ", ".join(f"{c['name']} {c.get('type', '')}".strip() for c in obj.get("columns", []))
        fks = "; ".join(
            f"{','.join(fk['columns'])} -> {fk['ref_table']}({','.join(fk['ref_columns'])})"
            for fk in obj.get("foreign_keys", [])
        )
        lines.append(f"- {obj.get('kind')} {obj.get('schema')}.{obj['name']}({cols})" + (f" FK: {fks}" if fks else ""))
    return "\n".join(lines) or "(nothing discovered)"


class ExplorerAgent(BaseAgent):
    name = "explorer"
    agent_type = AgentType.EXPLORER
    phase = Phase.EXPLORATION
    output_schema = EXPLORATION_SCHEMA

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a database exploration agent. Determine which database objects (tables, views, procedures) "
            "are relevant to the requirement. Use the schema analysis tools to understand table structures and "
            "relationships, and small queries (limit 5) to see sample values. You may only read.\n"
            f"Relevant learned memories:\n{_memory_lines(context.get('memories', []))}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return f"{goal}\nRequirement: {context['requirement']}"

    def synthesis_prompt(self, context: dict) -> str:
        return (
            "List the relevant objects with the reason each matters, and summarise what you found.\n"
            f"Discovered so far:\n{_schema_lines(context['schema'])}"
        )

    def observe(self, outcome: ToolOutcome, context: dict, record: AgentRecord) -> dict:
        data = outcome.structured or {}
        if outcome.ok and "columns" in data and "kind" in data and "name" in data:
            objects = context["schema"]["objects"]
            if not any(o["name"] == data["name"] and o.get("schema") == data.get("schema") for o in objects):
                objects.append(data)
                record.discovery(
                    {
                        "object": f"{data.get('schema')}.{data['name']}",
                        "kind": data["kind"],
                        "columns": [c["name"] for c in data["columns"]],
                    }
                )
            return {"tool": outcome.name, "described": data["name"], "columns": [c["name"] for c in data["columns"]]}
        if outcome.ok and isinstance(data.get("rows"), list):
            # Samples are filed by the object the query tool reads (its name after "query_").
            key = outcome.name.removeprefix("query_")
            samples = context["samples"].setdefault(key, {})
            for row in data["rows"]:
                for column, value in row.items():
                    bucket = samples.setdefault(column, [])
                    if value is not None and value not in bucket and len(bucket) < 20:
                        bucket.append(value)
            return {"tool": outcome.name, "rows": data.get("row_count"), "sample": data["rows"][:3]}
        return super().observe(outcome, context, record)

    def postprocess(self, output: dict, context: dict, record: AgentRecord) -> dict:
        described = {o["name"] for o in context["schema"]["objects"]}
        missing = [o for o in output.get("relevant_objects", []) if o.get("name") not in described]
        for obj in missing:
            # Describe what the model named but did not look at, so later agents work from facts.
            for tool in self.available_tools():
                if tool.name.startswith("analyze_") and obj["name"] in tool.name:
                    outcome = self.runtime.toolbox.call(tool.name, {}, allowed=self.available_tools())
                    record.tool(outcome, duration_ms=0.0)
                    self.observe(outcome, context, record)
        if not context["schema"]["objects"]:
            raise AgentFailed("the explorer found no database object this role may read that fits the requirement")
        return {
            "schema": context["schema"],
            "samples": context["samples"],
            "relevant_objects": output.get("relevant_objects", []),
            "summary": output.get("summary", ""),
        }


class ArchitectAgent(BaseAgent):
    name = "architect"
    agent_type = AgentType.ARCHITECT
    phase = Phase.ARCHITECTURE
    output_schema = DESIGN_SCHEMA

    def system_prompt(self, context: dict) -> str:
        return (
            "You are an API architect. Design one read-only GET endpoint that answers the requirement with a "
            "single SQL query over the discovered objects. Use named bind parameters (:name) for every value a "
            "caller may change, give each a JSON schema with a default, bound the result with a :limit parameter, "
            "never select columns the role cannot see, and follow the business rules.\n"
            f"Business rules and learned patterns (reuse what fits; avoid anti-patterns):\n"
            f"{_memory_lines(context.get('memories', []))}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return (
            f"{goal}\nSQL dialect: {self.runtime.dialect}\nDiscovered objects:\n"
            f"{_schema_lines(context['exploration']['schema'])}\n"
            f"Relevant: {json.dumps(context['exploration'].get('relevant_objects', []))}"
        )

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the endpoint design as the JSON object requested."

    def postprocess(self, output: dict, context: dict, record: AgentRecord) -> dict:
        output.setdefault("shape", [])
        output.setdefault("rationale", [])
        output["method"] = "GET"
        return output


class SecurityAgent(BaseAgent):
    name = "security"
    agent_type = AgentType.SECURITY
    phase = Phase.SECURITY
    uses_tools = False
    output_schema = REVIEW_SCHEMA

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a security reviewer of generated database APIs. Reject a design that reads objects or "
            "columns the role may not read, writes anything, builds SQL from caller input instead of binding "
            "parameters, returns unbounded results, or exposes personal data the requirement does not ask for. "
            f"Business rules to enforce:\n{_memory_lines(context.get('rules', []))}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return f"{goal}\nDesign:\n{json.dumps(context['design'], indent=2, default=str)}"

    def synthesis_prompt(self, context: dict) -> str:
        return "Approve or reject the design, listing every issue, as the JSON object requested."

    def postprocess(self, output: dict, context: dict, record: AgentRecord) -> dict:
        issues = list(output.get("issues") or [])
        issues += context.get("automated_issues", [])
        approved = bool(output.get("approved")) and not context.get("automated_issues")
        return {"approved": approved, "issues": issues, "notes": output.get("notes", "")}


class ImplementerAgent(BaseAgent):
    name = "implementer"
    agent_type = AgentType.IMPLEMENTER
    phase = Phase.IMPLEMENTATION
    output_schema = IMPLEMENTATION_SCHEMA

    def system_prompt(self, context: dict) -> str:
        return (
            "You are an implementer. Turn the approved design into the final read-only SQL with named binds "
            "(:name), the JSON schema of its parameters (every bind exactly once, nothing more) and the JSON "
            "schema of one response row. Reuse code snippets from memory where they fit.\n"
            f"Learned code snippets and patterns:\n{_memory_lines(context.get('memories', []))}"
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        text = f"{goal}\nSQL dialect: {self.runtime.dialect}\nDesign:\n{json.dumps(context['design'], default=str)}"
        if context.get("failures"):
            text += f"\nThe previous implementation failed these checks; fix them:\n{json.dumps(context['failures'])}"
        return text

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the implementation as the JSON object requested."


class TesterAgent(BaseAgent):
    name = "tester"
    agent_type = AgentType.TESTER
    phase = Phase.TESTING
    output_schema = TEST_PLAN_SCHEMA

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a tester. Write concrete test cases for the endpoint: inputs (query parameters) and expected "
            "properties (status 200 or 400, min_rows/max_rows bounds, the columns, and sample values you computed "
            "independently with the query tools). Include at least one case with a bad parameter (status 400)."
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return f"{goal}\nImplementation:\n{json.dumps(context['implementation'], default=str)}"

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the test cases as the JSON object requested."

    def observe(self, outcome: ToolOutcome, context: dict, record: AgentRecord) -> dict:
        data = outcome.structured or {}
        if outcome.ok and isinstance(data.get("rows"), list):
            context.setdefault("observed", []).append({"tool": outcome.name, "rows": data["rows"][:20]})
            return {"tool": outcome.name, "rows": data.get("row_count"), "sample": data["rows"][:5]}
        return super().observe(outcome, context, record)

    def postprocess(self, output: dict, context: dict, record: AgentRecord) -> dict:
        cases = [c for c in output.get("cases", []) if isinstance(c, dict) and c.get("name")]
        if not cases:
            raise AgentFailed("the tester produced no test case")
        return {"cases": cases}


class DocumenterAgent(BaseAgent):
    name = "documenter"
    agent_type = AgentType.DOCUMENTER
    phase = Phase.DOCUMENTATION
    uses_tools = False
    output_schema = DOCS_SCHEMA

    def system_prompt(self, context: dict) -> str:
        return (
            "You are a technical writer. Document the endpoint for business users and developers in Markdown: "
            "what it answers, its parameters, the fields it returns and how the tests checked it."
        )

    def task_prompt(self, goal: str, context: dict) -> str:
        return (
            f"{goal}\nDesign:\n{json.dumps(context['design'], default=str)}\n"
            f"Implementation:\n{json.dumps(context['implementation'], default=str)}\n"
            f"Test results:\n{json.dumps(context.get('test_results', {}), default=str)}"
        )

    def synthesis_prompt(self, context: dict) -> str:
        return "Give the documentation as the JSON object requested."


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
