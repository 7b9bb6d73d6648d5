"""The demo retail/CRM customer database: deterministic data, DDL per engine, loaders.

Public interface (import from here):
    DEMO_SEED, demo_generate(*, seed, scale, anchor) -> DemoDataset
    demo_schema_ddl(engine) -> DemoSchemaDDL  ("postgresql" or "sqlite")
    demo_build_postgres(*, url, scale=1.0, seed=DEMO_SEED, progress=None, force=False, anchor=None) -> dict
    demo_build_sqlite(*, path, scale=0.02, seed=DEMO_SEED, progress=None, force=False, anchor=None) -> Path
"""

from roles.demo.generator import DEMO_SEED, DemoDataset, DemoTable, demo_generate, demo_sizes
from roles.demo.loader import (
    DemoBuildError,
    Progress,
    demo_build_postgres,
    demo_build_sqlite,
    demo_postgres_ensure_database,
    demo_postgres_metadata,
    demo_sqlite_metadata,
)
from roles.demo.schema import (
    DEMO_FUNCTIONS,
    DEMO_PROCEDURES,
    DEMO_SCHEMA_VERSION,
    DEMO_TABLES,
    DEMO_VIEWS,
    DemoSchemaDDL,
    demo_schema_ddl,
)

__all__ = [
    "DEMO_FUNCTIONS",
    "DEMO_PROCEDURES",
    "DEMO_SCHEMA_VERSION",
    "DEMO_SEED",
    "DEMO_TABLES",
    "DEMO_VIEWS",
    "DemoBuildError",
    "DemoDataset",
    "DemoSchemaDDL",
    "DemoTable",
    "Progress",
    "demo_build_postgres",
    "demo_build_sqlite",
    "demo_generate",
    "demo_postgres_ensure_database",
    "demo_postgres_metadata",
    "demo_schema_ddl",
    "demo_sizes",
    "demo_sqlite_metadata",
]
