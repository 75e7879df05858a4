"""One CDS Hooks call, end to end, without HTTP: the pipeline the server and `evaluate` share.

validate → gather → normalise (record) → derive state (clinical) → rules → render → validate
response. Each stage is a function of plain data; this module only strings them together and
times them. Errors the EHR caused become `HookError` with the CONTRACT status codes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from cds_service.clinical.state import derive_state
from cds_service.config import Settings
from cds_service.gather.gather import DataUnavailable, GatherResult, gather
from cds_service.hooks import schemas
from cds_service.hooks.registry import SERVICES, Service
from cds_service.knowledge.loader import Knowledge
from cds_service.record.drafts import read_draft_orders
from cds_service.record.normalise import build_record
from cds_service.render.cards import new_uuid
from cds_service.render.orders import order_cards
from cds_service.render.patient_view import patient_view_cards, view_settings_key
from cds_service.render.state_card import state_card
from cds_service.statecache import Entry, StateCache, resources_digest

log = logging.getLogger("cds_service.pipeline")


class HookError(Exception):
    """A request the service cannot answer with cards; `status` is the HTTP status to send."""

    def __init__(self, status: int, error: str, detail: str, operation_outcome: bool = False, fetch_errors: int = 0):
        super().__init__(detail)
        self.fetch_errors = fetch_errors
        self.status = status
        self.error = error
        self.detail = detail
        self.operation_outcome = operation_outcome

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.operation_outcome:
            body["operationOutcome"] = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-found", "diagnostics": self.detail}],
            }
        return body


@dataclass
class HookResult:
    response: dict[str, Any]
    service: Service
    hook_instance: str
    input_hash: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    gathered: GatherResult | None = None  # what gathering found
    dropped_cards: int = 0
    state_cached: bool = False  # record and state reused from the StateCache


def input_hash(request: dict[str, Any], resources: bytes | None) -> str:
    """A hash of what the decision was made on: the hook, its context (draft orders included) and
    the digest of the gathered resources — not the EHR's access token or the call's hookInstance,
    so the same chart and orders give the same hash."""
    if resources is None:  # resources that cannot be serialised: hash the request instead
        safe = {k: v for k, v in request.items() if k not in ("fhirAuthorization", "hookInstance")}
        return hashlib.sha256(orjson.dumps(safe, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                                           default=repr)).hexdigest()
    decided_on = {"hook": request.get("hook"), "context": request.get("context"), "resources": resources.hex()}
    return hashlib.sha256(orjson.dumps(decided_on, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                                       default=repr)).hexdigest()


def envelope(request: dict[str, Any]) -> dict[str, Any]:
    """The request as the envelope schema sees it: the schema allows any object as `prefetch`
    (gather/prefetch.py reads each value), so the validator need not walk the whole chart."""
    prefetch = request.get("prefetch")
    return {**request, "prefetch": {}} if isinstance(prefetch, dict) else request


def validate_request(service_id: str, request: Any) -> Service:
    service = SERVICES.get(service_id)
    if service is None:
        raise HookError(404, "unknown service", f"no CDS service with id '{service_id}'")
    if not isinstance(request, dict):
        raise HookError(400, "invalid request", "the body must be a JSON object")
    problems = schemas.check("request", envelope(request))
    if problems:
        raise HookError(400, "invalid request", "; ".join(problems))
    if request["hook"] != service.hook:
        raise HookError(400, "wrong hook", f"service '{service.id}' answers '{service.hook}', not '{request['hook']}'")
    problems = schemas.check(schemas.HOOK_CONTEXT_SCHEMA[service.hook], request["context"])
    if problems:
        raise HookError(400, "invalid context", "; ".join(f"context {p}" for p in problems))
    return service


def with_fetched_medications(context: dict[str, Any], gathered: GatherResult) -> dict[str, Any]:
    """The draft bundle plus the Medication resources gathered, so a draft's medicationReference to a
    Medication that only the FHIR server (or the prefetch) holds is resolved like one in the bundle."""
    drafts = context.get("draftOrders")
    meds = [r for r in gathered.resources if r.get("resourceType") == "Medication"]
    if not meds or not isinstance(drafts, dict):
        return context
    entries = drafts.get("entry")
    entries = [entries] if isinstance(entries, dict) else (entries if isinstance(entries, list) else [])
    return {**context, "draftOrders": {**drafts, "entry": [*entries, *({"resource": m} for m in meds)]}}


def today(settings: Settings) -> date:
    return settings.as_of_date or date.today()


def evidence_link(base_url: str | None) -> dict[str, Any] | None:
    """The SMART app with the full evidence view, linked from the options card."""
    if not base_url:
        return None
    return {"label": "Full evidence view (SMART app)", "url": f"{base_url.rstrip('/')}/smart/launch", "type": "smart"}


def _fresh_copy(card: dict[str, Any]) -> dict[str, Any]:
    """A reused card with its own uuids (feedback and audit are per answer); the rest is shared
    and never modified after rendering (tests/test_statecache.py compares against fresh answers)."""
    out = dict(card)
    out["uuid"] = new_uuid()
    if card.get("suggestions"):
        out["suggestions"] = [{**s, "uuid": new_uuid()} for s in card["suggestions"]]
    return out


def view_key(state: Any, settings: Settings, link: dict[str, Any] | None) -> tuple[Any, ...]:
    return (view_settings_key(settings), tuple(state.missing), link["url"] if link else None)


def patient_view(state: Any, knowledge: Knowledge, settings: Settings,
                 link: dict[str, Any] | None) -> list[dict[str, Any]]:
    """State card, options card and notices (the evidence link on the options card, else the state card)."""
    cards = [state_card(state, knowledge), *patient_view_cards(state, knowledge, settings)]
    kinds = [card.get("extension", {}).get("org.mmcds.card", {}).get("kind") for card in cards]
    target = "options" if "options" in kinds else "state"  # on therapy: no options card, link the history
    for card, kind in zip(cards, kinds, strict=True):
        if link and kind == target:
            card.setdefault("links", []).append(dict(link))
    return cards


def read_chart(resources: list[dict[str, Any]], digest: bytes | None, as_of: date, knowledge: Knowledge,
               cache: StateCache | None, timings: dict[str, float]) -> tuple[Entry, bool]:
    """Record and clinical state of the gathered chart (and whether they came from `cache`).

    The cache is used only when the chart is unchanged: same `digest` (see statecache.py).
    """
    mark = time.perf_counter()
    key = None
    if cache is not None and cache.enabled and digest is not None:
        key = (digest, as_of, knowledge.digest)
        hit = cache.get(key)
        if hit is not None:
            timings["record"] = (time.perf_counter() - mark) * 1000
            timings["state"] = 0.0
            return hit, True
    record = build_record(resources, as_of, knowledge)
    timings["record"] = (time.perf_counter() - mark) * 1000
    mark = time.perf_counter()
    state = derive_state(record, as_of)
    timings["state"] = (time.perf_counter() - mark) * 1000
    entry = Entry(record=record, state=state)
    if key is not None and cache is not None:
        cache.put(key, entry)
    return entry, False


def check_patient(service_id: str, gathered: GatherResult) -> None:
    """Resources naming another patient than `context.patientId` were dropped. From the prefetch
    alone, the EHR sent another patient's chart: a client error (400), never cards on an empty
    or mixed chart. From a FHIR server, they stay dropped. Either way the log says so (counts only)."""
    log.warning("resources of another patient dropped", extra={"service": service_id,
                                                                "count": gathered.dropped_other_patient,
                                                                "fhir_calls": gathered.fhir_calls})
    if gathered.fhir_calls == 0:
        raise HookError(400, "patient mismatch",
                        f"{gathered.dropped_other_patient} prefetch resource(s) belong to a patient other than "
                        "context.patientId")


def run(service_id: str, request: Any, settings: Settings, knowledge: Knowledge,
        base_url: str | None = None, cache: StateCache | None = None) -> HookResult:
    """One call. With a `cache`, a chart read before (the same gathered resources, the same day and
    knowledge) is not read again; the answer is the same as without (tests/test_statecache.py)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    service = validate_request(service_id, request)
    mark = time.perf_counter()
    timings["validate"] = (mark - t0) * 1000
    as_of = today(settings)

    try:
        gathered = gather(request, service.prefetch, settings)
    except DataUnavailable as exc:
        raise HookError(412, "prefetch unavailable", exc.detail, operation_outcome=True,
                        fetch_errors=exc.fetch_errors) from exc
    timings["gather"] = (time.perf_counter() - mark) * 1000
    if gathered.dropped_other_patient:
        check_patient(service.id, gathered)
    mark = time.perf_counter()
    digest = resources_digest(gathered.resources)
    timings["digest"] = (time.perf_counter() - mark) * 1000
    chart, cached = read_chart(gathered.resources, digest, as_of, knowledge, cache, timings)
    record = chart.record
    # The cached state is shared: this call's notes about missing data go on a copy.
    missing = list(chart.state.missing)
    for key in gathered.missing:
        note = f"{key}: not available ({gathered.problems.get(key, 'absent')})"
        if note not in missing:
            missing.append(note)
    for key, problem in gathered.problems.items():
        if key in gathered.fetched:  # fetched, but incomplete (paging stopped, deadline)
            missing.append(f"{key}: possibly incomplete ({problem})")
    state = dataclasses.replace(chart.state, missing=missing) if missing != chart.state.missing else chart.state
    mark = time.perf_counter()

    cards: list[dict[str, Any]] = []
    views = chart.views if cache is not None and cache.enabled else None
    reused = False
    vkey: tuple[Any, ...] | None = None
    if service.hook == "patient-view":
        if state.multiple_myeloma:
            link = evidence_link(settings.public_base_url or base_url)
            vkey = view_key(state, settings, link)
            done = views.get(vkey) if views is not None else None
            if done is not None:  # rendered (and validated) before for this chart and these settings
                cards, reused = [_fresh_copy(c) for c in done], True
            else:
                cards = patient_view(state, knowledge, settings, link)
    else:
        drafts = read_draft_orders(with_fetched_medications(request["context"], gathered), knowledge, service.hook)
        if state.multiple_myeloma:
            cards.extend(order_cards(state, drafts, knowledge, settings, service.hook, record=record))
    timings["rules"] = (time.perf_counter() - mark) * 1000
    mark = time.perf_counter()

    response: dict[str, Any] = {"cards": cards}
    dropped = 0
    if not reused and schemas.check_response(response):
        # A card we built wrongly is our bug: keep the valid ones, log the rest, never send invalid JSON.
        good = []
        for card in cards:
            errs = schemas.check_response({"cards": [card]})
            if errs:
                dropped += 1
                rule = card.get("extension", {}).get("org.mmcds.card", {}).get("ruleId")
                log.error("invalid card dropped", extra={"ruleId": rule, "errors": errs})
            else:
                good.append(card)
        response = {"cards": good}
    if views is not None and vkey is not None and not reused and not dropped and len(views) < Entry.MAX_VIEWS:
        views[vkey] = [dict(c) for c in cards]
    timings["validate_response"] = (time.perf_counter() - mark) * 1000
    timings["total"] = (time.perf_counter() - t0) * 1000
    return HookResult(
        response=response,
        service=service,
        hook_instance=str(request.get("hookInstance")),
        input_hash=input_hash(request, digest),
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        gathered=gathered,
        dropped_cards=dropped,
        state_cached=cached,
    )
