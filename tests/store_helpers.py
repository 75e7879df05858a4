"""Store back-ends for parametrized tests: SQLite always, PostgreSQL where MMCDS_TEST_POSTGRES_URL is set.

Without the URL the PostgreSQL cases are reported as skipped with the reason (never silently
dropped); `MMCDS_REQUIRE_POSTGRES=1` (CI sets it where a server answers) turns that into a failure.

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
NO_POSTGRES = ("PostgreSQL store tests need MMCDS_TEST_POSTGRES_URL "
               "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")


def postgres_marks() -> list:
    """The marks of a PostgreSQL case: skipped with the reason where no server is configured."""
    if POSTGRES_URL:
        return [pytest.mark.postgres]
    if os.environ.get("MMCDS_REQUIRE_POSTGRES") == "1":
        raise RuntimeError(f"MMCDS_REQUIRE_POSTGRES=1 but {NO_POSTGRES}")
    return [pytest.mark.postgres, pytest.mark.skip(reason=NO_POSTGRES)]


def backend_params() -> list:
    return [pytest.param("sqlite"), pytest.param("postgres", marks=postgres_marks())]


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
