"""`POST /cds-services/{id}`: parse, run the pipeline, audit, answer (CONTRACT error codes)."""

from __future__ import annotations

import logging
import time

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from cds_service import metrics
from cds_service.hooks.registry import SERVICES
from cds_service.http.errors import error_response, json_response
from cds_service.knowledge.loader import Knowledge
from cds_service.pipeline import HookError, run
from cds_service.record.decode import decode_request

log = logging.getLogger("cds_service.hooks")
bp = Blueprint("hooks", __name__)

JSON_TYPES = ("application/json", "application/fhir+json")


def read_json_body() -> bytes:
    """The raw body, or a HookError (415; 413 naming the limit and the setting that raises it)."""
    mimetype = (request.mimetype or "").lower()
    # No Content-Type at all (some scripted clients): try the body as JSON. A declared other type is 415.
    if mimetype and mimetype not in JSON_TYPES and not mimetype.endswith("+json"):
        raise HookError(415, "unsupported media type", "send the request as application/json")
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        raise HookError(413, "request too large",
                        f"the body exceeds the limit of {limit} bytes; the setting MMCDS_MAX_BODY_BYTES "
                        "(MAX_BODY_BYTES) raises it") from exc


def parse_json(raw: bytes, knowledge: Knowledge | None = None) -> object:
    """The body as JSON (without the Observations the record never reads: record/decode.py), or a
    HookError (400 malformed)."""
    try:
        return orjson.loads(raw) if knowledge is None else decode_request(raw, knowledge)[0]
    except orjson.JSONDecodeError as exc:
        raise HookError(400, "malformed JSON", f"the body is not valid JSON ({exc.msg} at position {exc.pos})") from exc


_HOST_URLS: dict[tuple[str, ...], str] = {}


def host_url() -> str:
    """`request.host_url`, remembered per (scheme, Host, server, script root): werkzeug rebuilds and
    IRI-decodes it on every call (~40 µs). Bounded: the Host header is the client's to choose."""
    env = request.environ
    key = (env.get("wsgi.url_scheme", ""), env.get("HTTP_HOST", ""), env.get("SERVER_NAME", ""),
           str(env.get("SERVER_PORT", "")), env.get("SCRIPT_NAME", ""))
    url = _HOST_URLS.get(key)
    if url is None:
        url = request.host_url
        if len(_HOST_URLS) < 64:
            _HOST_URLS[key] = url
    return url


@bp.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    started = time.perf_counter()
    runtime = current_app.extensions["mmcds"]
    label = service_id if service_id in SERVICES else "unknown"
    try:
        if service_id not in SERVICES:
            raise HookError(404, "unknown service", f"no CDS service with id '{service_id}'")
        raw = read_json_body()
        base_url = host_url()
        result = run(service_id, parse_json(raw, runtime.knowledge), runtime.settings, runtime.knowledge,
                     base_url=base_url, cache=runtime.cache)
    except HookError as exc:
        if exc.fetch_errors:
            metrics.observe_fetch(label, time.perf_counter() - started, exc.fetch_errors)
        metrics.observe_hook(label, exc.status, time.perf_counter() - started)
        log.info("hook refused", extra={"service": label, "status": exc.status, "error": exc.error})
        return error_response(exc.status, exc.error, exc.detail, extra=exc.body() if exc.operation_outcome else None)

    cards = result.response["cards"]
    if result.gathered is not None and result.gathered.fetched:
        metrics.observe_fetch(label, result.timings_ms.get("gather", 0.0) / 1000, len(result.gathered.problems))
    runtime.audit(result)
    elapsed = time.perf_counter() - started
    metrics.observe_hook(label, 200, elapsed, cards)
    metrics.observe_state_cache(result.state_cached)
    log.info(
        "hook answered",
        extra={"service": label, "status": 200, "cards": len(cards), "ms": round(elapsed * 1000, 2),
               "fhir_calls": result.gathered.fhir_calls if result.gathered else 0},
    )
    return json_response(result.response)
