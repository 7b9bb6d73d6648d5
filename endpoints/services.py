"""Generated endpoints: drafts, validation, tests, review, deployment, versions, export and docs."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from endpoints.docs import markdown_docs
from endpoints.export import export_zip
from endpoints.models import EndpointStatus, GeneratedEndpoint, HttpMethod, ReviewDecision, endpoint_slug_validator
from endpoints.numbers import decimal_scales, schema_with_scales
from endpoints.params import parameters_parse, parameters_schema_check, sql_bind_names
from endpoints.runtime import bind_params, endpoint_checked_for_calls, endpoint_execute, endpoint_run
from endpoints.signals import endpoint_approved, endpoint_rejected
from roles.connectors import ConnectorError
from roles.executor import ExecutorError, sql_check, sql_explain_cost
from roles.permissions import role_grants
from roles.selectors import organization_ids_for_user

logger = logging.getLogger(__name__)

WRITE_ACTIONS = {"insert": "INSERT", "update": "UPDATE", "delete": "DELETE"}
METHODS_BY_ACTION = {"insert": ("POST",), "update": ("PUT", "PATCH", "POST"), "delete": ("DELETE", "POST")}
EXPECT_KEYS = {"status", "min_rows", "max_rows", "columns", "sample", "rows_equal"}


class EndpointError(Exception):
    """A refused endpoint operation: what was wrong (code, message, and the field when one is to blame)."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


# --- Drafts -------------------------------------------------------------------------------


def _check_draft_input(*, organization, role, execution, method, slug, parameters, sql, write_action, tests) -> None:
    if role.organization_id != organization.pk:
        raise EndpointError("The role belongs to another organization.", code="forbidden", field="role")
    if execution is not None and execution.organization_id != organization.pk:
        raise EndpointError("The execution belongs to another organization.", code="forbidden", field="execution")
    if method not in HttpMethod.values:
        raise EndpointError(f"method must be one of {', '.join(HttpMethod.values)}.", field="method")
    if not isinstance(slug, str) or len(slug) > 64 or not re.fullmatch(endpoint_slug_validator.regex, slug):
        raise EndpointError(str(endpoint_slug_validator.message), field="slug")
    problems = parameters_schema_check(parameters)
    if problems:
        raise EndpointError(" ".join(problems), field="parameters")
    if bool(sql and sql.strip()) == bool(write_action):
        raise EndpointError("Give either sql (a read) or write_action (a write), not both or neither.", field="sql")
    if sql and method != HttpMethod.GET:
        raise EndpointError("A SQL (read) endpoint answers GET.", field="method")
    if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
        raise EndpointError("tests must be a list of test case objects.", field="tests")


def endpoint_slug_for_role(*, organization, role, slug: str) -> str:
    """The slug a Role's endpoint gets: its own, or one of its own when another Role already owns that name.

    A slug (and so a URL) belongs to the Role of its first version: another Role's endpoint of the same
    name gets the Role's name appended, so a new version only ever replaces the same Role's endpoint.
    """
    owners = GeneratedEndpoint.objects.filter(organization=organization)

    def owner(candidate: str):
        return owners.filter(slug=candidate).order_by("version").values_list("role_id", flat=True).first()

    found = owner(slug)
    if found is None or found == role.pk:
        return slug
    suffix = slugify(role.name) or f"role-{role.pk}"
    for n in range(1, 100):
        tail = suffix if n == 1 else f"{suffix}-{n}"
        candidate = f"{slug[: 63 - len(tail)].rstrip('-')}-{tail}"
        found = owner(candidate)
        if found is None or found == role.pk:
            return candidate
    raise EndpointError("No free name for this endpoint; choose another.", code="conflict", field="slug")


def endpoint_create_draft(
    *,
    organization,
    role,
    execution=None,
    method: str = "GET",
    slug: str,
    description: str = "",
    parameters: dict | None = None,
    sql: str = "",
    response_schema: dict | None = None,
    tests: list | None = None,
    docs: str = "",
    write_action: dict | None = None,
) -> GeneratedEndpoint:
    """Store a new draft; a slug the Role has already gets its next version (see endpoint_slug_for_role)."""
    parameters = parameters if parameters is not None else {"type": "object", "properties": {}}
    tests = tests if tests is not None else []
    method = (method or "GET").upper()
    _check_draft_input(
        organization=organization,
        role=role,
        execution=execution,
        method=method,
        slug=slug,
        parameters=parameters,
        sql=sql,
        write_action=write_action,
        tests=tests,
    )
    wanted = slug
    for _attempt in range(5):
        slug = endpoint_slug_for_role(organization=organization, role=role, slug=wanted)
        latest = GeneratedEndpoint.objects.filter(organization=organization, slug=slug).aggregate(v=Max("version"))["v"]
        try:
            with transaction.atomic():
                return GeneratedEndpoint.objects.create(
                    organization=organization,
                    role=role,
                    source_execution=execution,
                    method=method,
                    slug=slug,
                    version=(latest or 0) + 1,
                    description=description or "",
                    parameters=parameters,
                    sql=(sql or "").strip(),
                    write_action=write_action or None,
                    response_schema=response_schema or {},
                    tests=tests,
                    docs=docs or "",
                )
        except IntegrityError:
            continue  # another draft of the same slug took this version number
    raise EndpointError("Could not allocate a version number; retry.", code="conflict", field="slug")


DRAFT_FIELDS = ("description", "parameters", "sql", "response_schema", "tests", "docs")


def endpoint_update_draft(*, endpoint: GeneratedEndpoint, **fields: Any) -> GeneratedEndpoint:
    """Change fields of a draft (description, parameters, sql, response_schema, tests, docs), checked like a new one.

    Anything but a draft is refused: an approved or deployed version never changes under its callers.
    """
    unknown = sorted(set(fields) - set(DRAFT_FIELDS))
    if unknown:
        raise EndpointError(
            f"{', '.join(unknown)} cannot be changed on a draft; expected some of {', '.join(DRAFT_FIELDS)}.",
            field=unknown[0],
        )
    values = {
        "description": fields.get("description", endpoint.description) or "",
        "parameters": fields.get("parameters", endpoint.parameters),
        "sql": (fields.get("sql", endpoint.sql) or "").strip(),
        "response_schema": fields.get("response_schema", endpoint.response_schema) or {},
        "tests": fields.get("tests", endpoint.tests),
        "docs": fields.get("docs", endpoint.docs) or "",
    }
    _check_draft_input(
        organization=endpoint.organization,
        role=endpoint.role,
        execution=endpoint.source_execution,
        method=endpoint.method,
        slug=endpoint.slug,
        parameters=values["parameters"],
        sql=values["sql"],
        write_action=endpoint.write_action,
        tests=values["tests"],
    )
    with transaction.atomic():
        locked = _locked(endpoint)
        if locked.status != EndpointStatus.DRAFT:
            raise EndpointError(
                f"Only a draft can be changed; version {locked.version} of {locked.slug} is {locked.status}.",
                code="conflict",
                field="status",
            )
        for name in fields:
            setattr(locked, name, values[name])
        locked.save(update_fields=[*fields, "updated_at"])
    for name in fields:
        setattr(endpoint, name, values[name])
    endpoint.updated_at = locked.updated_at
    return endpoint


def endpoint_record_verification(
    *, endpoint: GeneratedEndpoint, interpretation: dict | None, verification: dict | None
) -> GeneratedEndpoint:
    """Store a draft's interpretation (when given) and the platform's verification of it (None clears it)."""
    fields = ["verification", "updated_at"]
    if interpretation is not None:
        endpoint.interpretation = interpretation
        fields.append("interpretation")
    endpoint.verification = verification
    endpoint.save(update_fields=fields)
    return endpoint


# --- Validation -----------------------------------------------------------------------------


def _sample_value(spec: dict) -> Any:
    if spec.get("default") is not None:
        return spec["default"]
    if spec.get("enum"):
        return spec["enum"][0]
    kind, fmt = spec.get("type"), spec.get("format")
    if kind == "integer":
        return int(spec.get("minimum", 1))
    if kind == "number":
        return float(spec.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "array":
        return [_sample_value(spec.get("items") or {"type": "string"})]
    return {"date": date.today().isoformat(), "date-time": timezone.now().isoformat(), "time": "12:00:00"}.get(
        fmt, "00000000-0000-0000-0000-000000000000" if fmt == "uuid" else "x"
    )


def _explain_params(endpoint: GeneratedEndpoint) -> dict:
    """Parameters for EXPLAIN: the first passing-status test case's, else plausible samples."""
    properties = (endpoint.parameters or {}).get("properties", {})
    for case in endpoint.tests or []:
        if (case.get("expect") or {}).get("status", 200) == 200 and isinstance(case.get("params"), dict):
            parsed, problems = parameters_parse(schema=endpoint.parameters, values=case["params"], from_text=True)
            if not problems:
                return parsed
    raw = {name: _sample_value(spec) for name, spec in properties.items()}
    parsed, problems = parameters_parse(schema=endpoint.parameters, values=raw, from_text=True)
    return parsed if not problems else {name: None for name in properties}


def _validate_write(endpoint: GeneratedEndpoint) -> list[str]:
    action = endpoint.write_action
    if not isinstance(action, dict):
        return ["write_action must be an object."]
    kind = action.get("action")
    if kind not in WRITE_ACTIONS:
        return ['write_action.action must be "insert", "update" or "delete".']
    errors: list[str] = []
    if endpoint.method not in METHODS_BY_ACTION[kind]:
        errors.append(f"A {kind} endpoint answers {' or '.join(METHODS_BY_ACTION[kind])}, not {endpoint.method}.")
    name, schema_name = action.get("object"), action.get("schema")
    grant = next(
        (
            g
            for g in role_grants(role=endpoint.role)
            if g.object_name == name and (schema_name is None or g.schema == schema_name)
        ),
        None,
    )
    if grant is None:
        return [*errors, f"The role has no grant on {name!r}."]
    if WRITE_ACTIONS[kind] not in grant.actions:
        errors.append(f"The role may not {WRITE_ACTIONS[kind]} on {name!r}.")
    mapping = action.get("mapping") or {}
    if not isinstance(mapping, dict) or set(mapping) - {"values", "filters"}:
        return [
            *errors,
            'write_action.mapping must be {"values": {column: parameter}, "filters": {column: parameter}}.',
        ]
    values, filters = mapping.get("values") or {}, mapping.get("filters") or {}
    if kind in ("insert", "update") and not values:
        errors.append(f"An {kind} needs mapping.values.")
    if kind in ("update", "delete") and not filters:
        errors.append(f"An {kind} needs mapping.filters, so that it never touches every row.")
    properties = set((endpoint.parameters or {}).get("properties", {}))
    used: set[str] = set()
    for part, pairs in (("values", values), ("filters", filters)):
        for column, param in pairs.items():
            if grant.column(column) is None:
                errors.append(f"write_action.mapping.{part}: {name!r} has no column {column!r}.")
            if param not in properties:
                errors.append(f"write_action.mapping.{part}.{column}: no parameter {param!r} is declared.")
            used.add(param)
    unused = sorted(properties - used)
    if unused:
        errors.append(f"Parameters not used by the write: {', '.join(unused)}.")
    return errors


def _validate_read(endpoint: GeneratedEndpoint) -> list[str]:
    errors: list[str] = []
    binds: list[str] | tuple = sql_bind_names(endpoint.sql)
    try:
        checked = sql_check(role=endpoint.role, sql=endpoint.sql)
        binds = checked.bind_names or binds
    except ExecutorError as exc:
        errors.append(f"SQL refused ({exc.code}): {exc}")
    properties = set((endpoint.parameters or {}).get("properties", {}))
    missing = [b for b in binds if b not in properties]
    unused = sorted(properties - set(binds))
    if missing:
        errors.append(f"Binds without a declared parameter: {', '.join(':' + b for b in missing)}.")
    if unused:
        errors.append(f"Parameters not used by the SQL: {', '.join(unused)}.")
    if errors:
        return errors

    try:
        cost = sql_explain_cost(
            role=endpoint.role,
            sql=endpoint.sql,
            params=bind_params(endpoint=endpoint, params=_explain_params(endpoint)),
        )
    except ExecutorError as exc:
        return [f"EXPLAIN failed ({exc.code}): {exc}"]
    limit = float(settings.SQL_COST_LIMIT)
    if cost > limit:
        errors.append(f"Estimated query cost {cost:,.0f} exceeds the limit of {limit:,.0f}; add filters or indexes.")
    return errors


def endpoint_validate(*, endpoint: GeneratedEndpoint) -> list[str]:
    """Check parameters, SQL (allow-list, grants, binds) or write action, and cost; store and return the errors."""
    errors = parameters_schema_check(endpoint.parameters)
    if not isinstance(endpoint.response_schema, dict):
        errors.append("response_schema must be a JSON schema object.")
    if not errors:
        try:
            errors += _validate_write(endpoint) if endpoint.write_action else _validate_read(endpoint)
        except Exception as exc:  # a connector failure: report it, do not crash the pipeline
            if not isinstance(exc, ConnectorError):
                raise
            errors.append(f"The database could not be reached: {exc.message}")
    endpoint.validation_errors = errors
    endpoint.save(update_fields=["validation_errors", "updated_at"])
    return errors


# --- Tests ---------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    numeric = [isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)]
    if any(numeric):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a is not None and b is not None and str(a) == str(b)


def _canonical(row: dict) -> str:
    return json.dumps({k: (str(v) if v is not None else None) for k, v in row.items()}, sort_keys=True)


def _check_case_shape(case: dict) -> str | None:
    if not isinstance(case.get("params", {}), dict):
        return "params must be an object."
    expect = case.get("expect", {})
    if not isinstance(expect, dict):
        return "expect must be an object."
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        return f"Unknown expectation(s): {', '.join(sorted(unknown))}; use {', '.join(sorted(EXPECT_KEYS))}."
    return None


def _judge(expect: dict, status: int, body: dict, rows: list[dict], columns: list[str]) -> list[str]:
    failures = []
    want_status = expect.get("status", 200)
    if status != want_status:
        detail = (body.get("error") or {}).get("message", "")
        failures.append(f"status {status}, expected {want_status}" + (f" ({detail})" if detail else ""))
        return failures
    if status >= 400:
        return failures
    count = len(rows)
    if "min_rows" in expect and count < expect["min_rows"]:
        failures.append(f"{count} rows, expected at least {expect['min_rows']}")
    if "max_rows" in expect and count > expect["max_rows"]:
        failures.append(f"{count} rows, expected at most {expect['max_rows']}")
    missing = [c for c in expect.get("columns") or [] if c not in columns]
    if missing:
        failures.append(f"missing column(s) {', '.join(missing)} (got {', '.join(columns)})")
    for column, value in (expect.get("sample") or {}).items():
        if not any(_same(row.get(column), value) for row in rows):
            failures.append(f"no row has {column} = {value!r}")
    if "rows_equal" in expect:
        wanted = expect["rows_equal"] or []
        if sorted(map(_canonical, rows)) != sorted(_canonical(r) for r in wanted):
            failures.append(f"rows differ from the expected {len(wanted)} row(s) (got {count})")
    return failures


def _run_write_case(endpoint: GeneratedEndpoint, params: dict) -> tuple[int, dict, list[dict], list[str]]:
    parsed, problems = parameters_parse(schema=endpoint.parameters, values=params, from_text=False)
    if problems:
        return 400, {"error": {"message": "; ".join(f"{p['field']}: {p['message']}" for p in problems)}}, [], []
    try:
        written = endpoint_execute(endpoint=endpoint, params=parsed, dry_run=True)
    except ExecutorError as exc:
        status = 400 if exc.code in ("invalid_argument", "constraint_violation", "unknown_column") else 500
        return status, {"error": {"message": str(exc)}}, [], []
    rows = list(written.rows) or [{}] * written.row_count
    return 200, {}, rows, list(written.rows[0]) if written.rows else []


def _run_case(endpoint: GeneratedEndpoint, case: dict, scales: dict | None = None) -> dict:
    name = str(case.get("name") or "unnamed")
    outcome: dict[str, Any] = {"name": name, "passed": False, "message": "", "status": None, "rows": None}
    problem = _check_case_shape(case)
    if problem:
        outcome["message"] = f"Malformed test case: {problem}"
        return outcome
    expect = case.get("expect") or {}
    params = dict(case.get("params") or {})
    if endpoint.is_read_only:
        # The whole capped result, not a page: expectations are about the query.
        params.setdefault("limit", settings.QUERY_ROW_CAP)
        result = endpoint_run(endpoint=endpoint, values=params, from_text=True)
        status, body = result.status, result.body
        rows, columns = body.get("results", []), body.get("columns", [])
        if scales is not None:
            for name, places in decimal_scales(rows).items():
                scales[name] = max(scales.get(name, 0), places)
    else:
        try:
            status, body, rows, columns = _run_write_case(endpoint, params)
        except NotImplementedError as exc:
            outcome["message"] = str(exc)
            return outcome
    failures = _judge(expect, status, body, rows, columns)
    outcome.update(status=status, rows=len(rows), passed=not failures)
    outcome["message"] = "; ".join(failures) if failures else "ok"
    return outcome


def endpoint_run_tests(*, endpoint: GeneratedEndpoint) -> dict:
    """Run every test case through the live runtime path (reads read-only; writes rolled back); store results."""
    scales: dict[str, int] = {}
    cases = [_run_case(endpoint, case, scales) for case in (endpoint.tests or [])]
    results = {
        "ran_at": timezone.now().isoformat(),
        "passed": bool(cases) and all(c["passed"] for c in cases),
        "total": len(cases),
        "failed": sum(1 for c in cases if not c["passed"]),
        "cases": cases,
    }
    endpoint.test_results = results
    # The decimal places the live data has, published with the row schema ("x-scale").
    endpoint.response_schema = schema_with_scales(endpoint.response_schema, scales)
    endpoint.save(update_fields=["test_results", "response_schema", "updated_at"])
    return results


# --- Review and deployment ------------------------------------------------------------------


def _ensure_reviewer(*, endpoint: GeneratedEndpoint, user) -> None:
    if user is None or not getattr(user, "is_authenticated", False):
        raise PermissionDenied("Sign in to review endpoints.")
    if user.is_superuser and user.is_active:
        return
    if endpoint.organization_id not in organization_ids_for_user(user, manage=True):
        raise PermissionDenied("Only owners and admins of the organization may review its endpoints.")


def _locked(endpoint: GeneratedEndpoint) -> GeneratedEndpoint:
    return GeneratedEndpoint.objects.select_for_update().get(pk=endpoint.pk)


def _refresh(endpoint: GeneratedEndpoint, locked: GeneratedEndpoint) -> GeneratedEndpoint:
    for name in (
        "status",
        "review_decision",
        "reviewed_by_id",
        "reviewed_at",
        "review_comment",
        "deployed_at",
        "deployed_by_id",
        "retired_at",
        "checked_sql",
    ):
        setattr(endpoint, name, getattr(locked, name))
    return endpoint


def endpoint_approve(*, endpoint: GeneratedEndpoint, user, comment: str = "") -> GeneratedEndpoint:
    """A permitted user (owner/admin of the organization) approves a draft."""
    _ensure_reviewer(endpoint=endpoint, user=user)
    with transaction.atomic():
        locked = _locked(endpoint)
        if locked.status != EndpointStatus.DRAFT:
            raise EndpointError(f"Only drafts can be approved; this one is {locked.status}.", code="invalid_state")
        locked.status = EndpointStatus.APPROVED
        locked.review_decision = ReviewDecision.APPROVED
        locked.reviewed_by, locked.reviewed_at, locked.review_comment = user, timezone.now(), comment or ""
        locked.save(
            update_fields=["status", "review_decision", "reviewed_by", "reviewed_at", "review_comment", "updated_at"]
        )
    endpoint_approved.send(sender=GeneratedEndpoint, endpoint=locked, user=user)
    return _refresh(endpoint, locked)


def endpoint_reject(*, endpoint: GeneratedEndpoint, user, comment: str) -> GeneratedEndpoint:
    """A permitted user rejects a draft or an approved endpoint with a reason; it stays a draft, marked rejected."""
    _ensure_reviewer(endpoint=endpoint, user=user)
    if not (comment or "").strip():
        raise EndpointError("Say why the endpoint is rejected.", field="comment")
    with transaction.atomic():
        locked = _locked(endpoint)
        if locked.status not in (EndpointStatus.DRAFT, EndpointStatus.APPROVED):
            raise EndpointError(f"A {locked.status} endpoint cannot be rejected; retire it.", code="invalid_state")
        locked.status = EndpointStatus.DRAFT
        locked.review_decision = ReviewDecision.REJECTED
        locked.reviewed_by, locked.reviewed_at, locked.review_comment = user, timezone.now(), comment.strip()
        locked.save(
            update_fields=["status", "review_decision", "reviewed_by", "reviewed_at", "review_comment", "updated_at"]
        )
    endpoint_rejected.send(sender=GeneratedEndpoint, endpoint=locked, user=user, reason=comment.strip())
    return _refresh(endpoint, locked)


def _mark_deployed(
    endpoint: GeneratedEndpoint, *, from_statuses: tuple, extra: dict | None = None
) -> GeneratedEndpoint:
    # Checked here, outside the transaction (it may read the schema from the database), and kept
    # on the row: every process then runs the SQL without parsing it while the grants hold.
    extra = {**(extra or {}), "checked_sql": endpoint_checked_for_calls(endpoint=endpoint)}
    with transaction.atomic():
        locked = _locked(endpoint)
        if locked.status not in from_statuses:
            raise EndpointError(f"This endpoint is {locked.status}; it cannot be deployed now.", code="invalid_state")
        locked.status = EndpointStatus.DEPLOYED
        locked.deployed_at = timezone.now()
        locked.retired_at = None
        fields = ["status", "deployed_at", "retired_at", "updated_at"]
        for name, value in extra.items():
            setattr(locked, name, value)
            fields.append(name)
        locked.save(update_fields=fields)
    return _refresh(endpoint, locked)


def endpoint_deploy(*, endpoint: GeneratedEndpoint, user=None) -> GeneratedEndpoint:
    """Make an approved endpoint live (after validation passes again). Earlier versions stay addressable."""
    if user is not None:
        _ensure_reviewer(endpoint=endpoint, user=user)
    if endpoint.status != EndpointStatus.APPROVED:
        raise EndpointError("Only approved endpoints can be deployed; approve it first.", code="not_approved")
    errors = endpoint_validate(endpoint=endpoint)  # outside any transaction: it reaches the customer database
    if errors:
        raise EndpointError("Validation failed: " + " ".join(errors), code="validation_failed")
    return _mark_deployed(endpoint, from_statuses=(EndpointStatus.APPROVED,), extra={"deployed_by": user})


def endpoint_auto_deploy_if_allowed(*, endpoint: GeneratedEndpoint) -> bool:
    """Deploy without a human when the organization allows it for read-only endpoints whose tests all passed.

    Only a verified design qualifies: one whose every phrase was accounted for, whose SQL realizes
    its interpretation and whose meaning tests passed, with nothing assumed. Anything else waits
    for a person, who sees why.
    """
    if not endpoint.organization.auto_deploy_read_only or not endpoint.is_read_only:
        return False
    if endpoint.verdict != "verified":
        return False
    if endpoint.status not in (EndpointStatus.DRAFT, EndpointStatus.APPROVED) or not endpoint.tests_passed:
        return False
    if endpoint.review_decision == ReviewDecision.REJECTED:
        return False
    if endpoint_validate(endpoint=endpoint):
        return False
    extra = {
        "deployed_by": None,
        "review_comment": "Deployed automatically: read-only, verified against the requirement, all tests passed "
        "(organization policy).",
    }
    if not endpoint.reviewed_at:
        extra["reviewed_at"] = timezone.now()
    try:
        _mark_deployed(endpoint, from_statuses=(EndpointStatus.DRAFT, EndpointStatus.APPROVED), extra=extra)
    except EndpointError:
        return False
    return True


def endpoint_retire(*, endpoint: GeneratedEndpoint, user=None) -> GeneratedEndpoint:
    """Take a version off the air: its versioned path answers 410 Gone from now on."""
    if user is not None:
        _ensure_reviewer(endpoint=endpoint, user=user)
    with transaction.atomic():
        locked = _locked(endpoint)
        if locked.status == EndpointStatus.RETIRED:
            return _refresh(endpoint, locked)
        locked.status = EndpointStatus.RETIRED
        locked.retired_at = timezone.now()
        locked.save(update_fields=["status", "retired_at", "updated_at"])
    return _refresh(endpoint, locked)


def endpoint_rollback(*, organization, slug: str, user=None) -> GeneratedEndpoint:
    """Retire the current version of a slug and make the previous deployed-once version current again."""
    versions = GeneratedEndpoint.objects.filter(organization=organization, slug=slug)
    current = versions.live().order_by("-version").first()
    if current is None:
        raise EndpointError(f"No version of '{slug}' is deployed.", code="not_deployed", field="slug")
    if user is not None:
        _ensure_reviewer(endpoint=current, user=user)
    previous = (
        versions.filter(version__lt=current.version, deployed_at__isnull=False)
        .filter(status__in=[EndpointStatus.DEPLOYED, EndpointStatus.RETIRED])
        .order_by("-version")
        .first()
    )
    if previous is None:
        raise EndpointError(f"'{slug}' has no earlier deployed version to roll back to.", code="no_previous_version")
    with transaction.atomic():
        endpoint_retire(endpoint=current)
        if previous.status != EndpointStatus.DEPLOYED:
            previous = _mark_deployed(previous, from_statuses=(EndpointStatus.RETIRED,))
    endpoint_rejected.send(sender=GeneratedEndpoint, endpoint=current, user=user, reason="rolled back")
    previous.refresh_from_db()
    return previous


# --- Export and docs ------------------------------------------------------------------------


def endpoint_export(*, endpoint: GeneratedEndpoint) -> bytes:
    """A zip of standalone code: a DRF view, urls, pytest tests and a README."""

    return export_zip(endpoint)


def endpoint_markdown_docs(*, endpoint: GeneratedEndpoint) -> str:
    """Markdown docs: description, parameters, response fields, curl and Python examples."""

    return markdown_docs(endpoint)
