"""Reading the feedback back: the report clinicians' reviewers use, and retention.

The report counts clinicians' feedback only (origin `ehr`) unless asked for the conformance
harness's too; each row already carries its card's rule (copied from the audit when it arrived),
so the report needs no join and survives the purge of old audit rows. Date ranges apply to the
`outcomeTimestamp` the EHR sent — when the clinician acted — as UTC instants, `until` exclusive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select

from cds_service.store.tables import ORIGINS, audit_table, feedback_table

NO_REASON = "(no coded reason)"
NO_RULE = "(none)"


def _where(since: datetime | None, until: datetime | None, origins: tuple[str, ...]) -> Any:
    f = feedback_table
    parts = [f.c.origin.in_(list(origins))]
    if since is not None:
        parts.append(f.c.outcome_timestamp >= since)
    if until is not None:
        parts.append(f.c.outcome_timestamp < until)
    return and_(*parts)


def build_report(conn: Any, *, since: datetime | None = None, until: datetime | None = None,
                 origins: tuple[str, ...] = ("ehr",)) -> dict[str, Any]:
    """CONTRACT: `total`, `byRule` {rule: {accepted, overridden}}, `unknownCards`; added:
    `byRule[rule].overrideReasons`, `byOverrideReason`, `range`, `origins`, `excluded`."""
    f = feedback_table
    where = _where(since, until, origins)
    grouped = conn.execute(
        select(f.c.rule_id, f.c.card_known, f.c.outcome, f.c.override_code, func.count())
        .where(where).group_by(f.c.rule_id, f.c.card_known, f.c.outcome, f.c.override_code)
    ).all()
    total = unknown = 0
    by_rule: dict[str, dict[str, Any]] = {}
    by_reason: dict[str, int] = {}
    for rule_id, known, outcome, code, count in grouped:
        count = int(count)
        total += count
        if not known:
            unknown += count
            continue
        entry = by_rule.setdefault(rule_id or NO_RULE, {"accepted": 0, "overridden": 0, "overrideReasons": {}})
        if outcome in ("accepted", "overridden"):
            entry[outcome] += count
        if outcome == "overridden":
            reason = code or NO_REASON
            entry["overrideReasons"][reason] = entry["overrideReasons"].get(reason, 0) + count
            by_reason[reason] = by_reason.get(reason, 0) + count
    for entry in by_rule.values():
        entry["overrideReasons"] = dict(sorted(entry["overrideReasons"].items()))
    others = tuple(o for o in ORIGINS if o not in origins)
    excluded = {o: 0 for o in others}
    if others:
        for origin, count in conn.execute(select(f.c.origin, func.count()).where(_where(since, until, others))
                                          .group_by(f.c.origin)).all():
            excluded[origin] = int(count)
    return {
        "total": total,
        "byRule": dict(sorted(by_rule.items())),
        "unknownCards": unknown,
        "byOverrideReason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        "range": {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None},
        "origins": list(origins),
        "excluded": excluded,
    }


def purge_before(conn: Any, before: datetime, *, dry_run: bool = False) -> dict[str, int]:
    """Delete (or, dry run, count) audit rows created and feedback rows received before `before`."""
    a, f = audit_table, feedback_table
    out: dict[str, int] = {}
    for name, table, column in (("audit", a, a.c.created_at), ("feedback", f, f.c.received_at)):
        if dry_run:
            out[name] = int(conn.execute(select(func.count()).select_from(table).where(column < before)).scalar() or 0)
        else:
            out[name] = max(conn.execute(delete(table).where(column < before)).rowcount or 0, 0)
    return out
