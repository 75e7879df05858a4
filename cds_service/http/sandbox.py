"""`GET /sandbox`: the shipped fixtures through the real pipeline, cards shown as an EHR shows them.

For clinicians and integrators evaluating the service. The page is rendered on the server (so it
works with JavaScript off, and opens with a fixture selected and its cards shown); with JavaScript
the fixture/service pickers, a pasted request and the Run button call the service again and
suggestion / dismiss buttons post CDS Hooks feedback.

Access (decided here, documented in the README):
- `AUTH_MODE=none`: the sandbox is on; the page's script calls the real endpoints
  (`POST /cds-services/{id}` and `/feedback`), so what you see is exactly what an EHR gets.
- `AUTH_MODE=jwt`: the sandbox answers 403 unless `SANDBOX_ENABLED` is true (a browser page
  cannot sign CDS client JWTs). When enabled, the page uses `POST /sandbox/evaluate`, which runs
  the pipeline server-side on the request's *prefetch only* (`fhirServer`/`fhirAuthorization`
  are dropped, so the page cannot be used to make the service fetch arbitrary URLs), writes no
  audit record, and `POST /sandbox/feedback/{id}` validates feedback without storing it: sandbox
  clicks never enter the production feedback report.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, render_template, request, url_for

from cds_service.hooks.registry import SERVICES
from cds_service.knowledge.loader import data_root
from cds_service.pipeline import HookError, run
from cds_service.render.cards import EXTENSION_KEY
from cds_service.web import STATIC_DIR, TEMPLATE_DIR
from cds_service.web.markdown import render_markdown, safe_url

log = logging.getLogger("cds_service.sandbox")

bp = Blueprint(
    "sandbox",
    __name__,
    template_folder=str(TEMPLATE_DIR),
    static_folder=str(STATIC_DIR),
    static_url_path="/sandbox/static",
)

FIXTURE_GROUPS = (("patients", "Test patients (shipped fixtures)"), ("spec", "CDS Hooks specification examples"))
PICKER_GROUPS = (
    ("patients", ("patient-view",), "Patient chart opened (patient-view)"),
    ("patients", ("order-select", "order-sign"), "Orders being drafted (order-select / order-sign)"),
    ("spec", ("patient-view", "order-select", "order-sign"), "CDS Hooks specification examples"),
)
SERVICE_FOR_HOOK = {s.hook: s.id for s in SERVICES.values()}
INDICATOR_LABEL = {"info": "Info", "warning": "Warning", "critical": "Critical"}
_TRUE = ("1", "true", "yes", "on")
# Longer details start folded, as EHRs show them: every card's summary stays in view.
DETAIL_OPEN_CHARS = 400


# ---------------------------------------------------------------------------- configuration


def config_value(settings: Any, key: str, default: Any = None) -> Any:
    """A key of the `create_app` mapping, else `MMCDS_<KEY>`: for keys this page adds."""
    raw = getattr(settings, "raw", None) or {}
    if key in raw:
        return raw[key]
    return os.environ.get("MMCDS_" + key, default)


def sandbox_enabled(settings: Any) -> bool:
    """On in development (AUTH_MODE=none); under JWT only when SANDBOX_ENABLED is true."""
    if getattr(settings, "auth_mode", "none") != "jwt":
        return True
    value = config_value(settings, "SANDBOX_ENABLED", False)
    return value is True or str(value).strip().lower() in _TRUE


def uses_real_endpoints(settings: Any) -> bool:
    """The page's script may call /cds-services directly only when no JWT is required."""
    return getattr(settings, "auth_mode", "none") != "jwt"


# ---------------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Fixture:
    key: str  # "patients/<stem>" — stable, used in URLs
    group: str
    name: str  # readable, for the picker
    hook: str
    service_id: str
    request: dict[str, Any]


def fixtures_root() -> Path:
    """`fixtures/` of the source checkout or of the installed wheel."""
    return data_root() / "fixtures"


def _readable(stem: str, req: dict[str, Any]) -> str:
    for key in ("title", "name", "description", "_title", "_name", "_description"):
        value = req.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:120]
    meta = req.get("_fixture") or req.get("_meta")
    if isinstance(meta, dict):
        for key in ("title", "name", "description"):
            if isinstance(meta.get(key), str) and meta[key].strip():
                return " ".join(meta[key].split())[:120]
    return _pretty_stem(stem)


def _pretty_stem(stem: str) -> str:
    """'p04-b-len-maint.o1-drd-len-refractory.order-select' → 'P04 — b len maint › o1 drd len refractory'."""
    parts = [p for p in stem.split(".") if p not in SERVICE_FOR_HOOK]
    texts = []
    for n, part in enumerate(parts):
        words = part.replace("_", " ").replace("-", " ").split()
        if n == 0 and words and words[0][:1].lower() == "p" and words[0][1:].isdigit():
            words = [words[0].upper()] if len(parts) > 1 else [words[0].upper() + " —"] + words[1:]
        texts.append(" ".join(words))
    text = " › ".join(t for t in texts if t)
    return (text[:1].upper() + text[1:]) or stem


@lru_cache(maxsize=4)
def load_fixtures(root: str) -> tuple[Fixture, ...]:
    """Every CDS Hooks request among the shipped fixtures, read once per process."""
    out: list[Fixture] = []
    base = Path(root)
    for group, _label in FIXTURE_GROUPS:
        folder = base / group
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                req = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("fixture unreadable", extra={"fixture": path.name, "error_type": type(exc).__name__})
                continue
            if not isinstance(req, dict) or not isinstance(req.get("hook"), str) or not isinstance(req.get("context"), dict):
                continue  # discovery documents, responses: not requests
            service_id = SERVICE_FOR_HOOK.get(req["hook"])
            if service_id is None:
                continue
            out.append(Fixture(f"{group}/{path.stem}", group, _readable(path.stem, req), req["hook"], service_id, req))
    return tuple(out)


def all_fixtures() -> tuple[Fixture, ...]:
    return load_fixtures(str(fixtures_root()))


def find_fixture(key: str | None) -> Fixture | None:
    if not key:
        return None
    return next((f for f in all_fixtures() if f.key == key), None)


_default_lock = threading.Lock()


def default_fixture() -> Fixture | None:
    """The fixture the page opens with: `SANDBOX_DEFAULT_FIXTURE` if set, else the shipped
    patient-view fixture whose answer has the most cards (worked out once per app)."""
    runtime = current_app.extensions["mmcds"]
    wanted = find_fixture(config_value(runtime.settings, "SANDBOX_DEFAULT_FIXTURE"))
    if wanted is not None:
        return wanted
    cache = current_app.extensions.setdefault("mmcds.sandbox", {})
    if "default" in cache:
        return find_fixture(cache["default"])
    with _default_lock:
        if "default" not in cache:
            best: tuple[tuple[int, int], Fixture] | None = None
            for fx in all_fixtures():
                if fx.group != "patients" or fx.hook != "patient-view":
                    continue
                try:
                    cards = run(fx.service_id, _offline(fx.request), runtime.settings, runtime.knowledge).response["cards"]
                except Exception as exc:  # a broken fixture must not take the page down
                    log.warning("fixture failed", extra={"fixture": fx.key, "error_type": type(exc).__name__})
                    continue
                # most cards, then the widest range of indicators: the page should show what cards look like
                score = (len(cards), len({c.get("indicator") for c in cards}))
                if best is None or score > best[0]:
                    best = (score, fx)
            if best is None and all_fixtures():
                best = ((0, 0), all_fixtures()[0])
            cache["default"] = best[1].key if best else None
    return find_fixture(cache["default"])


def _offline(req: dict[str, Any]) -> dict[str, Any]:
    """The request without a FHIR server: prefetch only (no outbound calls from the page)."""
    return {k: v for k, v in req.items() if k not in ("fhirServer", "fhirAuthorization")}


# -------------------------------------------------------------------------------- evaluation


def evaluate(service_id: str, req: Any) -> tuple[int, dict[str, Any]]:
    """Run one request for the page: (HTTP status, body) exactly as the service would answer."""
    runtime = current_app.extensions["mmcds"]
    jwt_mode = not uses_real_endpoints(runtime.settings)
    if jwt_mode and isinstance(req, dict):
        req = _offline(req)
    try:
        result = run(service_id, req, runtime.settings, runtime.knowledge, base_url=request.host_url,
                     cache=runtime.cache)
    except HookError as exc:
        return exc.status, exc.body()
    except Exception as exc:  # our bug on an odd pasted request: show it on the page, details in the log
        log.error("sandbox evaluation failed", extra={"service": service_id, "error_type": type(exc).__name__})
        return 500, {"error": "internal error", "detail": "the service failed on this request (see the server log)"}
    if not jwt_mode:
        runtime.audit(result)  # feedback from the page then counts against a known card
    return 200, result.response


def card_view(card: dict[str, Any]) -> dict[str, Any]:
    """What the template needs of a card; the detail markdown rendered safely."""
    ext = (card.get("extension") or {}).get(EXTENSION_KEY) or {}
    indicator = card.get("indicator") if card.get("indicator") in INDICATOR_LABEL else "info"
    links = []
    for link in card.get("links") or []:
        if isinstance(link, dict) and isinstance(link.get("url"), str):
            url = safe_url(link["url"])
            if url:
                links.append({"label": str(link.get("label") or url), "url": url, "type": link.get("type") or "absolute"})
    source = card.get("source") or {}
    return {
        "uuid": str(card.get("uuid") or ""),
        "summary": str(card.get("summary") or ""),
        "indicator": indicator,
        "indicator_label": INDICATOR_LABEL[indicator],
        "detail": render_markdown(card.get("detail")),
        "detail_open": len(str(card.get("detail") or "")) <= DETAIL_OPEN_CHARS,
        "source_label": str(source.get("label") or ""),
        "source_url": _safe(source.get("url")),
        "suggestions": [
            {"uuid": str(s.get("uuid") or ""), "label": str(s.get("label") or "Accept"), "recommended": bool(s.get("isRecommended"))}
            for s in card.get("suggestions") or []
            if isinstance(s, dict)
        ],
        "override_reasons": [
            {"code": str(r.get("code") or ""), "system": str(r.get("system") or ""), "display": str(r.get("display") or r.get("code") or "")}
            for r in card.get("overrideReasons") or []
            if isinstance(r, dict)
        ],
        "links": links,
        "kind": ext.get("kind"),
        "rule_id": ext.get("ruleId"),
    }


def _safe(url: Any) -> str | None:
    return safe_url(url) if isinstance(url, str) else None


def state_of(response: dict[str, Any] | None) -> dict[str, Any] | None:
    """The `state` object of the state card, for the treatment-history panel."""
    for card in (response or {}).get("cards") or []:
        ext = ((card or {}).get("extension") or {}).get(EXTENSION_KEY) or {}
        if ext.get("kind") == "state" and isinstance(ext.get("state"), dict):
            return ext["state"]
    return None


def patient_banner(req: Any) -> dict[str, str] | None:
    """Name, sex and birth date of the Patient in the request's prefetch (synthetic fixtures)."""
    if not isinstance(req, dict):
        return None
    prefetch = req.get("prefetch") if isinstance(req.get("prefetch"), dict) else {}
    ctx = req.get("context") if isinstance(req.get("context"), dict) else {}
    found = None
    for value in prefetch.values():
        if isinstance(value, dict) and value.get("resourceType") == "Patient":
            found = value
            break
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                res = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(res, dict) and res.get("resourceType") == "Patient":
                    found = res
                    break
    out: dict[str, Any] = {"id": str(ctx.get("patientId") or ""), "name": "", "gender": "", "birthDate": "",
                           "orders": draft_orders(ctx)}
    if found:
        names = found.get("name") if isinstance(found.get("name"), list) else []
        first = names[0] if names and isinstance(names[0], dict) else {}
        text = first.get("text")
        if not isinstance(text, str):
            given = first.get("given") if isinstance(first.get("given"), list) else []
            text = " ".join([str(g) for g in given] + ([str(first["family"])] if first.get("family") else []))
        out["name"] = text or ""
        out["gender"] = str(found.get("gender") or "")
        out["birthDate"] = str(found.get("birthDate") or "")
    return out


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            return coding["display"]
    return ""


def draft_orders(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """What the clinician is ordering (order hooks), for the banner: the cards are about these."""
    bundle = ctx.get("draftOrders")
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    selections = {s for s in ctx.get("selections") or [] if isinstance(s, str)}
    out = []
    for entry in entries if isinstance(entries, list) else []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            continue
        ref = f"{res.get('resourceType')}/{res.get('id')}"
        label = (_concept_text(res.get("medicationCodeableConcept")) or _concept_text(res.get("code"))
                 or _concept_text((res.get("medication") or {}).get("concept") if isinstance(res.get("medication"), dict) else None)
                 or ref)
        out.append({"label": label, "selected": ref in selections})
    return out[:30]


# ------------------------------------------------------------------------------------- pages


def _disabled() -> Response:
    body = render_template("sandbox_disabled.html")
    return _headers(Response(body, status=403, mimetype="text/html"))


def _page(*, fixture: Fixture | None, service_id: str, request_obj: Any, request_text: str,
          status: int | None, body: dict[str, Any] | None, status_code: int = 200) -> Response:
    runtime = current_app.extensions["mmcds"]
    real = uses_real_endpoints(runtime.settings)
    fixtures = all_fixtures()
    groups = [
        {"label": label, "fixtures": [f for f in fixtures if f.group == group and f.hook in hooks]}
        for group, hooks, label in PICKER_GROUPS
    ]
    ok = status == 200 and isinstance(body, dict)
    cards = [card_view(c) for c in (body or {}).get("cards", [])] if ok else []
    config = {
        "realEndpoints": real,
        "serviceUrl": url_for("hooks.invoke", service_id="__ID__") if real else url_for("sandbox.evaluate_json"),
        "feedbackUrl": (
            url_for("feedback.post_feedback", service_id="__ID__") if real
            else url_for("sandbox.feedback_check", service_id="__ID__")
        ),
        "fixtureUrl": url_for("sandbox.fixture_json", key="__KEY__"),
        "evidenceUrl": url_for("sandbox.evidence", fixture="__KEY__") if _has_evidence() else None,
        "fixtures": [{"key": f.key, "name": f.name, "hook": f.hook, "serviceId": f.service_id} for f in fixtures],
        "services": [{"id": s.id, "hook": s.hook, "title": s.title} for s in SERVICES.values()],
        "initial": {"serviceId": service_id, "fixture": fixture.key if fixture else None, "status": status, "body": body},
    }
    html = render_template(
        "sandbox.html",
        groups=groups,
        services=list(SERVICES.values()),
        fixture=fixture,
        service_id=service_id,
        request_text=request_text,
        status=status,
        body=body,
        ok=ok,
        cards=cards,
        state=state_of(body) if ok else None,
        banner=patient_banner(request_obj),
        raw=json.dumps(body, indent=2, ensure_ascii=False) if body is not None else "",
        config=config,
        real_endpoints=real,
        auth_mode=runtime.settings.auth_mode,
        evidence_enabled=_has_evidence(),
    )
    return _headers(Response(html, status=status_code, mimetype="text/html"))


PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
}


def _headers(resp: Response) -> Response:
    """No inline script or style runs on the page: card text can never become code."""
    for k, v in PAGE_HEADERS.items():
        resp.headers.setdefault(k, v)
    return resp


def _has_evidence() -> bool:
    return "smart.redirect" in current_app.view_functions


@bp.get("/sandbox")
@bp.get("/sandbox/")
def page() -> Response:
    runtime = current_app.extensions["mmcds"]
    if not sandbox_enabled(runtime.settings):
        return _disabled()
    fixture = find_fixture(request.args.get("fixture")) or default_fixture()
    service_id = request.args.get("service") or (fixture.service_id if fixture else "mm-next-line")
    if service_id not in SERVICES:
        service_id = fixture.service_id if fixture else "mm-next-line"
    if fixture is None:
        return _page(fixture=None, service_id=service_id, request_obj=None, request_text="", status=None, body=None)
    status, body = evaluate(service_id, fixture.request)
    text = json.dumps(fixture.request, indent=2, ensure_ascii=False)
    return _page(fixture=fixture, service_id=service_id, request_obj=fixture.request, request_text=text,
                 status=status, body=body)


@bp.post("/sandbox")
@bp.post("/sandbox/")
def page_post() -> Response:
    """The form without JavaScript: run the pasted request (or the chosen fixture)."""
    runtime = current_app.extensions["mmcds"]
    if not sandbox_enabled(runtime.settings):
        return _disabled()
    service_id = request.form.get("service") or "mm-next-line"
    fixture = find_fixture(request.form.get("fixture"))
    text = request.form.get("request") or ""
    if request.form.get("action") == "fixture" and fixture is not None:
        if request.form.get("service") not in SERVICES:
            service_id = fixture.service_id
        text = json.dumps(fixture.request, indent=2, ensure_ascii=False)
    try:
        req = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        body = {"error": "malformed JSON", "detail": f"the request is not valid JSON ({exc.msg} at position {exc.pos})"}
        return _page(fixture=fixture, service_id=service_id, request_obj=None, request_text=text, status=400, body=body)
    status, body = evaluate(service_id, req)
    return _page(fixture=fixture, service_id=service_id, request_obj=req, request_text=text, status=status, body=body)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


@bp.post("/sandbox/evaluate")
def evaluate_json() -> Response:
    """`{"serviceId": ..., "request": {...}}` → the service's answer (same status codes)."""
    runtime = current_app.extensions["mmcds"]
    if not sandbox_enabled(runtime.settings):
        return _json({"error": "forbidden", "detail": "the sandbox is disabled (AUTH_MODE=jwt, SANDBOX_ENABLED false)"}, 403)
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("serviceId"), str) or "request" not in data:
        return _json({"error": "invalid request", "detail": 'send {"serviceId": "...", "request": {...}} as JSON'}, 400)
    status, body = evaluate(data["serviceId"], data["request"])
    return _json(body, status)


@bp.post("/sandbox/feedback/<service_id>")
def feedback_check(service_id: str) -> Response:
    """Feedback from the page under JWT: validated like the real endpoint, never stored."""
    from cds_service.http.feedback import FeedbackError, parse_items

    runtime = current_app.extensions["mmcds"]
    if not sandbox_enabled(runtime.settings):
        return _json({"error": "forbidden", "detail": "the sandbox is disabled"}, 403)
    if service_id not in SERVICES:
        return _json({"error": "unknown service", "detail": f"no CDS service with id '{service_id[:100]}'"}, 404)
    try:
        items = parse_items(request.get_json(silent=True))
    except FeedbackError as exc:
        return _json({"error": exc.error, "detail": exc.detail}, exc.status)
    return _json({"validated": len(items), "stored": False,
                  "detail": "sandbox feedback is checked but not stored under AUTH_MODE=jwt"})


@bp.get("/sandbox/fixtures/<path:key>")
def fixture_json(key: str) -> Response:
    runtime = current_app.extensions["mmcds"]
    if not sandbox_enabled(runtime.settings):
        return _json({"error": "forbidden", "detail": "the sandbox is disabled"}, 403)
    fx = find_fixture(key.removesuffix(".json"))
    if fx is None:
        return _json({"error": "not found", "detail": "no such fixture"}, 404)
    return _json({"key": fx.key, "name": fx.name, "hook": fx.hook, "serviceId": fx.service_id, "request": fx.request})


@bp.get("/sandbox/evidence")
def evidence() -> Response:
    """The SMART app's evidence view for a fixture, without an authorization server (preview)."""
    runtime = current_app.extensions["mmcds"]
    if not sandbox_enabled(runtime.settings):
        return _disabled()
    fx = find_fixture(request.args.get("fixture")) or default_fixture()
    if fx is None or fx.hook != "patient-view":
        return Response(render_template("smart_error.html", title="No such fixture",
                                        message="Pick a shipped patient-view fixture."), status=404, mimetype="text/html")
    from cds_service.http.smart import render_evidence

    return render_evidence(_offline(fx.request), preview_of=fx.name)
