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


def legacy_nearest(cursor, *, vector, organization_id, types=None, embedder=None, limit: int, table: str):
    """The search as it was before the selectivity-driven over-fetch (kept here as the bench's reference).

    A partial count of the organization's rows on every query; below 5000 exact search, else
    ef_search = max(40 * limit, 400) and a join of the HNSW candidates back to the table.
    """
    common = {"vector": vector, "organization_id": organization_id, "types": types, "embedder": embedder}
    if (
        vector_search.count_candidates(
            cursor, organization_id=organization_id, types=types, embedder=embedder, cap=5000, table=table
        )
        < 5000
    ):
        return vector_search.nearest_exact(cursor, **common, limit=limit, table=table)
    overfetch = min(max(limit * 40, 400), 1000)
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(overfetch)])
    where, params = vector_search._filters(organization_id=organization_id, types=types, embedder=embedder)
    literal = vector_search.vector_literal(vector)
    cursor.execute(
        f"SELECT m.id, c.distance FROM ("
        f"  SELECT id, embedding <=> %s::vector AS distance FROM {table}"
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f") AS c JOIN {table} m ON m.id = c.id WHERE {where} ORDER BY c.distance, m.id LIMIT %s",
        [literal, literal, overfetch, *params, limit],
    )
    found = [vector_search.Neighbour(row[0], float(row[1])) for row in cursor.fetchall()]
    if len(found) < limit:
        return vector_search.nearest_exact(cursor, **common, limit=limit, table=table)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        help="neighbours asked of the search (default k; memory_retrieve asks max(3k, 30) and re-ranks)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the loaded scratch database for the next run with the same --memories and --seed",
    )
    parser.add_argument("--no-legacy", action="store_true", help="skip the previous search (the 'before' rows)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # Named by what it holds, so that a kept database is found again by the next run.
    scratch = f"nectar_bench_memory_{args.memories}_{args.seed}"
    platform_db = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(**connection_kwargs(platform_db)) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [scratch]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        run(args, rng, scratch)
    finally:
        if args.keep:
            print(f'kept the scratch database {scratch} (drop it with: DROP DATABASE "{scratch}")')
        else:
            with psycopg.connect(**connection_kwargs(platform_db)) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
            print(f"dropped the scratch database {scratch}")


def load(args, rng: random.Random, conn) -> list[uuid.UUID]:
    """Load the memories (or find them loaded by an earlier --keep run); the organizations, biggest first."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    texts = [synthetic_text(rng) for _ in range(args.memories)]
    done = conn.execute("SELECT to_regclass('bench_meta') IS NOT NULL").fetchone()[0]
    if done:
        orgs = [row[0] for row in conn.execute("SELECT organization_id FROM bench_meta ORDER BY position")]
        if len(orgs) == len(ORG_SHARES):
            rng.choices(orgs, weights=ORG_SHARES, k=args.memories)  # keep the random stream as on a fresh load
            rng.choices(TYPES, weights=TYPE_WEIGHTS, k=args.memories)
            print(f"reusing {args.memories:,} memories loaded by an earlier run")
            return orgs
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.execute(
        f"CREATE TABLE {TABLE} (id uuid PRIMARY KEY, organization_id uuid NOT NULL, type varchar(20) NOT NULL,"
        " is_active boolean NOT NULL DEFAULT true, embedder varchar(100) NOT NULL, content text NOT NULL,"
        " embedding vector(384))"
    )
    orgs = [uuid.uuid4() for _ in ORG_SHARES]

    started = time.perf_counter()
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
    conn.execute(f"VACUUM ANALYZE {TABLE}")
    index_seconds = time.perf_counter() - started
    conn.execute("CREATE TABLE bench_meta (position int PRIMARY KEY, organization_id uuid NOT NULL)")
    with conn.cursor() as cursor:
        cursor.executemany("INSERT INTO bench_meta VALUES (%s, %s)", list(enumerate(orgs)))
    print(
        f"loaded {args.memories:,} memories in {len(orgs)} organizations: embed {embed_seconds:.1f}s "
        f"({args.workers} processes), COPY {copy_seconds:.1f}s, HNSW + b-tree build {index_seconds:.1f}s"
    )
    return orgs


def run(args, rng: random.Random, scratch: str) -> None:
    conn = psycopg.connect(**connection_kwargs(scratch))
    print(
        "pgvector",
        conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        else "(new)",
    )
    orgs = load(args, rng, conn)
    limit = args.limit or args.k
    vector_search.selectivity_forget()

    embedder = LocalEmbedder()
    conn.autocommit = False
    sizes = dict(conn.execute(f"SELECT organization_id, count(*) FROM {TABLE} GROUP BY 1").fetchall())
    conn.commit()
    rows = []
    for i in range(args.queries):
        org = rng.choices(orgs, weights=ORG_SHARES)[0]
        types = [rng.choice(TYPES)] if i % 3 == 2 else None  # a third of the queries also filter by type
        (vector,) = embedder.embed([synthetic_text(rng)])
        common = {"vector": vector, "organization_id": org, "types": types, "embedder": "local-hash-v1"}
        timings = {}
        found = {}
        # The same query through each search, one after the other, each in its own transaction.
        for name, search in (
            ("new", vector_search.nearest),
            ("legacy", None if args.no_legacy else legacy_nearest),
            ("exact", vector_search.nearest_exact),
        ):
            if search is None:
                continue
            with conn.cursor() as cursor:
                t0 = time.perf_counter()
                found[name] = search(cursor, **common, limit=limit, table=TABLE)
                timings[name] = (time.perf_counter() - t0) * 1000
            conn.commit()
        exact_ids = {n.id for n in found["exact"][: args.k]}

        recalls = {
            name: len(exact_ids & {n.id for n in found[name][: args.k]}) / len(exact_ids) if exact_ids else 1.0
            for name in ("new", "legacy")
            if name in found
        }
        big = sizes[org] >= vector_search.EXACT_SEARCH_THRESHOLD
        rows.append((big, types is not None, timings, recalls))

    def report(label: str, selected) -> None:
        if not selected:
            return
        baseline = [r[2]["exact"] for r in selected]
        print(
            f"{label} (n={len(selected)}): exact p50 {percentile(baseline, 0.5):.2f} ms, "
            f"p99 {percentile(baseline, 0.99):.2f} ms"
        )
        for name, title in (("legacy", "before"), ("new", "after")):
            if name not in selected[0][2]:
                continue
            took = [r[2][name] for r in selected]
            recall = statistics.mean(r[3][name] for r in selected)
            print(
                f"    {title:<7} filtered search p50 {percentile(took, 0.5):6.2f} ms  "
                f"p99 {percentile(took, 0.99):6.2f} ms  recall@{args.k} {recall:.3f}"
            )

    print(
        f"\nRetrieval of the {args.k} nearest (search limit {limit}) with organization filter "
        f"({args.queries} queries; 'before' = the previous search, 'after' = learning.vector_search.nearest):"
    )
    report("all queries", rows)
    report("large organizations", [r for r in rows if r[0]])
    report("  ... with a type filter too", [r for r in rows if r[0] and r[1]])
    report(f"small organizations (< {vector_search.EXACT_SEARCH_THRESHOLD} rows)", [r for r in rows if not r[0]])
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
    conn.execute(f"DELETE FROM {TABLE} WHERE organization_id = %s", [org])
    conn.commit()
    print(
        f"\nLabelled set: recall@5 = {hits / len(data['queries']):.3f} "
        f"({hits}/{len(data['queries'])} paraphrased queries, {len(data['memories'])} memories)"
    )
    conn.close()


if __name__ == "__main__":
    main()
