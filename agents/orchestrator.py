"""The orchestrator: a business requirement through the spec's phases to a tested, documented endpoint.

Phases run in the spec's order (exploration, architecture, security, implementation, testing,
documentation, learning). Each phase's output is saved on the execution as soon as it is done,
so a paused, interrupted or failed run keeps its partial results and a resumed run continues
from the first unfinished phase.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.base import AgentFailed, AgentRuntime, BaseAgent, ExecutionStopped
from agents.events import event_append, execution_touch
from agents.llm_usage import llm_call_observers
from agents.models import AgentExecution, AgentStatus, Phase
from agents.providers import MeteredProvider, UsageMeter, provider_for
from agents.specialists import AGENTS, agent_for_task
from agents.toolbox import McpToolbox
from endpoints.models import GeneratedEndpoint
from endpoints.services import (
    endpoint_auto_deploy_if_allowed,
    endpoint_create_draft,
    endpoint_markdown_docs,
    endpoint_run_tests,
    endpoint_update_draft,
    endpoint_validate,
)
from learning.services import learn_from_failure, learn_from_success, memory_retrieve
from mcpservers.services import instance_refresh_if_stale
from roles.executor import ExecutorError, sql_check

logger = logging.getLogger(__name__)

MEMORY_TYPES_FOR = {
    "explorer": ["BUSINESS_RULE", "SUCCESS_PATTERN", "API_PATTERN"],
    "architect": ["SUCCESS_PATTERN", "API_PATTERN", "BUSINESS_RULE", "ANTI_PATTERN"],
    "implementer": ["CODE_SNIPPET", "OPTIMIZATION", "SUCCESS_PATTERN"],
    "security": ["BUSINESS_RULE", "ANTI_PATTERN"],
}

ENGINE_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite", "mssql": "tsql", "oracle": "oracle"}


class PipelineFailed(Exception):
    def __init__(self, phase: str, reason: str):
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


def _memory_dicts(retrieved) -> list[dict]:
    return [
        {
            "id": str(r.memory.id),
            "type": r.memory.type,
            "content": r.memory.content,
            "tags": list(r.memory.tags or []),
            "similarity": round(r.similarity, 4),
        }
        for r in retrieved
    ]


class Orchestrator:
    def __init__(self, *, execution: AgentExecution, provider=None, on_progress=None):
        self.execution = execution
        self.role = execution.role
        self.meter = UsageMeter()
        from django.conf import settings

        base = provider or provider_for(organization=execution.organization)
        self.provider = MeteredProvider(
            base,
            self.meter,
            token_budget=settings.AGENT_TOKEN_BUDGET,
            observers=llm_call_observers(execution=execution, provider=base),
        )
        self.on_progress = on_progress
        self.state: dict[str, Any] = dict(execution.result or {})
        self.state.setdefault("phases", {})
        self.started = time.monotonic()

    # --- shared helpers ---
    def _emit(self, kind: str, **payload) -> None:
        event_append(
            execution=self.execution,
            kind=kind,
            phase=payload.get("phase", ""),
            agent=payload.get("agent", ""),
            payload=payload,
        )
        if self.on_progress:
            self.on_progress(kind, payload)

    def _save_state(self) -> None:
        execution_touch(execution=self.execution, result=self.state, heartbeat_at=timezone.now())

    def _memories(self, agent: str, text: str) -> list[dict]:
        types = MEMORY_TYPES_FOR.get(agent)
        if not types:
            return []
        try:
            retrieved = memory_retrieve(
                organization=self.execution.organization,
                text=text,
                types=types,
                k=8,
                execution=self.execution,
                agent=agent,
            )
        except Exception:
            logger.exception("memory retrieval failed; continuing without memories")
            return []
        memories = _memory_dicts(retrieved)
        if memories:
            self._emit("memories", agent=agent, count=len(memories), ids=[m["id"] for m in memories])
        return memories

    def _agent(self, name: str) -> BaseAgent:
        return AGENTS[name](self.runtime)

    def _help(self, requester: BaseAgent, agent_name: str, task: str, context: dict) -> dict:
        """Multi-agent collaboration: run another specialist on a sub-task and hand back its result."""
        chosen = agent_name or agent_for_task(task)
        self._emit("collaboration", agent=requester.name, helper=chosen, task=task)
        return self._agent(chosen).execute(task, context)

    def _phase(self, phase: str, work) -> Any:
        """Run one phase once: skip it when a resumed run already has its output."""
        if phase in self.state["phases"]:
            return self.state["phases"][phase]
        self.runtime.checkpoint()
        execution_touch(execution=self.execution, current_phase=phase)
        self._emit("phase", phase=phase, status="started")
        started = time.monotonic()
        output = work()
        self.state["phases"][phase] = output
        self.state.setdefault("durations", {})[phase] = round(time.monotonic() - started, 3)
        self._save_state()
        self._emit("phase", phase=phase, status="completed", seconds=self.state["durations"][phase])
        return output

    # --- the pipeline ---
    def run(self) -> dict:
        instance = getattr(self.role, "mcp_instance", None) if self.role else None
        if instance is None:
            raise PipelineFailed("exploration", "the role has no MCP server: enable MCP on the role first")

        instance = instance_refresh_if_stale(instance=instance)
        if instance.status not in ("ACTIVE",):
            raise PipelineFailed(
                "exploration", f"the role's MCP server is {instance.status}: {instance.status_reason or 'not ready'}"
            )
        dialect = ENGINE_DIALECTS.get(self.role.service.engine, "postgres")
        with McpToolbox(instance=instance) as toolbox:
            self.runtime = AgentRuntime(
                orchestration=self.execution,
                provider=self.provider,
                toolbox=toolbox,
                dialect=dialect,
                helper=self._help,
            )
            if not self.state.get("mcp_servers"):
                self.state["mcp_servers"] = [toolbox.server_label]
                execution_touch(execution=self.execution, mcp_servers_used=[toolbox.server_label])
            return self._run_phases()

    def _run_phases(self) -> dict:
        requirement = self.execution.business_requirement
        exploration = self._phase(Phase.EXPLORATION, lambda: self._explore(requirement))
        design = self._phase(Phase.ARCHITECTURE, lambda: self._design(requirement, exploration))
        self._phase(Phase.SECURITY, lambda: self._review(requirement, design))
        implementation = self._phase(Phase.IMPLEMENTATION, lambda: self._implement(requirement, exploration, design))
        testing = self._phase(Phase.TESTING, lambda: self._test(requirement, exploration, design, implementation))
        docs = self._phase(Phase.DOCUMENTATION, lambda: self._document(requirement, design, testing))
        return {"exploration": exploration, "design": design, "testing": testing, "documentation": docs}

    def _explore(self, requirement: str) -> dict:
        context = {
            "requirement": requirement,
            "schema": {"engine": self.role.service.engine, "objects": []},
            "samples": {},
            "memories": self._memories("explorer", requirement),
        }
        return self._agent("explorer").execute(f"Find database objects relevant to: {requirement}", context)

    def _design(self, requirement: str, exploration: dict) -> dict:
        memories = self._memories("architect", requirement)
        context = {"requirement": requirement, "exploration": exploration, "memories": memories}
        design = self._agent("architect").execute(f"Design optimal API architecture for: {requirement}", context)
        design["memories_used"] = [m["id"] for m in memories]
        return design

    def _review(self, requirement: str, design: dict) -> dict:
        automated: list[str] = []
        try:
            sql_check(role=self.role, sql=design.get("sql") or "", params=_defaults(design.get("parameters")))
        except ExecutorError as exc:
            automated.append(f"SQL check: {exc}")
        if not re.search(r"\bLIMIT\b", design.get("sql") or "", re.I) and "lookup" not in (design.get("shape") or []):
            automated.append("the result is not bounded by a LIMIT")
        memories = self._memories("security", requirement)
        context = {
            "requirement": requirement,
            "design": design,
            "rules": [m for m in memories if m["type"] == "BUSINESS_RULE"],
            "memories": memories,
            "automated_issues": automated,
        }
        review = self._agent("security").execute(f"Review the security of the API design for: {requirement}", context)
        if not review["approved"]:
            self.state["phases"][Phase.SECURITY] = review
            self._save_state()
            raise PipelineFailed(
                Phase.SECURITY,
                "the security review rejected the design: " + "; ".join(review["issues"] or ["no reason"]),
            )
        return review

    def _implement(
        self, requirement: str, exploration: dict, design: dict, *, failures: list | None = None, endpoint=None
    ) -> dict:
        """Have the implementer write the SQL, save it as a draft endpoint (or fix the given one) and validate it."""

        context = {
            "requirement": requirement,
            "exploration": exploration,
            "design": design,
            "memories": self._memories("implementer", requirement),
            "failures": failures or [],
        }
        implementer = self._agent("implementer")
        goal = f"Implement the API: GET /{design.get('path')}"
        errors: list[str] = []
        for attempt in (1, 2):
            output = implementer.execute(goal, context)
            fields = {
                "description": design.get("description", requirement),
                "parameters": output.get("parameters") or design.get("parameters") or {},
                "sql": output["sql"],
                "response_schema": output.get("response_schema") or _row_schema(design),
            }
            if endpoint is None:
                endpoint = endpoint_create_draft(
                    organization=self.execution.organization,
                    role=self.role,
                    execution=self.execution,
                    method="GET",
                    slug=design["path"],
                    tests=[],
                    docs="",
                    **fields,
                )
            else:
                endpoint = endpoint_update_draft(endpoint=endpoint, **fields)
            errors = endpoint_validate(endpoint=endpoint)
            if not errors:
                return {**output, "endpoint_id": str(endpoint.pk), "version": endpoint.version}
            self._emit("validation_failed", phase=Phase.IMPLEMENTATION, errors=errors, attempt=attempt)
            if attempt == 1 and any("column" in e or "object" in e for e in errors):
                # Ask the explorer to look again at what the implementation got wrong.
                help_context = {
                    "requirement": requirement,
                    "schema": {"engine": self.role.service.engine, "objects": []},
                    "samples": {},
                }
                context["exploration"] = implementer.ask_for_help(
                    "explorer", f"Describe the objects and columns needed to fix: {'; '.join(errors)}", help_context
                )
            context["failures"] = [{"validation": e} for e in errors]
        raise PipelineFailed(Phase.IMPLEMENTATION, "the implementation failed validation: " + "; ".join(errors))

    def _run_tests(self, endpoint, cases: list[dict]) -> dict:
        endpoint = endpoint_update_draft(endpoint=endpoint, tests=cases)
        return endpoint_run_tests(endpoint=endpoint)

    def _test(self, requirement: str, exploration: dict, design: dict, implementation: dict) -> dict:
        endpoint = GeneratedEndpoint.objects.get(pk=implementation["endpoint_id"])
        context = {"requirement": requirement, "design": design, "implementation": implementation}
        plan = self._agent("tester").execute(f"Test the endpoint GET /{endpoint.slug}", context)
        results = self._run_tests(endpoint, plan["cases"])
        self._emit("tests", phase=Phase.TESTING, **_test_summary(results))
        if _test_summary(results)["failed"]:
            # One fix round: the implementer sees the failures, then everything is tested again.
            failures = [c for c in results.get("cases", []) if not c.get("passed")]
            self._emit("fix_round", phase=Phase.TESTING, failures=len(failures))
            fixed = self._implement(requirement, exploration, design, failures=failures, endpoint=endpoint)
            endpoint.refresh_from_db()
            implementation.update(fixed)
            self.state["phases"][Phase.IMPLEMENTATION] = implementation
            results = self._run_tests(endpoint, plan["cases"])
            self._emit("tests", phase=Phase.TESTING, retest=True, **_test_summary(results))
            if _test_summary(results)["failed"]:
                raise PipelineFailed(
                    Phase.TESTING, "tests still failing after the fix round: " + _failure_text(results)
                )
        summary = _test_summary(results)
        return {"endpoint_id": str(endpoint.pk), "cases": plan["cases"], "results": results, **summary}

    def _document(self, requirement: str, design: dict, testing: dict) -> dict:
        endpoint = GeneratedEndpoint.objects.get(pk=testing["endpoint_id"])
        implementation = self.state["phases"][Phase.IMPLEMENTATION]
        context = {
            "requirement": requirement,
            "design": design,
            "implementation": implementation,
            "test_results": {k: testing[k] for k in ("passed", "failed")},
            # The platform renders the reference part (parameters, fields, live URLs, examples) itself.
            "reference_docs": True,
        }
        written = self._agent("documenter").execute(f"Document the endpoint GET /{endpoint.slug}", context)
        # The endpoint keeps the agent's prose; the reference part (parameters, fields, live URLs,
        # examples) is rendered around it from the endpoint itself, so it never goes stale.
        endpoint = endpoint_update_draft(endpoint=endpoint, docs=written["markdown"].strip())
        return {"markdown": endpoint_markdown_docs(endpoint=endpoint), "endpoint_id": str(endpoint.pk)}


def _defaults(parameters: dict | None) -> dict:
    props = (parameters or {}).get("properties") or {}
    return {name: spec.get("default") for name, spec in props.items()}


def _row_schema(design: dict) -> dict:
    return {
        "type": "object",
        "properties": {c["name"]: {"type": c.get("json_type") or "string"} for c in design.get("response_columns", [])},
    }


def _test_summary(results: dict) -> dict:
    cases = results.get("cases", [])
    passed = sum(1 for c in cases if c.get("passed"))
    return {"passed": passed, "failed": len(cases) - passed, "total": len(cases)}


def _failure_text(results: dict) -> str:
    failed = [f"{c.get('name')}: {c.get('message', 'failed')}" for c in results.get("cases", []) if not c.get("passed")]
    return "; ".join(failed[:5])


# --- running an execution end to end ---------------------------------------------------------


def execution_run(*, execution: AgentExecution, provider=None, on_progress=None) -> AgentExecution:
    """Run (or resume) the pipeline of a claimed execution and leave it COMPLETED, FAILED or PAUSED."""
    orchestrator = Orchestrator(execution=execution, provider=provider, on_progress=on_progress)
    started = time.monotonic()
    try:
        outputs = orchestrator.run()
    except ExecutionStopped as stop:
        orchestrator._save_state()
        _finish_stopped(execution, orchestrator, stop)
        return execution
    except (PipelineFailed, AgentFailed) as exc:
        phase = getattr(exc, "phase", execution.current_phase)
        _fail(execution, orchestrator, phase=phase, reason=str(exc), started=started)
        return execution
    except Exception as exc:
        logger.exception("execution %s crashed", execution.pk)
        _fail(
            execution,
            orchestrator,
            phase=execution.current_phase,
            reason=f"internal error ({type(exc).__name__})",
            started=started,
        )
        return execution
    _succeed(execution, orchestrator, outputs, started=started)
    return execution


def _metrics(orchestrator: Orchestrator, started: float) -> dict:
    agents_run = AgentExecution.objects.filter(parent=orchestrator.execution)
    steps = sum((a.performance_metrics or {}).get("iterations", 0) for a in agents_run)
    return {
        **orchestrator.meter.as_dict(),
        "duration_seconds": round(time.monotonic() - started, 3),
        "phase_seconds": orchestrator.state.get("durations", {}),
        "agent_steps": steps,
        "tool_calls": sum(len(a.tools_invoked or []) for a in agents_run),
    }


def _succeed(execution: AgentExecution, orchestrator: Orchestrator, outputs: dict, *, started: float) -> None:
    endpoint = GeneratedEndpoint.objects.get(pk=outputs["testing"]["endpoint_id"])
    execution_touch(execution=execution, status=AgentStatus.LEARNING, current_phase=Phase.LEARNING)
    orchestrator._emit("phase", phase=Phase.LEARNING, status="started")
    design = outputs["design"]
    metrics = _metrics(orchestrator, started)
    learned = learn_from_success(
        execution=execution,
        results={
            "requirement": execution.business_requirement,
            "exploration": {
                "objects": [
                    {"schema": o.get("schema"), "name": o["name"], "kind": o.get("kind")}
                    for o in outputs["exploration"]["schema"]["objects"]
                    if any(o["name"] == d.get("name") for d in design.get("objects", []))
                ]
                or outputs["exploration"]["schema"]["objects"]
            },
            "design": design,
            "sql": endpoint.sql,
            "tests": {k: outputs["testing"][k] for k in ("passed", "failed")} | {"cases": outputs["testing"]["cases"]},
            # The query's own time (testing ran it once per case), not the whole pipeline's.
            "performance": {
                "duration_ms": 1000
                * metrics["phase_seconds"].get(Phase.TESTING, 0.0)
                / max(1, outputs["testing"].get("total") or 1),
                "steps": metrics["agent_steps"],
            },
            "pattern": {
                "requirement": execution.business_requirement,
                "shape": list(design.get("shape") or []),
                "objects": [
                    f"{o.get('schema')}.{o['name']}" if o.get("schema") else o["name"]
                    for o in design.get("objects", [])
                ],
                "sql": endpoint.sql,
                "parameters": endpoint.parameters,
                "path": endpoint.slug,
                "response_columns": design.get("response_columns") or [],
                "dialect": orchestrator.runtime.dialect,
                "steps": design.get("steps"),
            },
        },
    )
    orchestrator._emit("phase", phase=Phase.LEARNING, status="completed", memories=len(learned))
    deployed = endpoint_auto_deploy_if_allowed(endpoint=endpoint)
    endpoint.refresh_from_db()
    orchestrator.state["endpoint"] = {
        "id": str(endpoint.pk),
        "slug": endpoint.slug,
        "version": endpoint.version,
        "status": endpoint.status,
        "auto_deployed": deployed,
    }
    with transaction.atomic():
        execution_touch(
            execution=execution,
            status=AgentStatus.COMPLETED,
            success=True,
            completed_at=timezone.now(),
            current_phase="",
            status_reason="",
            result=orchestrator.state,
            generated_code=endpoint.sql,
            test_results=outputs["testing"]["results"],
            documentation=outputs["documentation"]["markdown"],
            performance_metrics=metrics,
            discoveries=[f"{o.get('schema')}.{o['name']}" for o in outputs["exploration"]["schema"]["objects"]],
        )
    orchestrator._emit("status", status=AgentStatus.COMPLETED, endpoint=orchestrator.state["endpoint"])


def _avoid_from(reason: str, design: dict) -> dict:
    """What the next design should stay away from, read from why this one failed."""
    columns = sorted({name.split(".")[-1] for name in re.findall(r"'([\w.]+)'", reason) if "." in name})
    unbounded = []
    if re.search(r"\b(LIMIT|unbounded|not bounded|too many rows)\b", reason, re.I):
        unbounded = [o["name"] for o in design.get("objects", []) if o.get("name")]
    return {"columns": columns, "unbounded": unbounded}


def _fail(execution: AgentExecution, orchestrator: Orchestrator, *, phase: str, reason: str, started: float) -> None:
    orchestrator.state["error"] = {"phase": phase, "reason": reason}
    try:
        learn_from_failure(
            execution=execution,
            reason=reason,
            phase=phase or "unknown",
            attempted={
                "design": orchestrator.state["phases"].get(Phase.ARCHITECTURE),
                "sql": (orchestrator.state["phases"].get(Phase.IMPLEMENTATION) or {}).get("sql"),
                "avoid": _avoid_from(reason, orchestrator.state["phases"].get(Phase.ARCHITECTURE) or {}),
            },
        )
    except Exception:
        logger.exception("could not record the anti-pattern of execution %s", execution.pk)
    execution_touch(
        execution=execution,
        status=AgentStatus.FAILED,
        success=False,
        status_reason=reason,
        completed_at=timezone.now(),
        result=orchestrator.state,
        performance_metrics=_metrics(orchestrator, started),
    )
    orchestrator._emit("status", status=AgentStatus.FAILED, phase=phase, reason=reason)


def _finish_stopped(execution: AgentExecution, orchestrator: Orchestrator, stop: ExecutionStopped) -> None:
    if stop.status == AgentStatus.PAUSED:
        execution_touch(execution=execution, status=AgentStatus.PAUSED, status_reason=stop.reason)
    else:
        execution_touch(
            execution=execution,
            status=AgentStatus.FAILED,
            success=False,
            status_reason=stop.reason,
            completed_at=timezone.now(),
            result=orchestrator.state,
        )
    orchestrator._emit("status", status=stop.status, reason=stop.reason)
