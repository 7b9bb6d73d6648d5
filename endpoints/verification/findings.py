"""What a check found, in words a business user can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    check: str  # coverage | shape | grounding | realization | compile | meaning
    passed: bool
    message: str
    element: str = ""
    phrase: str = ""
    blocking: bool = True  # a failed blocking finding stops the design; otherwise it needs human review

    def as_dict(self) -> dict:
        return asdict(self)


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.passed and f.blocking]


def needs_review(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.passed and not f.blocking]
