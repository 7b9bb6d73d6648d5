"""The glossary page of a Service and its admin: list, add, edit, remove terms through learning.glossary."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from learning.forms import GlossaryTermForm
from learning.glossary import glossary_define, glossary_lookup, glossary_terms, mapping_parse
from learning.models import AgentMemory
from learning.services import LearningInputError
from roles.models import Engine, Service
from tests.web.conftest import login

pytestmark = pytest.mark.django_db

REVENUE = {"kind": "measure", "func": "sum", "object": "orders", "column": "total_amount"}


def test_members_see_the_terms_with_their_meaning_and_origin_and_the_navigation_links_it(
    client, member, owner, demo_service
):
    glossary_define(service=demo_service, term="revenue", mapping=REVENUE, user=owner, note="finance's word")
    page = unescape(login(client, member).get(reverse("glossary")).text)
    assert 'id="nav-glossary"' in page
    assert "revenue" in page and "sum of orders.total_amount" in page and "finance's word" in page
    assert "Entered on this page or in admin" in page
    assert 'id="glossary-form"' not in page  # members read; owners and admins edit
    response = client.post(reverse("glossary"), {"service": demo_service.pk, "term": "gold", "kind": "ignore"})
    assert response.status_code == 403
    assert glossary_lookup(service=demo_service, term="gold") is None


def test_an_owner_adds_edits_and_removes_a_term(client, owner, demo_service):
    login(client, owner)
    added = client.post(
        reverse("glossary"),
        {
            "service": demo_service.pk,
            "term": "Paid orders",
            "kind": "filter",
            "object": "orders",
            "conditions": "status in delivered, shipped",
        },
    )
    assert added.status_code == 302
    term = glossary_lookup(service=demo_service, term="paid orders")
    assert term.mapping.filters[0].values == ["delivered", "shipped"]

    form = client.get(reverse("glossary-edit", args=[term.memory_id])).text
    assert "status in delivered, shipped" in form
    edited = client.post(
        reverse("glossary-edit", args=[term.memory_id]),
        {"kind": "filter", "object": "orders", "conditions": "status = delivered", "note": "only delivered"},
    )
    assert edited.status_code == 302
    term = glossary_lookup(service=demo_service, term="paid orders")
    assert term.mapping.filters[0].value == "delivered" and term.note == "only delivered"

    removed = client.post(reverse("glossary-remove", args=[term.memory_id]))
    assert removed.status_code == 302
    assert glossary_lookup(service=demo_service, term="paid orders") is None


def test_a_bad_term_is_refused_with_a_clear_message_and_nothing_is_stored(client, owner, demo_service):
    login(client, owner)
    missing = client.post(reverse("glossary"), {"service": demo_service.pk, "term": "live", "kind": "column"})
    assert missing.status_code == 400 and "a column mapping needs object, column" in unescape(missing.text)
    garbled = client.post(
        reverse("glossary"),
        {"service": demo_service.pk, "term": "open", "kind": "filter", "object": "tickets", "conditions": "??"},
    )
    assert garbled.status_code == 400 and "Line 1" in garbled.text
    assert glossary_terms(service=demo_service) == []


def test_another_organization_sees_and_changes_nothing(client, owner, outsider, demo_service):
    term = glossary_define(service=demo_service, term="revenue", mapping=REVENUE, user=owner)
    login(client, outsider)
    assert "sum of orders.total_amount" not in client.get(reverse("glossary")).text
    assert client.get(reverse("glossary"), {"service": demo_service.pk}).status_code == 404
    assert client.get(reverse("glossary-edit", args=[term.memory_id])).status_code == 404
    assert client.post(reverse("glossary-remove", args=[term.memory_id])).status_code == 404
    refused = client.post(reverse("glossary"), {"service": demo_service.pk, "term": "x", "kind": "ignore"})
    assert refused.status_code == 404
    assert glossary_lookup(service=demo_service, term="revenue") is not None


def test_the_database_own_comments_and_views_show_as_definitions(client, member, org):
    service = Service.objects.create(
        organization=org,
        name="Warehouse",
        engine=Engine.POSTGRESQL,
        host="127.0.0.1",
        database="unused",
        schema_cache={
            "default_schema": "public",
            "objects": [
                {
                    "schema": "public",
                    "name": "customer_lifetime_value",
                    "kind": "view",
                    "comment": "Lifetime value: every paid order of a customer",
                    "columns": [{"name": "customer_id", "comment": None}, {"name": "ltv", "comment": "in USD"}],
                },
                {"schema": "public", "name": "plain", "kind": "table", "comment": None, "columns": []},
            ],
        },
    )
    page = login(client, member).get(reverse("glossary"), {"service": service.pk}).text
    assert "Lifetime value: every paid order of a customer" in page and "in USD" in page
    assert "<strong>plain</strong>" not in page


def test_admin_lists_glossary_terms_readably_and_edits_their_mapping_fields(client, owner, demo_service):
    term = glossary_define(service=demo_service, term="revenue", mapping=REVENUE, user=owner)
    login(client, owner)
    listing = unescape(client.get(reverse("admin:learning_glossaryterm_changelist")).text)
    assert "sum of orders.total_amount" in listing and "entered by hand" in listing
    url = reverse("admin:learning_glossaryterm_change", args=[term.memory_id])
    form = client.get(url).text
    assert 'name="func"' in form and 'name="column"' in form and '"kind": "measure"' not in form
    saved = client.post(
        url,
        {
            "organization": demo_service.organization_id,
            "service": demo_service.pk,
            "kind": "measure",
            "func": "sum",
            "object": "order_items",
            "column": "line_total",
            "conditions": "",
            "note": "",
        },
    )
    assert saved.status_code == 302, saved.content[:2000]
    assert glossary_lookup(service=demo_service, term="revenue").mapping.column == "line_total"
    bad = client.post(
        url,
        {"organization": demo_service.organization_id, "service": demo_service.pk, "kind": "measure", "func": "sum"},
    )
    assert bad.status_code == 200 and "needs the column" in unescape(bad.text)
    assert glossary_lookup(service=demo_service, term="revenue").mapping.column == "line_total"
    assert AgentMemory.objects.filter(is_active=True, tags__contains=["glossary"]).count() == 1


def test_a_glossary_memory_reads_as_its_term_and_a_memory_that_is_no_term_reads_as_none(owner, demo_service):
    from learning.glossary import glossary_term_read
    from learning.services import memory_create

    defined = glossary_define(service=demo_service, term="Revenue", mapping=REVENUE, user=owner, note="net")
    read = glossary_term_read(memory=AgentMemory.objects.get(pk=defined.memory_id))
    assert (read.term, read.mapping.column, read.note, read.memory_id) == (
        "revenue",
        "total_amount",
        "net",
        defined.memory_id,
    )
    prose = memory_create(
        organization=demo_service.organization,
        type="BUSINESS_RULE",
        content="Revenue is net of tax",
        service=demo_service,
    )
    assert glossary_term_read(memory=prose) is None


def test_a_definition_term_round_trips_through_the_glossary_form():
    data = {"term": "churn risk", "kind": "definition", "object": "activity_events", "column": "occurred_at"}
    form = GlossaryTermForm(data=data | {"shape": "lapsed", "func": "max"})
    assert form.is_valid(), form.errors
    mapping = mapping_parse(form.mapping())
    assert (mapping.kind, mapping.shape, mapping.func) == ("definition", "lapsed", "max")
    assert "no activity_events in the period, but some before" in mapping.describe()
    assert GlossaryTermForm.initial_for("churn risk", mapping)["shape"] == "lapsed"
    missing = GlossaryTermForm(data=data)
    assert missing.is_valid()
    with pytest.raises(LearningInputError, match="shape"):
        mapping_parse(missing.mapping())


@pytest.mark.parametrize(
    "mapping",
    [
        {
            "kind": "measure",
            "func": "sum",
            "object": "lines",
            "column": "price",
            "expression": "price * qty * (1 - off)",
        },
        {"kind": "formula", "object": "products", "column": "price", "expression": "(price - cost) / price"},
        {"kind": "column", "object": "film", "column": "length", "unit": "minute"},
    ],
)
def test_the_term_form_keeps_an_expression_and_a_unit_when_a_term_is_edited(mapping):
    from learning.forms import GlossaryTermForm
    from learning.glossary import mapping_parse

    initial = GlossaryTermForm.initial_for("term", mapping_parse(mapping))
    form = GlossaryTermForm(data={k: v for k, v in initial.items() if v not in ("", None)})
    assert form.is_valid(), form.errors
    assert mapping_parse(form.mapping()) == mapping_parse(mapping)
