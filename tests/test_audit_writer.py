"""Background audit writes: every row reaches the database, reads see them, failures are not silent."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import uuid
from pathlib import Path

import pytest

from cds_service.render.cards import make_card
from cds_service.store.db import Store
from tests.store_helpers import backend_params, new_location


def _cards(n: int) -> list[dict]:
    return [make_card(kind="finding", rule_id=f"rule-{i}", knowledge_version="kv", summary="s", detail="d")
            for i in range(n)]


def _audit(store: Store, cards: list[dict], hook_instance: str) -> None:
    store.record_audit(hook_instance=hook_instance, service_id="mm-next-line", hook="patient-view", cards=cards,
                       input_hash="cd" * 32, timings_ms={"total": 1.0}, knowledge_version="kv")


@pytest.fixture(params=backend_params())
def location(request, tmp_path: Path):
    url, schema = new_location(request.param, tmp_path)
    setup = Store(url, schema=schema)
    setup.create_schema()
    yield url, schema
    if schema:
        setup.drop_schema()
    setup.dispose()


def test_rows_from_many_threads_all_arrive(location) -> None:
    url, schema = location
    store = Store(url, schema=schema, background_audit=True)
    calls = [(f"hi-{t}-{i}", _cards(3)) for t in range(8) for i in range(25)]

    def work(chunk: list) -> None:
        for hook_instance, cards in chunk:
            _audit(store, cards, hook_instance)

    threads = [threading.Thread(target=work, args=(calls[t::8],)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.audit_rows()  # a read in this process waits for the writer first
    assert len(rows) == 600
    assert {r["card_uuid"] for r in rows} == {c["uuid"] for _, cards in calls for c in cards}
    # another reader (another worker or replica) sees them too
    other = Store(url, schema=schema)
    assert len(other.audit_rows()) == 600
    store.close()
    other.dispose()
    store.dispose()


def test_close_commits_what_is_queued(location) -> None:
    url, schema = location
    store = Store(url, schema=schema, background_audit=True)
    cards = _cards(2)
    _audit(store, cards, "hi-close")
    store.close()
    reader = Store(url, schema=schema)
    assert {r["card_uuid"] for r in reader.audit_rows("hi-close")} == {c["uuid"] for c in cards}
    reader.dispose()
    store.dispose()


def _child_writes(url: str, schema: str | None, parent_store: Store) -> None:
    # a forked worker: the parent's writer (and queue) are not the child's; `close` is what
    # gunicorn's worker_exit hook calls (multiprocessing children skip atexit, gunicorn's do not)
    _audit(parent_store, _cards(4), "hi-child")
    parent_store.close()


def test_forked_worker_writes_its_own_rows_and_flushes_on_close(location) -> None:
    url, schema = location
    store = Store(url, schema=schema, background_audit=True)
    _audit(store, _cards(1), "hi-parent")
    store.flush()
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child_writes, args=(url, schema, store))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    reader = Store(url, schema=schema)
    assert len(reader.audit_rows("hi-child")) == 4
    assert len(reader.audit_rows("hi-parent")) == 1
    reader.dispose()
    store.close()
    store.dispose()


def test_a_failing_write_is_logged_and_counted_never_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.sqlite3'}", background_audit=True)
    store.create_schema()
    original = store._insert_audit_rows
    fail = {"n": 2}  # the batch and its one-by-one retry fail; the next answer's rows go through

    def flaky(rows):
        if fail["n"]:
            fail["n"] -= 1
            raise RuntimeError("database went away")
        return original(rows)

    store._insert_audit_rows = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="cds_service.store"):
        _audit(store, _cards(1), "hi-lost")
        assert store.flush()
        _audit(store, _cards(2), "hi-kept")
        assert store.flush()
    assert store._writer is not None and store._writer.failures == 1
    assert any(r.getMessage() == "audit write failed" for r in caplog.records)
    assert len(store.audit_rows("hi-kept")) == 2
    store.close()
    store.dispose()


def test_synchronous_store_writes_before_returning(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'y.sqlite3'}")
    store.create_schema()
    hook_instance = str(uuid.uuid4())
    _audit(store, _cards(2), hook_instance)
    assert store._writer is None
    assert len(Store(f"sqlite:///{tmp_path / 'y.sqlite3'}").audit_rows(hook_instance)) == 2
    store.dispose()


@pytest.mark.slow
def test_served_workers_lose_no_audit_row_on_stop(tmp_path: Path) -> None:
    """A burst of calls over real gunicorn, then SIGTERM at once: every card of every answer is audited."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from tests.servers import ROOT, ServedApp

    fixture = json.loads((ROOT / "fixtures" / "patients" / "p01-a-vrd-fixed-mcode.json").read_text())
    fixture.pop("fhirServer", None)
    with ServedApp(tmp_path / "srv", workers=2, threads=4) as srv:
        def call(i: int) -> int:
            body = dict(fixture, hookInstance=str(uuid.uuid4()))
            resp = requests.post(srv.url("/cds-services/mm-next-line"), json=body, timeout=30)
            assert resp.status_code == 200
            return len(resp.json()["cards"])

        with ThreadPoolExecutor(8) as pool:
            cards = sum(pool.map(call, range(120)))
        assert srv.stop() == 0
    assert "Traceback" not in srv.logs()
    reader = Store(f"sqlite:///{tmp_path / 'srv' / 'mmcds.sqlite3'}")
    assert cards > 120
    assert len(reader.audit_rows()) == cards
    reader.dispose()


def test_worker_exit_hook_waits_for_a_slow_writer(tmp_path: Path) -> None:
    """gunicorn's worker_exit (cds_service.server) commits what a slow database still holds."""
    import time
    from types import SimpleNamespace

    from cds_service.server import _worker_exit

    store = Store(f"sqlite:///{tmp_path / 'z.sqlite3'}", background_audit=True)
    store.create_schema()
    original = store._insert_audit_rows

    def slow(rows):
        time.sleep(0.3)
        return original(rows)

    store._insert_audit_rows = slow  # type: ignore[method-assign]
    for i in range(3):
        _audit(store, _cards(2), f"hi-slow-{i}")
    reader = Store(f"sqlite:///{tmp_path / 'z.sqlite3'}")
    assert len(reader.audit_rows()) < 6  # still queued or in flight
    worker = SimpleNamespace(wsgi=SimpleNamespace(extensions={"mmcds": SimpleNamespace(store=store)}))
    _worker_exit(None, worker)
    assert len(reader.audit_rows()) == 6
    reader.dispose()
    store.dispose()
