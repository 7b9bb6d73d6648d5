"""Memory retrieval at 100k memories: latency and recall@10 of filtered HNSW search against exact search.

Run: python -m bench.bench_memory [--memories 100000] [--queries 300]

Creates a scratch database on the platform's PostgreSQL server (the embedded one by default),
loads synthetic but varied memories of several organizations of very different sizes,
embedded with the built-in local embedder, builds the same HNSW index as AgentMemory and runs
learning.vector_search (the code memory_retrieve uses) against it. The baseline is exact
search over the same rows with the same filters. Also prints recall@5 on the labelled set.
The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import uuid
from multiprocessing import Pool
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")
django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402

from learning import vector_search  # noqa: E402
from learning.embedders.local import LocalEmbedder  # noqa: E402

TABLE = "bench_memory"
TYPES = ["SUCCESS_PATTERN", "API_PATTERN", "CODE_SNIPPET", "OPTIMIZATION", "BUSINESS_RULE", "ANTI_PATTERN"]
TYPE_WEIGHTS = [30, 25, 20, 10, 10, 5]
# Organizations of very different sizes (share of all memories): big ones use HNSW, small ones exact search.
ORG_SHARES = [0.30, 0.22, 0.15, 0.12, 0.08, 0.06, 0.04, 0.02, 0.006, 0.004]

ENTITIES = [
    "customers",
    "clients",
    "orders",
    "invoices",
    "products",
    "suppliers",
    "employees",
    "shipments",
    "tickets",
    "subscriptions",
    "payments",
    "refunds",
    "stores",
    "warehouses",
    "carts",
    "reviews",
    "coupons",
    "accounts",
    "leads",
    "opportunities",
    "contracts",
    "parcels",
    "sessions",
    "devices",
]
METRICS = [
    "revenue",
    "count",
    "average value",
    "total spend",
    "margin",
    "units sold",
    "late deliveries",
    "churn rate",
    "refund rate",
    "lead time",
    "open balance",
    "conversion rate",
    "growth",
    "median resolution time",
    "stock level",
]
DIMENSIONS = [
    "region",
    "country",
    "month",
    "week",
    "category",
    "channel",
    "store",
    "plan",
    "carrier",
    "department",
    "priority",
    "segment",
    "payment method",
    "supplier",
    "sales rep",
]
WINDOWS = [
    "in the last 7 days",
    "in the last 30 days",
    "over the past quarter",
    "this year",
    "since january",
    "year to date",
    "last month",
    "between two dates",
    "for the trailing twelve months",
    "",
]
SHAPES = [
    "top {n} {e} by {m}",
    "{m} of {e} per {d}",
    "{e} with no activity {w}",
    "list {e} where {m} dropped {w}",
    "{e} ranked by {m} per {d}",
    "compare {m} of {e} {w} with last year",
    "{e} above the {m} threshold",
    "GET /{e}/{slug}: {m} by {d} {w}",
    "Avoid: scanning all {e} without a limit when computing {m}",
    "Business rule: {m} of {e} excludes cancelled {e2}",
    "SELECT {d_}, SUM({m_}) FROM {e} GROUP BY {d_}",
]


def synthetic_text(rng: random.Random) -> str:
    e, e2 = rng.choice(ENTITIES), rng.choice(ENTITIES)
    m, d, w = rng.choice(METRICS), rng.choice(DIMENSIONS), rng.choice(WINDOWS)
    text = rng.choice(SHAPES).format(
        n=rng.choice([5, 10, 20, 50, 100]),
        e=e,
        e2=e2,
        m=m,
        d=d,
        w=w,
        slug=f"{m.replace(' ', '-')}-by-{d.replace(' ', '-')}",
        d_=d.replace(" ", "_"),
        m_=m.replace(" ", "_"),
    )
    return f"{text} (variant {rng.randrange(10_000)})"


def _embed_chunk(texts: list[str]) -> list[str]:
    return [vector_search.vector_literal(v) for v in LocalEmbedder().embed(texts)]


def embed_all(texts: list[str], workers: int) -> list[str]:
    chunks = [texts[i : i + 2000] for i in range(0, len(texts), 2000)]
    with Pool(workers) as pool:
        return [v for chunk in pool.map(_embed_chunk, chunks) for v in chunk]


def connection_kwargs(dbname: str) -> dict:
    db = settings.DATABASES["default"]
    kwargs = {"dbname": dbname, "user": db.get("USER") or "postgres", "autocommit": True}
    host = db.get("HOST") or (db.get("OPTIONS") or {}).get("host")
    if host:
        kwargs["host"] = host
    if db.get("PORT"):
        kwargs["port"] = db["PORT"]
    if db.get("PASSWORD"):
        kwargs["password"] = db["PASSWORD"]
    return kwargs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    scratch = f"nectar_bench_memory_{os.getpid()}"
    platform_db = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(**connection_kwargs(platform_db)) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        run(args, rng, scratch)
    finally:
        with psycopg.connect(**connection_kwargs(platform_db)) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        print(f"dropped the scratch database {scratch}")


def run(args, rng: random.Random, scratch: str) -> None:
    conn = psycopg.connect(**connection_kwargs(scratch))
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    print("pgvector", conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0])
    conn.execute(
        f"CREATE TABLE {TABLE} (id uuid PRIMARY KEY, organization_id uuid NOT NULL, type varchar(20) NOT NULL,"
        " is_active boolean NOT NULL DEFAULT true, embedder varchar(100) NOT NULL, content text NOT NULL,"
        " embedding vector(384))"
    )
    orgs = [uuid.uuid4() for _ in ORG_SHARES]

    started = time.perf_counter()
    texts = [synthetic_text(rng) for _ in range(args.memories)]
    vectors = embed_all(texts, args.workers)
    embed_seconds = time.perf_counter() - started
    org_of = rng.choices(orgs, weights=ORG_SHARES, k=args.memories)
    type_of = rng.choices(TYPES, weights=TYPE_WEIGHTS, k=args.memories)

    started = time.perf_counter()
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY {TABLE} (id, organization_id, type, embedder, content, embedding) FROM STDIN") as copy,
    ):
        for text, vector, org, kind in zip(texts, vectors, org_of, type_of, strict=True):
            copy.write_row((uuid.uuid4(), org, kind, "local-hash-v1", text, vector))
    copy_seconds = time.perf_counter() - started

    started = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute(f"SET max_parallel_maintenance_workers = {max(1, args.workers - 1)}")
    conn.execute(
        f"CREATE INDEX bench_memory_hnsw ON {TABLE} USING hnsw (embedding vector_cosine_ops)"
        " WITH (m = 16, ef_construction = 64)"
    )
    conn.execute(f"CREATE INDEX bench_memory_org ON {TABLE} (organization_id, is_active, type)")
    conn.execute(f"ANALYZE {TABLE}")
    index_seconds = time.perf_counter() - started
    print(
        f"loaded {args.memories:,} memories in {len(orgs)} organizations: embed {embed_seconds:.1f}s "
        f"({args.workers} processes), COPY {copy_seconds:.1f}s, HNSW + b-tree build {index_seconds:.1f}s"
    )

    embedder = LocalEmbedder()
    conn.autocommit = False
    sizes = dict(conn.execute(f"SELECT organization_id, count(*) FROM {TABLE} GROUP BY 1").fetchall())
    rows = []
    for i in range(args.queries):
        org = rng.choices(orgs, weights=ORG_SHARES)[0]
        types = [rng.choice(TYPES)] if i % 3 == 2 else None  # a third of the queries also filter by type
        (vector,) = embedder.embed([synthetic_text(rng)])
        common = {"vector": vector, "organization_id": org, "types": types, "embedder": "local-hash-v1"}
        with conn.cursor() as cursor:
            t0 = time.perf_counter()
            approx = vector_search.nearest(cursor, **common, limit=args.k, table=TABLE)
            t1 = time.perf_counter()
            exact = vector_search.nearest_exact(cursor, **common, limit=args.k, table=TABLE)
            t2 = time.perf_counter()
        conn.commit()
        big = sizes[org] >= vector_search.EXACT_SEARCH_THRESHOLD
        exact_ids = {n.id for n in exact}
        recall = len(exact_ids & {n.id for n in approx}) / len(exact_ids) if exact_ids else 1.0
        rows.append((big, types is not None, (t1 - t0) * 1000, (t2 - t1) * 1000, recall))

    def report(label: str, selected) -> None:
        if not selected:
            return
        filtered = [r[2] for r in selected]
        baseline = [r[3] for r in selected]
        recall = statistics.mean(r[4] for r in selected)
        print(
            f"{label:<42} n={len(selected):>4}  filtered search p50 {percentile(filtered, 0.5):6.2f} ms"
            f"  p99 {percentile(filtered, 0.99):6.2f} ms  | exact p50 {percentile(baseline, 0.5):7.2f} ms"
            f"  p99 {percentile(baseline, 0.99):7.2f} ms  | recall@{args.k} {recall:.3f}"
        )

    print(f"\nRetrieval of the {args.k} nearest with organization filter ({args.queries} queries):")
    report("all queries", rows)
    report("large organizations (HNSW + over-fetch)", [r for r in rows if r[0]])
    report("  ... with a type filter too", [r for r in rows if r[0] and r[1]])
    report(f"small organizations (< {vector_search.EXACT_SEARCH_THRESHOLD} rows, exact)", [r for r in rows if not r[0]])
    conn.close()
    labelled_recall(scratch)


def labelled_recall(scratch: str) -> None:
    """recall@5 of the labelled set, loaded as one more organization into the 100k table."""
    data = json.loads((Path(__file__).resolve().parent.parent / "learning/eval/labelled_memories.json").read_text())
    embedder = LocalEmbedder()
    org = uuid.uuid4()
    conn = psycopg.connect(**{**connection_kwargs(scratch), "autocommit": False})
    keys = {}
    with conn.cursor() as cursor:
        for item, vector in zip(
            data["memories"], embedder.embed([m["content"] for m in data["memories"]]), strict=True
        ):
            keys[item["key"]] = uuid.uuid4()
            cursor.execute(
                f"INSERT INTO {TABLE} (id, organization_id, type, embedder, content, embedding)"
                " VALUES (%s, %s, %s, 'local-hash-v1', %s, %s::vector)",
                [keys[item["key"]], org, item["type"], item["content"], vector_search.vector_literal(vector)],
            )
    conn.commit()
    hits = 0
    for item, vector in zip(data["queries"], embedder.embed([q["query"] for q in data["queries"]]), strict=True):
        with conn.cursor() as cursor:
            found = vector_search.nearest(cursor, vector=vector, organization_id=org, limit=5, table=TABLE)
        conn.commit()
        hits += keys[item["target"]] in {n.id for n in found}
    print(
        f"\nLabelled set: recall@5 = {hits / len(data['queries']):.3f} "
        f"({hits}/{len(data['queries'])} paraphrased queries, {len(data['memories'])} memories)"
    )
    conn.close()


if __name__ == "__main__":
    main()
