"""Shared test fixtures: an app on a temporary SQLite store, and a client that validates responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cds_service.hooks import schemas

ROOT = Path(__file__).resolve().parent.parent
SPEC_FIXTURES = ROOT / "fixtures" / "spec"
AS_OF = "2026-11-01"


def assert_valid_response(body: Any) -> None:
    """Every CDS response a test sees must satisfy the CDS Hooks response schema and our extension."""
    problems = schemas.check_response(body)
    assert not problems, problems


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    return {"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}", "AS_OF_DATE": AS_OF,
            "DATA_DIR": str(tmp_path)}


@pytest.fixture
def app(app_config: dict[str, Any]):
    from cds_service.app import create_app

    return create_app(app_config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def call_service(client) -> Callable[..., Any]:
    """POST a request to a service; a 200 answer is schema-checked before the test sees it."""

    def call(service_id: str, body: Any, **kwargs: Any):
        resp = client.post(f"/cds-services/{service_id}", data=json.dumps(body), content_type="application/json", **kwargs)
        if resp.status_code == 200:
            assert_valid_response(resp.get_json())
        else:
            data = resp.get_json()
            assert isinstance(data, dict) and "error" in data and "detail" in data, resp.data[:200]
        return resp

    return call
