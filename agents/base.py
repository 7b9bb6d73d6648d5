"""BaseAgent: think -> act -> observe -> reflect, over the Role's MCP tools, as in the spec.

Every step is appended to the agent's AgentExecution as it happens (thought process, tools
invoked, discoveries, MCP servers used) and to the orchestration's event log.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from agents.events import event_append, execution_touch
from agents.models import AgentExecution, AgentStatus
from agents.providers import LLMError, Message, ToolSpec
from agents.toolbox import McpToolbox, ToolInfo, ToolOutcome, tool_catalog

logger = logging.getLogger(__name__)

REFLECTION_SCHEMA = {
    "type": "object",
    "properties": {
        "goal_achieved": {"type": "boolean"},
        "progress": {"type": "string"},
        "next_steps": {"type": "array", "items": {"type": "string"}},
        "blockers": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["goal_achieved", "progress"],
}

REFLECT_PROMPT = (
    "Reflect on the latest observation. Is the goal achieved? What progress has been made, what should be "
    "done next, and are there blockers? Answer with the JSON object requested."
)


class ExecutionStopped(Exception):
    """The user paused or cancelled the execution; raised at the next checkpoint."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class AgentFailed(Exception):
    """An agent could not reach its goal; the message says why, in words a user can act on."""


@dataclass
class AgentRuntime:
    """What every agent of one orchestration shares."""

    orchestration: AgentExecution
    provider: Any  # a MeteredProvider
    toolbox: McpToolbox
    dialect: str
    max_iterations: int = field(default_factory=lambda: settings.AGENT_MAX_ITERATIONS)
    helper: Any = None  # callable(requesting_agent, agent_name, task, context) -> dict

    def checkpoint(self) -> None:
        """Stop here if the user asked to pause or cancel; keep the worker's heartbeat fresh."""
        flags = (
            AgentExecution.objects.filter(pk=self.orchestration.pk)
            .values("pause_requested", "cancel_requested")
            .first()
        )
        execution_touch(execution=self.orchestration, heartbeat_at=timezone.now())
        if flags is None or flags["cancel_requested"]:
            raise ExecutionStopped(AgentStatus.FAILED, "cancelled by the user")
        if flags["pause_requested"]:
            raise ExecutionStopped(AgentStatus.PAUSED, "paused by the user")

    def event(self, kind: str, *, phase: str = "", agent: str = "", **payload) -> None:
        event_append(execution=self.orchestration, kind=kind, phase=phase, agent=agent, payload=payload)


class AgentRecord:
    """The AgentExecution of one agent run, written step by step."""

    def __init__(self, *, runtime: AgentRuntime, agent: BaseAgent, goal: str):
        self.runtime = runtime
        self.agent = agent
        parent = runtime.orchestration
        self.execution = AgentExecution.objects.create(
            business_requirement=goal,
            agent_type=agent.agent_type,
            status=AgentStatus.RUNNING,
            organization_id=parent.organization_id,
            user_id=parent.user_id,
            role_id=parent.role_id,
            parent=parent,
            current_phase=agent.phase,
            started_at=timezone.now(),
            mcp_servers_used=[runtime.toolbox.server_label] if agent.uses_tools else [],
        )

    def _append(self, field_name: str, item: dict) -> None:
        items = list(getattr(self.execution, field_name) or [])
        items.append(item)
        setattr(self.execution, field_name, items)
        self.execution.save(update_fields=[field_name, "updated_at"])

    def thought(self, *, step: str, text: str, iteration: int, **extra) -> None:
        entry = {"step": step, "iteration": iteration, "text": text, "at": timezone.now().isoformat(), **extra}
        self._append("thought_process", entry)
        self.runtime.event("thought", phase=self.agent.phase, agent=self.agent.name, step=step, text=text, **extra)

    def tool(self, outcome: ToolOutcome, *, duration_ms: float) -> None:
        entry = {
            "tool": outcome.name,
            "arguments": outcome.arguments,
            "ok": outcome.ok,
            "error": outcome.error,
            "rows": outcome.rows,
            "duration_ms": round(duration_ms, 1),
            "at": timezone.now().isoformat(),
        }
        self._append("tools_invoked", entry)
        self.runtime.event(
            "tool_call", phase=self.agent.phase, agent=self.agent.name, tool=outcome.name, arguments=outcome.arguments
        )
        self.runtime.event(
            "tool_result",
            phase=self.agent.phase,
            agent=self.agent.name,
            tool=outcome.name,
            ok=outcome.ok,
            error=outcome.error,
            rows=outcome.rows,
            preview=outcome.summary(600),
            duration_ms=round(duration_ms, 1),
        )

    def discovery(self, item: dict) -> None:
        self._append("discoveries", item)

    def finish(self, *, output: dict, success: bool, reason: str = "", steps: int = 0) -> None:
        self.execution.result = output
        self.execution.success = success
        self.execution.status = AgentStatus.COMPLETED if success else AgentStatus.FAILED
        self.execution.status_reason = reason
        self.execution.completed_at = timezone.now()
        self.execution.performance_metrics = {"iterations": steps}
        self.execution.save(
            update_fields=[
                "result",
                "success",
                "status",
                "status_reason",
                "completed_at",
                "performance_metrics",
                "updated_at",
            ]
        )


class BaseAgent:
    """One specialist. Subclasses set the prompts, the tools they may use and the output schema."""

    name = "agent"
    agent_type = "ORCHESTRATOR"
    phase = ""
    uses_tools = True
    read_only = True  # every Nectar agent reads; writes happen only through reviewed endpoints
    output_schema: dict = {"type": "object"}

    def __init__(self, runtime: AgentRuntime):
        self.runtime = runtime
        self.steps = 0
        self.llm_calls = 0

    # --- prompts (subclasses refine) ---
    def system_prompt(self, context: dict) -> str:
        return f"You are Nectar's {self.name} agent."

    def task_prompt(self, goal: str, context: dict) -> str:
        return f"Goal: {goal}"

    def synthesis_prompt(self, context: dict) -> str:
        return "Give your final result as the JSON object requested."

    # --- hooks ---
    def available_tools(self) -> list[ToolInfo]:
        if not self.uses_tools:
            return []
        toolbox = self.runtime.toolbox
        return toolbox.read_only_tools() if self.read_only else list(toolbox.tools)

    def observe(self, outcome: ToolOutcome, context: dict, record: AgentRecord) -> dict:
        """Turn a tool result into an observation; subclasses update the context with what they learned."""
        return {"tool": outcome.name, "ok": outcome.ok, "summary": outcome.summary(400)}

    def postprocess(self, output: dict, context: dict, record: AgentRecord) -> dict:
        return output

    def llm_context(self, context: dict, *, step: str, iteration: int) -> dict:
        """What the offline planner needs to act like a model (ignored by the SDK providers)."""
        return {
            **context,
            "agent": self.name,
            "step": step,
            "iteration": iteration,
            "dialect": self.runtime.dialect,
            "tools": tool_catalog(self.available_tools()),
        }

    # --- the loop ---
    def _complete(self, messages: list[Message], *, context: dict, step: str, iteration: int, **kwargs):
        self.llm_calls += 1
        try:
            return self.runtime.provider.complete(
                messages=messages, context=self.llm_context(context, step=step, iteration=iteration), **kwargs
            )
        except LLMError as exc:
            raise AgentFailed(f"the {self.name} could not get an answer from the language model: {exc}") from exc

    def execute(self, goal: str, context: dict) -> dict:
        record = AgentRecord(runtime=self.runtime, agent=self, goal=goal)
        try:
            output = self._loop(goal, context, record)
        except ExecutionStopped as stop:
            record.finish(output={}, success=False, reason=stop.reason, steps=self.steps)
            raise
        except AgentFailed as exc:
            record.finish(output={}, success=False, reason=str(exc), steps=self.steps)
            raise
        except Exception as exc:
            logger.exception("%s agent crashed", self.name)
            record.finish(output={}, success=False, reason=f"internal error in the {self.name}", steps=self.steps)
            raise AgentFailed(f"internal error in the {self.name} agent ({type(exc).__name__})") from exc
        record.finish(output=output, success=True, steps=self.steps)
        return output

    def _loop(self, goal: str, context: dict, record: AgentRecord) -> dict:
        tools = self.available_tools()
        specs = [ToolSpec(t.name, t.description, t.input_schema) for t in tools]
        messages = [Message("system", self.system_prompt(context)), Message("user", self.task_prompt(goal, context))]
        context.setdefault("called", [])
        achieved = not tools
        iteration = 0
        while not achieved and iteration < self.runtime.max_iterations:
            self.runtime.checkpoint()
            iteration += 1
            self.steps += 1
            # THINK
            thought = self._complete(
                messages, context=context, step="think", iteration=iteration, tools=specs, temperature=0.7
            )
            record.thought(step="think", text=thought.text or "(acting)", iteration=iteration)
            messages.append(Message("assistant", thought.text, tool_calls=thought.tool_calls))
            if not thought.tool_calls:
                break
            # ACT and OBSERVE
            for call in thought.tool_calls:
                started = time.perf_counter()
                outcome = self.runtime.toolbox.call(call.name, call.arguments, allowed=tools)
                record.tool(outcome, duration_ms=(time.perf_counter() - started) * 1000)
                context["called"].append(call.name)
                observation = self.observe(outcome, context, record)
                messages.append(
                    Message("tool", json.dumps(observation, default=str), tool_call_id=call.id, name=call.name)
                )
            # REFLECT
            reflection = self._complete(
                [*messages, Message("user", REFLECT_PROMPT)],
                context=context,
                step="reflect",
                iteration=iteration,
                response_schema=REFLECTION_SCHEMA,
                temperature=0.3,
            )
            verdict = reflection.structured or {}
            achieved = bool(verdict.get("goal_achieved"))
            record.thought(
                step="reflect",
                text=str(verdict.get("progress") or reflection.text or ""),
                iteration=iteration,
                goal_achieved=achieved,
                next_steps=verdict.get("next_steps") or [],
                blockers=verdict.get("blockers") or [],
            )
        # SYNTHESIZE
        self.runtime.checkpoint()
        final = self._complete(
            [*messages, Message("user", self.synthesis_prompt(context))],
            context=context,
            step="synthesize",
            iteration=iteration + 1,
            response_schema=self.output_schema,
        )
        if final.structured is None:
            raise AgentFailed(f"the {self.name} did not return a result in the expected form")
        record.thought(step="synthesize", text=final.text or f"{self.name} result ready", iteration=iteration + 1)
        return self.postprocess(dict(final.structured), context, record)

    def ask_for_help(self, agent_name: str, task: str, context: dict) -> dict:
        """Multi-agent collaboration: ask another specialist to do a piece of work."""
        if self.runtime.helper is None:
            raise AgentFailed(f"the {self.name} needed help from the {agent_name}, but no orchestrator is present")
        return self.runtime.helper(self, agent_name, task, context)
