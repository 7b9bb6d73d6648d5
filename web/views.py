"""The business user's pages: thin views over the access helpers and services of the other apps."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from agents.selectors import execution_get_for_user, executions_for_user
from agents.services import (
    ExecutionError,
    execution_answer,
    execution_cancel,
    execution_pause,
    execution_rate,
    execution_resume,
    execution_submit,
)
from endpoints.docs import example_params, live_url
from endpoints.selectors import endpoint_get_for_user
from endpoints.services import (
    EndpointError,
    endpoint_approve,
    endpoint_deploy,
    endpoint_markdown_docs,
    endpoint_reject,
    endpoint_rollback,
)
from learning.forms import GlossaryTermForm
from learning.glossary import glossary_define, glossary_remove, glossary_terms, glossary_update
from learning.selectors import glossary_memory_get_for_user
from learning.services import LearningInputError
from mcpservers.views import client_configs
from roles.selectors import service_get_for_user, services_for_user
from web import selectors
from web.charts import chart_for_result
from web.context import nav_context, organization_choose, organization_current
from web.forms import EXAMPLES, MemorySearchForm, RatingForm, RejectForm, RequirementForm, answers_from_form
from web.notifications import notifications_mark_read
from web.services import TryItError, endpoint_try, preference_remember_role, result_csv


def _page(request, template: str, context: dict, *, section: str = "", status: int = 200):
    return render(request, template, {**nav_context(request, section=section), **context}, status=status)


# --- navigation -----------------------------------------------------------------------------


@login_required
@require_GET
def home(request):
    organization = organization_current(request)
    executions = executions_for_user(user=request.user, organization=organization)[:20]
    return _page(request, "web/home.html", {"executions": executions}, section="home")


@login_required
@require_POST
def organization_switch(request):
    organization = organization_choose(request, organization_id=request.POST.get("organization", ""))
    messages.info(request, f"You are now working in {organization.name}.")
    target = request.POST.get("next") or reverse("home")
    return redirect(target if target.startswith("/") and not target.startswith("//") else reverse("home"))


# --- requirement ----------------------------------------------------------------------------


@login_required
def requirement_new(request):
    organization = organization_current(request)
    roles = RequirementForm(organization=organization).fields["role"].queryset
    last_role = selectors.role_last_used(user=request.user, roles=list(roles))
    form = RequirementForm(request.POST or None, organization=organization, last_role=last_role)
    if request.method == "POST" and form.is_valid():
        role = form.cleaned_data["role"]
        try:
            execution = execution_submit(user=request.user, role=role, requirement=form.cleaned_data["requirement"])
        except ExecutionError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            preference_remember_role(user=request.user, role=role)
            return redirect("execution-detail", execution_id=execution.pk)
    status = 400 if request.method == "POST" else 200
    return _page(request, "web/requirement.html", {"form": form, "examples": EXAMPLES}, section="new", status=status)


# --- execution ------------------------------------------------------------------------------


def _execution_context(request, execution) -> dict:
    events = selectors.execution_events(execution=execution)
    phases = selectors.phase_states(execution=execution, events=events)
    return {
        "execution": execution,
        "events": events,
        "last_seq": events[-1]["seq"] if events else 0,
        "phases": phases,
        "phase_summaries": selectors.phase_summaries(events=events),
        "now": selectors.execution_now(execution=execution, phases=phases),
        "progress": selectors.execution_progress(execution=execution, phases=phases),
        "controls": _controls(request, execution),
        "waiting": selectors.execution_waiting(execution=execution),
        # Further panels (templates) shown above the results, each an include with this same context.
        "panels": [],
        "result_panels": [],
        **_results_context(request, execution),
    }


def _controls(request, execution) -> dict:
    may = execution.user_id == request.user.pk or selectors.user_can_manage(
        user=request.user, organization_id=execution.organization_id
    )
    return selectors.execution_controls(execution=execution) if may else {}


def _results_context(request, execution) -> dict:
    endpoint = selectors.execution_endpoint(execution=execution) if execution.is_finished else None
    return {"endpoint_panel": _endpoint_panel(request, endpoint) if endpoint else None}


def _endpoint_panel(request, endpoint, **extra) -> dict:
    params = example_params(endpoint)
    properties = (endpoint.parameters or {}).get("properties", {})
    required = set((endpoint.parameters or {}).get("required", []))
    fields = [
        {
            "name": name,
            "spec": spec,
            "required": name in required,
            "value": params.get(name, spec.get("default", "")),
        }
        for name, spec in properties.items()
    ]
    return {
        "endpoint": endpoint,
        "url": live_url(endpoint),
        "versioned_url": live_url(endpoint, versioned=True),
        "fields": fields,
        "curl": _curl(endpoint, params),
        "docs_markdown": endpoint_markdown_docs(endpoint=endpoint),
        "can_manage": selectors.user_can_manage(user=request.user, organization_id=endpoint.organization_id),
        "evidence": selectors.endpoint_evidence(endpoint=endpoint),
        "reject_form": extra.pop("reject_form", None) or RejectForm(),
        **extra,
    }


def _curl(endpoint, params: dict) -> str:
    from urllib.parse import urlencode

    url = live_url(endpoint)
    if endpoint.is_read_only:
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        return f'curl -H "Authorization: Bearer $NECTAR_API_KEY" \\\n  "{url}{query}"'
    import json

    return (
        f'curl -X {endpoint.method} -H "Authorization: Bearer $NECTAR_API_KEY" \\\n'
        f"  -H 'Content-Type: application/json' -d '{json.dumps(params)}' \\\n  \"{url}\""
    )


@login_required
@require_GET
def execution_detail(request, execution_id):
    execution = execution_get_for_user(user=request.user, execution_id=execution_id)
    return _page(request, "web/execution.html", _execution_context(request, execution), section="home")


@login_required
@require_GET
def execution_summary(request, execution_id):
    """The status, progress and controls fragment, refreshed when a phase or status event arrives."""
    execution = execution_get_for_user(user=request.user, execution_id=execution_id)
    return render(request, "web/_execution_summary.html", _execution_context(request, execution))


@login_required
@require_GET
def execution_progress(request, execution_id):
    """The phases with what each did, refreshed when a phase or status event arrives."""
    execution = execution_get_for_user(user=request.user, execution_id=execution_id)
    return render(request, "web/_execution_progress.html", _execution_context(request, execution))


@login_required
@require_GET
def execution_results(request, execution_id):
    execution = execution_get_for_user(user=request.user, execution_id=execution_id)
    return render(request, "web/_execution_results.html", _execution_context(request, execution))


def _control(request, execution_id, action):
    execution = selectors.execution_get_for_control(user=request.user, execution_id=execution_id)
    error = None
    try:
        execution = action(execution=execution)
    except ExecutionError as exc:
        error = exc.message
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("execution-detail", execution_id=execution.pk)
    context = _execution_context(request, execution)
    context["control_error"] = error
    return render(request, "web/_execution_summary.html", context, status=409 if error else 200)


@login_required
@require_POST
def execution_pause_view(request, execution_id):
    return _control(request, execution_id, execution_pause)


@login_required
@require_POST
def execution_resume_view(request, execution_id):
    return _control(request, execution_id, execution_resume)


@login_required
@require_POST
def execution_cancel_view(request, execution_id):
    return _control(request, execution_id, execution_cancel)


# How an execution error is answered: a run that moved on meanwhile is a conflict, a bad answer is bad input.
_ERROR_STATUS = {"invalid_state": 409, "conflict": 409, "forbidden": 403}


@login_required
@require_POST
def execution_answer_view(request, execution_id):
    """The requester (or an owner or admin) answers a waiting run's questions; the run goes on."""
    execution = selectors.execution_get_for_control(user=request.user, execution_id=execution_id)
    answers = answers_from_form(questions=execution.questions or [], data=request.POST)
    error, status = None, 200
    try:
        execution = execution_answer(execution=execution, user=request.user, answers=answers)
    except ExecutionError as exc:
        error, status = _answer_error(execution, exc), _ERROR_STATUS.get(exc.code, 400)
        execution.refresh_from_db()
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "Thank you: the run goes on with your answers.")
        return redirect("execution-detail", execution_id=execution.pk)
    context = _execution_context(request, execution)
    if error:
        context["waiting"] = selectors.execution_waiting(execution=execution, posted=request.POST)
        # Beside the questions while the run still asks; in the status line once it has moved on.
        context["answer_error" if context["waiting"] else "control_error"] = error
    return render(request, "web/_execution_summary.html", context, status=status)


def _answer_error(execution, exc: ExecutionError) -> str:
    """The service's message, naming the question it is about ("answers.<id>") by its words."""
    qid = (exc.field or "").removeprefix("answers.")
    question = next((q for q in execution.questions or [] if q["id"] == qid), None)
    return f"“{question['phrase']}”: {exc.message}" if question else exc.message


@login_required
@require_POST
def execution_rate_view(request, execution_id):
    execution = execution_get_for_user(user=request.user, execution_id=execution_id)
    form = RatingForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose helpful or not helpful.")
    try:
        rated = execution_rate(
            execution=execution, user=request.user, up=form.cleaned_data["up"], comment=form.cleaned_data["comment"]
        )
    except LearningInputError as exc:
        return HttpResponseBadRequest(str(exc))
    confirmation = _rating_confirmation(execution, up=form.cleaned_data["up"], design_avoided=rated.design_avoided)
    if request.htmx:
        return render(
            request, "web/_rating.html", {"execution": execution, "rated": True, "confirmation": confirmation}
        )
    messages.success(request, confirmation)
    return redirect("execution-detail", execution_id=execution.pk)


def _rating_confirmation(execution, *, up: bool, design_avoided: bool) -> str:
    """What the rating just did, in the words of the page."""
    if up:
        return "Thank you: what this run used counts for more in similar requests."
    noted = f" Your comment is kept: “{execution.feedback}”." if execution.feedback else ""
    if design_avoided:
        return (
            "Noted: this design won't be offered again for this request or a similar one on this database; "
            f"the next run finds a different one, asks you, or says why it cannot.{noted}"
        )
    return f"Noted: what went wrong here is avoided next time.{noted}"


# --- endpoints ------------------------------------------------------------------------------


def _endpoint_response(request, endpoint, *, message: str = "", error: str = "", reject_form=None, status=200):
    if not request.htmx:
        (messages.error if error else messages.success)(request, error or message)
        if endpoint.source_execution_id and endpoint.source_execution.parent_id is None:
            return redirect("execution-detail", execution_id=endpoint.source_execution_id)
        return redirect("apis")
    panel = _endpoint_panel(request, endpoint, action_message=message, action_error=error, reject_form=reject_form)
    return render(request, "web/_endpoint_panel.html", {"panel": panel}, status=status)


def _review(request, endpoint_id, action, done: str):
    endpoint = endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
    if not selectors.user_can_manage(user=request.user, organization_id=endpoint.organization_id):
        raise PermissionDenied("Only owners and admins of the organization may review and deploy its endpoints.")
    try:
        endpoint = action(endpoint)
    except EndpointError as exc:
        return _endpoint_response(request, endpoint, error=exc.message, status=409)
    endpoint.refresh_from_db()
    return _endpoint_response(request, endpoint, message=done)


@login_required
@require_POST
def endpoint_approve_view(request, endpoint_id):
    return _review(
        request,
        endpoint_id,
        lambda e: endpoint_approve(endpoint=e, user=request.user, comment=request.POST.get("comment", "")),
        "Approved. Deploy it to make it live.",
    )


@login_required
@require_POST
def endpoint_deploy_view(request, endpoint_id):
    return _review(
        request,
        endpoint_id,
        lambda e: endpoint_deploy(endpoint=e, user=request.user),
        "Deployed: the endpoint is live.",
    )


@login_required
@require_POST
def endpoint_rollback_view(request, endpoint_id):
    return _review(
        request,
        endpoint_id,
        lambda e: endpoint_rollback(organization=e.organization, slug=e.slug, user=request.user),
        "Rolled back to the previous version.",
    )


@login_required
@require_POST
def endpoint_reject_view(request, endpoint_id):
    endpoint = endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
    if not selectors.user_can_manage(user=request.user, organization_id=endpoint.organization_id):
        raise PermissionDenied("Only owners and admins of the organization may review its endpoints.")
    form = RejectForm(request.POST)
    if not form.is_valid():
        return _endpoint_response(
            request, endpoint, error="Say why the endpoint is rejected.", reject_form=form, status=400
        )
    try:
        endpoint = endpoint_reject(endpoint=endpoint, user=request.user, comment=form.cleaned_data["comment"])
    except EndpointError as exc:
        return _endpoint_response(request, endpoint, error=exc.message, status=409)
    return _endpoint_response(request, endpoint, message="Rejected; the agents' next run can learn from your comment.")


@login_required
@require_POST
def endpoint_try_view(request, endpoint_id):
    endpoint = endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
    names = set((endpoint.parameters or {}).get("properties", {})) | {"limit", "offset"}
    values = {name: request.POST.get(name, "") for name in names}
    try:
        result = endpoint_try(endpoint=endpoint, values=values)
    except TryItError as exc:
        return render(request, "web/_try_result.html", {"error": exc.message}, status=400)
    body = result.body
    chart = None
    if result.status < 400 and body.get("results"):
        found = chart_for_result(body.get("columns") or [], body["results"])
        chart = found.render() if found else None
    sent = {k: v for k, v in values.items() if v not in ("", None)}
    return render(
        request,
        "web/_try_result.html",
        {"result": result, "body": body, "chart": chart, "endpoint": endpoint, "sent": sent},
    )


@login_required
@require_POST
def endpoint_try_csv_view(request, endpoint_id):
    """The same call as Try it, every row up to the cap, as a CSV download."""
    endpoint = endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
    names = set((endpoint.parameters or {}).get("properties", {}))
    values = {name: request.POST.get(name, "") for name in names}
    values["limit"] = str(settings.QUERY_ROW_CAP)
    try:
        result = endpoint_try(endpoint=endpoint, values=values)
    except TryItError as exc:
        return HttpResponseBadRequest(exc.message)
    if result.status >= 400:
        return HttpResponseBadRequest((result.body.get("error") or {}).get("message", "The call failed."))
    response = HttpResponse(result_csv(result.body), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{endpoint.slug}-v{endpoint.version}.csv"'
    return response


@login_required
@require_GET
def apis(request):
    organization = organization_current(request)
    endpoints = list(selectors.endpoints_of_organization(organization=organization))
    charts = selectors.endpoint_daily_calls(endpoints=endpoints)
    rows = [{"endpoint": e, "url": live_url(e), "calls": charts[e.pk], "recent": sum(charts[e.pk])} for e in endpoints]
    openapi_url = settings.PUBLIC_BASE_URL + reverse("endpoints:openapi", args=[organization.slug])
    return _page(
        request,
        "web/apis.html",
        {"rows": rows, "chart_days": selectors.CHART_DAYS, "openapi_url": openapi_url},
        section="apis",
    )


@login_required
@require_GET
def endpoint_detail(request, endpoint_id):
    endpoint = endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
    return _page(request, "web/endpoint.html", {"panel": _endpoint_panel(request, endpoint)}, section="apis")


# --- MCP and memories -----------------------------------------------------------------------


@login_required
@require_GET
def mcp(request):
    """One Role's MCP server at a time (a picker), remote configuration first."""

    organization = organization_current(request)
    roles = selectors.mcp_roles_of_organization(organization=organization)
    wanted = request.GET.get("role", "")
    role = next((r for r in roles if str(r.pk) == wanted), None)
    if role is None:
        last = selectors.role_last_used(user=request.user, roles=roles)
        role = last or (roles[0] if roles else None)
    server = None
    if role is not None:
        instance = getattr(role, "mcp_instance", None)
        server = {
            "role": role,
            "instance": instance,
            "tools": (instance.tools or []) if instance else [],
            "configs": client_configs(instance) if instance else None,
            "keys": sorted(role.api_keys.all(), key=lambda k: k.created_at, reverse=True),
        }
    can_manage = selectors.user_can_manage(user=request.user, organization_id=organization.pk)
    context = {"roles": roles, "server": server, "can_manage": can_manage}
    return _page(request, "web/mcp.html", context, section="mcp")


@login_required
@require_GET
def memories(request):
    organization = organization_current(request)
    form = MemorySearchForm(request.GET or None, organization=organization)
    items, error = [], None
    if not request.GET or form.is_valid():
        data = form.cleaned_data if request.GET else {}
        try:
            items = selectors.memories_browse(
                organization=organization,
                text=data.get("q", ""),
                memory_type=data.get("type", ""),
                service=data.get("service"),
            )
        except LearningInputError as exc:
            error = str(exc)
    return _page(request, "web/memories.html", {"form": form, "items": items, "error": error}, section="memories")


# --- approvals and notifications ------------------------------------------------------------


@login_required
@require_GET
def approvals(request):
    organization = organization_current(request)
    if not selectors.user_can_manage(user=request.user, organization_id=organization.pk):
        raise PermissionDenied("Only owners and admins of the organization review endpoints.")
    pending = [
        {"endpoint": e, "url": live_url(e), "page": _review_page(e)}
        for e in selectors.approvals_pending(organization=organization)
    ]
    return _page(request, "web/approvals.html", {"pending": pending}, section="approvals")


def _review_page(endpoint) -> str:
    execution = endpoint.source_execution
    if execution is not None and execution.parent_id is None:
        return reverse("execution-detail", args=[execution.pk])
    return reverse("endpoint-detail", args=[endpoint.pk])


@login_required
def notifications(request):
    if request.method == "POST":
        ids = [int(i) for i in request.POST.getlist("id") if i.isdigit()] or None
        count = notifications_mark_read(user=request.user, notification_ids=ids)
        messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} read.")
        return redirect("notifications")
    items = list(selectors.notifications_of_user(user=request.user))
    return _page(request, "web/notifications.html", {"items": items}, section="notifications")


@login_required
@require_POST
def notification_open(request, notification_id):
    """Mark one notification read and go to the page it is about."""

    item = selectors.notification_get_for_user(user=request.user, notification_id=notification_id)
    notifications_mark_read(user=request.user, notification_ids=[item.pk])
    target = item.url or reverse("notifications")
    return redirect(target if target.startswith("/") and not target.startswith("//") else reverse("notifications"))


# --- personal API tokens ----------------------------------------------------------------------


@login_required
def tokens(request):
    """List, create and revoke your own personal API tokens; a new token's secret is shown once."""
    from api.models import PersonalToken
    from api.services import CredentialsError, personal_token_create, personal_token_revoke

    context: dict = {}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            try:
                context["new_token"], context["new_secret"] = personal_token_create(
                    user=request.user, name=request.POST.get("name", "")
                )
            except CredentialsError as exc:
                context["error"], status = str(exc), 400
        elif action == "revoke":
            try:
                token = personal_token_revoke(user=request.user, token_id=uuid.UUID(request.POST.get("token", "")))
            except ValueError:
                return HttpResponseBadRequest("Give the id of the token to revoke.")
            messages.success(request, f"Token “{token.name}” revoked; your other tokens still work.")
            return redirect("tokens")
        else:
            return HttpResponseBadRequest("Unknown action.")
    context["tokens"] = PersonalToken.objects.filter(user=request.user)
    return _page(request, "web/tokens.html", context, section="tokens", status=status)


# --- the glossary of business terms -------------------------------------------------------------


def _glossary_page(request, *, service, form, editing=None, status: int = 200):
    organization = organization_current(request)
    context = {
        "services": list(services_for_user(user=request.user, organization=organization).order_by("name")),
        "service": service,
        "terms": selectors.glossary_of_service(service=service) if service else [],
        "definitions": selectors.database_definitions(service=service) if service else [],
        "form": form,
        "editing": editing,
        "can_manage": selectors.user_can_manage(user=request.user, organization_id=organization.pk),
    }
    return _page(request, "web/glossary.html", context, section="glossary", status=status)


@login_required
def glossary(request):
    """The business terms of one database (a picker): list them; owners and admins add terms."""
    organization = organization_current(request)
    wanted = request.POST.get("service") or request.GET.get("service")
    if wanted:
        service = service_get_for_user(user=request.user, service_id=wanted, organization=organization)
    else:
        service = services_for_user(user=request.user, organization=organization).order_by("name").first()
    form = GlossaryTermForm(request.POST or None)
    if request.method == "POST":
        if service is None:
            return HttpResponseBadRequest("Choose a database first.")
        if form.is_valid():
            try:
                term = glossary_define(
                    service=service,
                    term=form.cleaned_data["term"],
                    mapping=form.mapping(),
                    user=request.user,
                    note=form.cleaned_data["note"],
                )
            except LearningInputError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.success(request, f"“{term.term}” now means {term.mapping.describe()} in {service.name}.")
                return redirect(f"{reverse('glossary')}?service={service.pk}")
        return _glossary_page(request, service=service, form=form, status=400)
    return _glossary_page(request, service=service, form=form)


@login_required
def glossary_edit(request, memory_id):
    memory = glossary_memory_get_for_user(
        user=request.user, memory_id=memory_id, organization=organization_current(request)
    )
    term = next((t for t in glossary_terms(service=memory.service) if t.memory_id == str(memory.pk)), None)
    if term is None:
        raise Http404("No such glossary term")
    if not selectors.user_can_manage(user=request.user, organization_id=memory.organization_id):
        raise PermissionDenied("Only owners and admins of the organization may edit its glossary.")
    form = GlossaryTermForm(
        request.POST or None, initial=GlossaryTermForm.initial_for(term.term, term.mapping, term.note)
    )
    form.fields["term"].disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            updated = glossary_update(
                memory=memory, mapping=form.mapping(), user=request.user, note=form.cleaned_data["note"]
            )
        except LearningInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"“{updated.term}” now means {updated.mapping.describe()}.")
            return redirect(f"{reverse('glossary')}?service={memory.service_id}")
    status = 400 if request.method == "POST" else 200
    return _glossary_page(request, service=memory.service, form=form, editing=term, status=status)


@login_required
@require_POST
def glossary_remove_view(request, memory_id):
    memory = glossary_memory_get_for_user(
        user=request.user, memory_id=memory_id, organization=organization_current(request)
    )
    glossary_remove(memory=memory, user=request.user)
    messages.success(request, "Removed from the glossary; the next request that uses the term asks again.")
    return redirect(f"{reverse('glossary')}?service={memory.service_id}")
