"""`POST /cds-services/{id}/feedback`: what the clinician did with our cards (CDS Hooks 2.0.1).

Accepts the spec's `{"feedback": [...]}`, and tolerantly a bare feedback object, a single object
where the array belongs, or a top-level array. Each item is checked against
`hooks/schemas/feedback.schema.json` (compiled once) plus a real calendar check of
`outcomeTimestamp`, then against the audit: the card must be one this service issued, and every
accepted suggestion one of that card's. Feedback that names a card we never issued, a card of
another service or a suggestion the card did not carry is refused 422 — a report built on it
would count decisions on cards nobody saw. A request is stored whole or not at all.

Idempotent: the same decision posted again (same card, outcome, accepted suggestions) answers 200
and is stored once. Calls marked `MMCDS-Origin: check` (the conformance harness), and feedback on
cards issued to such calls, are stored as `check` and left out of the clinicians' report and of
`mmcds_feedback_total`. The clinician's `userComment` is stored, never logged.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from jsonschema import Draft202012Validator

from cds_service import metrics
from cds_service.hooks.registry import SERVICES
from cds_service.store.tables import ORIGIN_CHECK, ORIGIN_EHR, ORIGIN_SANDBOX, parse_instant

log = logging.getLogger("cds_service.feedback")
bp = Blueprint("feedback", __name__)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "hooks" / "schemas" / "feedback.schema.json"
_SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
Draft202012Validator.check_schema(_SCHEMA)
ITEM_VALIDATOR = Draft202012Validator(_SCHEMA)
MAX_ITEMS = 100
ORIGIN_HEADER = "MMCDS-Origin"
# Audit rows are committed by each worker's writer within ~0.25 s of the answer: feedback that
# arrives sooner (a script, the harness) at another worker waits for them this long, in steps.
AUDIT_WAIT_STEPS_S = (0.1, 0.2)


def request_origin() -> str:
    """`check` for the conformance harness's calls (header `MMCDS-Origin: check`), `sandbox` for the
    /sandbox page's, else `ehr`: only clinicians' feedback from an EHR is counted in the report."""
    value = request.headers.get(ORIGIN_HEADER, "").strip().lower()
    return value if value in (ORIGIN_CHECK, ORIGIN_SANDBOX) else ORIGIN_EHR


class FeedbackError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _error(status: int, error: str, detail: str) -> Response:
    return Response(orjson.dumps({"error": error, "detail": detail}), status=status, mimetype="application/json")


def _valid_timestamp(value: str) -> bool:
    return parse_instant(value) is not None


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
    origin = request_origin()
    try:
        cards = _audited(runtime.store, [str(i["card"]) for i in items])
        refusal = check_against_audit(service_id, items, cards)
        if refusal is not None:
            log.info("feedback refused", extra={"service": service_id, "status": refusal.status,
                                                "reason": refusal.error})
            return _error(refusal.status, refusal.error, refusal.detail)
        stored = runtime.store.record_feedback(service_id, items, origin=origin, cards=cards)
    except Exception as exc:  # the store is down: say so, without internals
        log.error("feedback write failed", extra={"service": service_id, "error_type": type(exc).__name__})
        return _error(503, "store unavailable", "feedback could not be stored; retry later")
    # the harness's and the sandbox page's feedback is stored under its origin, never counted as clinicians'
    kind = next((o for o in (origin, *(c.origin for c in cards.values())) if o != ORIGIN_EHR), ORIGIN_EHR)
    if kind == ORIGIN_EHR:
        for item in items:
            metrics.observe_feedback(service_id, str(item.get("outcome")))
    log.info("feedback stored", extra={"service": service_id, "status": 200, "count": stored,
                                       "items": len(items), "kind": kind})
    return Response(b"{}", status=200, mimetype="application/json")


def _audited(store: Any, card_uuids: list[str]) -> dict[str, Any]:
    """The audit records of the cards, waiting briefly for rows another worker has yet to commit."""
    cards = store.audited_cards(card_uuids)
    for pause in AUDIT_WAIT_STEPS_S:
        if all(u in cards for u in card_uuids):
            break
        time.sleep(pause)
        cards = store.audited_cards(card_uuids)
    return cards


def check_against_audit(service_id: str, items: list[dict], cards: dict[str, Any]) -> FeedbackError | None:
    """The first item that does not match what this service issued, as a 422; None when all do."""
    for i, item in enumerate(items):
        card = cards.get(str(item["card"]))
        if card is None:
            return FeedbackError(422, "unknown card", f"feedback[{i}]/card: no card with this uuid was issued "
                                                      "by this deployment")
        if card.service_id != service_id:
            return FeedbackError(422, "card of another service",
                                 f"feedback[{i}]/card: issued by service '{card.service_id}', not '{service_id}'")
        for j, suggestion in enumerate(item.get("acceptedSuggestions") or []):
            if str(suggestion.get("id")) not in card.suggestions:
                return FeedbackError(422, "unknown suggestion",
                                     f"feedback[{i}]/acceptedSuggestions/{j}/id: not a suggestion of this card")
    return None
