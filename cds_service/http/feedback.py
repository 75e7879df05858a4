"""`POST /cds-services/{id}/feedback`: what the clinician did with our cards (CDS Hooks 2.0.1).

Accepts the spec's `{"feedback": [...]}`, and tolerantly a bare feedback object, a single object
where the array belongs, or a top-level array. Each item is checked against
`hooks/schemas/feedback.schema.json` (compiled once) plus a real calendar check of
`outcomeTimestamp`. Answers 200 `{}` when stored, 400/404/415 JSON errors otherwise. Feedback for a
card uuid we never issued is still stored (the report counts it as unknown): a 4xx there would
break the EHR page over something the clinician cannot fix.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from jsonschema import Draft202012Validator

from cds_service import metrics
from cds_service.hooks.registry import SERVICES

log = logging.getLogger("cds_service.feedback")
bp = Blueprint("feedback", __name__)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "hooks" / "schemas" / "feedback.schema.json"
_SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
Draft202012Validator.check_schema(_SCHEMA)
ITEM_VALIDATOR = Draft202012Validator(_SCHEMA)
MAX_ITEMS = 100


class FeedbackError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _error(status: int, error: str, detail: str) -> Response:
    return Response(orjson.dumps({"error": error, "detail": detail}), status=status, mimetype="application/json")


def _valid_timestamp(value: str) -> bool:
    text = value.strip().replace("t", "T").replace(" ", "T")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python < 3.12 accepts only 3 or 6 fraction digits: normalise to 6
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{(digits + '000000')[:6]}{rest[len(digits):]}"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def parse_items(body: Any) -> list[dict]:
    """The feedback items of a request body; FeedbackError(400) naming the first problem."""
    if isinstance(body, dict) and "feedback" in body:
        items = body["feedback"]
        if isinstance(items, dict):
            items = [items]
    elif isinstance(body, dict):
        items = [body]
    elif isinstance(body, list):
        items = body
    else:
        raise FeedbackError(400, "invalid feedback", "expected {\"feedback\": [...]} or a feedback object")
    if not isinstance(items, list):
        raise FeedbackError(400, "invalid feedback", "'feedback' must be an array of feedback objects")
    if not items:
        raise FeedbackError(400, "invalid feedback", "'feedback' is empty")
    if len(items) > MAX_ITEMS:
        raise FeedbackError(400, "invalid feedback", f"at most {MAX_ITEMS} feedback items per request")
    for i, item in enumerate(items):
        err = next(iter(sorted(ITEM_VALIDATOR.iter_errors(item), key=lambda e: list(e.absolute_path))), None)
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path)
            raise FeedbackError(400, "invalid feedback", f"feedback[{i}]{'/' + where if where else ''}: {_brief(err)}")
        if not _valid_timestamp(item["outcomeTimestamp"]):
            raise FeedbackError(400, "invalid feedback", f"feedback[{i}]/outcomeTimestamp: not a valid date-time")
    return items


def _brief(err: Any) -> str:
    """A schema message without echoing the offending value back (it may be anything)."""
    if err.validator == "required":
        return err.message.split(" is a required")[0] + " is required"
    return {
        "enum": "value not allowed (outcome must be 'accepted' or 'overridden')",
        "type": f"wrong type (expected {err.validator_value})",
        "pattern": "not a valid date-time",
        "maxLength": "too long",
        "minLength": "empty",
        "maxItems": "too many items" if err.validator_value else "not allowed with this outcome",
        "not": "overrideReason is not allowed when the outcome is accepted",
    }.get(err.validator, "invalid")


@bp.post("/cds-services/<service_id>/feedback")
def post_feedback(service_id: str) -> Response:
    if service_id not in SERVICES:
        return _error(404, "unknown service", f"no CDS service with id '{service_id[:100]}'")
    mimetype = (request.mimetype or "").lower()
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        return _error(415, "unsupported media type", "send feedback as application/json")
    try:
        body = orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError:
        return _error(400, "malformed JSON", "the body is not valid JSON")
    try:
        items = parse_items(body)
    except FeedbackError as exc:
        log.info("feedback refused", extra={"service": service_id, "status": exc.status})
        return _error(exc.status, exc.error, exc.detail)
    runtime = current_app.extensions["mmcds"]
    try:
        stored = runtime.store.record_feedback(service_id, items)
    except Exception as exc:  # the store is down: say so, without internals
        log.error("feedback write failed", extra={"service": service_id, "error_type": type(exc).__name__})
        return _error(503, "store unavailable", "feedback could not be stored; retry later")
    for item in items:
        metrics.observe_feedback(service_id, str(item.get("outcome")))
    log.info("feedback stored", extra={"service": service_id, "status": 200, "count": stored})
    return Response(b"{}", status=200, mimetype="application/json")
