"""Crashes leave nothing behind: no execution (child agent runs included) RUNNING after recovery, and
event sequences without gaps, with concurrent appenders and with processes killed mid-append."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from agents.events import event_append
from agents.models import AgentExecution, AgentStatus, ExecutionEvent
from agents.services import execution_claim, execution_submit, executions_recover_stale
from agents.tasks import run_execution_task
from tests.processes import process_env

pytestmark = pytest.mark.django_db(transaction=True)

UNFINISHED = (AgentStatus.PENDING, AgentStatus.RUNNING, AgentStatus.LEARNING, AgentStatus.PAUSED)


def _orchestration(role, user, *, attempts: int, status=AgentStatus.RUNNING, heartbeat_minutes_ago: int = 10):
    run = AgentExecution.objects.create(
        business_requirement="Customers in the EU",
        organization=role.organization,
        user=user,
        role=role,
        status=status,
        attempts=attempts,
        current_phase="architecture",
        heartbeat_at=timezone.now() - timedelta(minutes=heartbeat_minutes_ago),
        result={"phases": {}},
    )
    children = [
        AgentExecution.objects.create(
            business_requirement=run.business_requirement,
            organization=run.organization,
            user=user,
            role=role,
            parent=run,
            agent_type=agent_type,
            status=child_status,
        )
        for agent_type, child_status in (
            ("EXPLORER", AgentStatus.COMPLETED),
            ("ARCHITECT", AgentStatus.RUNNING),
            ("SECURITY", AgentStatus.PENDING),
            ("TESTER", AgentStatus.LEARNING),
        )
    ]
    return run, children


def _states(children) -> dict[str, tuple[str, bool | None]]:
    return {c.agent_type: (c.status, c.success) for c in AgentExecution.objects.filter(pk__in=[c.pk for c in children])}


def test_a_resumed_run_finishes_the_child_runs_its_dead_worker_left(analyst_role, owner):
    run, children = _orchestration(analyst_role, owner, attempts=1)
    report = executions_recover_stale()
    assert report["resumed"] == [str(run.pk)]
    states = _states(children)
    assert states["EXPLORER"] == (AgentStatus.COMPLETED, None), "finished children are left as they were"
    for agent in ("ARCHITECT", "SECURITY", "TESTER"):
        assert states[agent] == (AgentStatus.FAILED, False)
    reasons = set(
        AgentExecution.objects.filter(parent=run, status=AgentStatus.FAILED).values_list("status_reason", flat=True)
    )
    assert reasons == {"interrupted: the worker stopped responding; the phase runs again"}


def test_a_run_failed_by_recovery_fails_every_unfinished_child(analyst_role, owner):
    run, _ = _orchestration(analyst_role, owner, attempts=2)
    assert executions_recover_stale()["failed"] == [str(run.pk)]
    assert not AgentExecution.objects.filter(parent=run, status__in=UNFINISHED).exists()
    assert AgentExecution.objects.get(pk=run.pk).status == AgentStatus.FAILED


def test_children_left_unfinished_under_a_finished_run_are_failed(analyst_role, owner):
    run, _ = _orchestration(analyst_role, owner, attempts=1, status=AgentStatus.COMPLETED)
    executions_recover_stale()
    assert not AgentExecution.objects.filter(parent=run, status__in=UNFINISHED).exists()


def test_children_of_a_live_run_are_left_alone(analyst_role, owner):
    _, children = _orchestration(analyst_role, owner, attempts=1, heartbeat_minutes_ago=0)
    executions_recover_stale()
    assert _states(children)["ARCHITECT"] == (AgentStatus.RUNNING, None)


def test_claiming_a_stale_run_again_finishes_its_previous_attempts_children(analyst_role, owner):
    run, _ = _orchestration(analyst_role, owner, attempts=1)
    assert execution_claim(execution_id=run.pk) is not None
    assert not AgentExecution.objects.filter(parent=run, status__in=UNFINISHED).exists()


def test_a_worker_killed_mid_agent_leaves_no_execution_running_after_recovery(analyst_role, owner, tmp_path, settings):
    settings.EXECUTION_STALE_SECONDS = 10
    execution = execution_submit(user=owner, role=analyst_role, requirement="Customers in the EU")
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=django_settings.BASE_DIR,
        env=process_env(EXECUTION_HEARTBEAT_SECONDS="1", EXECUTION_STALE_SECONDS="10", NECTAR_WORKERS="1"),
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if AgentExecution.objects.filter(parent=execution, status=AgentStatus.RUNNING).exists():
                break
            time.sleep(0.02)
        else:
            pytest.fail("no child agent ran: " + (tmp_path / "worker.log").read_text()[-2000:])
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # mid-agent, without any chance to clean up
        worker.wait(timeout=30)
        log.close()
    assert AgentExecution.objects.filter(parent=execution, status=AgentStatus.RUNNING).exists()
    assert executions_recover_stale()["resumed"] == []  # its heartbeat is still fresh
    # The dead worker writes no heartbeat any more: once its last one is older than the (now shorter)
    # staleness bound, the run is taken back.
    settings.EXECUTION_STALE_SECONDS = 1
    time.sleep(1.5)
    assert executions_recover_stale()["resumed"] == [str(execution.pk)]
    assert run_execution_task(str(execution.pk)) == AgentStatus.COMPLETED
    left = AgentExecution.objects.filter(pk=execution.pk) | AgentExecution.objects.filter(parent=execution)
    assert not left.filter(status__in=UNFINISHED).exists()
    seqs = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


# --- gap-free event sequences ------------------------------------------------------------------


def _execution(role, user) -> AgentExecution:
    return AgentExecution.objects.create(
        business_requirement="events", organization=role.organization, user=user, role=role
    )


def test_concurrent_appenders_get_every_number_once_and_in_order(analyst_role, owner):
    execution = _execution(analyst_role, owner)
    errors = []

    def append_many(worker: int) -> None:
        try:
            for i in range(25):
                event_append(execution=execution, kind="thought", payload={"worker": worker, "i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 151))
    execution.refresh_from_db()
    assert execution.event_seq == 150


APPENDER = textwrap.dedent(
    """
    import os, sys
    os.environ["DJANGO_SETTINGS_MODULE"] = "nectar.settings"
    import django
    django.setup()
    from django.db import connections
    from agents.events import event_append
    from agents.models import AgentExecution
    execution = AgentExecution.objects.get(pk=sys.argv[1])
    connections.close_all()  # each forked appender opens its own connection
    for _ in sys.stdin:  # one appender per line, forked from this set-up process
        pid = os.fork()
        if pid == 0:
            while True:
                event_append(execution=execution, kind="thought", payload={"text": "x" * 200})
        print(pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
    """
)


def test_processes_killed_while_appending_leave_no_gap(analyst_role, owner):
    execution = _execution(analyst_role, owner)
    launcher = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(execution.pk)],
        cwd=django_settings.BASE_DIR,
        env=process_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for round_ in range(8):
            launcher.stdin.write("go\n")
            launcher.stdin.flush()
            appender = int(launcher.stdout.readline())
            time.sleep(0.3 + 0.07 * round_)
            os.kill(appender, signal.SIGKILL)  # mid-append, without any chance to clean up
            assert launcher.stdout.readline().strip() == "reaped"
    finally:
        launcher.stdin.close()
        launcher.wait(timeout=30)
    execution.refresh_from_db()
    seqs = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq", flat=True))
    assert len(seqs) > 8
    assert seqs == list(range(1, len(seqs) + 1))
    assert execution.event_seq == len(seqs), "the counter never runs ahead of the stored events"


def test_an_event_payload_with_a_nul_is_stored_escaped(analyst_role, owner):
    execution = _execution(analyst_role, owner)
    event = event_append(execution=execution, kind="thought", payload={"text": "Ber\x00lin \ud800"})
    event.refresh_from_db()
    assert event.payload == {"text": "Ber\\u0000lin \\ud800"}
