"""`python -m cds_service feedback-report [--json] [--since D] [--until D] [--include-check]`
and `python -m cds_service purge --older-than DAYS | --before DATE [--dry-run]` (retention)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta

from cds_service.store.db import Store
from cds_service.store.tables import ORIGIN_CHECK, ORIGIN_EHR


def render_table(report: dict) -> str:
    """A plain-text table for people; `--json` gives CONTRACT's machine shape."""
    rows = [(rule, c["accepted"], c["overridden"]) for rule, c in report["byRule"].items()]
    width = max([len("rule")] + [len(r[0]) for r in rows])
    lines = [f"{'rule':<{width}}  {'accepted':>8}  {'overridden':>10}", f"{'-' * width}  {'-' * 8}  {'-' * 10}"]
    lines += [f"{rule:<{width}}  {a:>8}  {o:>10}" for rule, a, o in rows]
    if not rows:
        lines.append("(no feedback tied to an audited card)")
    reasons = report.get("byOverrideReason") or {}
    if reasons:
        lines += ["", "override reasons:"]
        lines += [f"  {code}: {n}" for code, n in reasons.items()]
    lines.append("")
    rng = report.get("range") or {}
    if rng.get("since") or rng.get("until"):
        lines.append(f"outcomes from {rng.get('since') or 'the start'} until {rng.get('until') or 'now'}")
    lines.append(f"total feedback: {report['total']}; for unknown cards: {report['unknownCards']}")
    excluded = {k: v for k, v in (report.get("excluded") or {}).items() if v}
    if excluded:
        lines.append("not counted: " + ", ".join(f"{n} from {origin}" for origin, n in excluded.items())
                     + " (--include-check to count conformance-check feedback)")
    return "\n".join(lines)


def parse_day(text: str) -> datetime:
    """A YYYY-MM-DD day (00:00 UTC) or a full ISO date-time."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD or an ISO date-time, got {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _store(url: str | None) -> Store:
    if not url:
        from cds_service.config import load_settings

        url = load_settings().database_url
    return Store(url)


def _fail(command: str, exc: Exception) -> int:
    print(f"{command}: cannot read the store: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
          file=sys.stderr)
    return 5


def feedback_report_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cds_service feedback-report", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the JSON object of the contract (docs/contract.md)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: MMCDS_DATABASE_URL or the data folder)")
    parser.add_argument("--since", type=parse_day, help="outcomes at or after this day (YYYY-MM-DD, UTC)")
    parser.add_argument("--until", type=parse_day, help="outcomes before this day (YYYY-MM-DD, UTC; exclusive)")
    parser.add_argument("--include-check", action="store_true",
                        help="count the conformance harness's feedback too (left out by default)")
    args = parser.parse_args(argv)
    origins = (ORIGIN_EHR, ORIGIN_CHECK) if args.include_check else (ORIGIN_EHR,)
    try:
        store = _store(args.database_url)
    except Exception as exc:  # noqa: BLE001 - a bad URL: one line, no traceback
        return _fail("feedback-report", exc)
    try:
        store.create_schema()  # a fresh deployment reports zeros rather than a missing table
        report = store.feedback_report(since=args.since, until=args.until, origins=origins)
    except Exception as exc:  # noqa: BLE001 - one line for the operator, no traceback
        return _fail("feedback-report", exc)
    finally:
        store.dispose()
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    return 0


def purge_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cds_service purge",
        description="Retention: delete audit rows and feedback rows older than a cut-off (run it daily).")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--older-than", type=int, metavar="DAYS", help="delete rows older than DAYS days")
    when.add_argument("--before", type=parse_day, help="delete rows from before this day (YYYY-MM-DD, UTC)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: MMCDS_DATABASE_URL or the data folder)")
    args = parser.parse_args(argv)
    if args.older_than is not None and args.older_than < 1:
        parser.error("--older-than must be at least 1 day")
    cutoff = args.before or datetime.now(UTC) - timedelta(days=args.older_than)
    try:
        store = _store(args.database_url)
    except Exception as exc:  # noqa: BLE001
        return _fail("purge", exc)
    try:
        store.create_schema()
        counts = store.purge(cutoff, dry_run=args.dry_run)
    except Exception as exc:  # noqa: BLE001
        return _fail("purge", exc)
    finally:
        store.dispose()
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {counts['audit']} audit rows and {counts['feedback']} feedback rows from before "
          f"{cutoff.isoformat(timespec='seconds')}")
    return 0
