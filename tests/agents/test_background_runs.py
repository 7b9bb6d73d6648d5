"""Executions as background tasks: claiming, duplicate delivery, pause/resume/cancel, dead workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from agents.models import AgentExecution, AgentStatus, ExecutionEvent
from agents.services import (
    ExecutionError,
    execution_cancel,
    execution_claim,
    execution_pause,
    execution_resume,
    execution_submit,
    executions_recover_stale,
)
from agents.tasks import run_execution_task

pytestmark = pytest.mark.django_db(transaction=True)

REQUIREMENT = "Customers in the EU"


def _queued() -> int:
    return OrmQ.objects.count()


def test_submitting_a_requirement_queues_one_task_after_commit(analyst_role, owner):
    before = _queued()
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT)
    assert execution.status == AgentStatus.PENDING
    assert _queued() == before + 1


@pytest.mark.parametrize(
    "requirement,field",
    [("", "requirement"), ("   ", "requirement"), ("x" * 5000, "requirement")],
)
def test_bad_requirements_are_refused_and_nothing_is_created(analyst_role, owner, requirement, field):
    with pytest.raises(ExecutionError) as error:
        execution_submit(user=owner, role=analyst_role, requirement=requirement)
    assert error.value.field == field
    assert not AgentExecution.objects.exists()


def test_an_outsider_cannot_submit_on_another_organizations_role(analyst_role, outsider):
    with pytest.raises(ExecutionError) as error:
        execution_submit(user=outsider, role=analyst_role, requirement=REQUIREMENT)
    assert error.value.code == "not_found"
    assert not AgentExecution.objects.exists()


def test_a_role_without_mcp_is_refused_with_a_clear_reason(analyst_role, owner):
    analyst_role.mcp_enabled = False
    analyst_role.save()
    with pytest.raises(ExecutionError, match="no MCP server"):
        execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT)


def test_the_task_runs_the_pipeline_to_completion_and_a_second_delivery_changes_nothing(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    assert run_execution_task(str(execution.pk)) == AgentStatus.COMPLETED
    execution.refresh_from_db()
    events = ExecutionEvent.objects.filter(execution=execution).count()
    children = AgentExecution.objects.filter(parent=execution).count()
    assert execution.success is True and execution.completed_at is not None
    assert run_execution_task(str(execution.pk)).startswith("skipped")
    assert ExecutionEvent.objects.filter(execution=execution).count() == events
    assert AgentExecution.objects.filter(parent=execution).count() == children
    phases = [
        e.payload["phase"]
        for e in ExecutionEvent.objects.filter(execution=execution, kind="phase").order_by("seq")
        if e.payload.get("status") == "completed"
    ]
    assert phases == [
        "exploration",
        "architecture",
        "security",
        "implementation",
        "testing",
        "documentation",
        "learning",
    ]
    seqs = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)), "events are stored in order with no gap"


def test_a_running_execution_with_a_fresh_heartbeat_is_not_claimed_twice(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    assert execution_claim(execution_id=execution.pk) is not None
    assert execution_claim(execution_id=execution.pk) is None


def test_pausing_a_pending_run_and_resuming_it_requeues_it(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    assert execution_pause(execution=execution).status == AgentStatus.PAUSED
    assert run_execution_task(str(execution.pk)).startswith("skipped"), "a paused run is not picked up"
    before = _queued()
    resumed = execution_resume(execution=execution)
    assert resumed.status == AgentStatus.PENDING
    assert _queued() == before + 1
    assert run_execution_task(str(execution.pk)) == AgentStatus.COMPLETED


def test_a_pause_requested_while_running_stops_at_the_next_checkpoint_and_resume_continues(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    # The run is claimed by a worker, and the user asks it to pause before the first phase starts.
    claimed = execution_claim(execution_id=execution.pk)
    AgentExecution.objects.filter(pk=execution.pk).update(pause_requested=True)
    from agents.orchestrator import execution_run

    execution_run(execution=claimed)
    claimed.refresh_from_db()
    assert claimed.status == AgentStatus.PAUSED
    assert claimed.status_reason == "paused by the user"
    execution_resume(execution=claimed)
    assert run_execution_task(str(execution.pk)) == AgentStatus.COMPLETED


def test_cancelling_a_pending_run_fails_it_at_once_and_a_finished_run_cannot_be_cancelled(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    cancelled = execution_cancel(execution=execution)
    assert (cancelled.status, cancelled.status_reason) == (AgentStatus.FAILED, "cancelled by the user")
    with pytest.raises(ExecutionError, match="already finished"):
        execution_cancel(execution=cancelled)
    assert run_execution_task(str(execution.pk)).startswith("skipped")


def test_cancel_requested_while_running_fails_the_run_with_its_partial_results(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    claimed = execution_claim(execution_id=execution.pk)
    AgentExecution.objects.filter(pk=execution.pk).update(cancel_requested=True)
    from agents.orchestrator import execution_run

    execution_run(execution=claimed)
    claimed.refresh_from_db()
    assert (claimed.status, claimed.status_reason) == (AgentStatus.FAILED, "cancelled by the user")


def _stale(execution, *, attempts: int, phases: dict | None = None):
    AgentExecution.objects.filter(pk=execution.pk).update(
        status=AgentStatus.RUNNING,
        attempts=attempts,
        current_phase="architecture",
        heartbeat_at=timezone.now() - timedelta(minutes=10),
        result={"phases": phases or {}},
    )


def test_a_run_whose_worker_died_is_resumed_from_its_first_unfinished_phase(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    # A first worker finished exploration, then died.
    assert run_execution_task(str(execution.pk)) == AgentStatus.COMPLETED
    exploration = AgentExecution.objects.get(pk=execution.pk).result["phases"]["exploration"]
    fresh = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    _stale(fresh, attempts=1, phases={"exploration": exploration})
    before = _queued()
    report = executions_recover_stale()
    assert report["resumed"] == [str(fresh.pk)]
    assert _queued() == before + 1
    assert AgentExecution.objects.get(pk=fresh.pk).status == AgentStatus.PENDING
    assert run_execution_task(str(fresh.pk)) == AgentStatus.COMPLETED
    explorers = AgentExecution.objects.filter(parent=fresh, agent_type="EXPLORER").count()
    assert explorers == 0, "the resumed run kept the exploration it had and did not explore again"


def test_a_run_whose_worker_died_too_often_is_failed_with_a_reason(analyst_role, owner):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    _stale(execution, attempts=2)
    report = executions_recover_stale()
    assert report["failed"] == [str(execution.pk)]
    execution.refresh_from_db()
    assert execution.status == AgentStatus.FAILED
    assert "stopped responding while designing the API" in execution.status_reason
    last = ExecutionEvent.objects.filter(execution=execution).order_by("-seq").first()
    assert last.payload["status"] == AgentStatus.FAILED


def _worker_env(tmp_path) -> dict:
    from tests.processes import process_env

    return process_env(EXECUTION_HEARTBEAT_SECONDS="1", EXECUTION_STALE_SECONDS="10", NECTAR_WORKERS="1")


def test_a_worker_killed_mid_run_leaves_the_run_recoverable_and_it_completes(analyst_role, owner, tmp_path, settings):
    import os
    import signal
    import subprocess
    import sys
    import time

    settings.EXECUTION_STALE_SECONDS = 10
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT)
    log_file = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=_worker_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = AgentExecution.objects.values_list("status", flat=True).get(pk=execution.pk)
            if status != AgentStatus.PENDING:
                break
            time.sleep(0.05)
        log = (tmp_path / "worker.log").read_text()
        assert status == AgentStatus.RUNNING, f"the worker did not pick the run up (status {status}): {log[-3000:]}"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the whole cluster, mid-run, without any chance to clean up
        worker.wait(timeout=30)
        log_file.close()
    execution.refresh_from_db()
    assert execution.status in (AgentStatus.RUNNING, AgentStatus.LEARNING), "killed mid-run, it still says so"
    # Nothing happens while the heartbeat is fresh; once it is stale, the run is taken back.
    assert executions_recover_stale()["resumed"] == []
    # The dead worker writes no heartbeat any more: once its last one is older than the (now shorter)
    # staleness bound, the run is taken back.
    settings.EXECUTION_STALE_SECONDS = 1
    time.sleep(1.5)
    assert executions_recover_stale()["resumed"] == [str(execution.pk)]
    assert run_execution_task(str(execution.pk)) == AgentStatus.COMPLETED
    execution.refresh_from_db()
    assert execution.attempts == 2
