"""Chromium against daphne: the live execution page streams, survives a drop and a reload with no gap or duplicate."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from agents.events import event_append
from agents.models import PHASE_ORDER, AgentStatus
from agents.services import execution_submit
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _emit_phases(execution, phases, *, pause: float = 0.05) -> None:
    """What a worker writes while it runs these phases, a little at a time."""
    try:
        for name in phases:
            event_append(execution=execution, kind="phase", phase=name, payload={"phase": name, "status": "started"})
            time.sleep(pause)
            event_append(
                execution=execution,
                kind="thought",
                phase=name,
                agent="ARCHITECT",
                payload={"agent": "ARCHITECT", "step": "think", "text": f"Working on {name}"},
            )
            event_append(
                execution=execution,
                kind="phase",
                phase=name,
                payload={"phase": name, "status": "completed", "seconds": 0.2},
            )
            time.sleep(pause)
    finally:
        connection.close()


def _in_worker(execution, phases) -> None:
    """Emit from another thread, as a worker would (the test's thread hosts Playwright's event loop)."""
    worker = threading.Thread(target=_emit_phases, args=(execution, phases))
    worker.start()
    worker.join()


def _seqs(page) -> list[int]:
    return [int(s) for s in page.eval_on_selector_all("#events [data-seq]", "els => els.map(e => e.dataset.seq)")]


def test_events_stream_live_and_survive_a_dropped_connection_and_a_reload(
    live_server_url, browser, screenshots, member, analyst_role
):
    execution = execution_submit(user=member, role=analyst_role, requirement="Monthly revenue by region", enqueue=False)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_server_url, member.username, PASSWORD)
    page.goto(f"{live_server_url}/executions/{execution.pk}/")
    page.wait_for_selector("#live-indicator[data-state=live]")

    _in_worker(execution, PHASE_ORDER[:3])
    page.wait_for_selector("#phase-security.done")
    expect(page.locator("#phases-done")).to_have_text("3")
    seqs = _seqs(page)
    assert seqs == list(range(1, len(seqs) + 1))

    # The connection drops; events written meanwhile arrive after the reconnect, once each.
    page.evaluate("window.nectarSocket.close(4000)")
    page.wait_for_selector("#live-indicator[data-state=offline]")
    _in_worker(execution, PHASE_ORDER[3:5])
    page.wait_for_selector("#phase-testing.done")
    seqs = _seqs(page)
    assert seqs == list(range(1, len(seqs) + 1)), "no gap and no duplicate after a reconnect"

    # A reload renders the stored events and listens after the last one.
    page.reload()
    page.wait_for_selector("#live-indicator[data-state=live]")
    _in_worker(execution, PHASE_ORDER[5:6])
    page.wait_for_selector("#phase-documentation.done")
    seqs = _seqs(page)
    assert seqs == list(range(1, execution.events.count() + 1))
    page.screenshot(path=str(screenshots / "execution-live.png"), full_page=True)

    page.click("#pause")
    page.wait_for_selector("#resume")
    execution.refresh_from_db()
    assert execution.pause_requested or execution.status == AgentStatus.PAUSED

    mobile = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    sign_in(mobile, live_server_url, member.username, PASSWORD)
    mobile.goto(f"{live_server_url}/executions/{execution.pk}/")
    mobile.wait_for_selector("#phase-documentation.done")
    mobile.screenshot(path=str(screenshots / "execution-mobile.png"), full_page=False)
