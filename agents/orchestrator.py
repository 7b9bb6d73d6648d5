"""The orchestrator: a business requirement through the spec's phases to a verified, documented endpoint.

A small explicit state machine. The phases run in the spec's order (exploration, architecture,
security, implementation, testing, documentation, learning); platform checks sit between them
and send a design back with the reason when it falls short, for a bounded number of rounds:

    exploration -> architecture --(questions)--> WAITING for the user's answers
                   architecture --(coverage, shapes, compile or SQL realization fail)--> architecture
                   security --(rejected)--> architecture
                   implementation --(draft, SQL check or validation fail)--> implementation -> architecture
                   testing --(a test case fails)--> implementation;  --(a meaning test fails)--> architecture
                   documentation -> learning -> COMPLETED
    any state --(rounds used up)--> FAILED, with the reason in plain words

Each phase's output is saved on the execution as soon as it is done, with the token meter, so a
paused, interrupted or resumed run keeps its partial results and its budget.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.base import AgentFailed, AgentRuntime, BaseAgent, ExecutionStopped, PhaseBudget
from agents.events import event_append, execution_touch
from agents.llm_usage import llm_call_observers
from agents.models import AgentExecution, AgentStatus, Phase
from agents.planner.questions import question_unknown_word
from agents.planner.schema_index import SchemaIndex, Table
from agents.planner.vocabulary import variants
from agents.providers import MeteredProvider, UsageMeter, provider_for
from agents.specialists import AGENTS, agent_for_task
from agents.toolbox import McpToolbox
from agents.wording import plain_words
from endpoints.compiler import interpretation_compile
from endpoints.interpretation import Question, design_fingerprint, interpretation_parse
from endpoints.models import GeneratedEndpoint
from endpoints.services import (
    EndpointError,
    endpoint_auto_deploy_if_allowed,
    endpoint_create_draft,
    endpoint_markdown_docs,
    endpoint_record_verification,
    endpoint_run_tests,
    endpoint_update_draft,
    endpoint_validate,
)
from endpoints.sqldialect import ENGINE_DIALECTS
from endpoints.verification.checks import design_verify, endpoint_meaning_tests, role_catalog
from endpoints.verification.findings import failed
from endpoints.verification.policy import design_policy
from endpoints.verification.realization import realization_check
from endpoints.verification.wording import interpretation_describe
from learning.glossary import glossary_for_prompt
from learning.grammar import is_grammatical
from learning.services import learn_from_failure, learn_from_success, memory_retrieve, rejected_designs
from mcpservers.services import instance_refresh_if_stale
from roles.permissions import role_grants

logger = logging.getLogger(__name__)

MEMORY_TYPES_FOR = {
    "explorer": ["BUSINESS_RULE", "SUCCESS_PATTERN", "API_PATTERN"],
    "architect": ["SUCCESS_PATTERN", "API_PATTERN", "BUSINESS_RULE", "ANTI_PATTERN"],
    "implementer": ["CODE_SNIPPET", "OPTIMIZATION", "SUCCESS_PATTERN"],
    "security": ["BUSINESS_RULE", "ANTI_PATTERN"],
}
# Shares of the execution's token budget; a phase past its share stops with that reason.
PHASE_SHARES = {
    Phase.EXPLORATION: 0.25,
    Phase.ARCHITECTURE: 0.30,
    Phase.SECURITY: 0.05,
    Phase.IMPLEMENTATION: 0.15,
    Phase.TESTING: 0.15,
    Phase.DOCUMENTATION: 0.10,
}
ORDER = [
    Phase.EXPLORATION,
    Phase.ARCHITECTURE,
    Phase.SECURITY,
    Phase.IMPLEMENTATION,
    Phase.TESTING,
    Phase.DOCUMENTATION,
]


class PipelineFailed(Exception):
    def __init__(self, phase: str, reason: str):
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


class NeedsAnswers(Exception):
    """The run cannot go on without the requester: it waits with these questions."""

    def __init__(self, phase: str, questions: list[Question], understood: str = ""):
        super().__init__("; ".join(q.text for q in questions))
        self.phase = phase
        self.questions = questions
        self.understood = understood


class Retry(Exception):
    """Go back to `phase` with `reasons` (a platform check or a reviewer found a problem)."""

    def __init__(self, phase: str, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.phase = phase
        self.reasons = reasons


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
        self.state: dict[str, Any] = dict(execution.result or {})
        self.state.setdefault("phases", {})
        self.state.setdefault("rounds", {})
        self.state.setdefault("feedback", {})
        self.meter = UsageMeter()
        self.meter.restore(self.state.get("usage") or {})
        base = provider or provider_for(organization=execution.organization)
        self.provider = MeteredProvider(
            base,
            self.meter,
            token_budget=settings.AGENT_TOKEN_BUDGET,
            observers=llm_call_observers(execution=execution, provider=base),
        )
        self.on_progress = on_progress
        self.requirement = self.state.get("requirement") or execution.business_requirement
        self.runtime: AgentRuntime | None = None

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
        self.state["usage"] = self.meter.as_dict()
        execution_touch(execution=self.execution, result=self.state, heartbeat_at=timezone.now())

    def _memories(self, agent: str, text: str) -> list[dict]:
        """What earlier runs on this Service teach: patterns of this Role only, business rules of the Service.

        A pattern carries values of the Role it came from (enums, defaults inside its row filter), so
        another Role's patterns are never offered; business rules are the Service's.
        """
        types = MEMORY_TYPES_FOR.get(agent)
        if not types:
            return []
        patterns = [t for t in types if t != "BUSINESS_RULE"]
        searches = [(patterns, self.role)] if patterns else []
        if "BUSINESS_RULE" in types:
            searches.append((["BUSINESS_RULE"], None))
        retrieved = []
        for kinds, role in searches:
            try:
                retrieved += memory_retrieve(
                    organization=self.execution.organization,
                    text=text,
                    types=kinds,
                    k=8,
                    execution=self.execution,
                    agent=agent,
                    service=self.role.service,
                    role=role,
                )
            except Exception:
                logger.exception("memory retrieval failed; continuing without memories")
        retrieved.sort(key=lambda r: -r.score)
        memories = _memory_dicts(retrieved[:8])
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

    def _budget(self, phase: str) -> PhaseBudget:
        starts = self.state.setdefault("budget_starts", {})
        if phase not in starts:
            starts[phase] = self.meter.total_tokens
        limit = int(settings.AGENT_TOKEN_BUDGET * PHASE_SHARES.get(phase, 0.1))
        return PhaseBudget(phase=phase, limit=limit, start=int(starts[phase]))

    def _phase(self, phase: str, work) -> Any:
        """Run one phase once: skip it when a resumed run already has its output."""
        if phase in self.state["phases"]:
            return self.state["phases"][phase]
        self.runtime.checkpoint()
        self.runtime.budget = self._budget(phase)
        execution_touch(execution=self.execution, current_phase=phase)
        self._emit("phase", phase=phase, status="started")
        started = time.monotonic()
        output = work()
        self.state["phases"][phase] = output
        self.state.setdefault("durations", {})[phase] = round(time.monotonic() - started, 3)
        self._save_state()
        self._emit("phase", phase=phase, status="completed", seconds=self.state["durations"][phase])
        return output

    def _rewind(self, phase: str, reasons: list[str]) -> None:
        """Drop the outputs from `phase` on and remember why, for the agent that redoes it."""
        rounds = self.state["rounds"]
        rounds[phase] = rounds.get(phase, 0) + 1
        limit = settings.AGENT_DESIGN_ROUNDS if phase == Phase.ARCHITECTURE else settings.AGENT_FIX_ROUNDS
        if rounds[phase] > limit:
            raise PipelineFailed(phase, _plain_failure(phase, reasons, understood=self.state.get("understood", "")))
        self.state["feedback"][phase] = list(reasons)
        if phase == Phase.ARCHITECTURE and self.state.get("last_design"):
            self.state.setdefault("tried", []).append(self.state["last_design"])
        for later in ORDER[ORDER.index(phase) :]:
            self.state["phases"].pop(later, None)
            self.state.get("budget_starts", {}).pop(later, None)
        self._save_state()
        self._emit("retry", phase=phase, round=rounds[phase], reasons=reasons[:10])

    # --- the pipeline ---
    def run(self) -> dict:
        instance = getattr(self.role, "mcp_instance", None) if self.role else None
        if instance is None:
            raise PipelineFailed(
                "exploration",
                "This Role cannot build APIs yet: its MCP server is not switched on. Ask an admin to enable MCP on "
                "the Role, then submit the requirement again.",
            )
        instance = instance_refresh_if_stale(instance=instance)
        if instance.status not in ("ACTIVE",):
            raise PipelineFailed(
                "exploration",
                f"This Role's MCP server is not ready ({instance.get_status_display().lower()}: "
                f"{instance.status_reason or 'no reason given'}). Try again in a few minutes, or ask an admin to "
                "check the Role's MCP server.",
            )
        self.dialect = ENGINE_DIALECTS.get(self.role.service.engine, "postgres")
        self.catalog = role_catalog(role=self.role)
        self.glossary = glossary_for_prompt(service=self.role.service)
        with McpToolbox(instance=instance) as toolbox:
            self.runtime = AgentRuntime(
                orchestration=self.execution,
                provider=self.provider,
                toolbox=toolbox,
                dialect=self.dialect,
                helper=self._help,
            )
            if not self.state.get("mcp_servers"):
                self.state["mcp_servers"] = [toolbox.server_label]
                execution_touch(execution=self.execution, mcp_servers_used=[toolbox.server_label])
            while True:
                try:
                    return self._run_phases()
                except Retry as retry:
                    self._rewind(retry.phase, retry.reasons)

    def _run_phases(self) -> dict:
        exploration = self._phase(Phase.EXPLORATION, self._explore)
        design = self._phase(Phase.ARCHITECTURE, lambda: self._design(exploration))
        self._phase(Phase.SECURITY, lambda: self._review(design))
        implementation = self._phase(Phase.IMPLEMENTATION, lambda: self._implement(exploration, design))
        testing = self._phase(Phase.TESTING, lambda: self._test(design, implementation))
        docs = self._phase(Phase.DOCUMENTATION, lambda: self._document(design, testing))
        return {"exploration": exploration, "design": design, "testing": testing, "documentation": docs}

    def _explore(self) -> dict:
        context = {
            "requirement": self.requirement,
            "schema": {"engine": self.role.service.engine, "objects": []},
            "samples": {},
            "glossary": self.glossary,
            "memories": self._memories("explorer", self.requirement),
        }
        return self._agent("explorer").execute(f"Find database objects relevant to: {self.requirement}", context)

    def _design(self, exploration: dict) -> dict:
        memories = self._memories("architect", self.requirement)
        context = {
            "requirement": self.requirement,
            "exploration": exploration,
            "memories": memories,
            "glossary": self.glossary,
            "grants": role_grants(role=self.role),
            "feedback": self.state["feedback"].get(Phase.ARCHITECTURE, []),
        }
        try:
            design = self._agent("architect").execute(f"Design an API for: {self.requirement}", context)
        except AgentFailed as exc:
            questions = getattr(exc.__cause__, "questions", None) or []
            if questions:
                asked = [Question.model_validate(q) for q in questions]
                raise NeedsAnswers(Phase.ARCHITECTURE, asked, understood=_understood(exc.__cause__)) from exc
            raise
        if design.get("questions"):
            raise NeedsAnswers(Phase.ARCHITECTURE, [Question.model_validate(q) for q in design["questions"]])
        interp = interpretation_parse(design["interpretation"])
        fingerprint = design_fingerprint(interp)
        if fingerprint in self.state.setdefault("tried", []):
            # The same design again: another round would only repeat the same finding.
            reasons = self.state["feedback"].get(Phase.ARCHITECTURE) or ["the same design came back"]
            uncovered = self.state.get("uncovered") or []
            if uncovered:
                questions = self._questions_for(uncovered, exploration)
                if questions:
                    raise NeedsAnswers(Phase.ARCHITECTURE, questions)
            raise PipelineFailed(
                Phase.ARCHITECTURE,
                _plain_failure(Phase.ARCHITECTURE, reasons, understood=self.state.get("understood", "")),
            )
        self.state["last_design"] = fingerprint
        findings = design_verify(
            requirement=self.requirement,
            interpretation=interp,
            sql=design["sql"],
            catalog=self.catalog,
            dialect=self.dialect,
            terms=[str(g.get("term") or "") for g in self.glossary],
            left_out=[str(g.get("term") or "") for g in self.glossary if g.get("kind") == "ignore"],
        )
        blocking = failed(findings)
        meaning = interpretation_describe(interp, requirement=self.requirement)
        self.state["understood"] = meaning  # said when the run ends without an endpoint
        self._emit(
            "verification",
            phase=Phase.ARCHITECTURE,
            passed=not blocking,
            findings=[f.as_dict() for f in findings if not f.passed][:20],
            meaning=meaning,
        )
        if blocking:
            uncovered = [f.phrase for f in blocking if f.check == "coverage" and f.phrase]
            self.state["uncovered"] = uncovered
            rounds = self.state["rounds"].get(Phase.ARCHITECTURE, 0)
            if uncovered and rounds + 1 >= settings.AGENT_DESIGN_ROUNDS:
                questions = self._questions_for(uncovered, exploration)
                if questions:
                    raise NeedsAnswers(Phase.ARCHITECTURE, questions)
            raise Retry(Phase.ARCHITECTURE, [f.message for f in blocking])
        rejected = rejected_designs(
            organization=self.execution.organization, service=self.role.service, requirement=self.requirement
        )
        if fingerprint in rejected:
            raise Retry(
                Phase.ARCHITECTURE,
                [f"this design was rated not helpful before ({rejected[fingerprint]}): find a different one, or ask"],
            )
        design["fingerprint"] = fingerprint
        design["memories_used"] = [m["id"] for m in memories]
        design["findings"] = [f.as_dict() for f in findings]
        design["meaning"] = meaning
        return design

    def _questions_for(self, phrases: list[str], exploration: dict) -> list[Question]:
        """'What does X mean here?' for phrases no element accounts for, with choices from the schema and data."""
        index = SchemaIndex(
            exploration.get("schema") or {}, grants=role_grants(role=self.role), samples=exploration.get("samples")
        )
        tables = list(index.tables.values())
        questions = []
        for i, phrase in enumerate(dict.fromkeys(phrases)):
            if len(questions) >= 4:
                break
            if is_grammatical(phrase):
                continue  # a word of the grammar is no business term: the run says what it missed instead
            phrase = _named_with_neighbour(self.requirement, phrase, tables)
            questions.append(question_unknown_word(phrase, phrase, index, tables, qid=f"phrase_{i + 1}"))
        return questions

    def _review(self, design: dict) -> dict:
        interp = interpretation_parse(design["interpretation"])
        automated = design_policy(
            requirement=self.requirement, interpretation=interp, sql=design["sql"], role=self.role
        )
        memories = self._memories("security", self.requirement)
        context = {
            "requirement": self.requirement,
            "design": design,
            "rules": [m for m in memories if m["type"] == "BUSINESS_RULE"],
            "memories": memories,
            "automated_issues": automated,
        }
        review = self._agent("security").execute(
            f"Review the security of the API design for: {self.requirement}", context
        )
        if not review["approved"]:
            self._emit("review_rejected", phase=Phase.SECURITY, issues=review["issues"][:10])
            raise Retry(
                Phase.ARCHITECTURE,
                [f"the security review rejected it: {i}" for i in review["issues"] or ["no reason given"]],
            )
        return review

    def _implement(self, exploration: dict, design: dict) -> dict:
        """The implementer writes the final SQL; the platform checks it again and saves the draft endpoint."""
        interp = interpretation_parse(design["interpretation"])
        context = {
            "requirement": self.requirement,
            "exploration": exploration,
            "design": design,
            "memories": self._memories("implementer", self.requirement),
            "failures": self.state["feedback"].get(Phase.IMPLEMENTATION, []),
        }
        output = self._agent("implementer").execute(f"Implement the API: GET /{design.get('path')}", context)
        sql = output["sql"].strip().rstrip(";")
        problems = [
            f.message
            for f in failed(
                realization_check(sql=sql, dialect=self.dialect, interpretation=interp, catalog=self.catalog)
            )
        ]
        if problems:
            raise Retry(Phase.IMPLEMENTATION, problems)
        compiled = interpretation_compile(interp, catalog=self.catalog, dialect=self.dialect)
        fields = {
            "description": design.get("description") or self.requirement,
            "parameters": compiled.parameters,
            "sql": sql,
            "response_schema": _row_schema(compiled.columns),
        }
        endpoint_id = self.state.get("endpoint_id")
        endpoint = GeneratedEndpoint.objects.filter(pk=endpoint_id).first() if endpoint_id else None
        try:
            if endpoint is None or endpoint.status != "draft" or self.state.get("requested_slug") != design["path"]:
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
        except EndpointError as exc:
            raise Retry(
                Phase.IMPLEMENTATION, [f"the endpoint could not be saved ({exc.field or exc.code}): {exc.message}"]
            ) from exc
        self.state["endpoint_id"] = str(endpoint.pk)
        self.state["requested_slug"] = design["path"]
        endpoint_record_verification(
            endpoint=endpoint, interpretation=interp.model_dump(by_alias=True, exclude_none=True), verification=None
        )
        errors = endpoint_validate(endpoint=endpoint)
        if errors:
            self._emit("validation_failed", phase=Phase.IMPLEMENTATION, errors=errors)
            raise Retry(Phase.IMPLEMENTATION, errors)
        return {
            "sql": sql,
            "notes": output.get("notes", ""),
            "endpoint_id": str(endpoint.pk),
            "version": endpoint.version,
        }

    def _test(self, design: dict, implementation: dict) -> dict:
        endpoint = GeneratedEndpoint.objects.get(pk=implementation["endpoint_id"])
        interp = interpretation_parse(design["interpretation"])
        context = {"requirement": self.requirement, "design": design, "implementation": implementation}
        plan = self._agent("tester").execute(f"Test the endpoint GET /{endpoint.slug}", context)
        cases = baseline_cases(endpoint) + [
            c for c in plan["cases"] if c.get("name") not in {b["name"] for b in baseline_cases(endpoint)}
        ]
        endpoint = endpoint_update_draft(endpoint=endpoint, tests=cases)
        results = endpoint_run_tests(endpoint=endpoint)
        summary = _test_summary(results)
        self._emit("tests", phase=Phase.TESTING, **summary)
        if summary["failed"]:
            raise Retry(
                Phase.IMPLEMENTATION,
                [f"test '{c['name']}' failed: {c.get('message')}" for c in results["cases"] if not c.get("passed")],
            )
        report = endpoint_meaning_tests(endpoint=endpoint, interpretation=interp)
        self._emit(
            "meaning_tests",
            phase=Phase.TESTING,
            passed=report.passed,
            derived=report.derived,
            tests=[t.as_dict() for t in report.tests],
        )
        if not report.passed:
            raise Retry(
                Phase.ARCHITECTURE,
                [f"the meaning test '{t.name}' failed: {t.detail}" for t in report.tests if not t.passed],
            )
        findings = design.get("findings") or []
        review_reasons = [f["message"] for f in findings if not f["passed"] and not f.get("blocking", True)]
        if not report.derived:
            review_reasons.append("no meaning test could be derived from this design, so a person must check it")
        verdict = "needs_review" if review_reasons else "verified"
        verification = {
            "verdict": verdict,
            "review_reasons": review_reasons,
            "meaning": design.get("meaning", ""),
            "findings": findings,
            "meaning_tests": report.as_dict(),
            "requirement": self.requirement,
            "verified_at": timezone.now().isoformat(),
        }
        endpoint_record_verification(endpoint=endpoint, interpretation=None, verification=verification)
        return {"endpoint_id": str(endpoint.pk), "cases": cases, "results": results, "verdict": verdict, **summary}

    def _document(self, design: dict, testing: dict) -> dict:
        endpoint = GeneratedEndpoint.objects.get(pk=testing["endpoint_id"])
        context = {
            "requirement": self.requirement,
            "design": design,
            "meaning": design.get("meaning", ""),
            "implementation": self.state["phases"][Phase.IMPLEMENTATION],
            "test_results": {k: testing[k] for k in ("passed", "failed", "verdict")},
            "reference_docs": True,
        }
        written = self._agent("documenter").execute(f"Document the endpoint GET /{endpoint.slug}", context)
        endpoint = endpoint_update_draft(endpoint=endpoint, docs=written["markdown"].strip())
        return {"markdown": endpoint_markdown_docs(endpoint=endpoint), "endpoint_id": str(endpoint.pk)}


def baseline_cases(endpoint: GeneratedEndpoint) -> list[dict]:
    """The platform's own test cases: every endpoint answers its defaults and refuses bad input."""
    properties = (endpoint.parameters or {}).get("properties") or {}
    required = list((endpoint.parameters or {}).get("required") or [])
    columns = list((endpoint.response_schema or {}).get("properties") or {})
    cases = []
    if not required:
        cases.append(
            {
                "name": "the defaults return the documented columns",
                "params": {},
                "expect": {"status": 200, "columns": columns},
            }
        )
    for name in required:
        others = {n: "x" for n in required if n != name}
        cases.append({"name": f"without {name} the call is refused", "params": others, "expect": {"status": 400}})
    for name, spec in properties.items():
        if spec.get("type") == "integer":
            cases.append(
                {
                    "name": f"a non-integer {name} is refused",
                    "params": {name: "not-a-number"},
                    "expect": {"status": 400},
                }
            )
        if spec.get("format") == "date":
            cases.append(
                {
                    "name": f"a {name} that is not a date is refused",
                    "params": {name: "someday"},
                    "expect": {"status": 400},
                }
            )
    return cases


def _row_schema(columns: list[dict]) -> dict:
    properties = {}
    for c in columns:
        spec = {"type": c.get("json_type") or "string"}
        if c.get("format"):
            spec["format"] = c["format"]
        properties[c["name"]] = spec
    return {"type": "object", "properties": properties}


def _test_summary(results: dict) -> dict:
    cases = results.get("cases", [])
    passed = sum(1 for c in cases if c.get("passed"))
    return {"passed": passed, "failed": len(cases) - passed, "total": len(cases)}


def _understood(error) -> str:
    return getattr(error, "understood", "") or ""


def _plain_failure(phase: str, reasons: list[str], *, understood: str = "") -> str:
    """Why no endpoint is offered, in words for the person who asked: what was understood, what not, what next."""
    what = {
        Phase.ARCHITECTURE: "I could not find a design that means exactly what you asked",
        Phase.IMPLEMENTATION: "I could not write a query that passes every check",
        Phase.SECURITY: "the design did not pass the security review",
    }.get(phase, "the request could not be completed")
    shown = "; ".join(dict.fromkeys(r.strip().rstrip(".") for r in reasons[:4]))
    said = f"I understood: {understood.strip().rstrip('.')}. " if understood.strip() else ""
    what = what[:1].upper() + what[1:]
    return f"{said}{what}: {shown}. Try rephrasing the request, or name the tables and columns you mean."


# --- running an execution end to end ---------------------------------------------------------


def execution_run(*, execution: AgentExecution, provider=None, on_progress=None) -> AgentExecution:
    """Run (or resume) the pipeline of a claimed execution: COMPLETED, FAILED, PAUSED or WAITING."""
    orchestrator = Orchestrator(execution=execution, provider=provider, on_progress=on_progress)
    started = time.monotonic()
    try:
        outputs = orchestrator.run()
    except ExecutionStopped as stop:
        orchestrator._save_state()
        _finish_stopped(execution, orchestrator, stop)
        return execution
    except NeedsAnswers as ask:
        repeated = _asked_before(execution, ask.questions)
        if repeated:
            reason = _answer_not_understood(
                repeated, understood=ask.understood or orchestrator.state.get("understood", "")
            )
            _fail(execution, orchestrator, phase=ask.phase, reason=reason, started=started)
            return execution
        _wait(execution, orchestrator, ask)
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
            reason=(
                f"Something went wrong on our side ({type(exc).__name__}); it has been logged. Try again in a few "
                "minutes; if it happens again, tell your admin."
            ),
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
        "rounds": orchestrator.state.get("rounds", {}),
    }


def success_results(*, execution: AgentExecution, endpoint: GeneratedEndpoint) -> dict:
    """What learning stores of a verified, approved run (see learning.services.learn_from_success)."""
    state = execution.result or {}
    phases = state.get("phases") or {}
    design = phases.get(Phase.ARCHITECTURE) or {}
    exploration = phases.get(Phase.EXPLORATION) or {"schema": {"objects": []}}
    testing = phases.get(Phase.TESTING) or {}
    interp = endpoint.interpretation or design.get("interpretation") or {}
    # Tables of its conditions count too ("never placed an order" reads orders, "activity dropped" reads the
    # events compared): a later run explores them.
    entities = [
        *interp.get("entities", []),
        *(e for x in interp.get("exists", []) for e in x.get("entities", [])),
        *(e for c in interp.get("comparisons", []) for e in c.get("entities", [])),
    ]
    used = {e.get("object", "").rpartition(".")[2] for e in entities}
    objects = [
        {"schema": o.get("schema"), "name": o["name"], "kind": o.get("kind")}
        for o in exploration["schema"]["objects"]
        if o["name"] in used
    ]
    return {
        "requirement": state.get("requirement") or execution.business_requirement,
        "exploration": {"objects": objects},
        "design": {
            "method": "GET",
            "path": endpoint.slug,
            "description": endpoint.description,
            "parameters": endpoint.parameters,
            "shape": _shape(interp),
        },
        "sql": endpoint.sql,
        "tests": {
            "passed": testing.get("passed", 0),
            "failed": testing.get("failed", 0),
            "cases": testing.get("cases", []),
        },
        "performance": {
            "duration_ms": 1000
            * (state.get("durations") or {}).get(Phase.TESTING, 0.0)
            / max(1, testing.get("total") or 1)
        },
        "pattern": {
            "requirement": state.get("requirement") or execution.business_requirement,
            "interpretation": interp,
            "shape": _shape(interp),
            "objects": sorted(used),
            "sql": endpoint.sql,
            "parameters": endpoint.parameters,
            "path": endpoint.slug,
            "dialect": ENGINE_DIALECTS.get(endpoint.role.service.engine, "postgres"),
            "verdict": endpoint.verdict,
        },
    }


def _shape(interp: dict) -> list[str]:
    shape = []
    if interp.get("measures") or interp.get("group_by"):
        shape.append("aggregate")
    if interp.get("windows"):
        shape.append("time_window")
    if any(x.get("negated") for x in interp.get("exists", [])):
        shape.append("anti_join")
    if interp.get("comparisons"):
        shape.append("period_comparison")
    if interp.get("limit"):
        shape.append("top_n")
    if len(interp.get("entities", [])) > 1:
        shape.append("join")
    if interp.get("parameters"):
        shape.append("parameterized")
    return shape or ["list"]


def _succeed(execution: AgentExecution, orchestrator: Orchestrator, outputs: dict, *, started: float) -> None:
    endpoint = GeneratedEndpoint.objects.get(pk=outputs["testing"]["endpoint_id"])
    metrics = _metrics(orchestrator, started)
    orchestrator.state["usage"] = orchestrator.meter.as_dict()
    # Results first, so learning (at once, or when a person approves) reads the whole run.
    execution_touch(
        execution=execution, result=orchestrator.state, status=AgentStatus.LEARNING, current_phase=Phase.LEARNING
    )
    orchestrator._emit("phase", phase=Phase.LEARNING, status="started")
    deployed = endpoint_auto_deploy_if_allowed(endpoint=endpoint)
    endpoint.refresh_from_db()
    learned = []
    if deployed:
        learned = learn_from_success(
            execution=execution, results=success_results(execution=execution, endpoint=endpoint)
        )
    orchestrator._emit(
        "phase",
        phase=Phase.LEARNING,
        status="completed",
        memories=len(learned),
        note="" if deployed else "the design is learned once it is approved",
    )
    orchestrator.state["endpoint"] = {
        "id": str(endpoint.pk),
        "slug": endpoint.slug,
        "version": endpoint.version,
        "status": endpoint.status,
        "auto_deployed": deployed,
        "verdict": endpoint.verdict,
    }
    with transaction.atomic():
        execution_touch(
            execution=execution,
            status=AgentStatus.COMPLETED,
            success=True,
            completed_at=timezone.now(),
            current_phase="",
            status_reason="",
            questions=[],
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
    return {"columns": columns, "unbounded": []}


def _named_with_neighbour(requirement: str, phrase: str, tables: list[Table]) -> str:
    """The phrase with the word beside it when the two words together are a table's name ('support ticket'):
    an answer about the one word alone would leave the other unexplained."""
    words = list(re.finditer(r"[A-Za-z][A-Za-z'-]*", requirement))
    for i, word in enumerate(words):
        if word.group().lower() != phrase.lower():
            continue
        for first, last in ((i, i + 1), (i - 1, i)):
            if first < 0 or last >= len(words):
                continue
            pair = (words[first].group(), words[last].group())
            if any(_names(pair, table.tokens) for table in tables):
                return requirement[words[first].start() : words[last].end()]
    return phrase


def _names(words: tuple[str, ...], tokens: tuple[str, ...]) -> bool:
    return len(words) == len(tokens) and all(variants(w) & variants(t) for w, t in zip(words, tokens, strict=True))


def _question_key(phrase: str, text: str) -> tuple[str, str]:
    """What makes two questions the same one: the phrase asked about and the question's first sentence."""
    sentence = plain_words(text).split("?")[0]
    return " ".join(phrase.lower().split()), " ".join(sentence.lower().split())


def _asked_before(execution: AgentExecution, questions: list[Question]) -> list[dict]:
    """The answers this run already had to the questions it would ask now: an answer that did not take effect."""
    answered = {_question_key(a.get("phrase") or "", a.get("question") or ""): a for a in execution.answers or []}
    keys = (_question_key(q.phrase, q.text) for q in questions)
    return list({id(answered[k]): answered[k] for k in keys if k in answered}.values())


def _answer_not_understood(answers: list[dict], *, understood: str = "") -> str:
    """Why a run ends instead of asking again what it was told: the words and the answers it could not use."""
    told = "; ".join(f"'{a.get('phrase')}' ({a.get('answer')})" for a in answers[:4])
    said = f"I understood: {understood.strip().rstrip('.')}. " if understood.strip() else ""
    return (
        f"{said}I still could not build the request with what you told me about {told}: the answer did not "
        "settle what the words mean here, and asking the same question again would not help. Try rephrasing the "
        "request, or name the tables and columns you mean."
    )


def _wait(execution: AgentExecution, orchestrator: Orchestrator, ask: NeedsAnswers) -> None:
    questions = [{**q.model_dump(), "text": plain_words(q.text)} for q in ask.questions]
    orchestrator.state["waiting"] = {"phase": ask.phase, "understood": ask.understood}
    orchestrator._save_state()
    reason = "Waiting for your answer: " + " ".join(q["text"] for q in questions[:3])
    execution_touch(
        execution=execution,
        status=AgentStatus.WAITING,
        status_reason=reason[:1000],
        questions=questions,
        result=orchestrator.state,
    )
    orchestrator._emit("questions", phase=ask.phase, questions=questions, understood=ask.understood)
    orchestrator._emit("status", status=AgentStatus.WAITING, reason=reason[:300])


def _fail(execution: AgentExecution, orchestrator: Orchestrator, *, phase: str, reason: str, started: float) -> None:
    reason = plain_words(reason)  # whoever wrote it, the person who asked reads it
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
    orchestrator.state["usage"] = orchestrator.meter.as_dict()
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
