"""Upgrade a version-1 store (float epoch times) to version 2 (real timestamps), in one transaction.

Chosen over reading both formats: every query then compares times of one type, and a date range
or a retention cut-off is one indexed comparison on both back-ends. The same path runs on SQLite
and PostgreSQL: the version-1 tables are renamed aside, the version-2 tables created, the rows
copied in id order (chunks of `CHUNK` rows, so a large audit table is not held in memory) with
their times converted, and the old tables dropped. Feedback rows get the rule of their audited
card; version 1 kept repeated posts of one decision as several rows, which now collapse into one
(the `dedupe_key` rule of store/tables.py). Version-1 rows have no origin: they count as `ehr`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from cds_service.store.tables import (
    ORIGIN_EHR,
    audit_table,
    dedupe_key,
    feedback_table,
    metadata,
    parse_instant,
)

CHUNK = 5000
AUDIT_COLUMNS = ("created_at", "hook_instance", "service_id", "hook", "card_uuid", "rule_id", "kind", "code",
                 "suggestion_uuids", "knowledge_version", "input_hash", "timings_ms")


def _epoch(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime(1970, 1, 1, tzinfo=UTC)


def upgrade_1_to_2(conn: Any, *, is_sqlite: bool, schema: str | None, insert: Any) -> None:
    """`conn`: a connection inside the migration's transaction; `insert`: the dialect's insert()."""

    def q(name: str) -> str:
        return f'"{schema}".{name}' if schema else name

    # Indexes and constraints keep their names when a table is renamed: drop them so the new
    # tables can have theirs.
    conn.execute(text(f"DROP INDEX IF EXISTS {q('ix_mmcds_feedback_card_uuid')}"))
    if not is_sqlite:
        conn.execute(text(f"ALTER TABLE {q('mmcds_audit_card')} DROP CONSTRAINT IF EXISTS uq_mmcds_audit_card_uuid"))
    conn.execute(text(f"ALTER TABLE {q('mmcds_audit_card')} RENAME TO mmcds_audit_card_v1"))
    conn.execute(text(f"ALTER TABLE {q('mmcds_feedback')} RENAME TO mmcds_feedback_v1"))
    metadata.create_all(conn, tables=[audit_table, feedback_table], checkfirst=True)

    last = 0
    cols = ", ".join(("id", *AUDIT_COLUMNS))
    while True:
        rows = conn.execute(text(f"SELECT {cols} FROM {q('mmcds_audit_card_v1')} WHERE id > :last "
                                 "ORDER BY id LIMIT :n"), {"last": last, "n": CHUNK}).mappings().all()
        if not rows:
            break
        last = rows[-1]["id"]
        out = [{**{c: r[c] for c in AUDIT_COLUMNS}, "created_at": _epoch(r["created_at"]), "origin": ORIGIN_EHR}
               for r in rows]
        conn.execute(insert(audit_table).on_conflict_do_nothing(), out)

    last = 0
    while True:
        rows = conn.execute(text(
            "SELECT f.id, f.received_at, f.service_id, f.card_uuid, f.outcome, f.accepted_suggestions, "
            "f.override_system, f.override_code, f.outcome_timestamp, a.rule_id AS rule_id, a.id AS audit_id "
            f"FROM {q('mmcds_feedback_v1')} f LEFT JOIN {q('mmcds_audit_card_v1')} a ON a.card_uuid = f.card_uuid "
            "WHERE f.id > :last ORDER BY f.id LIMIT :n"), {"last": last, "n": CHUNK}).mappings().all()
        if not rows:
            break
        last = rows[-1]["id"]
        out = []
        for r in rows:
            received = _epoch(r["received_at"])
            try:
                accepted = [str(s) for s in json.loads(r["accepted_suggestions"] or "[]")]
            except ValueError:
                accepted = []
            out.append({
                "received_at": received, "service_id": r["service_id"], "card_uuid": r["card_uuid"],
                "rule_id": r["rule_id"], "card_known": r["audit_id"] is not None, "outcome": r["outcome"],
                "accepted_suggestions": json.dumps(accepted), "override_system": r["override_system"],
                "override_code": r["override_code"], "user_comment": None,
                "outcome_timestamp": parse_instant(r["outcome_timestamp"]) or received, "origin": ORIGIN_EHR,
                "dedupe_key": dedupe_key(r["card_uuid"], r["outcome"], accepted),
            })
        conn.execute(insert(feedback_table).on_conflict_do_nothing(), out)

    conn.execute(text(f"DROP TABLE {q('mmcds_feedback_v1')}"))
    conn.execute(text(f"DROP TABLE {q('mmcds_audit_card_v1')}"))
