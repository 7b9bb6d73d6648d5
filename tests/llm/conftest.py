"""A real language model for the `llm` tests: llama-cpp-python's server with SmolLM2-135M-Instruct.

The server is started once per test session by scripts/llm-server.sh (which installs it into its
own venv the first time; building llama.cpp takes 15-25 minutes on two cores, once per machine)
and stopped at the end unless it was already running. Nothing here is mocked: every LLM call of
these tests reaches the model.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# The demo customer database (SQLite) and its MCP-enabled analyst Role, as the agent tests use them.
from tests.agents.conftest import analyst_role, demo_service, demo_sqlite_path  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "llm-server.sh"
MODEL = "smollm2-135m-instruct"
# The server's window: large enough for the agents' prompts, small enough to fill in seconds.
CONTEXT_TOKENS = 8192
INSTALL_TIMEOUT = 45 * 60


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "NECTAR_LLM_CTX": str(CONTEXT_TOKENS)}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.fixture(scope="session")
def llm_server_url() -> str:
    """The base URL (…/v1) of the running local model; started (and installed) when needed."""
    already = _script("status", timeout=30)
    started = _script("start", timeout=INSTALL_TIMEOUT) if already.returncode else already
    if started.returncode:
        pytest.fail(
            f"scripts/llm-server.sh could not start the local model (exit {started.returncode}):\n"
            f"{started.stderr[-3000:]}",
            pytrace=False,
        )
    url = started.stdout.strip().splitlines()[-1]
    yield url
    if already.returncode:
        _script("stop", timeout=30)


@pytest.fixture
def local_model(settings, llm_server_url):
    """The platform configured as an operator would for a local llama.cpp server."""
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = llm_server_url
    settings.OPENAI_API_KEY = ""
    settings.LLM_MODEL = MODEL
    settings.LLM_CONTEXT_TOKENS = 0  # learned from the server, as in production
    settings.OLLAMA_NUM_CTX = 0
    settings.LLM_TIMEOUT_SECONDS = 120.0
    settings.LLM_MAX_RETRIES = 1
    return settings


# The figures of every pipeline run against the local model, printed at the end of the session.
RUNS: list[dict] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if not RUNS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("pipeline runs against the local model")
    for run in RUNS:
        write(
            f"{run['via']:<12} {run['status']:<9} {run['llm_calls']:>3} calls {run['input_tokens']:>7} in "
            f"{run['output_tokens']:>6} out {run['tool_calls']:>3} tools {run['seconds'] or 0:>7.1f} s  "
            f"{run['requirement']}: {run['reason']}"
        )
    states: dict[str, int] = {}
    for run in RUNS:
        states[run["status"]] = states.get(run["status"], 0) + 1
    write(
        f"{len(RUNS)} runs: "
        + ", ".join(f"{count} {status}" for status, count in sorted(states.items()))
        + f"; {sum(r['input_tokens'] + r['output_tokens'] for r in RUNS)} tokens, "
        f"{sum(r['seconds'] or 0 for r in RUNS):.0f} s in all"
    )
