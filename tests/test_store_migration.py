"""A version-1 store (float epoch times, duplicate feedback rows, no origin) upgraded to version 2 on
SQLite and PostgreSQL: times become real timestamps, rules are attached, duplicates collapse."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint, create_engine, text

from cds_service.store.db import SCHEMA_VERSION, Store, migrate
from tests.store_helpers import backend_params, new_location

V1 = MetaData()
Table("mmcds_meta", V1, Column("key", String(64), primary_key=True), Column("value", String(200), nullable=False))
Table("mmcds_audit_card", V1,
      Column("id", Integer, primary_key=True, autoincrement=True), Column("created_at", Float, nullable=False),
      Column("hook_instance", String(200), nullable=False), Column("service_id", String(100), nullable=False),
      Column("hook", String(100), nullable=False), Column("card_uuid", String(200), nullable=False),
      Column("rule_id", String(200)), Column("kind", String(50)), Column("code", String(200)),
      Column("suggestion_uuids", Text, nullable=False), Column("knowledge_version", String(100)),
      Column("input_hash", String(128), nullable=False), Column("timings_ms", Text, nullable=False),
      UniqueConstraint("card_uuid", name="uq_mmcds_audit_card_uuid"))
Table("mmcds_feedback", V1,
      Column("id", Integer, primary_key=True, autoincrement=True), Column("received_at", Float, nullable=False),
      Column("service_id", String(100), nullable=False), Column("card_uuid", String(200), nullable=False, index=True),
      Column("outcome", String(20), nullable=False), Column("accepted_suggestions", Text, nullable=False),
      Column("override_system", String(500)), Column("override_code", String(200)),
      Column("outcome_timestamp", String(64), nullable=False))

T0 = datetime(2026, 11, 20, 9, 30, 15, 250000, tzinfo=UTC)


def _v1_store(backend: str, tmp_path) -> tuple[str, str | None]:
    url, schema = new_location(backend, tmp_path)
    engine = create_engine(url)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    if backend == "sqlite":
        (tmp_path / "store").mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        if schema:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        V1.create_all(conn)
        q = (lambda n: f'"{schema}".{n}') if schema else (lambda n: n)
        conn.execute(text(f"INSERT INTO {q('mmcds_meta')} (key, value) VALUES ('schema_version', '1')"))
        for i, (card, rule) in enumerate((("c1", "rule.a"), ("c2", "rule.b"))):
            conn.execute(text(
                f"INSERT INTO {q('mmcds_audit_card')} (created_at, hook_instance, service_id, hook, card_uuid, "
                "rule_id, kind, code, suggestion_uuids, knowledge_version, input_hash, timings_ms) VALUES "
                "(:t, 'h', 'mm-order-sign', 'order-sign', :c, :r, 'finding', NULL, :s, 'kv', 'x', '{}')"),
                {"t": T0.timestamp() + i, "c": card, "r": rule, "s": json.dumps([f"{card}-s"])})
        rows = [("c1", "accepted", '["c1-s"]', None, "2026-11-20T09:31:00Z"),
                ("c1", "accepted", '["c1-s"]', None, "2026-11-20T09:31:00Z"),  # posted twice in version 1
                ("c2", "overridden", "[]", "patient-preference", "2026-11-20T09:32:00.5+01:00"),
                ("gone", "overridden", "[]", None, "not a time")]
        for card, outcome, accepted, code, ts in rows:
            conn.execute(text(
                f"INSERT INTO {q('mmcds_feedback')} (received_at, service_id, card_uuid, outcome, "
                "accepted_suggestions, override_system, override_code, outcome_timestamp) VALUES "
                "(:t, 'mm-order-sign', :c, :o, :a, NULL, :code, :ts)"),
                {"t": T0.timestamp() + 60, "c": card, "o": outcome, "a": accepted, "code": code, "ts": ts})
    engine.dispose()
    return url, schema


@pytest.mark.parametrize("backend", backend_params())
def test_version_1_store_is_migrated_to_real_timestamps(backend, tmp_path):
    url, schema = _v1_store(backend, tmp_path)
    assert migrate(url, schema=schema) == SCHEMA_VERSION == 2
    store = Store(url, schema=schema)
    try:
        audit = store.audit_rows()
        assert [r["card_uuid"] for r in audit] == ["c1", "c2"]
        assert all(isinstance(r["created_at"], datetime) and r["created_at"].tzinfo is not None for r in audit)
        assert audit[0]["created_at"] == T0 and audit[0]["origin"] == "ehr"
        rows = store.feedback_rows()
        assert [(r["card_uuid"], r["outcome"]) for r in rows] == [("c1", "accepted"), ("c2", "overridden"),
                                                                   ("gone", "overridden")]  # the duplicate collapsed
        assert rows[1]["outcome_timestamp"] == datetime(2026, 11, 20, 8, 32, 0, 500000, tzinfo=UTC)
        assert rows[2]["outcome_timestamp"] == rows[2]["received_at"]  # unparsable: the time it arrived
        report = store.feedback_report()
        assert report["total"] == 3 and report["unknownCards"] == 1
        assert report["byRule"]["rule.b"]["overrideReasons"] == {"patient-preference": 1}
        # the migrated store takes new rows and is at version 2 for the next start
        store.create_schema()
        assert store.schema_version() == 2
        store.record_audit(hook_instance="h2", service_id="mm-order-sign", hook="order-sign",
                           cards=[{"uuid": "c3", "extension": {"org.mmcds.card": {"ruleId": "rule.a"}}}],
                           input_hash="y", timings_ms={}, knowledge_version="kv")
        assert store.record_feedback("mm-order-sign", [{"card": "c3", "outcome": "accepted",
                                                        "outcomeTimestamp": "2026-11-21T00:00:00Z"}]) == 1
        assert store.feedback_report()["byRule"]["rule.a"]["accepted"] == 2
    finally:
        if schema:
            store.drop_schema()
        store.dispose()


@pytest.mark.parametrize("backend", backend_params())
def test_times_are_timestamp_columns_not_numbers(backend, tmp_path):
    url, schema = new_location(backend, tmp_path)
    store = Store(url, schema=schema)
    store.create_schema()
    try:
        with store.engine.connect() as conn:
            if backend == "postgres":
                types = dict(conn.execute(text(
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = :s AND column_name IN ('created_at', 'received_at', 'outcome_timestamp')"),
                    {"s": schema}).all())
                assert set(types.values()) == {"timestamp with time zone"}, types
            else:
                cols = {r[1]: r[2] for r in conn.execute(text("PRAGMA table_info(mmcds_feedback)"))}
                assert cols["received_at"] == "DATETIME" and cols["outcome_timestamp"] == "DATETIME"
        store.record_audit(hook_instance="h", service_id="mm-next-line", hook="patient-view",
                           cards=[{"uuid": "u1"}], input_hash="x", timings_ms={}, knowledge_version="kv")
        created = store.audit_rows()[0]["created_at"]
        assert created.tzinfo is not None and abs((datetime.now(UTC) - created).total_seconds()) < 60
    finally:
        if schema:
            store.drop_schema()
        store.dispose()
