"""One typed contract per phase output: what each agent must answer, whichever model writes it.

The JSON Schema sent to the model is generated from these models (enums, the path pattern,
reserved parameter names, the exact test-expectation keys, no additional properties), and every
answer is validated against them; validation errors go back to the model for repair turns.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from endpoints.interpretation import Interpretation, Question

PATH_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Scalar = str | int | float | bool | None


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Reflection(_Contract):
    goal_achieved: bool
    progress: str = ""
    next_steps: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)


class RelevantObject(_Contract):
    object: str = Field(min_length=1, description="table or view name (schema.name when ambiguous)")
    reason: str = ""


class Exploration(_Contract):
    relevant_objects: list[RelevantObject] = Field(default_factory=list)
    summary: str = ""


class Design(_Contract):
    """The architect's answer: a design with its interpretation, or questions for the user."""

    path: str | None = Field(
        default=None, pattern=PATH_PATTERN, max_length=64, description="kebab-case name, e.g. top-customers"
    )
    description: str = Field(default="", max_length=500, description="one sentence for business users")
    interpretation: Interpretation | None = Field(
        default=None, description="what the endpoint means; every phrase of the requirement in some element"
    )
    sql: str | None = Field(default=None, description="one read-only SELECT with named binds (:name)")
    rationale: list[str] = Field(default_factory=list)
    questions: list[Question] = Field(
        default_factory=list, max_length=8, description="instead of a design: what the user must clarify"
    )

    @model_validator(mode="after")
    def _design_or_questions(self) -> Design:
        if self.questions:
            return self
        missing = [name for name in ("path", "interpretation", "sql") if not getattr(self, name)]
        if missing:
            raise ValueError(f"a design needs {', '.join(missing)} (or questions for the user instead)")
        return self


class Review(_Contract):
    approved: bool
    issues: list[str] = Field(default_factory=list)
    notes: str = ""


class Implementation(_Contract):
    sql: str = Field(min_length=1, description="the final read-only SELECT with the design's named binds")
    notes: str = ""


class Expect(_Contract):
    status: Literal[200, 400, 404] = 200
    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    columns: list[str] | None = None
    sample: dict[str, Scalar] | None = Field(default=None, description="some row has these values")
    rows_equal: list[dict[str, Scalar]] | None = Field(default=None, description="exactly these rows")


class TestCase(_Contract):
    name: str = Field(min_length=1, max_length=200)
    params: dict[str, Scalar] = Field(default_factory=dict)
    expect: Expect = Field(default_factory=Expect)


class TestPlan(_Contract):
    cases: list[TestCase] = Field(min_length=1, max_length=30)


class Docs(_Contract):
    summary: str = ""
    markdown: str = Field(min_length=1)


CONTRACTS: dict[str, type[_Contract]] = {
    "reflection": Reflection,
    "explorer": Exploration,
    "architect": Design,
    "security": Review,
    "implementer": Implementation,
    "tester": TestPlan,
    "documenter": Docs,
}


def contract_schema(model: type[BaseModel]) -> dict:
    """The JSON Schema of a contract as models receive it."""
    return model.model_json_schema(by_alias=True)


def contract_validate(model: type[BaseModel], data: Any) -> BaseModel:
    """Validate a model's answer (a dict, or text holding JSON); raises ContractError with every problem."""
    if isinstance(data, str):
        data = json_from_text(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ContractError(_problems(exc)) from exc


class ContractError(Exception):
    """The answer does not match the phase's contract; `problems` lists each, for a repair turn."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def repair_prompt(self) -> str:
        listed = "\n".join(f"- {p}" for p in self.problems[:20])
        return (
            "Your answer does not match the required JSON schema:\n"
            f"{listed}\n"
            "Answer again with one JSON object that fixes every problem, and nothing else."
        )


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error.get("loc", ())) or "the answer"
        out.append(f"{where}: {error.get('msg', 'invalid')}")
    return out


_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


def json_from_text(text: str) -> Any:
    """The JSON object in a model's text: the whole text, a fenced block, or the outermost braces."""
    text = (text or "").strip()
    candidates = [text]
    candidates += _FENCE.findall(text)
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (ValueError, TypeError):
            continue
        if isinstance(value, dict):
            return value
    raise ContractError(["the answer is not a JSON object"])
