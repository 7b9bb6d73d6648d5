"""From requirement to live endpoint with the offline provider: share correct and time to a live endpoint.

Run: python -m bench.bench_pipeline [--engine postgres|sqlite] [--limit N] [--only ID ...] [--json]

For each requirement of bench/requirements_demo.json the real pipeline runs (execution_submit,
execution_claim, execution_run) on the demo database with the offline provider; a COMPLETED
execution's endpoint is approved and deployed by the demo admin, then called through the live
runtime path (endpoint_call with a Role API key) with its default parameters, and the rows are
compared with the requirement's reference SQL run directly on the same database.

Comparison rule (also in the JSON file): every column of the reference result must appear in
the endpoint's rows, by name or else by the endpoint column whose values match; numbers are
compared rounded to 2 decimals, dates and times as UTC ISO text. mode "all": same multiset of
rows. mode "subset" (lists longer than a page): the endpoint's rows are a sub-multiset of the
reference rows and there are min(len(reference), default row cap) of them.

The bench works in a throwaway organization (its own Service, Role, MCP server and memories),
deleted at the end. On PostgreSQL the demo database (nectar_demo) is only read; on SQLite a
small demo database is built in a temporary directory. Spec baseline: 90% working without
human intervention, under 10 minutes from submission to a live endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

REQUIREMENTS = Path(__file__).with_name("requirements_demo.json")
TARGET_SHARE = 0.9
BASELINE_SECONDS = 600
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


# Comparing results -----------------------------------------------------------------------------


def normalise(value: Any) -> Any:
    """One comparable form per value: numbers rounded to 2 decimals, date-times as UTC 'YYYY-MM-DD HH:MM:SS'."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return round(float(value), 2)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if _NUMBER.match(value):
            return round(float(value), 2)
        if _DATETIME.match(value):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
            return normalise(parsed)
    return value


def compare(*, reference: list[dict], actual: list[dict], mode: str, cap: int) -> tuple[bool, str]:
    """Whether the endpoint's rows answer like the reference; the reason when they do not."""
    if not reference:
        return (not actual, "" if not actual else f"reference is empty, endpoint returned {len(actual)} rows")
    ref_columns = list(reference[0])
    act_columns = list(actual[0]) if actual else []
    ref_values = {c: Counter(normalise(r[c]) for r in reference) for c in ref_columns}
    act_values = {c: Counter(normalise(r.get(c)) for r in actual) for c in act_columns}
    mapping: dict[str, str] = {}
    for column in ref_columns:
        if column in act_values:
            mapping[column] = column
            continue
        for candidate in act_columns:
            if candidate in mapping.values():
                continue
            values = act_values[candidate]
            fits = values == ref_values[column] if mode == "all" else not (values - ref_values[column])
            if fits:
                mapping[column] = candidate
                break
        else:
            if actual:
                return False, f"no endpoint column holds the values of '{column}' (columns: {', '.join(act_columns)})"
    expected_rows = Counter(tuple(normalise(r[c]) for c in ref_columns) for r in reference)
    got_rows = Counter(tuple(normalise(r.get(mapping.get(c, c))) for c in ref_columns) for r in actual)
    if mode == "all":
        if got_rows == expected_rows:
            return True, ""
        missing = sum((expected_rows - got_rows).values())
        extra = sum((got_rows - expected_rows).values())
        return False, f"{missing} expected rows missing, {extra} unexpected rows (of {len(reference)} expected)"
    wanted = min(len(reference), cap)
    extra = sum((got_rows - expected_rows).values())
    if extra:
        return False, f"{extra} of {len(actual)} rows are not in the reference answer"
    if len(actual) != wanted:
        return False, f"{len(actual)} rows, expected {wanted} (reference has {len(reference)})"
    return True, ""


# The throwaway organization --------------------------------------------------------------------


class Workspace:
    """A scratch organization with the demo Service, the Sales analyst Role, its MCP server and an API key."""

    def __init__(self, *, engine: str, scale: float):
        from mcpservers.services import mcp_enable
        from roles.demo.platform import DEMO_LOGINS, demo_sales_analyst_permissions
        from roles.models import Engine, Membership, MembershipRole, Organization, Role, RoleApiKey, Service

        self.engine = engine
        self.tmp = None
        username = next(name for name, (superuser, *_) in DEMO_LOGINS.items() if superuser)
        user_model = get_user_model()
        self.user = user_model.objects.filter(username=username).first()
        self.created_user = None
        if self.user is None:  # no demo platform yet: a scratch superuser, deleted with the workspace
            self.user = self.created_user = user_model.objects.create_user(
                username=f"bench-{uuid.uuid4().hex[:8]}", is_superuser=True, is_staff=True
            )
        self.organization = Organization.objects.create(
            name="Pipeline bench (temporary)", slug=f"bench-pipeline-{uuid.uuid4().hex[:8]}"
        )
        Membership.objects.create(user=self.user, organization=self.organization, role=MembershipRole.OWNER)
        if engine == "postgres":
            from roles.demo.location import demo_database_location

            location = demo_database_location()
            self.reference_url = location.url
            service = Service.objects.create(
                organization=self.organization,
                name="demo (bench)",
                engine=Engine.POSTGRESQL,
                host=location.host,
                port=location.port,
                database=location.database,
                username=location.username,
                password=location.password,
            )
            permissions = demo_sales_analyst_permissions()
        else:
            from roles.demo import demo_build_sqlite

            self.tmp = tempfile.TemporaryDirectory(prefix="bench-pipeline-")
            path = demo_build_sqlite(path=Path(self.tmp.name) / "demo.sqlite3", scale=scale)
            self.reference_url = str(path)
            service = Service.objects.create(
                organization=self.organization, name="demo (bench)", engine=Engine.SQLITE, database=str(path)
            )
            permissions = [
                {**g, "schema": "main"}
                for g in demo_sales_analyst_permissions(schema="main", routines=False)
                if not g["path"].startswith("/proc/")
            ]
        self.role = Role.objects.create(
            organization=self.organization,
            service=service,
            name="Sales analyst",
            permissions=permissions,
            created_by=self.user,
        )
        mcp_enable(role=self.role)
        self.role.refresh_from_db()
        self.api_key, _secret = RoleApiKey.issue(role=self.role, name="bench", created_by=self.user)

    def reference_rows(self, sql: str) -> list[dict]:
        if self.engine == "postgres":
            import psycopg
            from psycopg.rows import dict_row

            with psycopg.connect(self.reference_url, row_factory=dict_row) as connection:
                connection.execute("SET TRANSACTION READ ONLY")
                return list(connection.execute(sql).fetchall())
        import sqlite3

        connection = sqlite3.connect(f"file:{self.reference_url}?mode=ro", uri=True)
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute(sql).fetchall()]
        finally:
            connection.close()

    def close(self) -> None:
        from agents.models import AgentExecution

        AgentExecution.objects.filter(organization=self.organization, parent__isnull=False).delete()
        AgentExecution.objects.filter(organization=self.organization).delete()
        service = self.role.service
        self.role.delete()
        service.delete()
        self.organization.delete()
        if self.created_user is not None:
            self.created_user.delete()
        if self.tmp is not None:
            self.tmp.cleanup()


# One requirement ---------------------------------------------------------------------------------


def run_one(workspace: Workspace, item: dict) -> dict:
    from agents.orchestrator import execution_run
    from agents.services import execution_claim, execution_submit
    from endpoints.models import EndpointStatus, GeneratedEndpoint
    from endpoints.runtime import endpoint_call
    from endpoints.services import endpoint_approve, endpoint_deploy

    dialect = workspace.engine
    sql = item["sql"].get(dialect) or item["sql"]["postgres"]
    started = time.perf_counter()
    execution = execution_submit(
        user=workspace.user, role=workspace.role, requirement=item["requirement"], enqueue=False
    )
    claimed = execution_claim(execution_id=execution.pk)
    execution_run(execution=claimed)
    claimed.refresh_from_db()
    out = {
        "id": item["id"],
        "requirement": item["requirement"],
        "status": claimed.status,
        "correct": False,
        "seconds": None,
        "why": "",
        "metrics": {k: (claimed.performance_metrics or {}).get(k) for k in ("llm_calls", "agent_steps", "tool_calls")},
    }
    if claimed.status != "COMPLETED":
        out["why"] = f"{claimed.status}: {claimed.status_reason}"
        return out
    endpoint = GeneratedEndpoint.objects.get(pk=(claimed.result or {})["endpoint"]["id"])
    out["sql"] = endpoint.sql
    if endpoint.status == EndpointStatus.DRAFT:
        endpoint = endpoint_approve(endpoint=endpoint, user=workspace.user, comment="bench")
    if endpoint.status == EndpointStatus.APPROVED:
        endpoint = endpoint_deploy(endpoint=endpoint, user=workspace.user)
    result = endpoint_call(endpoint=endpoint, api_key=workspace.api_key, values={}, from_text=True)
    out["seconds"] = round(time.perf_counter() - started, 2)
    if result.status != 200:
        out["why"] = f"live call answered {result.status}: {result.error}"
        return out
    actual = result.body["results"]
    top_n = ((endpoint.parameters or {}).get("properties") or {}).get("top_n", {}).get("default")
    cap = min(int(top_n or result.body["limit"]), result.body["limit"])
    reference = workspace.reference_rows(sql)
    out["correct"], out["why"] = compare(reference=reference, actual=actual, mode=item.get("mode", "all"), cap=cap)
    out["rows"] = len(actual)
    return out


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--limit", type=int, default=None, help="only the first N requirements")
    parser.add_argument("--only", nargs="*", default=None, help="requirement ids to run")
    parser.add_argument("--scale", type=float, default=0.05, help="SQLite demo scale")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of wrong endpoints")
    args = parser.parse_args()

    items = json.loads(REQUIREMENTS.read_text())["requirements"]
    if args.only:
        items = [i for i in items if i["id"] in set(args.only)]
    if args.limit:
        items = items[: args.limit]
    workspace = Workspace(engine=args.engine, scale=args.scale)
    results = []
    try:
        for item in items:
            connection.close_if_unusable_or_obsolete()  # the platform database may have restarted
            try:
                outcome = run_one(workspace, item)
            except Exception as exc:  # a crash is a wrong answer, not the end of the bench
                connection.close()
                outcome = {"id": item["id"], "requirement": item["requirement"], "status": "ERROR", "correct": False}
                outcome.update(seconds=None, why=f"{type(exc).__name__}: {exc}")
            results.append(outcome)
            if not args.json:
                mark = "ok  " if outcome["correct"] else "FAIL"
                took = f"{outcome['seconds']:6.2f}s" if outcome["seconds"] is not None else "     - "
                print(f"{mark} {took} {outcome['status']:<9} {item['id']:<34} {outcome['why']}"[:300], flush=True)
                if args.show_sql and not outcome["correct"] and outcome.get("sql"):
                    print("      " + outcome["sql"].replace("\n", "\n      "))
    finally:
        connection.close_if_unusable_or_obsolete()
        workspace.close()
    times = [r["seconds"] for r in results if r["correct"] and r["seconds"] is not None]
    correct = sum(1 for r in results if r["correct"])
    summary = {
        "engine": args.engine,
        "requirements": len(results),
        "correct": correct,
        "share_correct": round(correct / len(results), 3) if results else None,
        "target_share": TARGET_SHARE,
        "median_seconds_to_live": round(statistics.median(times), 2) if times else None,
        "p90_seconds_to_live": percentile(times, 0.9),
        "baseline_seconds": BASELINE_SECONDS,
        "failed": [{"id": r["id"], "why": r["why"]} for r in results if not r["correct"]],
    }
    if args.json:
        print(json.dumps({"summary": summary, "results": results}, indent=2, default=str))
        return
    print()
    print(
        f"{correct}/{len(results)} correct ({summary['share_correct']:.0%}; target >= {TARGET_SHARE:.0%}); "
        f"time to a live endpoint: median {summary['median_seconds_to_live']}s, p90 {summary['p90_seconds_to_live']}s "
        f"(baseline < {BASELINE_SECONDS // 60} minutes)"
    )


if __name__ == "__main__":
    main()
