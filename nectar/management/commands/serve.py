"""Start the web server (daphne) and the background worker (django-q2) together, and stop them together.

Each child runs in a process group of its own, so stopping it reaches everything it started (the
qcluster master forks a pusher, a monitor and the workers). When either child exits, for any
reason (a crash, a kill of the qcluster master), the other is stopped as well and every process
of both groups is ended: nothing is left running without its supervisor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

GRACE_SECONDS = 20.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_children(children: dict[str, subprocess.Popen], *, grace: float = GRACE_SECONDS) -> None:
    """Stop every child within `grace` seconds: SIGTERM to each leader, then to what is left of its group.

    A leader stops its own processes (the qcluster master tells its sentinel, which drains its pusher,
    monitor and workers in order); SIGTERM to every member at once makes a qcluster take its whole
    grace period, so the group is signalled only once its leader is gone (or late), then SIGKILLed.
    """
    for child in children.values():
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
    # What remains of a group (the workers of a qcluster master that was killed, or a leader that
    # is late) is asked to stop, gets the rest of the grace period, then SIGKILL.
    for child in children.values():
        _signal_group(child.pid, signal.SIGTERM)
    while any(_group_alive(child.pid) for child in children.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in children.values():
        if _group_alive(child.pid):
            _signal_group(child.pid, signal.SIGKILL)
        if child.poll() is None:
            child.wait(timeout=5)


class Command(BaseCommand):
    help = "Run the web server and the worker; Ctrl-C stops both (and so does the exit of either)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Start only the web server")

    def handle(self, *args, host: str, port: int, no_worker: bool, **options):
        # This process keeps a handle on the embedded database, so it stays up until we exit.
        web = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "nectar.asgi:application"]
        children = {"web server": subprocess.Popen(web, start_new_session=True)}
        if not no_worker:
            children["worker"] = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR, start_new_session=True
            )

        base = f"http://{host}:{port}"
        self.stdout.write(self.style.SUCCESS("\nNectar is starting:"))
        for label, path in [
            ("Business UI", "/"),
            ("Django admin", "/admin/"),
            ("REST API docs", "/api/v1/docs/"),
            ("Health", "/healthz"),
        ]:
            self.stdout.write(f"  {label:<14} {base}{path}")
        logins = settings.DATA_DIR / "demo_logins.txt"
        if logins.exists():
            # Where the demo logins are kept, never the passwords themselves (this output ends up in logs).
            self.stdout.write(f"  {'Demo logins':<14} admin (owner), analyst (business user): passwords in {logins}")
        self.stdout.write(f"Process ids: {', '.join(f'{name} {child.pid}' for name, child in children.items())}")
        self.stdout.write("Press Ctrl-C to stop.\n")

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, stop)
        exited = None
        try:
            while not stopping:
                exited = next((name for name, child in children.items() if child.poll() is not None), None)
                if exited is not None:
                    code = children[exited].returncode
                    self.stderr.write(f"The {exited} exited (code {code}); stopping the others.")
                    break
                time.sleep(0.5)
        finally:
            stop_children(children)
            self.stdout.write("Nectar stopped.")
        if exited is not None:
            sys.exit(1)
