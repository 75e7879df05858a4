"""The audit/feedback/jti store, on SQLite and (where configured) PostgreSQL, incl. several processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from cds_service.render.cards import make_card
from cds_service.store.db import SCHEMA_VERSION, Store, migrate
from cds_service.store.report import feedback_report_main
from tests.store_helpers import BACKENDS, backend_params, fresh_store, new_location

PLANTED_NAME = "Zebulon Quixote-Marchetti"
PLANTED_MRN = "MRN-99887766"


def _card(rule: str, kind: str = "finding", code: str | None = "refractory-agent-ordered", suggestions: int = 1) -> dict:
    extra = {"code": code} if code else None
    return make_card(
        kind=kind, rule_id=rule, knowledge_version="kv-test", summary=f"Card for {PLANTED_NAME}",
        detail=f"Patient {PLANTED_NAME} ({PLANTED_MRN})", extra=extra,
        suggestions=[{"label": f"s{i}", "actions": []} for i in range(suggestions)] or None,
    )


def _fb(card_uuid: str, outcome: str = "accepted", **extra) -> dict:
    item = {"card": card_uuid, "outcome": outcome, "outcomeTimestamp": "2026-11-21T05:00:00Z"}
    item.update(extra)
    return item


def _audit(store: Store, cards: list[dict], hook_instance: str | None = None) -> None:
    store.record_audit(hook_instance=hook_instance or str(uuid.uuid4()), service_id="mm-order-sign", hook="order-sign",
                       cards=cards, input_hash="ab" * 32, timings_ms={"gather": 1.25, "total": 3.5},
                       knowledge_version="kv-test")


def contract(report: dict) -> dict:
    """CONTRACT's keys of a report (the report adds breakdowns beside them)."""
    return {"total": report["total"], "unknownCards": report["unknownCards"],
            "byRule": {r: {"accepted": c["accepted"], "overridden": c["overridden"]} for r, c in report["byRule"].items()}}


@pytest.fixture(params=backend_params())
def store(request, tmp_path: Path):
    with fresh_store(request.param, tmp_path) as s:
        yield s


def test_schema_is_idempotent_and_versioned(store):
    store.create_schema()
    store.create_schema()
    assert store.schema_version() == SCHEMA_VERSION
    assert store.ping() is True


def test_ping_is_false_when_the_database_is_unreachable():
    assert Store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2").ping() is False


def test_sqlite_default_creates_folder_and_uses_wal(tmp_path):
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'mmcds.sqlite3'}"
    store = Store(url)
    store.create_schema()
    assert (tmp_path / "deep" / "er" / "mmcds.sqlite3").exists()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_audit_rows_hold_ids_and_rule_metadata_but_no_card_text(store):
    cards = [_card("order.refractory-agent", suggestions=2), _card("state.summary", kind="state", code=None, suggestions=0)]
    _audit(store, cards, hook_instance="hi-1")
    rows = store.audit_rows("hi-1")
    assert [r["card_uuid"] for r in rows] == [c["uuid"] for c in cards]
    first = rows[0]
    assert first["rule_id"] == "order.refractory-agent" and first["kind"] == "finding"
    assert first["code"] == "refractory-agent-ordered" and first["knowledge_version"] == "kv-test"
    assert first["suggestion_uuids"] == [s["uuid"] for s in cards[0]["suggestions"]]
    assert first["service_id"] == "mm-order-sign" and first["hook"] == "order-sign"
    assert first["input_hash"] == "ab" * 32 and first["timings_ms"] == {"gather": 1.25, "total": 3.5}
    assert rows[1]["suggestion_uuids"] == [] and rows[1]["code"] is None
    dump = json.dumps(rows, default=str)
    assert PLANTED_NAME not in dump and PLANTED_MRN not in dump


def test_repeated_audit_of_the_same_cards_is_ignored(store):
    cards = [_card("r1")]
    _audit(store, cards)
    _audit(store, cards)
    assert len(store.audit_rows()) == 1


def test_feedback_report_shape_and_counts(store):
    a, b, c = _card("rule.a"), _card("rule.b"), _card("rule.a")
    _audit(store, [a, b, c])
    reason = {"reason": {"system": "http://example.org/override", "code": "patient-preference"},
              "userComment": f"discussed with {PLANTED_NAME}"}
    stored = store.record_feedback("mm-order-sign", [
        _fb(a["uuid"], acceptedSuggestions=[{"id": a["suggestions"][0]["uuid"]}]),
        _fb(c["uuid"]),
        _fb(b["uuid"], "overridden", overrideReason=reason),
        _fb("never-audited-uuid", "overridden"),
    ])
    assert stored == 4
    assert contract(store.feedback_report()) == {
        "total": 4,
        "byRule": {"rule.a": {"accepted": 2, "overridden": 0}, "rule.b": {"accepted": 0, "overridden": 1}},
        "unknownCards": 1,
    }
    rows = store.feedback_rows()
    assert rows[2]["override_code"] == "patient-preference"
    # The clinician's comment is what a rule reviewer needs most: kept (it stays out of logs).
    assert rows[2]["user_comment"] == f"discussed with {PLANTED_NAME}"
    assert store.feedback_report()["byRule"]["rule.b"]["overrideReasons"] == {"patient-preference": 1}


def test_empty_report(store):
    assert contract(store.feedback_report()) == {"total": 0, "byRule": {}, "unknownCards": 0}


def test_claim_jti_once_per_issuer_and_atomic_under_threads(store):
    exp = datetime.now(UTC) + timedelta(minutes=5)
    assert store.claim_jti("iss-a", "j-1", exp) is True
    assert store.claim_jti("iss-a", "j-1", exp) is False
    assert store.claim_jti("iss-b", "j-1", exp) is True  # jti is unique per issuer
    results: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        ok = store.claim_jti("iss-a", "race", exp)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 15 + [True]


def test_expired_jtis_are_pruned(store):
    past = datetime.now(UTC) - timedelta(hours=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    store.claim_jti("iss", "old", past)
    store.claim_jti("iss", "new", future)
    assert store.prune_jti() == 1
    assert store.claim_jti("iss", "new", future) is False


def test_migrate_creates_schema(request, tmp_path):
    for backend in BACKENDS:
        url, schema = new_location(backend, tmp_path)
        assert migrate(url, schema=schema) == SCHEMA_VERSION
        assert migrate(url, schema=schema) == SCHEMA_VERSION
        s = Store(url, schema=schema)
        assert s.feedback_report()["total"] == 0
        if schema:
            s.drop_schema()
        s.dispose()


def test_feedback_report_command_json_and_table(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    store = Store(url)
    store.create_schema()
    card = _card("rule.cli")
    _audit(store, [card])
    store.record_feedback("mm-order-sign", [_fb(card["uuid"]), _fb("unknown-card")])
    assert feedback_report_main(["--json", "--database-url", url]) == 0
    assert contract(json.loads(capsys.readouterr().out)) == {
        "total": 2, "byRule": {"rule.cli": {"accepted": 1, "overridden": 0}}, "unknownCards": 1}
    monkeypatch.setenv("MMCDS_DATABASE_URL", url)  # default comes from the service's settings
    assert feedback_report_main([]) == 0
    out = capsys.readouterr().out
    assert "rule.cli" in out and "total feedback: 2" in out and "unknown cards: 1" in out


def test_feedback_report_command_on_fresh_database(tmp_path, capsys):
    assert feedback_report_main(["--json", "--database-url", f"sqlite:///{tmp_path / 'new' / 'x.db'}"]) == 0
    assert contract(json.loads(capsys.readouterr().out)) == {"total": 0, "byRule": {}, "unknownCards": 0}


# ------------------------------------------------------------------ several processes


def _worker(args: tuple[str, str | None, int, int]) -> int:
    """One 'gunicorn worker': audits and feedback of its own cards, and a race on shared jtis."""
    url, schema, proc, n = args
    store = Store(url, schema=schema)
    store.create_schema()  # every worker runs it at start, concurrently
    exp = datetime.now(UTC) + timedelta(minutes=5)
    won = 0
    for i in range(n):
        card = _card(f"rule.{i % 3}")
        _audit(store, [card])
        store.record_feedback("mm-order-sign", [_fb(card["uuid"], "accepted" if i % 2 else "overridden")])
        won += store.claim_jti("iss", f"shared-{i}", exp)
    store.dispose()
    return won


@pytest.mark.parametrize("backend", backend_params())
def test_several_processes_write_the_same_store(backend, tmp_path):
    url, schema = new_location(backend, tmp_path)
    procs, n = 4, 40
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        won = pool.map(_worker, [(url, schema, p, n) for p in range(procs)], chunksize=1)
    assert sum(won) == n  # each shared jti claimed by exactly one process
    store = Store(url, schema=schema)
    try:
        report = store.feedback_report()
        assert report["total"] == procs * n and report["unknownCards"] == 0
        assert sum(v["accepted"] + v["overridden"] for v in report["byRule"].values()) == procs * n
        assert sum(v["accepted"] for v in report["byRule"].values()) == procs * (n // 2)
        assert len(store.audit_rows()) == procs * n
    finally:
        if schema:
            store.drop_schema()
        store.dispose()


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path):
    """WAL + deferred BEGIN for reads: the report and the readiness ping run while a writer holds the lock."""
    store = Store(f"sqlite:///{tmp_path / 'rw.sqlite3'}")
    store.create_schema()
    with store.engine.begin() as writer:  # BEGIN IMMEDIATE: holds the write lock
        writer.execute(text("INSERT INTO mmcds_jti (issuer, jti, expires_at) VALUES ('i', 'held', 0)"))
        started = time.perf_counter()
        assert store.ping() is True
        assert store.feedback_report()["total"] == 0
        assert time.perf_counter() - started < 2.0  # busy_timeout is 30 s: we did not wait for the lock


def test_in_memory_sqlite_is_shared_across_threads():
    store = Store("sqlite://")
    store.create_schema()
    card = _card("rule.mem")
    t = threading.Thread(target=_audit, args=(store, [card]))
    t.start()
    t.join(10)
    assert len(store.audit_rows()) == 1


_INHERITED: dict = {}


def _use_inherited_store(queue) -> None:
    store = _INHERITED["store"]
    try:
        store.record_feedback("mm-next-line", [_fb(f"from-child-{os.getpid()}")])
        queue.put(store.feedback_report()["total"])
    except Exception as exc:  # report, do not hang the parent
        queue.put(repr(exc))


@pytest.mark.parametrize("backend", backend_params())
def test_store_survives_fork_after_use(backend, tmp_path):
    """gunicorn --preload: the app (and its Store, with pooled connections) is built before fork."""
    with fresh_store(backend, tmp_path) as store:
        store.record_feedback("mm-next-line", [_fb("from-parent")])  # the parent's pool holds a connection
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        _INHERITED["store"] = store
        children = [ctx.Process(target=_use_inherited_store, args=(queue,)) for _ in range(2)]
        for child in children:
            child.start()
        totals = [queue.get(timeout=60) for _ in children]
        for child in children:
            child.join(30)
        assert all(isinstance(t, int) for t in totals), totals
        assert max(totals) == 3 and store.feedback_report()["total"] == 3
        assert store.ping() is True  # the parent's own connections still work


def test_plain_postgres_urls_use_psycopg():
    from cds_service.store.db import normalise_url

    assert normalise_url("postgres://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    assert Store("postgres://postgres@127.0.0.1:1/x").engine.dialect.driver == "psycopg"


def test_odd_text_is_stored_on_every_backend(store):
    odd = "nul\x00 é 💊 " + "x" * 400
    card = _card("rule\x00odd")
    card["uuid"] = odd
    _audit(store, [card], hook_instance=odd)  # feedback takes its card's rule from the audit when it arrives
    store.record_feedback("mm-next-line", [_fb(odd, "overridden",
                                               overrideReason={"reason": {"system": odd, "code": odd},
                                                               "userComment": odd})])
    report = store.feedback_report()
    assert report["total"] == 1 and report["unknownCards"] == 0
    assert list(report["byRule"]) == ["ruleodd"]
