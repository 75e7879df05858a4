"""The store's tables (schema version 2) and the one time type every back-end agrees on.

Times are `DateTime(timezone=True)` columns holding UTC: PostgreSQL stores `timestamptz`,
SQLite an ISO string (`YYYY-MM-DD HH:MM:SS.ffffff`, sortable as text). `UtcDateTime` turns any
aware datetime into UTC on the way in and gives aware UTC datetimes back on both back-ends, so
code above never meets a naive time or a float epoch. Version 1 stored float epochs; `migrate`
converts a version-1 store (store/migrations.py).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 2
MAX_ID = 200  # longest uuid/id string we keep; longer values are cut (they are ours or opaque ids)
MAX_COMMENT = 2000  # a clinician's override comment, cut beyond this
SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

# Where a card or a feedback item came from. Only `ehr` is clinicians' feedback; the report leaves
# out `check` (the conformance harness marks its calls) and `sandbox` (the /sandbox page marks its
# calls) unless asked.
ORIGIN_EHR, ORIGIN_CHECK, ORIGIN_SANDBOX = "ehr", "check", "sandbox"
ORIGINS = (ORIGIN_EHR, ORIGIN_CHECK, ORIGIN_SANDBOX)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (no time zone support) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError("UtcDateTime takes datetime values")
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sqlite_text(value: datetime) -> str:
    """The SQLite storage text of an aware time (for the audit writer's raw INSERT)."""
    return value.astimezone(UTC).strftime(SQLITE_TIME_FORMAT)


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 date-time as sent in `outcomeTimestamp`, as aware UTC; None if not a real instant.

    Tolerant of what EHRs send: `Z`/`z`, a space or lower-case `t` as separator, any number of
    fraction digits, `-0500` offsets; a time without offset is taken as UTC (CDS Hooks says UTC).
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("t", "T").replace(" ", "T")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python < 3.12 accepts only 3 or 6 fraction digits: normalise to 6
        head, _, rest = text.partition(".")
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]  # the fraction's leading digits only
        if not digits:
            return None
        text = f"{head}.{(digits + '000000')[:6]}{rest[len(digits):]}"
    if "T" not in text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def dedupe_key(card_uuid: str, outcome: str, accepted: list[str]) -> str:
    """What makes two feedback posts the same decision (CDS Hooks 2.0 feedback): the card, the
    outcome and the suggestions accepted. The timestamp is left out on purpose: an EHR that
    retries, or a clinician who clicks twice on the same card, made one decision, not two."""
    canon = "\x1f".join([card_uuid, outcome, *sorted(accepted)])
    return hashlib.sha256(canon.encode("utf-8", "replace")).hexdigest()


metadata = MetaData()

meta_table = Table(
    "mmcds_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)

audit_table = Table(
    "mmcds_audit_card",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime, nullable=False, index=True),
    Column("hook_instance", String(MAX_ID), nullable=False),
    Column("service_id", String(100), nullable=False),
    Column("hook", String(100), nullable=False),
    Column("card_uuid", String(MAX_ID), nullable=False),
    Column("rule_id", String(200)),
    Column("kind", String(50)),
    Column("code", String(200)),
    Column("suggestion_uuids", Text, nullable=False, default="[]"),  # JSON list
    Column("knowledge_version", String(100)),
    Column("input_hash", String(128), nullable=False),
    Column("timings_ms", Text, nullable=False, default="{}"),  # JSON object
    Column("origin", String(20), nullable=False, default=ORIGIN_EHR),
    UniqueConstraint("card_uuid", name="uq_mmcds_audit_card_uuid"),
)

feedback_table = Table(
    "mmcds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(MAX_ID), nullable=False, index=True),
    # The card's rule, copied from its audit row when the feedback arrives: the report still
    # knows the rule after the audit row has been purged.
    Column("rule_id", String(200)),
    Column("card_known", Boolean, nullable=False, default=True),  # False only for version-1 rows
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", Text, nullable=False, default="[]"),  # JSON list of ids
    Column("override_system", String(500)),
    Column("override_code", String(200)),
    Column("user_comment", Text),  # the clinician's words; never logged, only reported on request
    Column("outcome_timestamp", UtcDateTime, nullable=False, index=True),
    Column("origin", String(20), nullable=False, default=ORIGIN_EHR),
    # sha256 of (card, outcome, accepted suggestions): the same decision posted again is one row
    Column("dedupe_key", String(64), nullable=False),
    UniqueConstraint("dedupe_key", name="uq_mmcds_feedback_dedupe"),
)

jti_table = Table(
    "mmcds_jti",
    metadata,
    Column("issuer", String(500), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),  # epoch seconds: compared with JWT `exp`
)

Index("ix_mmcds_feedback_rule_outcome", feedback_table.c.rule_id, feedback_table.c.outcome)
