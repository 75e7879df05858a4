"""`python -m cds_service <command>`: serve, evaluate, check, feedback-report, migrate."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import orjson


def _serve(args: argparse.Namespace) -> int:
    from cds_service.config import load_settings
    from cds_service.server import run_gunicorn

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    prom_dir = settings.data_dir / "prometheus"
    shutil.rmtree(prom_dir, ignore_errors=True)
    prom_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir.resolve())
    return run_gunicorn(args.host, args.port, workers=args.workers, threads=args.threads)


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.config import ConfigError, load_settings
    from cds_service.knowledge.loader import default_knowledge
    from cds_service.pipeline import HookError, run

    try:
        raw = Path(args.request).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.request}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        request: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        print(f"error: {args.request} is not valid JSON ({exc.msg})", file=sys.stderr)
        return 2
    service_id = args.service
    if service_id is None:
        hook = request.get("hook") if isinstance(request, dict) else None
        from cds_service.hooks.registry import SERVICES

        matches = [s.id for s in SERVICES.values() if s.hook == hook]
        if not matches:
            print(f"error: no service answers hook {hook!r}; use --service", file=sys.stderr)
            return 2
        service_id = matches[0]
    overrides: dict[str, Any] = {}
    if args.as_of:
        overrides["AS_OF_DATE"] = args.as_of
    try:
        settings = load_settings(overrides)
        result = run(service_id, request, settings, default_knowledge())
    except HookError as exc:
        print(f"error: {exc.status} {exc.error}: {exc.detail}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: configuration: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(result.response, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    from cds_service.conformance import check_main

    return check_main(args)


def _feedback_report(args: argparse.Namespace) -> int:
    from cds_service.store.report import feedback_report_main

    return feedback_report_main(args.rest)


def _migrate(args: argparse.Namespace) -> int:
    from cds_service.config import load_settings
    from cds_service.store.db import migrate

    url = args.database_url or load_settings().database_url
    version = migrate(url)
    print(f"store schema at version {version}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cds_service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the service under gunicorn")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: CPU count, at least 2)")
    p.add_argument("--threads", type=int, default=None, help="threads per worker (default 4)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("evaluate", help="run one CDS Hooks request through the pipeline and print the response")
    p.add_argument("request", help="a CDS Hooks request JSON file")
    p.add_argument("--service", help="service id (default: the service answering the request's hook)")
    p.add_argument("--as-of", help="evaluate as of this date (YYYY-MM-DD)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("check", help="conformance harness against a running deployment")
    p.add_argument("--base-url", required=True)
    p.add_argument("--jwt-key", help="PEM private key to sign client JWTs with")
    p.add_argument("--issuer", help="JWT issuer (with --jwt-key)")
    p.add_argument("--kid", help="JWT key id (with --jwt-key)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_check)

    p = sub.add_parser("feedback-report", help="what clinicians did with the cards, per rule", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_feedback_report)

    p = sub.add_parser("migrate", help="create or upgrade the feedback/audit store schema")
    p.add_argument("--database-url")
    p.set_defaults(func=_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["feedback-report"]:
        # its options (--json, --database-url) belong to the report's own parser
        from cds_service.store.report import feedback_report_main

        return feedback_report_main(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
