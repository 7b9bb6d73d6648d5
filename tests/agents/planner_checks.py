"""The platform's checks on a planner design, as the planner tests run them on their own schemas."""

from __future__ import annotations

from endpoints.compiler import Catalog, interpretation_compile
from endpoints.verification.coverage import coverage_check, shape_check
from endpoints.verification.findings import failed


def design_problems(requirement: str, interp, *, schema: dict) -> list[str]:
    """The messages of every check the design fails: compiled, then coverage and shape checked."""
    catalog = Catalog(schema)
    interpretation_compile(interp, catalog=catalog, dialect="postgres")
    findings = coverage_check(requirement=requirement, interpretation=interp)
    findings += shape_check(requirement=requirement, interpretation=interp, catalog=catalog)
    return [f.message for f in failed(findings)]
