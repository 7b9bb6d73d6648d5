"""The spec's data model on the embedded PostgreSQL: migrations, enums, constraints, secrets."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from agents.models import AgentExecution, AgentStatus, ExecutionEvent
from learning.models import AgentMemory, MemoryType
from mcpservers.models import MCPServerInstance, MCPServerStatus
from roles.models import Engine, Membership, Role, RoleApiKey, Service, hash_api_key

pytestmark = pytest.mark.django_db


def test_all_migrations_are_applied_and_none_are_missing():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None, "pgvector is installed by the migrations"


def test_memory_embedding_has_an_hnsw_cosine_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'memory_embedding_hnsw'")
        (indexdef,) = cursor.fetchone()
    assert "USING hnsw" in indexdef
    assert "vector_cosine_ops" in indexdef


def test_memory_type_and_relevance_are_constrained(org):
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentMemory.objects.create(organization=org, type="GUESS", content="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentMemory.objects.create(organization=org, type=MemoryType.BUSINESS_RULE, content="x", relevance_score=1.5)
    memory = AgentMemory.objects.create(
        organization=org, type=MemoryType.BUSINESS_RULE, content="EU data stays in the EU", embedding=[0.1] * 384
    )
    assert memory.relevance_score == 0.5
    assert len(memory.embedding) == 384


def test_execution_status_is_constrained(org, owner):
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentExecution.objects.create(organization=org, user=owner, business_requirement="x", status="DONE")
    execution = AgentExecution.objects.create(organization=org, user=owner, business_requirement="list customers")
    assert execution.status == AgentStatus.PENDING
    execution.mark_failed("worker died")
    execution.refresh_from_db()
    assert (execution.status, execution.success, execution.status_reason) == ("FAILED", False, "worker died")
    assert execution.completed_at is not None


def test_event_sequence_numbers_are_unique_per_execution(org, owner):
    execution = AgentExecution.objects.create(organization=org, user=owner, business_requirement="x")
    ExecutionEvent.objects.create(execution=execution, seq=1, kind="phase")
    with pytest.raises(IntegrityError), transaction.atomic():
        ExecutionEvent.objects.create(execution=execution, seq=1, kind="thought")


def test_membership_role_is_one_of_owner_admin_member(org, owner):
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.filter(user=owner).update(role="emperor")


def test_service_password_is_encrypted_at_rest(org):
    service = Service.objects.create(
        organization=org,
        name="crm",
        engine=Engine.POSTGRESQL,
        host="db",
        database="crm",
        username="reader",
        password="s3cret-pa55",
        url="postgresql://u:hunter2@db/crm",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT password, url FROM roles_service WHERE id = %s", [service.id])
        stored_password, stored_url = cursor.fetchone()
    assert "s3cret-pa55" not in stored_password
    assert "hunter2" not in stored_url
    assert Service.objects.get(pk=service.pk).password == "s3cret-pa55"


def test_mcp_instance_status_is_constrained_and_counters_add_up(org, owner):
    service = Service.objects.create(organization=org, name="crm", engine=Engine.SQLITE, database="/tmp/x.db")
    role = Role.objects.create(organization=org, service=service, name="analyst", created_by=owner)
    instance = MCPServerInstance.objects.create(role=role, server_url="http://x/mcp/1/")
    assert instance.status == MCPServerStatus.GENERATING
    for duration in (10.0, 20.0, 30.0):
        instance.record_request(duration)
    instance.refresh_from_db()
    assert instance.request_count == 3
    assert instance.avg_response_time == pytest.approx(20.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        MCPServerInstance.objects.filter(pk=instance.pk).update(status="BROKEN")


def test_api_keys_are_stored_hashed_and_shown_once(org, owner):
    service = Service.objects.create(organization=org, name="crm", engine=Engine.SQLITE, database="/tmp/x.db")
    role = Role.objects.create(organization=org, service=service, name="analyst")
    key, secret = RoleApiKey.issue(role=role, name="claude desktop", created_by=owner)
    assert secret.startswith(f"nk_{key.prefix}_")
    stored = RoleApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hash_api_key(secret)
    assert secret not in str(stored.__dict__)
    assert RoleApiKey.objects.usable().filter(pk=key.pk).exists()
    stored.revoke()
    assert not RoleApiKey.objects.usable().filter(pk=key.pk).exists()


def test_a_service_in_use_cannot_be_deleted_but_its_organization_can(org, owner):
    from django.db.models import RestrictedError

    service = Service.objects.create(organization=org, name="crm", engine=Engine.SQLITE, database="/tmp/x.db")
    Role.objects.create(organization=org, service=service, name="analyst", created_by=owner)
    with pytest.raises(RestrictedError), transaction.atomic():
        service.delete()
    org.delete()
    assert not Service.objects.filter(pk=service.pk).exists()
    assert not Role.objects.filter(name="analyst").exists()
