"""BaseAgent: think -> act -> observe -> reflect, over a small fixed set of the Role's MCP tools.

Every step is appended to the agent's AgentExecution as it happens (thought process, tools
invoked, discoveries, MCP servers used) and to the orchestration's event log. Each phase's
answer is validated against its typed contract (agents.contracts); an answer that does not match
goes back to the model with the problems, for a bounded number of repair turns. Prompts are kept
within the phase's token budget: tool results are truncated with a note, older history is
compacted, and the prompt's size is counted before it is sent.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel

from agents.contracts import ContractError, Reflection, contract_schema, contract_validate, json_from_text
from agents.events import event_append, execution_touch
from agents.models import AgentExecution, AgentStatus
from agents.providers import LLMError, Message, ToolSpec
from agents.toolbox import McpToolbox, ToolInfo, ToolOutcome, tool_catalog
from agents.wording import PHASE_DOING, plain_words

logger = logging.getLogger(__name__)

REFLECT_PROMPT = (
    "Reflect on the latest observation. Is the goal achieved? What progress has been made, what should be "
    "done next, and are there blockers? Answer with the JSON object requested."
)
# Characters per token, for counting a prompt before it is sent (a deliberate overestimate of tokens).
CHARS_PER_TOKEN = 3.5
TOOL_RESULT_CHARS = 6000
COMPACT_RESULT_CHARS = 300
# Messages at the end of the history kept whole (about the last two steps).
KEEP_RECENT = 8


class ExecutionStopped(Exception):
    """The user paused or cancelled the execution; raised at the next checkpoint."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class AgentFailed(Exception):
    """An agent could not reach its goal; the message says why, in words a user can act on."""


# What each agent does, as the person who asked reads it (the words of its phase).
AGENT_PHASES = {
    "explorer": "exploration",
    "architect": "architecture",
    "security": "security",
    "implementer": "implementation",
    "tester": "testing",
    "documenter": "documentation",
}
STEP_WORDS = {agent: PHASE_DOING[phase] for agent, phase in AGENT_PHASES.items()}


def step_words(agent: str) -> str:
    return STEP_WORDS.get(agent, agent)


def estimate_tokens(messages: list[Message], tools: list[ToolSpec] | None = None) -> int:
    chars = sum(
        len(m.content) + sum(len(json.dumps(c.arguments)) + len(c.name) for c in m.tool_calls) for m in messages
    )
    chars += sum(len(t.name) + len(t.description) + len(json.dumps(t.input_schema)) for t in tools or [])
    return int(chars / CHARS_PER_TOKEN) + 4 * len(messages)


@dataclass
class PhaseBudget:
    """Tokens one phase may spend; counted on the orchestration's meter, so resuming continues it."""

    phase: str
    limit: int
    start: int  # the meter's total when the phase began (stored, so a resumed run keeps counting)

    def used(self, meter) -> int:
        return max(0, meter.total_tokens - self.start)

    def remaining(self, meter) -> int:
        return self.limit - self.used(meter)


@dataclass
class AgentRuntime:
    """What every agent of one orchestration shares."""

    orchestration: AgentExecution
    provider: Any  # a MeteredProvider
    toolbox: McpToolbox | None
    dialect: str
    max_iterations: int = field(default_factory=lambda: settings.AGENT_MAX_ITERATIONS)
    helper: Any = None  # callable(requesting_agent, agent_name, task, context) -> dict
    budget: PhaseBudget | None = None
    prompt_tokens: int = field(default_factory=lambda: settings.AGENT_PROMPT_TOKENS)

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
            mcp_servers_used=[runtime.toolbox.server_label] if agent.tool_names and runtime.toolbox else [],
        )

    def _append(self, field_name: str, item: dict) -> None:
        items = list(getattr(self.execution, field_name) or [])
        items.append(item)
        setattr(self.execution, field_name, items)
        self.execution.save(update_fields=[field_name, "updated_at"])

    def thought(self, *, step: str, text: str, iteration: int, tokens: int | None = None, **extra) -> None:
        entry = {"step": step, "iteration": iteration, "text": text, "at": timezone.now().isoformat(), **extra}
        if tokens is not None:
            entry["tokens"] = tokens
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
            "result_chars": len(outcome.summary(10**9)),
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

    def finish(self, *, output: dict, success: bool, reason: str = "", steps: int = 0, tokens: int = 0) -> None:
        self.execution.result = output
        self.execution.success = success
        self.execution.status = AgentStatus.COMPLETED if success else AgentStatus.FAILED
        self.execution.status_reason = reason
        self.execution.completed_at = timezone.now()
        self.execution.performance_metrics = {"iterations": steps, "tokens": tokens}
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
    """One specialist. Subclasses set the prompts, the tools they may use and the output contract."""

    name = "agent"
    agent_type = "ORCHESTRATOR"
    phase = ""
    tool_names: tuple[str, ...] = ()  # of the fixed toolset; an agent with none answers in one step
    contract: type[BaseModel] = Reflection
    repair_turns = 2

    def __init__(self, runtime: AgentRuntime):
        self.runtime = runtime
        self.steps = 0
        self.llm_calls = 0
        self.tokens = 0

    # --- prompts (subclasses refine) ---
    def system_prompt(self, context: dict) -> str:
        return f"You are Nectar's {self.name} agent."

    def task_prompt(self, goal: str, context: dict) -> str:
        return f"Goal: {goal}"

    def synthesis_prompt(self, context: dict) -> str:
        return "Give your final result as the JSON object requested."

    # --- hooks ---
    def available_tools(self) -> list[ToolInfo]:
        toolbox = self.runtime.toolbox
        if not self.tool_names or toolbox is None:
            return []
        return [t for t in toolbox.tools if t.name in self.tool_names]

    def observe(self, outcome: ToolOutcome, context: dict, record: AgentRecord) -> dict:
        """Turn a tool result into an observation; subclasses update the context with what they learned."""
        return {"tool": outcome.name, "ok": outcome.ok, "result": outcome.summary(TOOL_RESULT_CHARS)}

    def postprocess(self, output: BaseModel, context: dict, record: AgentRecord) -> dict:
        return output.model_dump(by_alias=True, exclude_none=True)

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

    # --- the model ---
    def _fit(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[Message]:
        """Messages within the prompt allowance: what is older than the recent steps is shortened, then refused.

        What an agent learned from older steps lives on in its context (the objects described, the
        values sampled) and in its prompts; the history keeps their gist.
        """
        allowance = self.runtime.prompt_tokens
        budget = self.runtime.budget
        if budget is not None:
            allowance = min(allowance, max(0, budget.remaining(self.runtime.provider.meter)))
        compacted = list(messages)
        for i in range(2, max(2, len(compacted) - KEEP_RECENT)):
            m = compacted[i]
            if len(m.content) > COMPACT_RESULT_CHARS:
                note = f"... (shortened: {len(m.content)} characters in all)"
                compacted[i] = Message(
                    m.role, m.content[:COMPACT_RESULT_CHARS] + note, m.tool_calls, m.tool_call_id, m.name
                )
        size = estimate_tokens(compacted, tools)
        if size <= allowance:
            return compacted
        if budget is not None and budget.remaining(self.runtime.provider.meter) < size:
            raise AgentFailed(
                f"This request used up its budget while {step_words(self.name)} "
                f"({budget.used(self.runtime.provider.meter)} of {budget.limit} tokens). "
                "Try a shorter, more specific request, or ask an admin to raise the budget."
            )
        raise AgentFailed(
            f"There was too much to read while {step_words(self.name)} ({size} tokens, more than the {allowance} "
            "allowed). Name the tables or columns you mean, so that less has to be read."
        )

    def _complete(self, messages: list[Message], *, context: dict, step: str, iteration: int, **kwargs):
        self.llm_calls += 1
        tools = kwargs.get("tools")
        fitted = self._fit(messages, tools)
        before = self.runtime.provider.meter.total_tokens
        try:
            completion = self.runtime.provider.complete(
                messages=fitted, context=self.llm_context(context, step=step, iteration=iteration), **kwargs
            )
        except LLMError as exc:
            raise AgentFailed(_llm_failure(self.name, exc)) from exc
        self.tokens += self.runtime.provider.meter.total_tokens - before
        return completion

    def _structured(
        self, messages: list[Message], model: type[BaseModel], *, context: dict, step: str, iteration: int, **kwargs
    ) -> tuple[BaseModel, Any]:
        """An answer validated against `model`, repaired by the model itself when it does not match."""
        conversation = list(messages)
        problems: ContractError | None = None
        for _turn in range(self.repair_turns + 1):
            completion = self._complete(
                conversation,
                context=context,
                step=step,
                iteration=iteration,
                response_schema=contract_schema(model),
                **kwargs,
            )
            try:
                data = completion.structured if completion.structured is not None else json_from_text(completion.text)
                return contract_validate(model, data), completion
            except ContractError as exc:
                problems = exc
                answer = completion.text or json.dumps(completion.structured, default=str)
                self.runtime.event("repair", phase=self.phase, agent=self.name, step=step, problems=exc.problems[:10])
                conversation = [
                    *conversation,
                    Message("assistant", answer[:4000]),
                    Message("user", exc.repair_prompt()),
                ]
        assert problems is not None
        raise AgentFailed(
            f"The AI model kept answering in the wrong form while {step_words(self.name)}, so the run stopped. "
            "Try again, or rephrase the request more simply. (Details for your admin: "
            + "; ".join(problems.problems[:5])
            + ".)"
        )

    # --- the loop ---
    def execute(self, goal: str, context: dict) -> dict:
        record = AgentRecord(runtime=self.runtime, agent=self, goal=goal)
        try:
            output = self._loop(goal, context, record)
        except ExecutionStopped as stop:
            record.finish(output={}, success=False, reason=stop.reason, steps=self.steps, tokens=self.tokens)
            raise
        except AgentFailed as exc:
            record.finish(output={}, success=False, reason=str(exc), steps=self.steps, tokens=self.tokens)
            raise
        except Exception as exc:
            logger.exception("%s agent crashed", self.name)
            record.finish(output={}, success=False, reason=f"internal error in the {self.name}", steps=self.steps)
            raise AgentFailed(
                f"Something went wrong on our side while {step_words(self.name)} ({type(exc).__name__}); it is "
                "logged. Try again in a few minutes; if it happens again, tell your admin."
            ) from exc
        record.finish(output=output, success=True, steps=self.steps, tokens=self.tokens)
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
            before = self.tokens
            thought = self._complete(
                messages, context=context, step="think", iteration=iteration, tools=specs, temperature=0.7
            )
            record.thought(
                step="think", text=thought.text or "(acting)", iteration=iteration, tokens=self.tokens - before
            )
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
                text = json.dumps(observation, default=str)
                if len(text) > TOOL_RESULT_CHARS:
                    text = text[:TOOL_RESULT_CHARS] + f"... (truncated: {len(text)} characters in all)"
                messages.append(Message("tool", text, tool_call_id=call.id, name=call.name))
            # REFLECT: its verdict and next steps go into the conversation and guide the next step.
            before = self.tokens
            verdict, reflection = self._structured(
                [*messages, Message("user", REFLECT_PROMPT)],
                Reflection,
                context=context,
                step="reflect",
                iteration=iteration,
                temperature=0.3,
            )
            achieved = verdict.goal_achieved
            record.thought(
                step="reflect",
                text=verdict.progress or reflection.text or "",
                iteration=iteration,
                tokens=self.tokens - before,
                goal_achieved=achieved,
                next_steps=verdict.next_steps,
                blockers=verdict.blockers,
            )
            messages.append(Message("user", REFLECT_PROMPT))
            messages.append(Message("assistant", verdict.model_dump_json()))
        # SYNTHESIZE
        self.runtime.checkpoint()
        before = self.tokens
        output, final = self._structured(
            [*messages, Message("user", self.synthesis_prompt(context))],
            self.contract,
            context=context,
            step="synthesize",
            iteration=iteration + 1,
        )
        record.thought(
            step="synthesize",
            text=final.text or f"{self.name} result ready",
            iteration=iteration + 1,
            tokens=self.tokens - before,
        )
        return self.postprocess(output, context, record)

    def ask_for_help(self, agent_name: str, task: str, context: dict) -> dict:
        """Multi-agent collaboration: ask another specialist to do a piece of work."""
        if self.runtime.helper is None:
            raise AgentFailed(
                f"{step_words(self.name).capitalize()} needed {step_words(agent_name)}, which cannot run here. "
                "Try again; if it happens again, tell your admin."
            )
        return self.runtime.helper(self, agent_name, task, context)


def _llm_failure(agent: str, exc: LLMError) -> str:
    """Why a step could not be taken, in words for the person who asked: what happened, then what to do next.

    No vendor or model jargon: the vendor's own words (status, validation errors, URLs) stay in the
    run's llm_call events and the log, for an administrator.
    """
    message = plain_words(str(exc)).rstrip(".")
    if getattr(exc, "questions", None) or getattr(exc, "plain", False) or exc.code in ("time_budget", "spending_cap"):
        return message + ("" if message.endswith(("?", "!")) else ".")
    if "budget" in message.lower():
        return (
            f"This request used up its budget before {step_words(agent)} was done ({message}). Try a shorter, more "
            "specific request, or ask an administrator to raise the budget."
        )
    words = step_words(agent)
    step = words[:1].upper() + words[1:]
    if exc.code == "refused":
        return f"{step} did not finish: {message.replace('the model', 'the AI service')}. Try rephrasing the request."
    if exc.code in ("invalid_output", "truncated"):
        return (
            f"{step} did not finish: the AI service's answers could not be used (not in the form the platform "
            "needs, even after it was asked to correct them). Try again, or ask an administrator to use a more "
            "capable model."
        )
    if exc.code == "context_length":
        return (
            f"{step} did not finish: this request needs more room than the AI service allows. Name the tables or "
            "columns you mean, or ask an administrator to give it a larger context window."
        )
    if exc.retryable:
        return f"{step} did not finish: the AI service is not answering right now. Try again in a few minutes."
    return (
        f"{step} did not finish: the AI service refused the platform's request. Ask an administrator to check the "
        "organization's AI settings; they can see why in the run's log."
    )
