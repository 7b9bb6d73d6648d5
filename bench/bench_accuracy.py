"""Accuracy on schemas and phrasings nobody tuned the platform for: correct, wrong and declined per database and engine.

Run: python -m bench.bench_accuracy [--database sakila northwind demo] [--engine postgresql sqlite mysql]
     [--only ID ...] [--limit N] [--check-references] [--no-second-pass] [--json FILE] [--show-sql]

Databases: Sakila and Northwind (public samples from ../shared/datasets, loaded by bench.datasets
into PostgreSQL and copied into SQLite and MariaDB, dates shifted so that relative windows mean
something) and the demo retail database (nectar_demo, copied the same way). Requirements:
bench/requirements_sakila.json, requirements_northwind.json and requirements_demo_users.json,
written as business users write them, each with a hand-written reference query (PostgreSQL; a
per-engine variant where a function differs, else sqlglot's translation, which is only used when
it returns exactly PostgreSQL's rows on the loaded data).

For each database and engine the bench sets up a throwaway organization the way a user would:
a Service for the database (connection tested, schema introspected), a Role with SELECT on every
table and view, its MCP server and an API key, a business user who asks and an admin who
approves. For each requirement the real pipeline runs with the configured LLM provider (offline
by default) through execution_submit, execution_claim and execution_run. The outcome is:

  correct   the endpoint was deployed (approved and deployed by the admin, or auto-deployed) and,
            called over HTTP at its live URL with the Role's API key and the requirement's
            parameter values mapped onto the endpoint's parameters, returns the reference
            result, every page of it (rules in bench/compare.py);
  wrong     it was deployed, or offered for deployment (COMPLETED, tests passed), but the result
            differs; the reason is printed (missing parameter, row count, values, order);
  declined  FAILED, or no deployable endpoint, or a question the oracle cannot answer.

Questions: a run that pauses in WAITING with `execution.questions` is answered by bench.clarify
(the choice whose mapping names what the reference SQL uses) through
agents.services.execution_answer (enqueue=False: the bench runs the pipeline itself, in this
process) and run again, up to MAX_QUESTION_ROUNDS rounds; a round is one answered set of
questions, and a question the oracle cannot answer declines the run.

Learning from ratings: after the first pass, the requester rates every wrong run down with the
reason as comment (agents.services.execution_rate), then those requirements run again; the
bench prints how many of the designs rated down were offered again (the same design
fingerprint, or the same SQL, in any endpoint the second run made; goal 0).

Printed per database and engine: correct, wrong, declined, the share correct without a question
and after at most one question round, the median seconds from submission to a live endpoint,
then every wrong one with its reason. Exit code 1 when any is wrong, 2 when a reference query is
unusable (empty, or different on an engine than on PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")
django.setup()

import sqlalchemy as sa  # noqa: E402
import sqlglot  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from bench import clarify  # noqa: E402
from bench.compare import result_compare  # noqa: E402
from bench.datasets import (  # noqa: E402
    DATASETS,
    DatasetCopy,
    DateShift,
    copy_database,
    dataset_load,
    default_directory,
    shift_value,
)

HERE = Path(__file__).resolve().parent
REQUIREMENT_FILES = {
    "sakila": HERE / "requirements_sakila.json",
    "northwind": HERE / "requirements_northwind.json",
    "demo": HERE / "requirements_demo_users.json",
}
DATABASES = tuple(REQUIREMENT_FILES)
ENGINES = ("postgresql", "sqlite", "mysql")
SQLGLOT_DIALECT = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql"}
MAX_QUESTION_ROUNDS = 3
MAX_PAGES = 200
_PLACEHOLDER = re.compile(r"\{(date|year|month):(\d{4}-\d{2}-\d{2})\}")


# Requirements --------------------------------------------------------------------------------------


@dataclass
class Requirement:
    id: str
    text: str
    shape: list[str]
    parameters: dict
    ordered_by: list[str]
    sql: dict  # engine -> reference SQL (named binds :name)

    def reference_sql(self, engine: str) -> tuple[str, bool]:
        """The reference for an engine, and whether it was derived by sqlglot from PostgreSQL's."""
        if engine in self.sql:
            return self.sql[engine], False
        source = self.sql["postgresql"]
        return sqlglot.transpile(source, read="postgres", write=SQLGLOT_DIALECT[engine])[0], True


def resolve_dates(text: Any, shift: DateShift) -> Any:
    """{date:2005-07-01}, {year:2005-07-01}, {month:2005-07-01}: an original date of the data, as shifted."""
    if isinstance(text, dict):
        return {k: resolve_dates(v, shift) for k, v in text.items()}
    if isinstance(text, list):
        return [resolve_dates(v, shift) for v in text]
    if not isinstance(text, str):
        return text

    def one(match: re.Match) -> str:
        moved = shift_value(date.fromisoformat(match.group(2)), shift)
        if match.group(1) == "date":
            return moved.isoformat()
        if match.group(1) == "year":
            return str(moved.year)
        return moved.strftime("%B %Y")

    return _PLACEHOLDER.sub(one, text)


def requirements_load(database: str, shift: DateShift) -> list[Requirement]:
    document = json.loads(REQUIREMENT_FILES[database].read_text())
    items = []
    seen = set()
    for raw in document["requirements"]:
        if raw["id"] in seen:
            raise SystemExit(f"{REQUIREMENT_FILES[database].name}: duplicate id {raw['id']}")
        seen.add(raw["id"])
        items.append(
            Requirement(
                id=raw["id"],
                text=resolve_dates(raw["requirement"], shift),
                shape=list(raw.get("shape") or []),
                parameters=resolve_dates(dict(raw.get("parameters") or {}), shift),
                ordered_by=list(raw.get("ordered_by") or []),
                sql=resolve_dates(dict(raw["sql"]), shift),
            )
        )
    return items


# Where each database lives --------------------------------------------------------------------------


DEMO_WRITTEN_ON = date(2026, 12, 1)  # the demo requirements' {date:...} are days of the data seeded on this day


def demo_source_url() -> tuple[str, str, DateShift]:
    """The demo database's SQLAlchemy URL, a fingerprint of its content and how far its anchor moved."""
    from roles.demo.location import demo_database_location

    url = demo_database_location().url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT key, value FROM demo_metadata ORDER BY key")).all()
    except sa.exc.DBAPIError as exc:
        raise SystemExit(f"The demo database is not there ({type(exc.orig).__name__}); run `make seed` first.") from exc
    finally:
        engine.dispose()
    metadata = dict(rows)
    anchor = date.fromisoformat(metadata.get("anchor_date") or DEMO_WRITTEN_ON.isoformat())
    shift = DateShift("seeded", days=(anchor - DEMO_WRITTEN_ON).days, newest_original=DEMO_WRITTEN_ON.isoformat())
    return url, json.dumps([list(r) for r in rows]), shift


def target_prepare(database: str, engine: str) -> DatasetCopy:
    """The copy of a database on an engine, loaded or reused."""
    if database in DATASETS:
        return dataset_load(dataset=database, engine=engine, directory=default_directory())
    url, fingerprint, shift = demo_source_url()
    if engine == "postgresql":
        from roles.demo.location import demo_database_location

        # The demo database itself, reached like the demo's own Service: as its least-privilege login.
        location = demo_database_location()
        username, password = location.service_login
        return DatasetCopy(
            dataset="demo",
            engine="postgresql",
            database=location.database,
            host=location.host,
            port=location.port,
            username=username,
            password=password,
            shift=shift,
        )
    return copy_database(
        source_url=url,
        engine=engine,
        database="bench_demo",
        fingerprint=fingerprint,
        dataset="demo",
        shift=shift,
        directory=default_directory(),
    )


def _reference_url(copy: DatasetCopy) -> sa.URL | str:
    """Where the reference queries run: the copy itself (a socket directory as psycopg's host, with the password)."""
    if copy.engine == "postgresql" and copy.host.startswith("/"):
        query = {"host": copy.host, **({"port": str(copy.port)} if copy.port else {})}
        return sa.URL.create(
            "postgresql+psycopg",
            username=copy.username or None,
            password=copy.password or None,
            database=copy.database,
            query=query,
        )
    return copy.url


class References:
    """Runs reference queries directly on a copy (read-only use)."""

    def __init__(self, copy: DatasetCopy):
        self.engine = sa.create_engine(_reference_url(copy), poolclass=sa.NullPool)

    def rows(self, sql: str, parameters: dict) -> list[dict]:
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(sql), parameters)
            return [dict(row) for row in result.mappings()]

    def close(self) -> None:
        self.engine.dispose()


def reference_result(
    item: Requirement, engine: str, references: References, baseline: References | None
) -> tuple[list[dict] | None, str]:
    """The reference rows on an engine, or None and why the reference cannot be used."""
    sql, derived = item.reference_sql(engine)
    try:
        rows = references.rows(sql, item.parameters)
    except sa.exc.DBAPIError as exc:
        how = "sqlglot's translation" if derived else "the reference"
        return None, f"{how} fails on {engine}: {str(exc.orig).splitlines()[0][:200]}"
    if not rows:
        return None, "the reference returns no rows: an empty answer cannot tell right from wrong"
    if baseline is not None:
        expected = baseline.rows(item.sql["postgresql"], item.parameters)
        verdict = result_compare(reference=expected, actual=rows, ordered_by=item.ordered_by)
        if not verdict.correct:
            how = "sqlglot's translation" if derived else "the reference"
            return None, f"{how} on {engine} differs from PostgreSQL's: {verdict.why}"
        missing = [c for c in expected[0] if c not in rows[0]]
        if missing:
            return None, f"the reference on {engine} names its columns differently: {', '.join(missing)}"
    for column in item.ordered_by:
        if column not in rows[0]:
            return None, f"ordered_by names '{column}', which the reference does not return"
    return rows, ""


# The throwaway organization --------------------------------------------------------------------------


def _role_permissions(schema: dict) -> list[dict]:
    """SELECT on every table and view of the introspected schema."""
    grants = []
    for obj in schema.get("objects", []):
        if obj.get("kind") not in ("table", "view"):
            continue
        grants.append(
            {
                "objectName": obj["name"],
                "schema": obj.get("schema"),
                "path": f"/{obj['kind']}/{obj['name']}",
                "actions": ["SELECT"],
            }
        )
    return grants


class Workspace:
    """An organization with one Service (the copy), a Role reading everything, its MCP server and a key."""

    def __init__(self, *, copy: DatasetCopy, label: str):
        from mcpservers.services import mcp_enable
        from roles.models import Membership, MembershipRole, Organization, Role, RoleApiKey, Service
        from roles.services import permissions_validate, service_refresh_schema, service_test_connection

        suffix = uuid.uuid4().hex[:8]
        users = get_user_model()
        self.organization = Organization.objects.create(
            name=f"Accuracy bench {label} (temporary)", slug=f"bench-accuracy-{suffix}"
        )
        self.admin = users.objects.create_user(username=f"bench-admin-{suffix}", password=uuid.uuid4().hex)
        self.requester = users.objects.create_user(username=f"bench-user-{suffix}", password=uuid.uuid4().hex)
        Membership.objects.create(user=self.admin, organization=self.organization, role=MembershipRole.OWNER)
        Membership.objects.create(user=self.requester, organization=self.organization, role=MembershipRole.MEMBER)
        self.service = Service.objects.create(
            organization=self.organization, name=f"{copy.dataset} on {copy.engine}", **copy.service_fields()
        )
        test = service_test_connection(service=self.service)
        if not test.ok:
            self.close()
            raise SystemExit(f"{copy.display}: the Service cannot connect ({test.reason}: {test.detail})")
        schema = service_refresh_schema(service=self.service)
        permissions = _role_permissions(schema)
        errors = permissions_validate(service=self.service, permissions=permissions)
        if errors:
            self.close()
            raise SystemExit(f"{copy.display}: the Role's permissions are refused: {errors[:3]}")
        self.role = Role.objects.create(
            organization=self.organization,
            service=self.service,
            name="Analyst (everything, read only)",
            permissions=permissions,
            created_by=self.admin,
        )
        mcp_enable(role=self.role)
        self.role.refresh_from_db()
        _key, self.secret = RoleApiKey.issue(role=self.role, name="accuracy bench", created_by=self.admin)

    def close(self) -> None:
        from agents.models import AgentExecution
        from mcpservers.audit import audit_flush

        audit_flush()  # tool calls still pending would name the key after it is gone
        AgentExecution.objects.filter(organization=self.organization, parent__isnull=False).delete()
        AgentExecution.objects.filter(organization=self.organization).delete()
        if hasattr(self, "role"):
            self.role.delete()
        if hasattr(self, "service"):
            self.service.delete()
        self.organization.delete()
        self.admin.delete()
        self.requester.delete()


# Calling the live endpoint -------------------------------------------------------------------------------


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _looks_like_date(value: Any) -> bool:
    return isinstance(value, str) and bool(re.match(r"^\d{4}-\d{2}-\d{2}", value))


def parameters_map(*, wanted: dict, schema: dict) -> tuple[dict, list[str]]:
    """The requirement's parameter values under the endpoint's parameter names, and those it does not expose.

    By name: the same name, then names whose words contain the other's (country / customer_country,
    category_id / category); then by kind: the endpoint's only remaining parameter that can hold the
    value (a date for a date, a number for a number; never a page size such as top_n). A lenient
    mapping cannot make a wrong endpoint pass: its rows must still be the reference's.
    """
    properties = dict((schema or {}).get("properties") or {})
    mapped: dict = {}
    missing: list[str] = []
    free = set(properties)
    scored = []
    for name in wanted:
        mine = _tokens(name)
        for candidate in properties:
            theirs = _tokens(candidate)
            if "".join(mine) == "".join(theirs):
                score = 3
            elif set(mine) <= set(theirs):
                score = 2
            elif set(theirs) <= set(mine) and set(theirs) - {"id", "name", "value", "p"}:
                score = 1
            else:
                continue
            scored.append((score, name, candidate))
    placed: set[str] = set()
    for _score, name, candidate in sorted(scored, key=lambda s: -s[0]):
        if name in placed or candidate not in free:
            continue
        mapped[candidate] = wanted[name]
        placed.add(name)
        free.discard(candidate)
    for name, value in wanted.items():
        if name in placed:
            continue
        # By kind: the one remaining parameter that can hold this value (not a page-size knob).
        fitting = [c for c in free if not _SIZE_KNOB.search(c) and _can_hold(properties[c] or {}, value)]
        if len(fitting) == 1:
            mapped[fitting[0]] = value
            free.discard(fitting[0])
            continue
        missing.append(name)
    return mapped, missing


_SIZE_KNOB = re.compile(r"(^|_)(top|limit|n|size|count|offset|page)(_|$)", re.I)


def _can_hold(spec: dict, value: Any) -> bool:
    kind, fmt = spec.get("type"), spec.get("format")
    if isinstance(value, bool):
        return kind == "boolean"
    if isinstance(value, (int, float)):
        return kind in ("integer", "number")
    if _looks_like_date(value):
        return fmt in ("date", "date-time")
    return kind == "string" and fmt not in ("date", "date-time")


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_query_value(v) for v in value]
    return str(value)


@dataclass
class Fetched:
    status: int
    rows: list[dict] = field(default_factory=list)
    truncated: bool = False
    error: str = ""
    pages: int = 0


def fetch_all(*, path: str, secret: str, values: dict) -> Fetched:
    """Every row of a live endpoint over HTTP, following its `next` links; 429s are waited out."""
    from django.test import Client

    client = Client()
    query = {k: _query_value(v) for k, v in values.items()}
    fetched = Fetched(status=0)
    url_path = path
    for _ in range(MAX_PAGES):
        for _attempt in range(5):
            response = client.get(url_path, data=query, HTTP_AUTHORIZATION=f"Bearer {secret}")
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After") or 5))
        fetched.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            fetched.error = f"answered {response.status_code} with a body that is not JSON"
            return fetched
        if response.status_code != 200:
            error = (body or {}).get("error") or {}
            fetched.error = f"answered {response.status_code}: {error.get('message') or body}"[:400]
            return fetched
        fetched.pages += 1
        fetched.rows.extend(body.get("results") or [])
        fetched.truncated = fetched.truncated or bool(body.get("truncated"))
        following = body.get("next")
        if not following:
            return fetched
        parts = urlsplit(following)
        url_path, query = parts.path, {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
    fetched.error = f"more than {MAX_PAGES} pages"
    return fetched


# One requirement ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    database: str
    engine: str
    id: str
    requirement: str
    outcome: str = "declined"  # correct | wrong | declined | error
    why: str = ""
    status: str = ""
    questions: int = 0
    seconds: float | None = None
    sql: str = ""
    endpoint: str = ""
    execution_id: str = ""
    rows: int | None = None
    fingerprint: str = ""  # design_fingerprint of the endpoint's interpretation


def _run_pipeline(workspace: Workspace, execution, provider=None) -> Any:
    from agents.orchestrator import execution_run
    from agents.services import execution_claim

    claimed = execution_claim(execution_id=execution.pk)
    if claimed is None:
        execution.refresh_from_db()
        return execution
    execution_run(execution=claimed, provider=provider)
    claimed.refresh_from_db()
    return claimed


def _answer_questions(workspace: Workspace, execution, item: Requirement, engine: str, outcome: Outcome, provider=None):
    """Answer WAITING rounds like the user would; the execution after the last round, or a reason to stop.

    `outcome.questions` counts the rounds answered: one per execution_answer that the platform took.
    """
    from agents.services import ExecutionError, execution_answer

    sql, _ = item.reference_sql(engine)
    facts = clarify.reference_facts(sql=sql, parameters=item.parameters, dialect=SQLGLOT_DIALECT[engine])
    while str(execution.status) == clarify.WAITING:
        if outcome.questions >= MAX_QUESTION_ROUNDS:
            return execution, f"still asking after {MAX_QUESTION_ROUNDS} rounds of questions"
        questions = list(execution.questions or [])
        answers, why = clarify.answers_for(questions=questions, facts=facts)
        if not answers:
            return execution, why or "waiting, with no question to answer"
        try:
            execution = execution_answer(execution=execution, user=workspace.requester, answers=answers, enqueue=False)
        except ExecutionError as exc:
            return execution, f"the platform refused the answers ({exc.field or exc.code}): {exc.message}"
        outcome.questions += 1
        execution = _run_pipeline(workspace, execution, provider)
    return execution, ""


def run_requirement(
    workspace: Workspace,
    item: Requirement,
    reference: Callable[[], list[dict]],
    *,
    database: str,
    engine: str,
    provider=None,
) -> Outcome:
    """Ask, answer questions, deploy, call and compare; `reference` computes the expected rows when called.

    The reference runs right after the endpoint's last page came back, so that windows relative to
    today ("the last 30 days") are evaluated at the same moment on both sides.
    """
    from agents.services import execution_submit
    from endpoints.interpretation import design_fingerprint
    from endpoints.models import EndpointStatus, GeneratedEndpoint
    from endpoints.services import EndpointError, endpoint_approve, endpoint_deploy

    outcome = Outcome(database=database, engine=engine, id=item.id, requirement=item.text)
    started = time.perf_counter()
    execution = execution_submit(user=workspace.requester, role=workspace.role, requirement=item.text, enqueue=False)
    outcome.execution_id = str(execution.pk)
    execution = _run_pipeline(workspace, execution, provider)
    execution, stopped = _answer_questions(workspace, execution, item, engine, outcome, provider)
    outcome.status = str(execution.status)
    if stopped:
        outcome.why = stopped
        return outcome
    if execution.status != "COMPLETED":
        outcome.why = f"{execution.status}: {execution.status_reason or 'no reason given'}"
        return outcome
    endpoint_id = ((execution.result or {}).get("endpoint") or {}).get("id")
    if not endpoint_id:
        outcome.why = "COMPLETED without an endpoint"
        return outcome
    endpoint = GeneratedEndpoint.objects.select_related("organization").get(pk=endpoint_id)
    outcome.sql, outcome.endpoint = endpoint.sql, f"{endpoint.slug} v{endpoint.version}"
    outcome.fingerprint = design_fingerprint(endpoint.interpretation) if endpoint.interpretation else ""
    if endpoint.status != EndpointStatus.DEPLOYED:
        if not endpoint.tests_passed:
            outcome.why = "COMPLETED, but its tests did not pass: not offered for deployment"
            return outcome
        try:
            if endpoint.status == EndpointStatus.DRAFT:
                endpoint = endpoint_approve(endpoint=endpoint, user=workspace.admin, comment="accuracy bench")
            endpoint = endpoint_deploy(endpoint=endpoint, user=workspace.admin)
        except EndpointError as exc:
            # Offered (tests passed) but the platform will not deploy it: not an answer the user gets.
            outcome.why = f"COMPLETED, but deploying it was refused: {exc}"
            return outcome
    outcome.seconds = round(time.perf_counter() - started, 2)  # live from here on
    values, missing = parameters_map(wanted=item.parameters, schema=endpoint.parameters)
    outcome.outcome = "wrong"
    if missing:
        exposed = ", ".join((endpoint.parameters or {}).get("properties") or {}) or "none"
        outcome.why = f"no parameter for {', '.join(missing)} (the endpoint's parameters: {exposed})"
        return outcome
    fetched = fetch_all(path=endpoint.versioned_path, secret=workspace.secret, values=values)
    if fetched.error:
        outcome.why = f"the live call {fetched.error}"
        return outcome
    outcome.rows = len(fetched.rows)
    expected = reference()
    if not fetched.rows:
        outcome.why = f"no rows (the reference has {len(expected)})"
        return outcome
    verdict = result_compare(
        reference=expected, actual=fetched.rows, ordered_by=item.ordered_by, truncated=fetched.truncated
    )
    if verdict.correct:
        outcome.outcome, outcome.why = "correct", ""
        return outcome
    outcome.why = verdict.why + _cut_hint(endpoint, len(fetched.rows), len(expected))
    return outcome


def _cut_hint(endpoint, got: int, expected: int) -> str:
    """Say so when the row count is exactly a parameter's default: a cut the caller did not ask for."""
    if got >= expected:
        return ""
    for name, spec in ((endpoint.parameters or {}).get("properties") or {}).items():
        if isinstance(spec, dict) and spec.get("default") == got:
            return f" (cut at the default of '{name}')"
    return ""


# Passes and reports ---------------------------------------------------------------------------------------


def normalised_sql(sql: str, engine: str) -> str:
    try:
        return sqlglot.transpile(sql, read=SQLGLOT_DIALECT[engine], pretty=False)[0].lower()
    except sqlglot.errors.SqlglotError:
        return re.sub(r"\s+", " ", sql).strip().lower()


def _reference_call(references: References, item: Requirement, engine: str) -> Callable[[], list[dict]]:
    sql, _ = item.reference_sql(engine)
    return lambda: references.rows(sql, item.parameters)


def _safe_run(workspace, item, reference, *, database, engine, provider=None) -> Outcome:
    connection.close_if_unusable_or_obsolete()  # the platform database may have restarted
    try:
        return run_requirement(workspace, item, reference, database=database, engine=engine, provider=provider)
    except Exception as exc:  # the bench itself failed on this one: reported, never counted as an answer
        connection.close()
        return Outcome(database, engine, item.id, item.text, outcome="error", why=f"{type(exc).__name__}: {exc}")


def _offered_designs(execution_id: str) -> list[tuple[str, str]]:
    """(fingerprint, SQL) of every endpoint a run made: drafts offered for review as well as deployed ones."""
    from endpoints.interpretation import design_fingerprint
    from endpoints.models import GeneratedEndpoint

    if not execution_id:
        return []
    return [
        (design_fingerprint(e.interpretation) if e.interpretation else "", e.sql)
        for e in GeneratedEndpoint.objects.filter(source_execution_id=execution_id)
    ]


def learning_pass(
    workspace: Workspace,
    wrong: list[Outcome],
    items: dict,
    references: dict,
    *,
    database: str,
    engine: str,
    provider=None,
) -> list[dict]:
    """Rate every wrong run down with its reason, run those requirements again; which rated-down designs came back.

    A design counts as offered again when any endpoint of the second run (draft or deployed) has the
    rated-down design's fingerprint or, written the same way, its SQL.
    """
    from agents.models import AgentExecution
    from agents.services import execution_rate

    for outcome in wrong:
        execution = AgentExecution.objects.get(pk=outcome.execution_id)
        execution_rate(execution=execution, user=workspace.requester, up=False, comment=f"Wrong result: {outcome.why}")
    again = []
    for outcome in wrong:
        second = _safe_run(
            workspace, items[outcome.id], references[outcome.id], database=database, engine=engine, provider=provider
        )
        rejected_sql = normalised_sql(outcome.sql, engine) if outcome.sql else None
        same = any(
            (outcome.fingerprint and fingerprint == outcome.fingerprint)
            or (rejected_sql is not None and normalised_sql(sql, engine) == rejected_sql)
            for fingerprint, sql in _offered_designs(second.execution_id)
        )
        again.append({"first": outcome, "second": second, "offered_again": same})
    return again


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def summarise(outcomes: list[Outcome]) -> dict:
    counted = [o for o in outcomes if o.outcome != "error"]
    total = len(counted)
    correct = [o for o in counted if o.outcome == "correct"]
    live = [o.seconds for o in counted if o.outcome in ("correct", "wrong") and o.seconds is not None]
    return {
        "requirements": total,
        "correct": len(correct),
        "wrong": sum(1 for o in counted if o.outcome == "wrong"),
        "declined": sum(1 for o in counted if o.outcome == "declined"),
        "errors": len(outcomes) - total,
        "share_without_question": round(sum(1 for o in correct if o.questions == 0) / total, 3) if total else None,
        "share_after_one_question": round(sum(1 for o in correct if o.questions <= 1) / total, 3) if total else None,
        "median_seconds_to_live": _median(live),
    }


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _print_table(rows: list[dict]) -> None:
    header = ("database", "engine", "n", "correct", "wrong", "declined", "errors", "no question", "<=1 question",
              "median s to live", "rated down/offered again")  # fmt: skip
    widths = (10, 11, 4, 8, 6, 9, 7, 12, 13, 17, 0)
    print("".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        s = row["summary"]
        median = "-" if s["median_seconds_to_live"] is None else f"{s['median_seconds_to_live']:.1f}"
        learning = f"{row['learning']['rated_down']}/{row['learning']['offered_again']}"
        cells = (
            row["database"], row["engine"], s["requirements"], s["correct"], s["wrong"], s["declined"], s["errors"],
            _share(s["share_without_question"]), _share(s["share_after_one_question"]), median, learning,
        )  # fmt: skip
        print("".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)))


def check_references(databases: list[str], engines: list[str], only: set[str] | None) -> int:
    """Run every reference on every engine: non-empty, and equal to PostgreSQL's. 0 when all are usable."""
    problems = checked = 0
    for database in databases:
        copies = {engine: target_prepare(database, engine) for engine in {"postgresql", *engines}}
        shift = copies["postgresql"].shift
        print(f"{database}: {shift.text}")
        baseline = References(copies["postgresql"])
        try:
            for item in requirements_load(database, shift):
                if only and item.id not in only:
                    continue
                checked += 1
                counts, bad = [], False
                for engine in engines:
                    references = References(copies[engine]) if engine != "postgresql" else baseline
                    try:
                        rows, why = reference_result(
                            item, engine, references, None if engine == "postgresql" else baseline
                        )
                    finally:
                        if references is not baseline:
                            references.close()
                    if rows is None:
                        problems += 1
                        bad = True
                        print(f"  BAD  {item.id} on {engine}: {why}")
                    counts.append(f"{engine}={len(rows) if rows else 0}")
                print(f"  {'BAD' if bad else 'ok':<4} {item.id:<40} rows: {' '.join(counts)}")
        finally:
            baseline.close()
    print(f"{checked} reference(s) checked on {', '.join(engines)}: {problems} unusable")
    return 0 if problems == 0 else 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", nargs="*", choices=DATABASES, default=list(DATABASES))
    parser.add_argument("--engine", nargs="*", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--only", nargs="*", default=None, help="requirement ids to run")
    parser.add_argument("--limit", type=int, default=None, help="only the first N requirements of each database")
    parser.add_argument("--check-references", action="store_true", help="only check the reference queries")
    parser.add_argument("--no-second-pass", action="store_true", help="skip the learning-from-ratings pass")
    parser.add_argument("--json", type=Path, default=None, help="also write every outcome to this file")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of wrong endpoints")
    args = parser.parse_args()
    only = set(args.only) if args.only else None
    if args.check_references:
        return check_references(args.database, args.engine, only)

    report: list[dict] = []
    bad_references = 0
    for database in args.database:
        baseline_copy = target_prepare(database, "postgresql")
        baseline = References(baseline_copy)
        items = requirements_load(database, baseline_copy.shift)
        if only:
            items = [i for i in items if i.id in only]
        if args.limit:
            items = items[: args.limit]
        print(f"\n{database}: {len(items)} requirements; {baseline_copy.shift.text}", flush=True)
        try:
            for engine in args.engine:
                copy = baseline_copy if engine == "postgresql" else target_prepare(database, engine)
                for line in copy.skipped:
                    print(f"  ({engine}) {line}")
                references = References(copy) if engine != "postgresql" else baseline
                workspace = Workspace(copy=copy, label=f"{database} {engine}")
                outcomes: list[Outcome] = []
                expected: dict[str, Callable[[], list[dict]]] = {}
                try:
                    for item in items:
                        rows, why = reference_result(
                            item, engine, references, None if engine == "postgresql" else baseline
                        )
                        if rows is None:
                            bad_references += 1
                            outcome = Outcome(database, engine, item.id, item.text, outcome="error", why=why)
                        else:
                            expected[item.id] = _reference_call(references, item, engine)
                            outcome = _safe_run(workspace, item, expected[item.id], database=database, engine=engine)
                        outcomes.append(outcome)
                        _print_outcome(outcome, show_sql=args.show_sql)
                    wrong = [o for o in outcomes if o.outcome == "wrong"]
                    learning = []
                    if wrong and not args.no_second_pass:
                        print(f"  rating {len(wrong)} wrong endpoint(s) down and asking again ...", flush=True)
                        learning = learning_pass(
                            workspace, wrong, {i.id: i for i in items}, expected, database=database, engine=engine
                        )
                        for entry in learning:
                            mark = "SAME" if entry["offered_again"] else "new "
                            second = entry["second"]
                            print(f"    {mark} {second.outcome:<8} {second.id:<36} {second.why}"[:300], flush=True)
                finally:
                    workspace.close()
                    if references is not baseline:
                        references.close()
                report.append(
                    {
                        "database": database,
                        "engine": engine,
                        "shift": copy.shift.text,
                        "summary": summarise(outcomes),
                        "outcomes": [asdict(o) for o in outcomes],
                        "learning": {
                            "rated_down": len(learning),
                            "offered_again": sum(1 for e in learning if e["offered_again"]),
                            "second_pass": [
                                {**asdict(e["second"]), "offered_again": e["offered_again"]} for e in learning
                            ],
                        },
                    }
                )
        finally:
            baseline.close()
    _final_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if bad_references:
        return 2
    return 1 if any(r["summary"]["wrong"] for r in report) else 0


def _print_outcome(outcome: Outcome, *, show_sql: bool) -> None:
    mark = {"correct": "ok  ", "wrong": "WRONG", "declined": "no  ", "error": "ERR "}[outcome.outcome]
    took = f"{outcome.seconds:6.2f}s" if outcome.seconds is not None else "     - "
    asked = f"q{outcome.questions}" if outcome.questions else "  "
    print(f"  {mark:<5} {took} {asked} {outcome.id:<36} {outcome.why}"[:320], flush=True)
    if show_sql and outcome.outcome == "wrong" and outcome.sql:
        print("        " + outcome.sql.replace("\n", "\n        "))


def _final_report(report: list[dict]) -> None:
    print()
    _print_table(report)
    rated = sum(r["learning"]["rated_down"] for r in report)
    again = sum(r["learning"]["offered_again"] for r in report)
    print(f"Learning from ratings: {rated} wrong design(s) rated down; {again} offered again on the second pass")
    wrong = [o for r in report for o in r["outcomes"] if o["outcome"] == "wrong"]
    if wrong:
        print(f"\nWrong ({len(wrong)}):")
        for o in wrong:
            print(f"  {o['database']}/{o['engine']} {o['id']}: {o['requirement']!r}: {o['why']}"[:400])
    errors = [o for r in report for o in r["outcomes"] if o["outcome"] == "error"]
    if errors:
        print(f"\nBench errors ({len(errors)}; not counted):")
        for o in errors:
            print(f"  {o['database']}/{o['engine']} {o['id']}: {o['why']}"[:400])


if __name__ == "__main__":
    raise SystemExit(main())
