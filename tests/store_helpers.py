"""Store back-ends for parametrized tests: SQLite always, PostgreSQL where MMCDS_TEST_POSTGRES_URL is set.

Each PostgreSQL test gets its own schema (`mmcds_t_<random>`), dropped afterwards, so parallel
runs (pytest-xdist, several CI jobs on one server) never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cds_service.store.db import Store

POSTGRES_URL = os.environ.get("MMCDS_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


def backend_params() -> list:
    return [pytest.param(b, marks=[pytest.mark.postgres] if b == "postgres" else []) for b in BACKENDS]


def new_location(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    """(database_url, schema) for a fresh, private store."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'mmcds.sqlite3'}", None
    return POSTGRES_URL, f"mmcds_t_{uuid.uuid4().hex[:12]}"


@contextmanager
def fresh_store(backend: str, tmp_path: Path) -> Iterator[Store]:
    url, schema = new_location(backend, tmp_path)
    store = Store(url, schema=schema)
    store.create_schema()
    try:
        yield store
    finally:
        if schema:
            store.drop_schema()
        store.dispose()
