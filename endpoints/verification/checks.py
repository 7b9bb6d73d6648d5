"""The platform's checks of a design, in the order a run applies them."""

from __future__ import annotations

from django.conf import settings

from endpoints.compiler import Catalog, CompileError, interpretation_check_joins, interpretation_compile
from endpoints.interpretation import Interpretation
from endpoints.runtime import bind_params
from endpoints.sqldialect import ENGINE_DIALECTS
from endpoints.verification.coverage import coverage_check, shape_check
from endpoints.verification.findings import Finding
from endpoints.verification.grounding import measure_grounding_check
from endpoints.verification.meaning import MeaningReport, MeaningTester, Runner
from endpoints.verification.realization import realization_check
from roles.introspection import service_schema
from roles.permissions import role_grants


def role_catalog(*, role) -> Catalog:
    """The Role's readable objects and columns, from its Service's introspected schema."""

    readable: dict[str, set[str] | None] = {}
    for grant in role_grants(role=role):
        if "SELECT" not in grant.actions:
            continue
        columns = set(grant.readable_columns) if grant.allowed_columns is not None else None
        readable[f"{grant.schema}.{grant.object_name}" if grant.schema else grant.object_name] = columns
    return Catalog(service_schema(service=role.service), readable=readable)


def role_dialect(role) -> str:
    return ENGINE_DIALECTS.get(role.service.engine, "postgres")


def design_verify(
    *,
    requirement: str,
    interpretation: Interpretation,
    sql: str,
    catalog: Catalog,
    dialect: str,
    terms: list[str] | None = None,
    left_out: list[str] | None = None,
) -> list[Finding]:
    """Coverage of every phrase, shapes, measures grounded in their own words, compilability, joins along
    keys, and the SQL's realization. `terms` are the Service's business terms (the glossary): a word they
    define explains itself; `left_out` are the terms it defines as adding nothing to a request."""
    findings = coverage_check(requirement=requirement, interpretation=interpretation, left_out=tuple(left_out or ()))
    findings += shape_check(requirement=requirement, interpretation=interpretation, catalog=catalog)
    findings += measure_grounding_check(interpretation=interpretation, terms=terms)
    try:
        interpretation_compile(interpretation, catalog=catalog, dialect=dialect)
    except CompileError as exc:
        findings.append(Finding("compile", False, exc.message, element=exc.element))
        return findings
    for problem in interpretation_check_joins(interpretation, catalog=catalog):
        findings.append(Finding("compile", False, problem, blocking=False))
    findings += realization_check(sql=sql, dialect=dialect, interpretation=interpretation, catalog=catalog)
    for assumption in interpretation.assumptions:
        findings.append(
            Finding("assumption", False, f"assumed: {assumption.text}", phrase=assumption.phrase, blocking=False)
        )
    return findings


def endpoint_meaning_tests(*, endpoint, interpretation: Interpretation) -> MeaningReport:
    """Run the meaning tests of a read endpoint against its live database, with its Role."""

    role = endpoint.role
    tester = MeaningTester(
        interpretation=interpretation,
        sql=endpoint.sql,
        parameters=endpoint.parameters,
        catalog=role_catalog(role=role),
        dialect=role_dialect(role),
        runner=Runner(role=role, row_cap=settings.QUERY_ROW_CAP),
        bind=lambda params: bind_params(endpoint=endpoint, params=params),
    )
    return tester.run()
