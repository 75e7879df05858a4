"""The floor: the cheapest honest answer to the same request, under the same gunicorn setup.

Why: requests/s alone says little on a shared 2-core machine; the ratio to a floor measured in
the same run does. The floor reads the body, parses it with orjson, looks at the hook and the
patient id (so the parse cannot be skipped) and answers one small card — no record, no rules,
no audit. Run: `python -m bench.floor_app --port 8091` (the options of
`cds_service.server.gunicorn_options`, so worker class, workers, threads and keep-alive match).
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from cds_service.server import GunicornApp, gunicorn_options

StartResponse = Callable[..., Any]


def _card(hook: str) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"Floor answer for {hook}",
        "indicator": "info",
        "source": {"label": "benchmark floor"},
    }


def floor_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """POST: parse the JSON body, answer one card; GET: 200 (readiness probe)."""
    if environ.get("REQUEST_METHOD") != "POST":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = b'{"error":"malformed JSON","detail":"the body is not valid JSON"}'
        start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    hook = request.get("hook") if isinstance(request, dict) else None
    context = request.get("context") if isinstance(request, dict) else None
    patient = context.get("patientId") if isinstance(context, dict) else None
    card = _card(str(hook))
    card["detail"] = "patient in context" if patient else "no patient in context"
    body = orjson.dumps({"cards": [card]})
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    options = gunicorn_options(args.host, args.port, workers=args.workers, threads=args.threads)
    options.pop("child_exit", None)  # the service's Prometheus clean-up; the floor has no metrics
    GunicornApp(options, lambda: floor_app).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
