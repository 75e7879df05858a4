"""`python -m cds_service <command>`: serve, evaluate, check, feedback-report, purge, migrate, jwks,
validate-knowledge, knowledge-diff. Exit codes: 0 ok, 1 the conformance check found failures,
2 bad usage or input, 3 configuration, 4 knowledge, 5 database, 6 port (docs/operations.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from cds_service import __version__
from cds_service.startup import EXIT_CONFIG, EXIT_KNOWLEDGE, EXIT_USAGE, StartupError, exit_with, guarded


def _error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _serve(args: argparse.Namespace) -> int:
    """Settings → bind → own metrics folder → app → gunicorn (server.py docstring)."""
    from cds_service.config import load_settings
    from cds_service.startup import check_auth_configured, check_issuers, check_settings

    try:
        settings = guarded(load_settings)
        check_settings(settings)
        check_auth_configured(settings)
        from cds_service.server import MetricsDir, bind_socket, run_gunicorn

        sock = bind_socket(args.host, args.port)
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            metrics_dir = MetricsDir(settings.data_dir / "prometheus", f"{args.port}-{os.getpid()}").prepare()
        except OSError as exc:
            raise StartupError(EXIT_CONFIG, f"configuration: DATA_DIR {settings.data_dir} is not writable "
                                            f"({exc.strerror or type(exc).__name__})") from exc
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
        from cds_service.app import create_app

        app = guarded(create_app, settings.database_url)
        runtime = app.extensions["mmcds"]
        if settings.auth_mode == "jwt":
            check_issuers(runtime.verifier())
    except StartupError as err:
        exit_with(err, "serve")
    return run_gunicorn(args.host, args.port, workers=args.workers, threads=args.threads, sock=sock, app=app,
                        loglevel=settings.log_level)


def _read_request(path: str) -> Any:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg})") from exc


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.config import load_settings
    from cds_service.hooks.registry import SERVICES
    from cds_service.pipeline import HookError, run
    from cds_service.security.forwarding import TokenForwardingRefused, development_scope, use_scope

    try:
        request: Any = _read_request(args.request)
    except ValueError as exc:
        return _error(str(exc))
    service_id = args.service
    if service_id is None:
        hook = request.get("hook") if isinstance(request, dict) else None
        matches = [s.id for s in SERVICES.values() if s.hook == hook]
        if not matches:
            return _error(f"no service answers hook {hook!r}; use --service")
        service_id = matches[0]
    if args.offline and isinstance(request, dict):  # prefetch only: no FHIR server is contacted
        request = {k: v for k, v in request.items() if k not in ("fhirServer", "fhirAuthorization")}
    overrides: dict[str, Any] = {"AS_OF_DATE": args.as_of} if args.as_of else {}
    try:
        settings = guarded(lambda: load_settings(overrides))
        from cds_service.app import knowledge_for

        knowledge = guarded(lambda: knowledge_for(settings))
    except StartupError as err:
        return _error(err.message, err.code)
    try:  # a request file's token goes where a development server would send it (loopback, allow-list)
        with use_scope(development_scope(settings)):
            result = run(service_id, request, settings, knowledge)
    except HookError as exc:
        return _error(f"{exc.status} {exc.error}: {exc.detail}")
    except TokenForwardingRefused as exc:
        return _error(f"403 {exc} (use --offline to evaluate the prefetch only)")
    sys.stdout.write(orjson.dumps(result.response, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    from cds_service.conformance import check_main

    return check_main(args)


def _migrate(args: argparse.Namespace) -> int:
    from cds_service.config import load_settings
    from cds_service.store.db import migrate

    try:
        settings = guarded(load_settings)
        if settings.secret_key is not None:  # the placeholder must not become the recorded key
            from cds_service.startup import check_settings

            check_settings(settings)
        url = args.database_url or settings.database_url
        version = guarded(lambda: migrate(url, secret_key=settings.secret_key), url)
    except StartupError as err:
        return _error(err.message, err.code)
    print(f"store schema at version {version}")
    return 0


def _jwks(args: argparse.Namespace) -> int:
    from cds_service.security.jwk import jwks_document

    try:
        pems = [Path(p).read_bytes() for p in args.keys]
        doc = jwks_document(pems, args.kid)
    except OSError as exc:
        return _error(f"cannot read the key: {exc.strerror}")
    except (ValueError, TypeError) as exc:
        return _error(f"not a usable PEM key: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {len(doc['keys'])} key(s) to {args.out}: kid {', '.join(k['kid'] for k in doc['keys'])}")
    else:
        sys.stdout.write(text)
    return 0


def _validate_knowledge(args: argparse.Namespace) -> int:
    from cds_service.knowledge.loader import KnowledgeError
    from cds_service.knowledge_diff import validate_folder

    try:
        knowledge = validate_folder(Path(args.folder))
    except KnowledgeError as exc:
        return _error(f"knowledge: {exc}", EXIT_KNOWLEDGE)
    print(f"{args.folder}: valid (knowledge {knowledge.version}, digest {knowledge.digest})")
    return 0


def _knowledge_diff(args: argparse.Namespace) -> int:
    import json

    from cds_service.knowledge.loader import KnowledgeError
    from cds_service.knowledge_diff import knowledge_diff, render_diff

    try:
        report = knowledge_diff(Path(args.old), Path(args.new))
    except KnowledgeError as exc:
        return _error(f"knowledge: {exc}", EXIT_KNOWLEDGE)
    print(json.dumps(report, indent=2) if args.json else render_diff(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cds_service", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mmcds {__version__}")
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
    p.add_argument("--offline", action="store_true",
                   help="use the request's prefetch only: never contact its fhirServer")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("check", help="conformance harness against a running deployment")
    p.add_argument("--base-url", required=True)
    p.add_argument("--jwt-key", help="PEM private key to sign client JWTs with")
    p.add_argument("--issuer", help="JWT issuer (with --jwt-key)")
    p.add_argument("--kid", help="JWT key id (with --jwt-key; default the key's RFC 7638 thumbprint)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_check)

    for name, helptext in (("feedback-report", "what clinicians did with the cards, per rule and override reason"),
                           ("purge", "retention: delete audit and feedback rows older than a cut-off")):
        p = sub.add_parser(name, help=helptext, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)

    p = sub.add_parser("migrate", help="create or upgrade the feedback/audit store schema")
    p.add_argument("--database-url")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("jwks", help="write the public JWKS (kid = RFC 7638 thumbprint) of PEM keys")
    p.add_argument("keys", nargs="+", help="PEM key files (private or public; only public parts are written)")
    p.add_argument("--kid", help="kid to use instead of the thumbprint (one key only)")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=_jwks)

    p = sub.add_parser("validate-knowledge", help="check a knowledge folder (mappings/, cards/) against the schemas")
    p.add_argument("folder")
    p.set_defaults(func=_validate_knowledge)

    p = sub.add_parser("knowledge-diff", help="which shipped patients' cards change between two knowledge folders")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_knowledge_diff)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    # their options belong to the store commands' own parsers (store/report.py)
    if argv[:1] == ["feedback-report"]:
        from cds_service.store.report import feedback_report_main

        return feedback_report_main(argv[1:])
    if argv[:1] == ["purge"]:
        from cds_service.store.report import purge_main

        return purge_main(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
