"""Start the web server (daphne) and the background worker (django-q2) together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server and the worker; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Start only the web server")

    def handle(self, *args, host: str, port: int, no_worker: bool, **options):
        # This process keeps a handle on the embedded database, so it stays up until we exit.
        web = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "nectar.asgi:application"]
        children = [subprocess.Popen(web)]
        if not no_worker:
            children.append(subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR))

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
            for line in logins.read_text().splitlines():
                self.stdout.write(f"  Login          {line}")
        self.stdout.write("Press Ctrl-C to stop.\n")

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                if any(child.poll() is not None for child in children):
                    self.stderr.write("A Nectar process exited; stopping the others.")
                    break
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            self.stdout.write("Nectar stopped.")
