"""python manage.py generate_api "REQUIREMENT" --role ROLE: run the agents with live progress."""

from __future__ import annotations

import difflib
import json
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents.models import PHASE_ORDER, AgentStatus
from agents.orchestrator import execution_run
from agents.services import ExecutionError, execution_answer, execution_claim, execution_submit
from agents.wording import phase_doing, phase_label, plain_words
from endpoints.docs import live_url
from endpoints.models import GeneratedEndpoint
from endpoints.services import endpoint_markdown_docs
from roles.models import Membership, Organization, Role


class Command(BaseCommand):
    help = "Turn a plain-English requirement into a tested, documented endpoint on a Role, in this terminal."

    def add_arguments(self, parser):
        parser.add_argument("requirement", help='What the API should answer, e.g. "top 10 products by revenue"')
        parser.add_argument("--role", required=True, help="Role name (any case) or id")
        parser.add_argument("--org", help="Organization slug (when role names repeat across organizations)")
        parser.add_argument("--user", help="Username to run as (default: an owner of the role's organization)")
        parser.add_argument("--json", action="store_true", help="Print one machine-readable JSON result")
        parser.add_argument(
            "--answer",
            action="append",
            default=[],
            metavar="QUESTION=CHOICE",
            help="Answer a question the run asks: its id (or the phrase it is about) = a choice id (several joined "
            "by commas where it allows it), or other:your words. Without answers it asks here when a person is "
            "at the terminal.",
        )

    # The run in steps: resolve who and what, submit, run (with progress), report. Each step is a method
    # so that further steps (such as answering the run's questions) slot in between.

    def handle(self, *args, requirement: str, role: str, org: str | None, user: str | None, json: bool, **options):
        organization = _organization(org) if org else None
        role_obj = _role(role, organization)
        user_obj = _user(role_obj, user)
        given = _parse_answers(options.get("answer") or [])
        execution = self._submit(user_obj, role_obj, requirement)
        for _round in range(MAX_QUESTION_ROUNDS):
            if json:
                execution_run(execution=execution)
            else:
                self._run_with_progress(execution, requirement)
            execution.refresh_from_db()
            if execution.status != AgentStatus.WAITING:
                break
            answers = self._answers(execution, given, interactive=not json)
            if answers is None:
                break
            execution = self._answer(execution, user_obj, answers)
        self._report(execution, as_json=json)

    def _answers(self, execution, given: dict[str, str], *, interactive: bool) -> dict | None:
        """Answers to the run's questions: from --answer, else asked at the terminal; None when nobody can answer."""
        answers: dict = {}
        for question in execution.questions:
            raw = _given_for(question, execution.questions, given)
            if raw is None and interactive and sys.stdin.isatty():
                raw = self._ask(question)
            if raw is None:
                return None
            answers[question["id"]] = _answer_value(question, raw)
        return answers

    def _ask(self, question: dict) -> str:
        self.stdout.write(f"\n{plain_words(question['text'])}")
        for number, choice in enumerate(question["choices"], start=1):
            self.stdout.write(f"  {number}. {choice['label']}")
        several = " (several: 1,3)" if question.get("multiple") else ""
        other = ", or type your own words" if question.get("allow_other") else ""
        count = len(question["choices"])
        while True:
            reply = input(f"Your answer: a number{several}{other}: ").strip()
            numbers = [p.strip() for p in reply.split(",") if p.strip()]
            if numbers and all(n.isdigit() for n in numbers):
                # Numbers are always a choice: one out of range is asked again, never taken as words.
                wrong = [n for n in numbers if not 1 <= int(n) <= count]
                if wrong:
                    self.stdout.write(f"There is no choice {', '.join(wrong)}: choose a number from 1 to {count}.")
                elif len(numbers) > 1 and not question.get("multiple"):
                    self.stdout.write("Choose one number: this question takes a single answer.")
                else:
                    return ",".join(question["choices"][int(n) - 1]["id"] for n in dict.fromkeys(numbers))
                continue
            if reply and question.get("allow_other"):
                return f"other:{reply}"
            self.stdout.write(f"Please choose a number from 1 to {count}.")

    def _answer(self, execution, user, answers: dict):
        try:
            execution_answer(execution=execution, user=user, answers=answers, enqueue=False)
        except ExecutionError as exc:
            raise CommandError(f"That answer cannot be used: {exc.message}") from exc
        claimed = execution_claim(execution_id=execution.pk)
        if claimed is None:
            raise CommandError("The run could not be resumed.")
        return claimed

    def _submit(self, user, role: Role, requirement: str):
        try:
            execution = execution_submit(user=user, role=role, requirement=requirement, enqueue=False)
        except ExecutionError as exc:
            raise CommandError(exc.message) from exc
        claimed = execution_claim(execution_id=execution.pk)
        if claimed is None:
            raise CommandError("The run could not be started.")
        return claimed

    def _run_with_progress(self, execution, requirement: str) -> None:
        from rich.console import Console

        console = Console(file=self.stdout._out, highlight=False)
        console.print(f"[bold]Requirement:[/bold] {requirement}")
        printer = ProgressPrinter(console)
        try:
            execution_run(execution=execution, on_progress=printer.on_event)
        finally:
            printer.stop()  # the spinner never outlives the run, whatever happened

    def _report(self, execution, *, as_json: bool) -> None:
        result = _result(execution)
        if as_json:
            self.stdout.write(_json_dump(result))
        elif execution.status == AgentStatus.COMPLETED:
            self._print_endpoint(execution, result)
        if execution.status == AgentStatus.WAITING:
            asked = "; ".join(f"{q['id']}: {plain_words(q['text'])}" for q in execution.questions)
            raise CommandError(f"The run waits for your answers ({asked}). Run again with --answer QUESTION=CHOICE.")
        if execution.status != AgentStatus.COMPLETED:
            # Said once: Django prints the CommandError; nothing else repeats it.
            where = phase_doing(result.get("failed_phase") or "")
            reason = plain_words(execution.status_reason) or "no reason was given. Try again, or rephrase the request."
            raise CommandError(f"The run stopped{f' {where}' if where else ''}: {reason}")

    def _print_endpoint(self, execution, result: dict) -> None:
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
            f"{metrics.get('llm_calls', 0)} model calls, {metrics.get('tool_calls', 0)} tool calls."
        )


class ProgressPrinter:
    """Live progress of one run in the terminal: a spinner and bar per phase, a line per finished phase."""

    def __init__(self, console):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.progress.start()
        self.bar = self.progress.add_task("starting", total=len(PHASE_ORDER))

    def on_event(self, kind: str, payload: dict) -> None:
        if kind == "phase" and payload.get("status") == "started":
            self.progress.update(self.bar, description=phase_label(str(payload["phase"])))
        elif kind == "phase" and payload.get("status") == "completed":
            self.progress.advance(self.bar)
            label = phase_label(str(payload["phase"]))
            self.progress.console.print(f"  [green]✓[/green] {label} ({payload.get('seconds') or 0:.1f}s)")
        elif kind == "status" and payload.get("status") == AgentStatus.FAILED:
            where = phase_doing(str(payload.get("phase") or "")) or "before it finished"
            self.progress.console.print(f"  [red]✗[/red] stopped {where}")
        elif kind == "questions":
            self.progress.console.print("  [yellow]?[/yellow] a question for you before going on")

    def stop(self) -> None:
        self.progress.stop()


MAX_QUESTION_ROUNDS = 5


def _parse_answers(items: list[str]) -> dict[str, str]:
    answers = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CommandError(f"--answer {item!r}: write QUESTION=CHOICE (the question's id or phrase, a choice id)")
        answers[key.strip().lower()] = value.strip()
    return answers


def _given_for(question: dict, questions: list[dict], given: dict[str, str]) -> str | None:
    """The --answer for a question: keyed by its id, or by its phrase when no other question shares it."""
    if question["id"].lower() in given:
        return given[question["id"].lower()]
    phrase = question["phrase"].lower()
    if phrase not in given:
        return None
    sharing = [q["id"] for q in questions if q["phrase"].lower() == phrase]
    if len(sharing) > 1:
        raise CommandError(
            f"--answer {phrase}=...: {len(sharing)} questions are about '{question['phrase']}' "
            f"({', '.join(sharing)}); give each answer by its question id, e.g. --answer {sharing[0]}=CHOICE."
        )
    return given[phrase]


def _answer_value(question: dict, raw: str):
    if raw.startswith("other:"):
        return {"other": raw[len("other:") :].strip()}
    labels = {c["label"].lower(): c["id"] for c in question["choices"]}
    ids = [labels.get(part.strip().lower(), part.strip()) for part in raw.split(",") if part.strip()]
    # Choice ids are checked as such: words of one's own are given as other:..., never guessed from a typo.
    return ids if question.get("multiple") or len(ids) > 1 else {"choice": ids[0]}


def _organization(slug: str) -> Organization:
    organization = Organization.objects.filter(slug__iexact=slug.strip()).first()
    if organization is None:
        known = list(Organization.objects.values_list("slug", flat=True))
        raise CommandError(f"No organization with the slug {slug!r}.{_did_you_mean(slug, known)}")
    return organization


def _role(ref: str, organization: Organization | None) -> Role:
    """A Role by id, or by name in any letter case; a wrong name gets the closest names as suggestions."""
    roles = Role.objects.select_related("organization", "service")
    if organization is not None:
        roles = roles.filter(organization=organization)
    try:
        by_id = list(roles.filter(pk=ref))
    except (ValidationError, ValueError):
        by_id = []
    matches = by_id or list(roles.filter(name__iexact=ref.strip()))
    where = f" in organization {organization.slug!r}" if organization is not None else ""
    if not matches:
        names = sorted(set(roles.values_list("name", flat=True)))
        raise CommandError(f"No role named {ref!r}{where}.{_did_you_mean(ref, names)}")
    if len(matches) > 1:
        slugs = ", ".join(sorted({r.organization.slug for r in matches}))
        raise CommandError(f"Several roles are named {ref!r} (organizations {slugs}); pass --org to choose one.")
    return matches[0]


def _did_you_mean(word: str, candidates: list[str]) -> str:
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.5)
    if close:
        return " Did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?"
    if candidates and len(candidates) <= 10:
        return " Known: " + ", ".join(repr(c) for c in candidates) + "."
    return ""


def _user(role: Role, username: str | None):
    if username:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user
    membership = Membership.objects.filter(organization=role.organization).order_by("role", "created_at").first()
    if membership is None:
        raise CommandError(f"The organization {role.organization} has no members; pass --user.")
    return membership.user


def _json_dump(value) -> str:
    return json.dumps(value, indent=2, default=str)


def _result(execution) -> dict:
    state = execution.result or {}
    result = {
        "execution_id": str(execution.pk),
        "status": execution.status,
        "reason": execution.status_reason,
        "failed_phase": (state.get("error") or {}).get("phase"),
        "questions": execution.questions or [],
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
