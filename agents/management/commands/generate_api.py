"""python manage.py generate_api "REQUIREMENT" --role ROLE: run the agents with live progress."""

from __future__ import annotations

import json
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from agents.models import PHASE_ORDER, AgentStatus
from agents.orchestrator import execution_run
from agents.services import ExecutionError, execution_claim, execution_submit
from roles.models import Membership, Role


class Command(BaseCommand):
    help = "Turn a plain-English requirement into a tested, documented endpoint on a Role, in this terminal."

    def add_arguments(self, parser):
        parser.add_argument("requirement", help='What the API should answer, e.g. "top 10 products by revenue"')
        parser.add_argument("--role", required=True, help="Role name or id")
        parser.add_argument("--org", help="Organization slug (when role names repeat across organizations)")
        parser.add_argument("--user", help="Username to run as (default: an owner of the role's organization)")
        parser.add_argument("--json", action="store_true", help="Print one machine-readable JSON result")

    def _role(self, ref: str, org: str | None) -> Role:
        roles = Role.objects.select_related("organization", "service")
        query = Q(name=ref)
        try:
            query |= Q(pk=ref)
            roles.filter(query).exists()
        except (ValidationError, ValueError):
            query = Q(name=ref)
        if org:
            roles = roles.filter(organization__slug=org)
        matches = list(roles.filter(query))
        if not matches:
            raise CommandError(f"No role named or with id {ref!r}" + (f" in organization {org!r}" if org else ""))
        if len(matches) > 1:
            raise CommandError(f"Several roles are named {ref!r}; pass --org to choose the organization")
        return matches[0]

    def _user(self, role: Role, username: str | None):
        if username:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"No user {username!r}")
            return user
        membership = Membership.objects.filter(organization=role.organization).order_by("role", "created_at").first()
        if membership is None:
            raise CommandError(f"The organization {role.organization} has no members; pass --user")
        return membership.user

    def handle(self, *args, requirement: str, role: str, org: str | None, user: str | None, json: bool, **options):
        role_obj = self._role(role, org)
        user_obj = self._user(role_obj, user)
        try:
            execution = execution_submit(user=user_obj, role=role_obj, requirement=requirement, enqueue=False)
        except ExecutionError as exc:
            raise CommandError(exc.message) from exc
        claimed = execution_claim(execution_id=execution.pk)
        if claimed is None:
            raise CommandError("The execution could not be started")
        started = time.monotonic()
        if json:
            execution_run(execution=claimed)
        else:
            self._run_with_progress(claimed, requirement, started)
        claimed.refresh_from_db()
        if json:
            self.stdout.write(_json_dump(_result(claimed)))
        else:
            self._print_result(claimed)
        if claimed.status != AgentStatus.COMPLETED:
            raise CommandError(f"Generation failed: {claimed.status_reason}")

    def _run_with_progress(self, execution, requirement: str, started: float) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(file=self.stdout._out, highlight=False)
        console.print(f"[bold]Requirement:[/bold] {requirement}")
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            bar = progress.add_task("starting", total=len(PHASE_ORDER))

            def on_progress(kind: str, payload: dict) -> None:
                if kind == "phase" and payload.get("status") == "started":
                    progress.update(bar, description=str(payload["phase"]))
                elif kind == "phase" and payload.get("status") == "completed":
                    progress.advance(bar)
                    progress.console.print(f"  [green]✓[/green] {payload['phase']} ({payload.get('seconds', 0):.1f}s)")
                elif kind == "status" and payload.get("status") == AgentStatus.FAILED:
                    progress.console.print(f"  [red]✗ {payload.get('reason')}[/red]")

            execution_run(execution=execution, on_progress=on_progress)

    def _print_result(self, execution) -> None:
        result = _result(execution)
        if execution.status != AgentStatus.COMPLETED:
            self.stderr.write(f"Failed in {result.get('failed_phase') or 'the pipeline'}: {execution.status_reason}")
            return
        endpoint = result["endpoint"]
        self.stdout.write(
            self.style.SUCCESS(
                f"\n{endpoint['method']} {endpoint['url']}  (v{endpoint['version']}, {endpoint['status']})"
            )
        )
        self.stdout.write(f"\n{endpoint['description']}\n\nParameters:\n{_json_dump(endpoint['parameters'])}")
        self.stdout.write(f"\nSQL:\n{endpoint['sql']}\n\nTests:")
        for case in endpoint["test_results"].get("cases", []):
            mark = "PASS" if case.get("passed") else "FAIL"
            self.stdout.write(f"  {mark}  {case.get('name')}  {case.get('message', '')}")
        self.stdout.write(f"\nDocumentation:\n{endpoint['docs']}")
        metrics = execution.performance_metrics or {}
        self.stdout.write(
            f"\nDone in {metrics.get('duration_seconds', 0):.1f}s: {metrics.get('agent_steps', 0)} agent steps, "
            f"{metrics.get('llm_calls', 0)} LLM calls, {metrics.get('tool_calls', 0)} tool calls."
        )


def _json_dump(value) -> str:
    return json.dumps(value, indent=2, default=str)


def _result(execution) -> dict:
    from endpoints.docs import live_url
    from endpoints.models import GeneratedEndpoint
    from endpoints.services import endpoint_markdown_docs

    state = execution.result or {}
    result = {
        "execution_id": str(execution.pk),
        "status": execution.status,
        "reason": execution.status_reason,
        "failed_phase": (state.get("error") or {}).get("phase"),
        "metrics": execution.performance_metrics or {},
        "endpoint": None,
    }
    info = state.get("endpoint")
    if info:
        endpoint = GeneratedEndpoint.objects.get(pk=info["id"])
        result["endpoint"] = {
            "id": str(endpoint.pk),
            "method": endpoint.method,
            "slug": endpoint.slug,
            "url": live_url(endpoint),
            "version": endpoint.version,
            "status": endpoint.status,
            "description": endpoint.description,
            "parameters": endpoint.parameters,
            "sql": endpoint.sql,
            "response_schema": endpoint.response_schema,
            "tests": endpoint.tests,
            "test_results": endpoint.test_results or {},
            "docs": endpoint_markdown_docs(endpoint=endpoint),
        }
    return result
