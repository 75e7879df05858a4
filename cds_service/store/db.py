"""The durable store: audit of every card issued, clinician feedback, and seen JWT ids.

SQLAlchemy 2 Core so one code path serves SQLite (the embedded default: one file, WAL, safe under
several gunicorn worker processes) and PostgreSQL (`postgresql+psycopg://…`, for several replicas).
The audit holds no patient data: card and suggestion uuids we generated, rule ids, a sha256 of
the inputs the caller computed, timings. Feedback holds outcomes, coded override reasons and the
clinician's `userComment` (cut to 2 000 characters): the comment is what a reviewer of the rules
most needs, so it is kept — in the store only, never in a log line or a metric. Retention
(`purge`) removes audit and feedback rows older than a cut-off. Tables: store/tables.py.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, create_engine, delete, event, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from cds_service.store.audit_writer import AuditWriter
from cds_service.store.tables import (
    MAX_COMMENT,
    ORIGIN_EHR,
    ORIGINS,
    SCHEMA_VERSION,
    audit_table,
    dedupe_key,
    feedback_table,
    jti_table,
    meta_table,
    metadata,
    parse_instant,
    sqlite_text,
    utcnow,
)

__all__ = ["SCHEMA_VERSION", "AuditedCard", "Store", "audit_rows_for", "migrate", "normalise_url"]

# Prune expired JWT ids at most this often per process (a DELETE on every request is wasted work).
JTI_PRUNE_INTERVAL_S = 60.0
READ_ONLY = "mmcds_read_only"
_MAX_ID = 200  # longest uuid/id string we keep; longer values are cut (they are ours or opaque ids)

_log = logging.getLogger("cds_service.store")


def _clip(value: Any, n: int = _MAX_ID) -> str:
    """Bounded text without NUL (PostgreSQL refuses NUL in text; an EHR may send anything)."""
    text = value if type(value) is str else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text if len(text) <= n else text[:n]


def normalise_url(url: str) -> str:
    """`postgres://` / `postgresql://` (as platforms hand them out) use psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_file(url: str) -> Path | None:
    u = make_url(url)
    db = u.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def _setup_sqlite(engine: Engine) -> None:
    """WAL + busy timeout + `BEGIN IMMEDIATE`.

    pysqlite starts transactions lazily and upgrades a read lock to a write lock mid-transaction;
    under several processes that upgrade fails at once with "database is locked" regardless of
    busy_timeout. Taking the write lock at BEGIN makes writers queue on busy_timeout instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        for _ in range(50):  # switching to WAL needs a moment without other writers
            try:
                cur.execute("PRAGMA journal_mode = WAL")
                break
            except Exception:  # noqa: BLE001 - sqlite3.OperationalError: locked; retry briefly
                time.sleep(0.05)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers (report, readiness ping) take no write lock: WAL lets them run beside writers.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked worker (gunicorn --preload) must not reuse the parent's pooled connections."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def audit_rows_for(*, hook_instance: str, service_id: str, hook: str, cards: list[dict], input_hash: str,
                   timings_ms: dict[str, float], knowledge_version: str, origin: str = ORIGIN_EHR) -> list[dict]:
    """The audit rows of one answer: one per card, ids and rule metadata only."""
    now = utcnow()
    shared = {
        "origin": origin if origin in ORIGINS else ORIGIN_EHR,
        "created_at": now,
        "hook_instance": _clip(hook_instance or ""),
        "service_id": _clip(service_id, 100),
        "hook": _clip(hook, 100),
        "input_hash": _clip(input_hash, 128),
        "timings_ms": orjson.dumps({str(k): round(float(v), 3) for k, v in (timings_ms or {}).items()}).decode(),
    }
    default_version = _clip(knowledge_version or "", 100)
    rows = []
    for card in cards or []:
        if not isinstance(card, dict) or not card.get("uuid"):
            continue
        ext = (card.get("extension") or {}).get("org.mmcds.card") or {}
        suggestions = [_clip(s["uuid"]) for s in card.get("suggestions") or [] if isinstance(s, dict) and s.get("uuid")]
        code = ext.get("code")
        version = ext.get("knowledgeVersion")
        rows.append({
            **shared,
            "card_uuid": _clip(card["uuid"]),
            "rule_id": _clip(ext["ruleId"]) if ext.get("ruleId") else None,
            "kind": _clip(ext["kind"], 50) if ext.get("kind") else None,
            "code": _clip(code) if isinstance(code, str) else None,
            "suggestion_uuids": orjson.dumps(suggestions).decode(),
            "knowledge_version": _clip(version, 100) if version else default_version,
        })
    return rows


@dataclass(frozen=True)
class AuditedCard:
    """What the audit knows of a card we issued: feedback is checked and tied to its rule by it."""

    service_id: str
    rule_id: str | None
    suggestions: frozenset[str]
    origin: str


class Store:
    """Audit, feedback and JWT-replay store; one per process, thread-safe (pooled connections)."""

    def __init__(self, database_url: str, *, schema: str | None = None, background_audit: bool = False) -> None:
        """`schema` (PostgreSQL only) places the tables in that schema, e.g. one per test run.

        `background_audit`: audit rows are committed by a writer thread in batches, off the
        request's path (the served app); otherwise each call commits before it returns.
        """
        database_url = normalise_url(database_url)
        self.database_url = database_url
        self.is_sqlite = _is_sqlite(database_url)
        self.schema = None if self.is_sqlite else schema
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            path = _sqlite_file(database_url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if path is None:  # in-memory: one shared connection, or each thread sees its own empty DB
                kwargs["poolclass"] = StaticPool
        else:
            kwargs.update(pool_size=5, max_overflow=20, pool_timeout=30)
        engine = create_engine(database_url, **kwargs)
        if self.is_sqlite:
            _setup_sqlite(engine)
        if self.schema:
            engine = engine.execution_options(schema_translate_map={None: self.schema})
        self.engine = engine
        _ENGINES.add(engine)
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()
        self._audit_sql: str | None = None
        self._writer: AuditWriter | None = AuditWriter(self) if background_audit else None

    # ---------------------------------------------------------------- schema
    def create_schema(self) -> None:
        """Create the tables if missing and record the schema version; safe to run concurrently."""
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Serialise concurrent migrations (several replicas starting at once).
                conn.execute(text("SELECT pg_advisory_xact_lock(7420531)"))
                if self.schema:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            metadata.create_all(conn, checkfirst=True)
            current = conn.execute(select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
            if current is None:
                conn.execute(meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(current) > SCHEMA_VERSION:
                raise RuntimeError(f"store schema version {current} is newer than this code ({SCHEMA_VERSION})")
            elif int(current) < SCHEMA_VERSION:
                from cds_service.store.migrations import upgrade_1_to_2

                if int(current) == 1:
                    upgrade_1_to_2(conn, is_sqlite=self.is_sqlite, schema=self.schema,
                                   insert=lambda t: self._dialect_insert(t))
                conn.execute(
                    meta_table.update().where(meta_table.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
                )

    def _reader(self) -> Any:
        """A connection for reads only (on SQLite: a deferred BEGIN, no write lock)."""
        return self.engine.connect().execution_options(**{READ_ONLY: True})

    def schema_version(self) -> int | None:
        with self._reader() as conn:
            value = conn.execute(select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
        return None if value is None else int(value)

    def meta_value(self, key: str) -> str | None:
        with self._reader() as conn:
            return conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).scalar()

    def set_meta_value(self, key: str, value: str, *, replace: bool = True) -> None:
        """Record a value; without `replace` the first writer wins (replicas starting together)."""
        stmt = self._dialect_insert(meta_table).values(key=key, value=value)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}) if replace \
            else stmt.on_conflict_do_nothing()
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def drop_schema(self) -> None:
        """Drop our tables (tests); for a PostgreSQL `schema`, drop the whole schema."""
        with self.engine.begin() as conn:
            if self.schema:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            else:
                metadata.drop_all(conn, checkfirst=True)

    def ping(self) -> bool:
        """True when the database answers (readiness probe); never raises."""
        try:
            with self._reader() as conn:
                conn.execute(select(1))
            return True
        except Exception:  # noqa: BLE001 - any driver error means "not ready"
            return False

    def dispose(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- audit
    def record_audit(
        self,
        *,
        hook_instance: str,
        service_id: str,
        hook: str,
        cards: list[dict],
        input_hash: str,
        timings_ms: dict[str, float],
        knowledge_version: str,
        origin: str = ORIGIN_EHR,
    ) -> None:
        """One row per card; only ids we generated and rule metadata, never card text.

        Written at once, or — with `background_audit` — handed to this process's writer thread,
        which commits whatever has queued in one transaction (readers here flush it first).
        """
        rows = audit_rows_for(hook_instance=hook_instance, service_id=service_id, hook=hook, cards=cards,
                              input_hash=input_hash, timings_ms=timings_ms, knowledge_version=knowledge_version,
                              origin=origin)
        if not rows:
            return
        if self._writer is not None:
            self._writer.submit(rows)
        else:
            self._insert_audit_rows(rows)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until queued audit rows are committed (True) — before reads, at shutdown."""
        return True if self._writer is None else self._writer.flush(timeout)

    def close(self) -> None:
        """Flush and stop the writer thread; the engine stays usable for synchronous writes."""
        if self._writer is not None:
            self._writer.stop()
            self._writer = None

    def _insert_audit_rows(self, rows: list[dict]) -> None:
        """Audit rows through one prepared INSERT … ON CONFLICT DO NOTHING (the writer's batches):
        the Core construct compiles and processes every row (~40 % more CPU per batch)."""
        sql = self._audit_sql
        if sql is None:
            cols = [c.name for c in audit_table.columns if c.name != "id"]
            table = f'"{self.schema}".{audit_table.name}' if self.schema else audit_table.name
            marks = ", ".join(f":{c}" if self.is_sqlite else f"%({c})s" for c in cols)
            sql = self._audit_sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) "
                                     "ON CONFLICT (card_uuid) DO NOTHING")
        if self.is_sqlite:  # the raw INSERT skips the column types: store SQLite's text form of the time
            rows = [{**r, "created_at": sqlite_text(r["created_at"])} for r in rows]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)

    def _dialect_insert(self, table: Table) -> Any:
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table)

    # ---------------------------------------------------------------- feedback
    def audited_cards(self, card_uuids: list[str]) -> dict[str, AuditedCard]:
        """The audit records of these cards (flushing this process's queued audit rows first)."""
        self.flush()
        wanted = sorted({_clip(u) for u in card_uuids if isinstance(u, str)})
        if not wanted:
            return {}
        a = audit_table
        with self._reader() as conn:
            rows = conn.execute(select(a.c.card_uuid, a.c.service_id, a.c.rule_id, a.c.suggestion_uuids, a.c.origin)
                                .where(a.c.card_uuid.in_(wanted))).all()
        return {r.card_uuid: AuditedCard(r.service_id, r.rule_id, frozenset(json.loads(r.suggestion_uuids or "[]")),
                                         r.origin) for r in rows}

    def record_feedback(self, service_id: str, items: list[dict], *, origin: str = ORIGIN_EHR,
                        cards: dict[str, AuditedCard] | None = None) -> int:
        """Store validated CDS Hooks feedback items; returns how many were new.

        The same decision posted again (same card, outcome and accepted suggestions) is not stored
        twice (`dedupe_key`). Each row carries its card's rule and origin from the audit (`cards`,
        looked up when not given); a card the HTTP layer found to come from the conformance
        harness marks its feedback `check` whatever the caller said.
        """
        now = utcnow()
        if cards is None:
            cards = self.audited_cards([i.get("card") for i in items])
        rows: dict[str, dict] = {}
        for item in items:
            override = item.get("overrideReason") or {}
            reason = override.get("reason") or {}
            comment = override.get("userComment")
            accepted = [_clip(s.get("id")) for s in item.get("acceptedSuggestions") or [] if isinstance(s, dict)]
            card_uuid, outcome = _clip(item["card"]), _clip(item["outcome"], 20)
            card = cards.get(card_uuid)
            row_origin = card.origin if card is not None and card.origin != ORIGIN_EHR else origin
            key = dedupe_key(card_uuid, outcome, accepted)
            rows.setdefault(key, {
                "received_at": now,
                "service_id": _clip(service_id, 100),
                "card_uuid": card_uuid,
                "rule_id": card.rule_id if card is not None else None,
                "card_known": card is not None,
                "outcome": outcome,
                "accepted_suggestions": json.dumps(accepted),
                "override_system": _clip(reason["system"], 500) if isinstance(reason.get("system"), str) else None,
                "override_code": _clip(reason["code"]) if isinstance(reason.get("code"), str) else None,
                "user_comment": _clip(comment, MAX_COMMENT) if isinstance(comment, str) and comment.strip() else None,
                "outcome_timestamp": parse_instant(item.get("outcomeTimestamp")) or now,
                "origin": row_origin if row_origin in ORIGINS else ORIGIN_EHR,
                "dedupe_key": key,
            })
        if not rows:
            return 0
        stmt = self._dialect_insert(feedback_table).on_conflict_do_nothing().returning(feedback_table.c.id)
        stored = 0
        with self.engine.begin() as conn:
            for row in rows.values():  # one statement per row: RETURNING says which rows were new
                stored += conn.execute(stmt, row).first() is not None
        return stored

    def feedback_report(self, *, since: datetime | None = None, until: datetime | None = None,
                        origins: tuple[str, ...] = (ORIGIN_EHR,)) -> dict:
        """CONTRACT's `{"total", "byRule", "unknownCards"}` plus the breakdowns of store/feedback.py."""
        from cds_service.store.feedback import build_report

        self.flush()
        with self._reader() as conn:
            return build_report(conn, since=since, until=until, origins=origins)

    def purge(self, before: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Retention: delete audit rows created and feedback rows received before `before`."""
        from cds_service.store.feedback import purge_before

        self.flush()
        with (self._reader() if dry_run else self.engine.begin()) as conn:
            return purge_before(conn, before, dry_run=dry_run)

    def audit_rows(self, hook_instance: str | None = None) -> list[dict]:
        """Audit rows as dicts (tests, support); JSON columns decoded."""
        self.flush()
        stmt = select(audit_table).order_by(audit_table.c.id)
        if hook_instance is not None:
            stmt = stmt.where(audit_table.c.hook_instance == hook_instance)
        with self._reader() as conn:
            out = [dict(r._mapping) for r in conn.execute(stmt)]
        for row in out:
            row["suggestion_uuids"] = json.loads(row["suggestion_uuids"] or "[]")
            row["timings_ms"] = json.loads(row["timings_ms"] or "{}")
        return out

    def feedback_rows(self) -> list[dict]:
        with self._reader() as conn:
            out = [dict(r._mapping) for r in conn.execute(select(feedback_table).order_by(feedback_table.c.id))]
        for row in out:
            row["accepted_suggestions"] = json.loads(row["accepted_suggestions"] or "[]")
        return out

    # ---------------------------------------------------------------- JWT replay
    def claim_jti(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """Record a token id; False when this issuer's `jti` was already seen (a replay).

        Atomic in the database (primary key + ON CONFLICT DO NOTHING), so it holds across worker
        processes and, on PostgreSQL, across replicas. Expired ids are pruned now and then.
        """
        exp = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        row = {"issuer": issuer[:500], "jti": jti[:255], "expires_at": int(exp.timestamp()) + 1}
        self._maybe_prune()
        stmt = self._dialect_insert(jti_table).values(**row).on_conflict_do_nothing().returning(jti_table.c.jti)
        try:
            with self.engine.begin() as conn:
                return conn.execute(stmt).first() is not None
        except IntegrityError:
            return False

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < JTI_PRUNE_INTERVAL_S or not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._last_prune = now
            self.prune_jti()
        finally:
            self._prune_lock.release()

    def prune_jti(self, now: float | None = None) -> int:
        """Delete token ids whose token has expired (a replay of those fails on `exp` anyway)."""
        cutoff = int(time.time() if now is None else now)
        with self.engine.begin() as conn:
            result = conn.execute(delete(jti_table).where(jti_table.c.expires_at < cutoff))
        return max(result.rowcount or 0, 0)


def migrate(database_url: str, *, schema: str | None = None, secret_key: str | None = None) -> int:
    """Create or upgrade the store schema (a deployment step); returns the schema version.

    With `secret_key`, records its fingerprint as the one every replica must hold (startup.py):
    the initContainer runs this before a rollout's pods start, so a rotated key takes over.
    """
    store = Store(database_url, schema=schema)
    try:
        store.create_schema()
        if secret_key:
            from cds_service.startup import FINGERPRINT_KEY, secret_fingerprint

            store.set_meta_value(FINGERPRINT_KEY, secret_fingerprint(secret_key))
        return store.schema_version() or SCHEMA_VERSION
    finally:
        store.dispose()
