"""The run command (`manage.py serve`, what `make run` starts) supervises the web server and the worker.

When either dies, including the qcluster master killed outright, the command stops the other and
leaves no process of either behind; the banner says where the demo logins are, never a password.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from tests.processes import process_env

ROOT = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve(django_db_setup, tmp_path):
    """`manage.py serve` against the test database, with its children's process ids once the worker is up."""
    env = process_env(NECTAR_DATA_DIR=str(tmp_path), NECTAR_WORKERS="2")
    (tmp_path / "demo_logins.txt").write_text("admin / s3cret-Password (admin)\n")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner = []
    pids = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not pids:
        line = process.stdout.readline()
        banner.append(line)
        if line.startswith("Process ids:"):
            for part in line.removeprefix("Process ids:").split(","):
                name, _, pid = part.strip().rpartition(" ")
                pids[name] = int(pid)
    assert pids, "".join(banner)
    # Wait until the qcluster master has forked its pusher, monitor and workers.
    while time.monotonic() < deadline and len(psutil.Process(pids["worker"]).children(recursive=True)) < 3:
        time.sleep(0.2)
    family = {pid for pid in pids.values()}
    for pid in pids.values():
        family |= {child.pid for child in psutil.Process(pid).children(recursive=True)}
    yield process, pids, family, "".join(banner)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_all_gone(pids: set[int], timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {pid for pid in pids if not _gone(pid)}
        if not left:
            return set()
        time.sleep(0.2)
    return left


@pytest.mark.slow
def test_killing_the_qcluster_master_stops_the_web_server_and_leaves_no_worker(serve):
    process, pids, family, _ = serve
    assert len(family) >= 5  # web server, qcluster master, pusher, monitor, workers
    os.kill(pids["worker"], signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert _wait_all_gone(family) == set()


@pytest.mark.slow
def test_killing_the_web_server_stops_the_worker_and_all_its_processes(serve):
    process, pids, family, _ = serve
    os.kill(pids["web server"], signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert _wait_all_gone(family) == set()


@pytest.mark.slow
def test_ctrl_c_stops_both_cleanly_and_the_banner_shows_no_password(serve):
    process, _, family, banner = serve
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert _wait_all_gone(family) == set()
    assert "s3cret-Password" not in banner
    assert "demo_logins.txt" in banner
