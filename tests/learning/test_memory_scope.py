"""Memories know the Service and Role they came from, and retrieval filters on them."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connection

from learning.models import AgentMemory, MemoryType
from learning.services import (
    LearningInputError,
    learn_from_failure,
    learn_from_success,
    memory_create,
    memory_retrieve,
)
from roles.models import Role, Service
from tests.learning.conftest import SUCCESS_RESULTS

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(org):
    return Service.objects.create(organization=org, name="Shop", engine="sqlite", database="shop.sqlite")


@pytest.fixture
def warehouse(org):
    return Service.objects.create(organization=org, name="Warehouse", engine="sqlite", database="wh.sqlite")


@pytest.fixture
def sales(org, shop):
    return Role.objects.create(organization=org, service=shop, name="Sales")


@pytest.fixture
def support(org, shop):
    return Role.objects.create(organization=org, service=shop, name="Support")


@pytest.fixture
def stock(org, warehouse):
    return Role.objects.create(organization=org, service=warehouse, name="Stock")


def test_memories_learned_from_a_run_carry_its_service_and_role(make_execution, sales, shop):
    execution = make_execution(role=sales)
    memories = learn_from_success(execution=execution, results=SUCCESS_RESULTS)
    assert memories
    assert {(m.service_id, m.role_id) for m in memories} == {(shop.pk, sales.pk)}
    failure = learn_from_failure(execution=make_execution(role=sales, success=False), reason="denied", phase="security")
    assert (failure.service_id, failure.role_id) == (shop.pk, sales.pk)


def test_a_child_agent_run_lends_its_orchestrations_role(make_execution, sales, shop):
    parent = make_execution(role=sales)
    child = make_execution(parent=parent, agent_type="security", success=False)
    memory = learn_from_failure(execution=child, reason="touches a denied column", phase="security")
    assert (memory.service_id, memory.role_id) == (shop.pk, sales.pk)


def test_retrieval_keeps_only_the_memories_of_the_given_service_and_role(org, sales, support, stock, shop, warehouse):
    text = "monthly revenue per region"
    of_sales = memory_create(organization=org, type=MemoryType.API_PATTERN, content=text, role=sales)
    of_support = memory_create(organization=org, type=MemoryType.API_PATTERN, content=text, role=support)
    of_stock = memory_create(organization=org, type=MemoryType.API_PATTERN, content=text, role=stock)
    unscoped = memory_create(organization=org, type=MemoryType.API_PATTERN, content=text)
    assert of_sales.service == shop and of_stock.service == warehouse

    def found(**scope):
        return {r.memory.pk for r in memory_retrieve(organization=org, text=text, k=10, **scope)}

    assert found() == {of_sales.pk, of_support.pk, of_stock.pk, unscoped.pk}
    assert found(service=shop) == {of_sales.pk, of_support.pk}
    assert found(service=warehouse) == {of_stock.pk}
    assert found(role=sales) == {of_sales.pk}
    assert found(service=shop, role=support) == {of_support.pk}
    assert found(service=warehouse, role=sales) == set()


def test_scopes_of_another_organization_or_service_are_refused_and_nothing_is_stored(org, other_org, sales, warehouse):
    foreign_service = Service.objects.create(organization=other_org, name="Theirs", engine="sqlite", database="t.db")
    foreign_role = Role.objects.create(organization=other_org, service=foreign_service, name="Theirs")
    with pytest.raises(LearningInputError, match="service"):
        memory_create(organization=org, type=MemoryType.API_PATTERN, content="x", service=foreign_service)
    with pytest.raises(LearningInputError, match="role"):
        memory_create(organization=org, type=MemoryType.API_PATTERN, content="x", role=foreign_role)
    with pytest.raises(LearningInputError, match="role"):
        memory_create(organization=org, type=MemoryType.API_PATTERN, content="x", role=sales, service=warehouse)
    with pytest.raises(LearningInputError, match="role"):
        memory_retrieve(organization=org, text="x", role=foreign_role)
    with pytest.raises(LearningInputError, match="service"):
        memory_retrieve(organization=org, text="x", service=foreign_service)
    assert not AgentMemory.objects.exists()


def test_the_migration_backfills_service_and_role_from_the_source_execution(make_execution, org, sales, shop):
    run = make_execution(role=sales)
    child = make_execution(parent=run, agent_type="tester")
    orphan = make_execution()  # a run whose Role was deleted
    memories = [
        memory_create(organization=org, type=MemoryType.API_PATTERN, content=f"m{i}", source_execution=source)
        for i, source in enumerate([run, child, orphan])
    ]
    memory_create(organization=org, type=MemoryType.BUSINESS_RULE, content="entered by hand")
    AgentMemory.objects.update(service=None, role=None)  # as stored before the fields existed

    migration = importlib.import_module("learning.migrations.0004_memory_scope_backfill")
    migration.backfill_from_source_execution(django_apps, connection.schema_editor())

    scopes = {m.content: (m.service_id, m.role_id) for m in AgentMemory.objects.all()}
    assert scopes[memories[0].content] == (shop.pk, sales.pk)
    assert scopes[memories[1].content] == (shop.pk, sales.pk)
    assert scopes[memories[2].content] == (None, None)
    assert scopes["entered by hand"] == (None, None)


def test_the_index_search_applies_the_service_and_role_filters(org, sales, support, shop):
    from django.db import transaction

    from learning import vector_search
    from learning.embedders import embedder_from_settings

    for i in range(20):
        memory_create(organization=org, type=MemoryType.API_PATTERN, content=f"revenue per store {i}", role=support)
    mine = memory_create(organization=org, type=MemoryType.API_PATTERN, content="revenue per store", role=sales)
    (vector,) = embedder_from_settings().embed(["revenue per store"])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        by_role = vector_search.nearest_hnsw(
            cursor, vector=vector, organization_id=org.pk, role_id=sales.pk, limit=5, overfetch=40
        )
        by_service = vector_search.nearest_hnsw(
            cursor, vector=vector, organization_id=org.pk, service_id=shop.pk, limit=30, overfetch=40
        )
    assert [n.id for n in by_role] == [mine.pk]
    assert len(by_service) == 21


@pytest.mark.django_db(transaction=True)
def test_a_database_that_already_has_memories_migrates_forward(make_execution, org, sales):
    from django.db.migrations.executor import MigrationExecutor

    run = make_execution(role=sales)
    memory_create(organization=org, type=MemoryType.API_PATTERN, content="learned before", source_execution=run)
    executor = MigrationExecutor(connection)
    executor.migrate([("learning", "0002_improvement_fields")])
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    memory = AgentMemory.objects.get(content="learned before")
    assert (memory.service_id, memory.role_id) == (sales.service_id, sales.pk)
