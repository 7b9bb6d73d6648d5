"""Nearest-neighbour search over memory embeddings with organization and type filters.

pgvector's HNSW index returns the nearest rows of the whole table and filters afterwards: a
query for one organization among many could come back short or miss its true neighbours.
pgvector 0.6 (the embedded server's) has no iterative index scans, so the search here:

1. counts the organization's candidate rows up to a threshold (a partial count, cheap at any
   size). A small organization is searched exactly: its rows through the (organization,
   is_active, type) b-tree index, distances computed for each, sorted. No HNSW involved.
2. otherwise over-fetches from HNSW: `hnsw.ef_search` is raised (SET LOCAL, this transaction
   only) and the `overfetch` nearest rows of the whole table are read in a subquery ordered by
   distance, then filtered by organization, activity, type and embedder;
3. falls back to the exact search when fewer than `limit` rows survive the filter (a rare
   type, or an organization that is a small share of a big table).

The caller must be inside a transaction (SET LOCAL). Identifiers are constants of this module;
every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Organizations with fewer candidate rows than this are searched exactly.
EXACT_SEARCH_THRESHOLD = 5000
# HNSW candidates read per wanted result, and pgvector's ceiling for ef_search.
OVERFETCH_FACTOR = 40
MIN_OVERFETCH = 400
MAX_EF_SEARCH = 1000

TABLE = "learning_agentmemory"


@dataclass(frozen=True)
class Neighbour:
    id: object
    distance: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(v):.7g}" for v in vector) + "]"


def _filters(*, organization_id, types, embedder) -> tuple[str, list]:
    clauses = ["m.organization_id = %s", "m.is_active", "m.embedding IS NOT NULL"]
    params: list = [organization_id]
    if types:
        clauses.append("m.type = ANY(%s)")
        params.append(list(types))
    if embedder:
        clauses.append("m.embedder = %s")
        params.append(embedder)
    return " AND ".join(clauses), params


def count_candidates(cursor, *, organization_id, types=None, embedder=None, cap: int, table: str = TABLE) -> int:
    """How many rows the filters keep, counted no further than `cap`."""
    where, params = _filters(organization_id=organization_id, types=types, embedder=embedder)
    cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} m WHERE {where} LIMIT %s) AS c", [*params, cap])
    return cursor.fetchone()[0]


def nearest_exact(
    cursor, *, vector, organization_id, types=None, embedder=None, limit: int, table: str = TABLE
) -> list[Neighbour]:
    """Exact nearest neighbours: every filtered row's distance, sorted (the `+ 0` keeps HNSW out)."""
    where, params = _filters(organization_id=organization_id, types=types, embedder=embedder)
    cursor.execute(
        f"SELECT m.id, (m.embedding <=> %s::vector) + 0 AS distance FROM {table} m WHERE {where} "
        "ORDER BY distance, m.id LIMIT %s",
        [vector_literal(vector), *params, limit],
    )
    return [Neighbour(row[0], float(row[1])) for row in cursor.fetchall()]


def nearest_hnsw(
    cursor, *, vector, organization_id, types=None, embedder=None, limit: int, overfetch: int, table: str = TABLE
) -> list[Neighbour]:
    """Approximate neighbours: the `overfetch` nearest of the whole table by HNSW, then filtered."""
    overfetch = min(max(overfetch, limit), MAX_EF_SEARCH)
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(overfetch)])
    where, params = _filters(organization_id=organization_id, types=types, embedder=embedder)
    literal = vector_literal(vector)
    cursor.execute(
        f"SELECT m.id, c.distance FROM ("
        f"  SELECT id, embedding <=> %s::vector AS distance FROM {table}"
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f") AS c JOIN {table} m ON m.id = c.id WHERE {where} ORDER BY c.distance, m.id LIMIT %s",
        [literal, literal, overfetch, *params, limit],
    )
    return [Neighbour(row[0], float(row[1])) for row in cursor.fetchall()]


def nearest(
    cursor,
    *,
    vector,
    organization_id,
    types=None,
    embedder=None,
    limit: int,
    exact_threshold: int = EXACT_SEARCH_THRESHOLD,
    table: str = TABLE,
) -> list[Neighbour]:
    """The `limit` nearest memories of one organization, choosing exact or HNSW search as above."""
    common = {"vector": vector, "organization_id": organization_id, "types": types, "embedder": embedder}
    filters = {"organization_id": organization_id, "types": types, "embedder": embedder}
    if count_candidates(cursor, **filters, cap=exact_threshold, table=table) < exact_threshold:
        return nearest_exact(cursor, **common, limit=limit, table=table)
    found = nearest_hnsw(
        cursor, **common, limit=limit, overfetch=max(limit * OVERFETCH_FACTOR, MIN_OVERFETCH), table=table
    )
    if len(found) < limit:
        return nearest_exact(cursor, **common, limit=limit, table=table)
    return found
