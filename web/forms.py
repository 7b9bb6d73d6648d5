from __future__ import annotations

from django import forms

from agents.services import MAX_REQUIREMENT_CHARS
from learning.models import MemoryType
from nectar.forms import TextSafeFormMixin
from roles.models import Role, Service

EXAMPLES = [
    "Customers in the EU with more than 5 orders",
    "Top 10 products by revenue in the last 90 days",
    "Customers with no activity in the last 90 days",
    "Monthly revenue by region",
    "Order by id with its items",
]


class RoleChoiceField(forms.ModelChoiceField):
    """Each Role with the database it reads: "Sales analyst — Demo retail database (PostgreSQL)"."""

    def label_from_instance(self, obj):
        return f"{obj.name} — {obj.service.name} ({obj.service.get_engine_display()})"


class RequirementForm(TextSafeFormMixin, forms.Form):
    requirement = forms.CharField(
        label="What do you need?",
        max_length=MAX_REQUIREMENT_CHARS,
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "Describe the data you need in plain English…", "autofocus": True}
        ),
        error_messages={"required": "Describe the API you need in a sentence or two."},
    )
    role = RoleChoiceField(
        label="Role and database",
        queryset=Role.objects.none(),
        empty_label="Choose a role…",
        help_text="The data access the agents (and the endpoint) will use: the role's database and what it may read.",
        error_messages={
            "required": "Choose the role whose data the API will use.",
            "invalid_choice": "Choose one of the roles listed; that one is not available to you.",
        },
    )

    def __init__(self, *args, organization, last_role=None, **kwargs):
        super().__init__(*args, **kwargs)
        roles = (
            Role.objects.filter(organization=organization, mcp_enabled=True, is_active=True)
            .select_related("service")
            .order_by("name")
        )
        self.fields["role"].queryset = roles
        # The user's own last choice, else the only role there is; never someone else's newest role.
        if last_role is not None:
            self.initial.setdefault("role", last_role.pk)
        elif len(roles) == 1:
            self.initial.setdefault("role", roles[0].pk)


class RejectForm(TextSafeFormMixin, forms.Form):
    comment = forms.CharField(
        label="Why is it rejected?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the endpoint is rejected."},
    )


class RatingForm(TextSafeFormMixin, forms.Form):
    up = forms.TypedChoiceField(
        choices=[("1", "Helpful"), ("0", "Not helpful")], coerce=lambda v: v == "1", empty_value=None
    )
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


class MemorySearchForm(TextSafeFormMixin, forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=500)
    type = forms.ChoiceField(label="Type", required=False, choices=[("", "All types"), *MemoryType.choices])
    service = forms.ModelChoiceField(
        label="Database",
        required=False,
        queryset=Service.objects.none(),
        empty_label="All databases",
        error_messages={"invalid_choice": "Choose one of the databases listed."},
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = Service.objects.filter(organization=organization).order_by("name")


def answers_from_form(*, questions: list[dict], data) -> dict:
    """The answers posted on the live page as agents.services.execution_answer takes them.

    Each question posts its choices as `q-<id>` (one, or several where it allows `multiple`) and its
    free text as `q-<id>-other`; words typed in "other" win over a choice. A question left empty is
    left out, so the service names it.
    """
    answers: dict = {}
    for question in questions:
        name = f"q-{question['id']}"
        other = (data.get(f"{name}-other") or "").strip()
        picked = [v for v in data.getlist(name) if v and v != "__other__"]
        if other:
            answers[question["id"]] = {"other": other}
        elif picked:
            # Always a list: posted values are choice ids, checked as such (never taken as free text).
            answers[question["id"]] = picked
    return answers
