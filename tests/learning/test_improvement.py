from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from learning.apps import IMPROVEMENT_SCHEDULE_NAME, ensure_improvement_schedule
from learning.improvement import improvement_run
from learning.models import AgentMemory, ImprovementReport, MemoryType, MemoryUse
from learning.services import learn_from_failure, learn_from_success, memory_create, memory_retrieve
from learning.tasks import improvement_run_task
from roles.models import Role, Service
from tests.learning.conftest import SUCCESS_RESULTS

pytestmark = pytest.mark.django_db


def test_near_duplicates_are_merged_into_the_stronger_memory(org, make_execution):
    strong = memory_create(
        organization=org,
        type=MemoryType.API_PATTERN,
        content="Top customers by revenue",
        tags=["a"],
        relevance_score=0.8,
    )
    weak = memory_create(
        organization=org,
        type=MemoryType.API_PATTERN,
        content="Top customers by revenue.",
        tags=["b"],
        relevance_score=0.4,
    )
    other_type = memory_create(organization=org, type=MemoryType.CODE_SNIPPET, content="Top customers by revenue")
    friend = memory_create(organization=org, type=MemoryType.BUSINESS_RULE, content="VIP threshold", related=[weak])
    AgentMemory.objects.filter(pk=strong.pk).update(usage_count=3)
    AgentMemory.objects.filter(pk=weak.pk).update(usage_count=2)
    execution = make_execution()
    MemoryUse.objects.create(memory=weak, execution=execution, kind="retrieved", agent="ARCHITECT")

    report = improvement_run(organization=org)

    strong.refresh_from_db()
    weak.refresh_from_db()
    assert report.merged == 1
    assert (weak.is_active, weak.merged_into) == (False, strong)
    assert "cosine similarity" in weak.retired_reason
    assert strong.usage_count == 5 and set(strong.tags) == {"a", "b"}
    assert friend in strong.related_memories.all()
    assert MemoryUse.objects.get(execution=execution).memory == strong
    other_type.refresh_from_db()
    assert other_type.is_active  # other types are never merged
    change = report.changes[0]
    assert change["action"] == "merged" and change["memory"] == str(weak.pk) and change["reason"]


def test_memories_of_different_organizations_are_never_merged(org, other_org):
    memory_create(organization=org, type=MemoryType.API_PATTERN, content="Top customers by revenue")
    memory_create(organization=other_org, type=MemoryType.API_PATTERN, content="Top customers by revenue")
    assert improvement_run().merged == 0
    assert AgentMemory.objects.active().count() == 2


def test_unused_memories_decay_once_per_month_and_rules_do_not(org):
    now = timezone.now()
    stale = memory_create(organization=org, type=MemoryType.API_PATTERN, content="late shipments", relevance_score=0.5)
    fresh = memory_create(organization=org, type=MemoryType.API_PATTERN, content="stock value", relevance_score=0.5)
    rule = memory_create(organization=org, type=MemoryType.BUSINESS_RULE, content="fiscal year", relevance_score=0.5)
    AgentMemory.objects.filter(pk__in=[stale.pk, rule.pk]).update(created_at=now - timedelta(days=45))
    AgentMemory.objects.filter(pk=fresh.pk).update(
        created_at=now - timedelta(days=45), last_used=now - timedelta(days=2)
    )

    report = improvement_run(organization=org, now=now)
    assert report.decayed == 1
    for memory in (stale, fresh, rule):
        memory.refresh_from_db()
    assert stale.relevance_score == pytest.approx(0.45)
    assert fresh.relevance_score == pytest.approx(0.5) and rule.relevance_score == pytest.approx(0.5)
    assert "Not used for 45 days" in report.changes[0]["reason"]

    assert improvement_run(organization=org, now=now + timedelta(days=1)).decayed == 0
    # A month later the stale one decays again and the other has gone unused too.
    assert improvement_run(organization=org, now=now + timedelta(days=31)).decayed == 2


def test_a_success_pattern_used_by_three_successful_executions_is_promoted(org, make_execution):
    source = make_execution()
    pattern = next(
        m for m in learn_from_success(execution=source, results=SUCCESS_RESULTS) if m.type == "SUCCESS_PATTERN"
    )
    start = AgentMemory.objects.get(pk=pattern.pk).relevance_score
    for _ in range(2):
        memory_retrieve(
            organization=org, text=SUCCESS_RESULTS["requirement"], types=["SUCCESS_PATTERN"], execution=make_execution()
        )
    memory_retrieve(
        organization=org,
        text=SUCCESS_RESULTS["requirement"],
        types=["SUCCESS_PATTERN"],
        execution=make_execution(success=False),
    )
    assert improvement_run(organization=org).promoted == 0

    memory_retrieve(
        organization=org, text=SUCCESS_RESULTS["requirement"], types=["SUCCESS_PATTERN"], execution=make_execution()
    )
    report = improvement_run(organization=org)
    pattern.refresh_from_db()
    assert report.promoted == 1
    assert pattern.relevance_score == pytest.approx(start + 0.1)
    assert "3 successful executions" in report.changes[-1]["reason"]
    # The same three successes do not promote it again.
    assert improvement_run(organization=org).promoted == 0


def test_an_anti_pattern_is_retired_after_its_objects_saw_two_successes(org, make_execution):
    anti = learn_from_failure(
        execution=make_execution(success=False),
        reason="timed out scanning all orders",
        phase="testing",
        attempted={"sql": "SELECT * FROM public.orders"},
    )
    learn_from_success(execution=make_execution(), results=SUCCESS_RESULTS)
    assert improvement_run(organization=org).retired == 0
    learn_from_success(execution=make_execution(), results=SUCCESS_RESULTS)

    report = improvement_run(organization=org)
    anti.refresh_from_db()
    assert report.retired == 1
    assert not anti.is_active and "2 successful executions" in anti.retired_reason
    assert report.changes[-1]["action"] == "retired"


def test_an_anti_pattern_about_objects_no_longer_granted_is_retired(org, make_execution):
    service = Service.objects.create(organization=org, name="shop", engine="sqlite", database=":memory:")
    role = Role.objects.create(
        organization=org,
        service=service,
        name="analyst",
        permissions=[{"schema": "public", "objectName": "customers", "actions": ["SELECT"]}],
    )
    still = learn_from_failure(
        execution=make_execution(role=role, success=False),
        reason="missing index",
        phase="testing",
        attempted={"sql": "SELECT * FROM public.customers"},
    )
    gone = learn_from_failure(
        execution=make_execution(role=role, success=False),
        reason="legacy table is slow",
        phase="testing",
        attempted={"sql": "SELECT * FROM public.legacy_orders"},
    )
    report = improvement_run(organization=org)
    still.refresh_from_db()
    gone.refresh_from_db()
    assert still.is_active and not gone.is_active
    assert "no longer granted to role analyst" in gone.retired_reason
    assert report.retired == 1


def test_each_run_leaves_a_report_even_when_nothing_changed(org):
    report = improvement_run(organization=org)
    assert ImprovementReport.objects.get(pk=report.pk).finished_at is not None
    assert (report.merged, report.decayed, report.promoted, report.retired, report.changes) == (0, 0, 0, 0, [])


def test_the_daily_schedule_exists_once_and_runs_the_task(org):
    ensure_improvement_schedule()
    schedule = Schedule.objects.get(name=IMPROVEMENT_SCHEDULE_NAME)
    assert schedule.func == "learning.tasks.improvement_run_task"
    assert schedule.schedule_type == Schedule.DAILY
    assert Schedule.objects.filter(name=IMPROVEMENT_SCHEDULE_NAME).count() == 1
    report_id = improvement_run_task()
    assert ImprovementReport.objects.filter(pk=report_id, organization=None).exists()
