import math
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from agents.services import execution_rate
from learning.models import AgentMemory, MemoryType, MemoryUse
from learning.services import (
    LearningInputError,
    business_rule_create,
    learn_from_failure,
    learn_from_success,
    memory_create,
    memory_retrieve,
    usage_recency,
)
from tests.learning.conftest import SUCCESS_RESULTS

pytestmark = pytest.mark.django_db


def test_created_memory_is_embedded_and_tagged(org):
    memory = memory_create(
        organization=org,
        type=MemoryType.API_PATTERN,
        content="GET /orders/monthly: order totals per month",
        tags=["a", "a", "b"],
    )
    memory.refresh_from_db()
    assert len(memory.embedding) == 384
    assert memory.embedder == "local-hash-v1"
    assert memory.tags == ["a", "b"]


def test_bad_memory_input_is_refused_with_the_field_and_nothing_is_stored(org):
    with pytest.raises(LearningInputError, match="type"):
        memory_create(organization=org, type="GUESS", content="x")
    with pytest.raises(LearningInputError, match="relevance_score"):
        memory_create(organization=org, type=MemoryType.API_PATTERN, content="x", relevance_score=1.5)
    with pytest.raises(LearningInputError, match="content"):
        memory_create(organization=org, type=MemoryType.API_PATTERN, content="  ")
    assert not AgentMemory.objects.exists()


def test_retrieval_returns_the_paraphrased_memory_first(org):
    target = memory_create(
        organization=org,
        type=MemoryType.API_PATTERN,
        content="Top customers ranked by total revenue over a date window",
    )
    memory_create(organization=org, type=MemoryType.API_PATTERN, content="Employees per department and location")
    memory_create(organization=org, type=MemoryType.BUSINESS_RULE, content="The fiscal year starts on April 1st")
    results = memory_retrieve(organization=org, text="best clients by sales last quarter", k=3)
    assert results[0].memory == target
    assert results[0].similarity > results[1].similarity
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_another_organizations_memories_are_never_returned(org, other_org):
    mine = memory_create(organization=org, type=MemoryType.API_PATTERN, content="Monthly revenue per store")
    memory_create(organization=other_org, type=MemoryType.API_PATTERN, content="Monthly revenue per store")
    memory_create(organization=other_org, type=MemoryType.API_PATTERN, content="Monthly revenue per store and region")
    results = memory_retrieve(organization=org, text="Monthly revenue per store", k=10)
    assert [r.memory for r in results] == [mine]


def test_type_filter_keeps_only_the_requested_types(org):
    memory_create(organization=org, type=MemoryType.API_PATTERN, content="overdue invoices with balance")
    rule = memory_create(organization=org, type=MemoryType.BUSINESS_RULE, content="invoices are overdue after 30 days")
    results = memory_retrieve(organization=org, text="overdue invoices", types=[MemoryType.BUSINESS_RULE])
    assert [r.memory for r in results] == [rule]
    with pytest.raises(LearningInputError, match="types"):
        memory_retrieve(organization=org, text="overdue invoices", types=["NOPE"])


def test_retired_memories_are_not_retrieved(org):
    memory = memory_create(organization=org, type=MemoryType.API_PATTERN, content="late shipments by carrier")
    AgentMemory.objects.filter(pk=memory.pk).update(is_active=False)
    assert memory_retrieve(organization=org, text="late shipments by carrier") == []


def test_using_a_memory_records_the_use_and_updates_usage_once_per_execution(org, make_execution):
    memory = memory_create(organization=org, type=MemoryType.API_PATTERN, content="orders by status counts")
    execution = make_execution()
    memory_retrieve(organization=org, text="how many orders per status", execution=execution, agent="ARCHITECT")
    memory_retrieve(organization=org, text="orders per status", execution=execution, agent="ARCHITECT")
    memory.refresh_from_db()
    assert memory.usage_count == 1
    assert memory.last_used is not None
    use = MemoryUse.objects.get(memory=memory)
    assert (use.execution, use.agent, use.kind) == (execution, "ARCHITECT", "retrieved")
    assert 0 < use.similarity <= 1
    memory_retrieve(organization=org, text="orders per status", execution=make_execution(), agent="ARCHITECT")
    memory.refresh_from_db()
    assert memory.usage_count == 2


def test_retrieving_without_an_execution_changes_no_usage(org):
    memory = memory_create(organization=org, type=MemoryType.API_PATTERN, content="orders by status counts")
    memory_retrieve(organization=org, text="orders by status")
    memory.refresh_from_db()
    assert memory.usage_count == 0 and memory.last_used is None


def test_an_execution_of_another_organization_cannot_record_uses(org, other_org, outsider, make_execution):
    memory_create(organization=org, type=MemoryType.API_PATTERN, content="orders by status")
    foreign = make_execution(organization=other_org, user=outsider)
    with pytest.raises(LearningInputError, match="execution"):
        memory_retrieve(organization=org, text="orders by status", execution=foreign)
    assert not MemoryUse.objects.exists()


def test_ranking_blends_similarity_with_relevance_and_usage(org):
    now = timezone.now()
    text = "weekly signups of new customers"
    plain = memory_create(organization=org, type=MemoryType.API_PATTERN, content=text, relevance_score=0.1)
    trusted = memory_create(organization=org, type=MemoryType.API_PATTERN, content=text + " count", relevance_score=1.0)
    AgentMemory.objects.filter(pk=trusted.pk).update(usage_count=49, last_used=now)
    results = memory_retrieve(organization=org, text=text, now=now)
    assert plain.pk != trusted.pk
    by_id = {r.memory.pk: r for r in results}
    # The exact text is more similar, yet the trusted, much-used memory ranks first.
    assert by_id[plain.pk].similarity > by_id[trusted.pk].similarity
    assert results[0].memory.pk == trusted.pk
    expected = 0.75 * by_id[trusted.pk].similarity + 0.15 * 1.0 + 0.10 * 1.0
    assert math.isclose(by_id[trusted.pk].score, expected, rel_tol=1e-6)


def test_usage_recency_grows_with_uses_and_fades_with_time():
    now = timezone.now()
    assert usage_recency(usage_count=0, last_used=None, now=now) == 0
    assert usage_recency(usage_count=49, last_used=now, now=now) == pytest.approx(1.0)
    assert usage_recency(usage_count=5, last_used=now, now=now) < usage_recency(usage_count=20, last_used=now, now=now)
    month_ago = usage_recency(usage_count=49, last_used=now - timedelta(days=30), now=now)
    assert month_ago == pytest.approx(math.exp(-1))


def test_learning_from_success_stores_linked_patterns_with_tags(org, make_execution):
    execution = make_execution(SUCCESS_RESULTS["requirement"])
    memories = learn_from_success(execution=execution, results=SUCCESS_RESULTS)
    by_type = {m.type: m for m in memories}
    assert set(by_type) == {"SUCCESS_PATTERN", "API_PATTERN", "CODE_SNIPPET", "OPTIMIZATION"}
    success = by_type["SUCCESS_PATTERN"]
    assert success.content.startswith("Top 10 customers by revenue in the last 90 days")
    for tag in ("object:public.customers", "object:public.orders", "aggregate", "top_n", "time_window", "join"):
        assert tag in success.tags
    assert "GET /customers/top-by-revenue" in by_type["API_PATTERN"].content
    assert "days (integer, required)" in by_type["API_PATTERN"].content
    assert "SUM(o.total)" in by_type["CODE_SNIPPET"].content
    assert "820 ms" in by_type["OPTIMIZATION"].content
    for memory in memories:
        assert memory.source_execution == execution
        assert set(memory.related_memories.all()) == set(memories) - {memory}
    assert MemoryUse.objects.filter(execution=execution, kind="produced").count() == 4
    # Learning again from the same execution stores nothing new.
    assert set(learn_from_success(execution=execution, results=SUCCESS_RESULTS)) == set(memories)
    assert AgentMemory.objects.count() == 4


def test_a_fast_run_without_notes_teaches_no_optimization(org, make_execution):
    results = {**SUCCESS_RESULTS, "performance": {"duration_ms": 12.0}}
    memories = learn_from_success(execution=make_execution(), results=results)
    assert "OPTIMIZATION" not in {m.type for m in memories}


def test_learning_from_success_refuses_malformed_results(org, make_execution):
    with pytest.raises(LearningInputError, match=r"results\.design"):
        learn_from_success(execution=make_execution(), results={**SUCCESS_RESULTS, "design": "GET /x"})
    assert not AgentMemory.objects.exists()


def test_the_next_similar_requirement_retrieves_what_was_learned(org, make_execution):
    learn_from_success(execution=make_execution(), results=SUCCESS_RESULTS)
    results = memory_retrieve(
        organization=org,
        text="best 5 clients by sales over the past 3 months",
        types=["SUCCESS_PATTERN", "API_PATTERN"],
    )
    assert results[0].memory.type in ("SUCCESS_PATTERN", "API_PATTERN")
    assert "customers" in results[0].memory.content


def test_learning_from_a_rejected_design_stores_an_anti_pattern(org, make_execution):
    execution = make_execution("remove customers who never ordered", success=False)
    memory = learn_from_failure(
        execution=execution,
        reason="the security review rejected a DELETE endpoint: the role grants read access only",
        phase="security",
        attempted={
            "design": {"method": "DELETE", "path": "/customers/never-ordered"},
            "sql": "DELETE FROM public.customers WHERE id = :id",
        },
    )
    assert memory.type == "ANTI_PATTERN"
    assert memory.content.startswith("Avoid: the security review rejected a DELETE endpoint")
    assert "DELETE /customers/never-ordered" in memory.content
    assert {"anti-pattern", "phase:security", "object:public.customers"} <= set(memory.tags)
    again = learn_from_failure(
        execution=execution,
        reason="the security review rejected a DELETE endpoint: the role grants read access only",
        phase="security",
        attempted={
            "design": {"method": "DELETE", "path": "/customers/never-ordered"},
            "sql": "DELETE FROM public.customers WHERE id = :id",
        },
    )
    assert again == memory
    found = memory_retrieve(organization=org, text="endpoint to delete customers", types=["ANTI_PATTERN"])
    assert found[0].memory == memory


def test_failure_without_a_reason_is_refused(org, make_execution):
    with pytest.raises(LearningInputError, match="reason"):
        learn_from_failure(execution=make_execution(), reason="", phase="security")


def test_admins_enter_business_rules_and_members_cannot(org, admin_member, member):
    rule = business_rule_create(organization=org, user=admin_member, content="Revenue excludes tax", tags=["finance"])
    assert rule.type == "BUSINESS_RULE" and "finance" in rule.tags and rule.embedding is not None
    with pytest.raises(PermissionDenied):
        business_rule_create(organization=org, user=member, content="Anything goes")
    assert AgentMemory.objects.count() == 1


def test_rating_adjusts_produced_and_used_memories_idempotently(org, member, make_execution):
    used = memory_create(organization=org, type=MemoryType.API_PATTERN, content="orders by status", relevance_score=0.5)
    untouched = memory_create(
        organization=org, type=MemoryType.BUSINESS_RULE, content="fiscal year", relevance_score=0.5
    )
    execution = make_execution()
    memory_retrieve(
        organization=org, text="orders by status", types=["API_PATTERN"], execution=execution, agent="ARCHITECT"
    )
    produced = learn_from_success(execution=execution, results=SUCCESS_RESULTS)

    result = execution_rate(execution=execution, user=member, up=True, comment="Exactly what I needed")
    assert result.memories_adjusted == 1 + len(produced)
    execution.refresh_from_db()
    assert (execution.rating, execution.feedback) == (1, "Exactly what I needed")
    used.refresh_from_db()
    assert used.relevance_score == pytest.approx(0.6)

    assert execution_rate(execution=execution, user=member, up=True).memories_adjusted == 0
    used.refresh_from_db()
    assert used.relevance_score == pytest.approx(0.6)

    execution_rate(execution=execution, user=member, up=False, comment="Wrong numbers")
    used.refresh_from_db()
    untouched.refresh_from_db()
    assert used.relevance_score == pytest.approx(0.4)
    assert untouched.relevance_score == pytest.approx(0.5)


def test_rating_clamps_relevance_to_the_unit_range(org, member, make_execution):
    memory = memory_create(organization=org, type=MemoryType.API_PATTERN, content="orders", relevance_score=0.95)
    execution = make_execution()
    memory_retrieve(organization=org, text="orders", execution=execution)
    execution_rate(execution=execution, user=member, up=True)
    memory.refresh_from_db()
    assert memory.relevance_score == 1.0


def test_an_outsider_cannot_rate_an_execution(org, outsider, make_execution):
    execution = make_execution()
    with pytest.raises(PermissionDenied):
        execution_rate(execution=execution, user=outsider, up=False)
    execution.refresh_from_db()
    assert execution.rating is None
