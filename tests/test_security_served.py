"""JWT authentication over real HTTP against `python -m cds_service serve` (gunicorn, several workers).

What only a real multi-process server shows: a `jti` is refused on replay whichever worker gets the
request (the replay record is in the shared store), audiences derived from the real request URL
match what a client signs, the CORS preflight works over the wire, and no token reaches the logs.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from cds_service.store.db import Store
from tests.jwt_helpers import TestKey, bearer, claims, jwks, sign
from tests.servers import ServedApp
from tests.store_helpers import POSTGRES_URL, backend_params, new_location

pytestmark = pytest.mark.slow

ISS = "https://ehr.example.org"
KEY = TestKey("ec384", "ehr-key")


def _db(backend: str, tmp_path: Path) -> tuple[str, Store]:
    """The server's DATABASE_URL and a Store on the same tables (a private schema on PostgreSQL)."""
    url, schema = new_location(backend, tmp_path)
    store = Store(url, schema=schema)
    store.create_schema()
    if schema:  # the server finds its tables through search_path
        url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options={quote(f'-csearch_path={schema}')}"
    return url, store


@pytest.mark.parametrize("backend", backend_params())
def test_jwt_over_gunicorn_workers(backend, tmp_path):
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(KEY)))
    db_url, store = _db(backend, tmp_path)
    env = {"MMCDS_AUTH_MODE": "jwt", "MMCDS_TRUSTED_ISSUERS": json.dumps({ISS: str(tmp_path / "jwks.json")}),
           "MMCDS_DATABASE_URL": db_url, "MMCDS_SECRET_KEY": "k" * 64}
    try:
        with ServedApp(tmp_path / "srv", env=env, workers=3, threads=2) as srv:
            path = "/cds-services/mm-next-line/feedback"
            aud = srv.url(path)  # the exact URL called, as the sandbox signs it

            def post(token: str | None) -> int:
                headers = {"Authorization": bearer(token)} if token else {}
                card = "c-" + (token or "none")[-12:]
                # feedback must name a card the service issued: audit it as the service would have
                store.record_audit(hook_instance="h", service_id="mm-next-line", hook="patient-view",
                                   cards=[{"uuid": card}], input_hash="0" * 64, timings_ms={}, knowledge_version="kv")
                body = {"feedback": [{"card": card, "outcome": "accepted",
                                      "outcomeTimestamp": "2026-11-21T05:00:00Z"}]}
                with requests.Session() as s:  # a new connection each time: spread over the workers
                    return s.post(aud, json=body, headers=headers, timeout=30).status_code

            assert requests.get(srv.url("/cds-services"), timeout=10).status_code == 200  # discovery open
            pre = requests.options(aud, headers={"Origin": "http://localhost:3000",
                                                 "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization,content-type"},
                                   timeout=10)
            assert pre.status_code in (200, 204) and "Authorization" in pre.headers["Access-Control-Allow-Headers"]

            distinct = [sign(KEY, claims(ISS, aud)) for _ in range(40)]
            replayed = [sign(KEY, claims(ISS, aud))] * 24
            forged = [sign(TestKey("ec384", "ehr-key"), claims(ISS, aud)) for _ in range(4)]
            with ThreadPoolExecutor(max_workers=12) as pool:
                assert list(pool.map(post, distinct)) == [200] * 40
                assert sorted(pool.map(post, replayed)) == [200] + [401] * 23
                assert list(pool.map(post, forged + [None])) == [401] * 5
            logs = srv.logs()
    finally:
        report = store.feedback_report()
        if store.schema:
            store.drop_schema()
        store.dispose()
    assert report["total"] == 41  # 40 distinct + the one replay winner; refused posts stored nothing
    for token in distinct[:5] + replayed[:1] + forged:
        assert token not in logs
    assert "token refused" in logs  # refusals are logged (without the token)
