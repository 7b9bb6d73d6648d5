"""Run every benchmark in turn: python -m bench [name ...]. Each prints its figures beside its baseline."""

from __future__ import annotations

import subprocess
import sys

BENCHES = {
    "pipeline": "bench.bench_pipeline",  # share of correct endpoints, time to a live endpoint
    "accuracy": "bench.bench_accuracy",  # correct, wrong, declined on Sakila, Northwind and demo, three engines
    "learning": "bench.bench_learning",  # steps and LLM calls, first run against a similar second one
    "mcp": "bench.bench_mcp",  # tool-call latency and throughput against psycopg
    "memory": "bench.bench_memory",  # retrieval latency and recall at 100k memories against exact search
    "peers": "bench.bench_peers",  # MCP tools and endpoints beside MCP Toolbox and DBHub, against psycopg
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
        return 2
    status = 0
    for name in names or list(BENCHES):
        print(f"\n=== {name} ({BENCHES[name]}) ===", flush=True)
        status |= subprocess.call([sys.executable, "-m", BENCHES[name]])
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
