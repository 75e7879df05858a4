"""`python -m cds_service feedback-report [--json] [--database-url URL]`: feedback per rule."""

from __future__ import annotations

import argparse
import json
import sys

from cds_service.store.db import Store


def render_table(report: dict) -> str:
    """A plain-text table for people; `--json` gives CONTRACT's machine shape."""
    rows = [(rule, c["accepted"], c["overridden"]) for rule, c in report["byRule"].items()]
    width = max([len("rule")] + [len(r[0]) for r in rows])
    lines = [f"{'rule':<{width}}  {'accepted':>8}  {'overridden':>10}", f"{'-' * width}  {'-' * 8}  {'-' * 10}"]
    lines += [f"{rule:<{width}}  {a:>8}  {o:>10}" for rule, a, o in rows]
    if not rows:
        lines.append("(no feedback tied to an audited card)")
    lines.append("")
    lines.append(f"total feedback: {report['total']}; for unknown cards: {report['unknownCards']}")
    return "\n".join(lines)


def feedback_report_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cds_service feedback-report", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print CONTRACT's JSON object")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: MMCDS_DATABASE_URL or the data folder)")
    args = parser.parse_args(argv)
    url = args.database_url
    if not url:
        from cds_service.config import load_settings

        url = load_settings().database_url
    store = Store(url)
    try:
        store.create_schema()  # a fresh deployment reports zeros rather than a missing table
        report = store.feedback_report()
    except Exception as exc:  # noqa: BLE001 - one line for the operator, no traceback
        print(f"feedback-report: cannot read the store: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
              file=sys.stderr)
        return 1
    finally:
        store.dispose()
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    return 0
