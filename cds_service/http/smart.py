"""The SMART-on-FHIR evidence viewer linked from the options card (`links[].type = "smart"`).

SMART App Launch 2.x, EHR launch, public client with PKCE (S256):

1. `GET /smart/launch?iss=<FHIR base>&launch=<opaque>` — discover the authorization server
   (`<iss>/.well-known/smart-configuration`, else the `/metadata` oauth-uris extension) and
   redirect the browser to its `authorization_endpoint`.
2. `GET /smart/redirect?code=…&state=…` — check `state`, exchange the code at the
   `token_endpoint` with the PKCE verifier, read the patient's record from `iss` with the token
   (the same gathering, normalisation, derivation and rules as the hooks) and show the full evidence.

Why it is built this way:
- Nothing is kept in server memory between the two steps (several workers/replicas): the pending
  launch (state, iss, token endpoint) rides in a signed, HttpOnly cookie scoped to `/smart`, and
  the PKCE verifier is derived from the state with the server secret, so it never leaves the server.
  The secret is `SECRET_KEY` (config or `MMCDS_SECRET_KEY`), else one generated once into the data
  folder (shared by the workers of one host). Several replicas must share it: with a PostgreSQL
  store `serve` refuses to start without it (cds_service/startup.py).
- The access token is used for the FHIR reads of this one response and dropped: it is never sent
  to the browser, stored or logged; nor is any patient data logged. Pages answer `no-store`, and
  `Referrer-Policy: no-referrer` keeps the one-time code out of Referer headers to cited sources.
- `SMART_ALLOWED_ISSUERS` (JSON list or comma-separated) restricts which FHIR servers may launch
  the app; recommended in production (otherwise any `iss` is contacted for discovery).
- Scopes (`SMART_SCOPES` to override): `launch` plus read access to exactly the resource types the
  hooks' prefetch reads (SMART v1 `.read` syntax, accepted by v1 and v2 servers). No `openid
  fhirUser`: the view does not need to know who the user is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import Blueprint, Response, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from cds_service.hooks.registry import PREFETCH
from cds_service.render.cards import EXTENSION_KEY
from cds_service.security.forwarding import scope_for_server, use_scope
from cds_service.web import STATIC_DIR, TEMPLATE_DIR
from cds_service.web.markdown import render_markdown, safe_url

log = logging.getLogger("cds_service.smart")

bp = Blueprint(
    "smart",
    __name__,
    template_folder=str(TEMPLATE_DIR),
    static_folder=str(STATIC_DIR),
    static_url_path="/smart/static",
)

COOKIE = "mmcds_smart_launch"
COOKIE_PATH = "/smart"
LAUNCH_TTL_S = 600
MAX_PENDING = 4
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
# Read access to what the hooks' prefetch reads (cds_service.hooks.registry.PREFETCH), nothing more.
SCOPE_RESOURCES = (
    "Patient", "Condition", "Observation", "DiagnosticReport", "Procedure",
    "MedicationStatement", "MedicationRequest", "MedicationAdministration", "Medication",
)
DEFAULT_SCOPES = "launch " + " ".join(f"patient/{r}.read" for r in SCOPE_RESOURCES)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors *; base-uri 'none'; form-action 'self'",
}


class SmartError(Exception):
    """A launch that cannot go on; `message` is safe to show (no token, no patient data)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


# ----------------------------------------------------------------------------- configuration


def _config(key: str, default: Any = None) -> Any:
    settings = current_app.extensions["mmcds"].settings
    raw = getattr(settings, "raw", None) or {}
    if key in raw:
        return raw[key]
    return os.environ.get("MMCDS_" + key, default)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip().rstrip("/") for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return [str(v).strip().rstrip("/") for v in json.loads(text)]
        except ValueError:
            return []
    return [p.strip().rstrip("/") for p in text.split(",") if p.strip()]


def _secret() -> bytes:
    """The key that signs the launch cookie and derives PKCE verifiers (see module docstring)."""
    cache = current_app.extensions.setdefault("mmcds.smart", {})
    if "secret" in cache:
        return cache["secret"]
    configured = getattr(current_app.extensions["mmcds"].settings, "secret_key", None) or _config("SECRET_KEY") \
        or current_app.secret_key
    if configured:
        secret = configured.encode() if isinstance(configured, str) else bytes(configured)
    else:
        settings = current_app.extensions["mmcds"].settings
        path = Path(settings.data_dir) / "smart_secret"
        try:
            secret = path.read_bytes().strip()
            if len(secret) < 32:
                raise ValueError("short secret")
        except (OSError, ValueError):
            secret = secrets.token_hex(32).encode()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secret)
            except FileExistsError:  # another worker wrote it first: use theirs
                secret = path.read_bytes().strip()
            except OSError:
                log.warning("SMART launch secret kept in memory only; set SECRET_KEY for several workers")
    cache["secret"] = secret
    return secret


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(), salt="mmcds-smart-launch")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def pkce_verifier(state: str) -> str:
    """43 characters of [A-Za-z0-9_-] (RFC 7636), recomputable from the state by this server only."""
    return _b64url(hmac.new(_secret(), b"pkce:" + state.encode(), hashlib.sha256).digest())


def pkce_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def base_url() -> str:
    settings = current_app.extensions["mmcds"].settings
    return (settings.public_base_url or request.url_root).rstrip("/")


# --------------------------------------------------------------------------------- discovery


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return value.strip()


def _get_json(url: str, timeout: float) -> dict[str, Any] | None:
    try:
        resp = requests.get(url, headers={"Accept": "application/json, application/fhir+json"}, timeout=timeout,
                            allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("smart discovery request failed", extra={"error_type": type(exc).__name__})
        return None
    if resp.status_code != 200:
        log.warning("smart discovery answered", extra={"status": resp.status_code})
        return None
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass
class AuthServer:
    authorize: str
    token: str


def discover(iss: str, timeout: float) -> AuthServer:
    """The authorization and token endpoints the FHIR server names (SMART App Launch §discovery)."""
    conf = _get_json(iss.rstrip("/") + "/.well-known/smart-configuration", timeout)
    if conf:
        authorize, token = _http_url(conf.get("authorization_endpoint")), _http_url(conf.get("token_endpoint"))
        methods = conf.get("code_challenge_methods_supported")
        if isinstance(methods, list) and methods and "S256" not in methods:
            raise SmartError(502, "Authorization server not supported",
                             "The EHR's authorization server does not offer PKCE with S256, which this app requires.")
        if authorize and token:
            return AuthServer(authorize, token)
    meta = _get_json(iss.rstrip("/") + "/metadata", timeout)
    for rest in (meta or {}).get("rest") or []:
        security = rest.get("security") if isinstance(rest, dict) else None
        for ext in (security or {}).get("extension") or [] if isinstance(security, dict) else []:
            if not isinstance(ext, dict) or ext.get("url") != OAUTH_URIS:
                continue
            uris = {e.get("url"): e.get("valueUri") for e in ext.get("extension") or [] if isinstance(e, dict)}
            authorize, token = _http_url(uris.get("authorize")), _http_url(uris.get("token"))
            if authorize and token:
                return AuthServer(authorize, token)
    raise SmartError(502, "Authorization server not found",
                     "The FHIR server did not publish its SMART configuration "
                     "(.well-known/smart-configuration or the oauth-uris extension of /metadata).")


# ----------------------------------------------------------------------------- pending launches


def _pending() -> list[dict[str, Any]]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return []
    try:
        data = _serializer().loads(raw, max_age=LAUNCH_TTL_S)
    except BadSignature:
        return []
    if not isinstance(data, list):
        return []
    now = time.time()
    return [p for p in data if isinstance(p, dict) and now - float(p.get("t", 0)) < LAUNCH_TTL_S][-MAX_PENDING:]


def _set_pending(resp: Response, pending: list[dict[str, Any]]) -> None:
    """Over HTTPS the cookie is `SameSite=None; Secure; Partitioned`: EHRs often run SMART apps in an
    iframe, where a Lax cookie would not come back with the redirect (the state check is the CSRF
    defence). Over plain HTTP (development) browsers refuse SameSite=None, so Lax."""
    secure = request.is_secure or base_url().startswith("https:")
    flags: dict[str, Any] = {"path": COOKIE_PATH, "httponly": True, "secure": secure,
                             "samesite": "None" if secure else "Lax", "partitioned": secure}
    if pending:
        resp.set_cookie(COOKIE, _serializer().dumps(pending[-MAX_PENDING:]), max_age=LAUNCH_TTL_S, **flags)
    else:
        resp.delete_cookie(COOKIE, **flags)


def _headers(resp: Response) -> Response:
    for k, v in PAGE_HEADERS.items():
        resp.headers[k] = v
    return resp


def error_page(exc: SmartError) -> Response:
    html = render_template("smart_error.html", title=exc.title, message=exc.message)
    return _headers(Response(html, status=exc.status, mimetype="text/html"))


# ------------------------------------------------------------------------------------- routes


@bp.get("/smart/launch")
def launch() -> Response:
    settings = current_app.extensions["mmcds"].settings
    try:
        iss = _http_url(request.args.get("iss"))
        launch_ctx = request.args.get("launch", "")
        if not iss:
            raise SmartError(400, "Open this app from the EHR",
                             "The SMART app is launched by the EHR, which adds the FHIR server (iss) and a launch "
                             "context to this link. Open it from the myeloma options card in the patient's chart.")
        if not launch_ctx or len(launch_ctx) > 2000:
            raise SmartError(400, "Launch context missing", "The EHR did not send a launch context (launch).")
        allowed = _list(_config("SMART_ALLOWED_ISSUERS"))
        if allowed and iss.rstrip("/") not in allowed:
            log.warning("smart launch from an issuer not allowed", extra={"status": 403})
            raise SmartError(403, "FHIR server not allowed",
                             "This deployment does not accept launches from that FHIR server (SMART_ALLOWED_ISSUERS).")
        server = discover(iss, settings.fhir_timeout_s)
    except SmartError as exc:
        return error_page(exc)

    state = secrets.token_urlsafe(24)
    params = {
        "response_type": "code",
        "client_id": settings.smart_client_id,
        "redirect_uri": base_url() + "/smart/redirect",
        "launch": launch_ctx,
        "scope": str(_config("SMART_SCOPES") or DEFAULT_SCOPES),
        "state": state,
        "aud": iss,
        "code_challenge": pkce_challenge(pkce_verifier(state)),
        "code_challenge_method": "S256",
    }
    sep = "&" if urlsplit(server.authorize).query else "?"
    resp = Response(status=302)
    resp.headers["Location"] = server.authorize + sep + urlencode(params)
    pending = [p for p in _pending() if p.get("s") != state]
    pending.append({"s": state, "iss": iss, "tok": server.token, "t": time.time()})
    _set_pending(resp, pending)
    log.info("smart launch redirected to authorization", extra={"status": 302})
    return _headers(resp)


def exchange_code(token_endpoint: str, code: str, redirect_uri: str, client_id: str, verifier: str,
                  timeout: float) -> dict[str, Any]:
    """The token response of the authorization server (public client: no secret, PKCE instead)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, "code_verifier": verifier}
    try:
        resp = requests.post(token_endpoint, data=form, headers={"Accept": "application/json"}, timeout=timeout,
                             allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("smart token request failed", extra={"error_type": type(exc).__name__})
        raise SmartError(502, "Sign-in could not be completed", "The EHR's token endpoint could not be reached.") from exc
    if resp.status_code != 200:
        log.warning("smart token request refused", extra={"status": resp.status_code})
        raise SmartError(502, "Sign-in could not be completed",
                         f"The EHR's authorization server refused the code (HTTP {resp.status_code}). Launch the app again.")
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise SmartError(502, "Sign-in could not be completed", "The token response held no access token.")
    return data


@bp.get("/smart/redirect")
def redirect() -> Response:
    settings = current_app.extensions["mmcds"].settings
    if request.args.get("error"):
        error = str(request.args.get("error"))[:100]
        return error_page(SmartError(400, "Authorization was not granted",
                                     f"The EHR's authorization server answered: {error}."))
    code, state = request.args.get("code"), request.args.get("state")
    pending = _pending()
    entry = next((p for p in pending if isinstance(state, str)
                  and hmac.compare_digest(str(p.get("s")).encode(), state.encode("utf-8", "replace"))), None)
    if not code or not state or entry is None:
        log.warning("smart redirect with unknown state", extra={"status": 400})
        return error_page(SmartError(400, "Launch expired",
                                     "This sign-in does not match a launch from this browser (or took longer than "
                                     "10 minutes). Open the app again from the EHR."))
    remaining = [p for p in pending if p is not entry]
    try:
        token = exchange_code(entry["tok"], code, base_url() + "/smart/redirect", settings.smart_client_id,
                              pkce_verifier(state), settings.fhir_timeout_s)
        patient_id = token.get("patient")
        if not isinstance(patient_id, str) or not patient_id:
            raise SmartError(502, "No patient in context",
                             "The EHR did not say which patient is open (no `patient` in the token response).")
        hook_request = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "fhirServer": entry["iss"],
            "fhirAuthorization": {
                "access_token": token["access_token"],
                "token_type": "Bearer",
                "expires_in": int(token.get("expires_in") or 300) if str(token.get("expires_in") or "").isdigit() else 300,
                "scope": str(token.get("scope") or ""),
                "subject": settings.smart_client_id,
            },
            "context": {"patientId": patient_id, "userId": "Practitioner/unknown"},
        }
        # SMART: need_patient_banner false means the EHR already shows who the patient is; the token
        # goes to the launching FHIR server only (security/forwarding.py)
        with use_scope(scope_for_server(entry["iss"])):
            resp = render_evidence(hook_request, banner=token.get("need_patient_banner") is not False)
    except SmartError as exc:
        resp = error_page(exc)
    _set_pending(resp, remaining)
    return resp


# --------------------------------------------------------------------------------- the view


@dataclass
class Evidence:
    state: Any  # ClinicalState
    cards: list[dict[str, Any]]
    patient: dict[str, str]
    missing: list[str]


def _patient_banner(resources: list[dict[str, Any]], patient_id: str | None) -> dict[str, str]:
    out = {"name": "", "gender": "", "birthDate": "", "id": patient_id or ""}
    for res in resources:
        if res.get("resourceType") != "Patient":
            continue
        names = res.get("name") if isinstance(res.get("name"), list) else []
        first = names[0] if names and isinstance(names[0], dict) else {}
        text = first.get("text")
        if not isinstance(text, str):
            given = first.get("given") if isinstance(first.get("given"), list) else []
            text = " ".join([str(g) for g in given] + ([str(first["family"])] if first.get("family") else []))
        out.update(name=text or "", gender=str(res.get("gender") or ""), birthDate=str(res.get("birthDate") or ""))
        break
    return out


def build_evidence(hook_request: dict[str, Any]) -> Evidence:
    """Gather → record → state → the patient-view cards: the hooks' own stages, kept for the view."""
    from cds_service.clinical.state import derive_state
    from cds_service.gather.gather import DataUnavailable, gather
    from cds_service.pipeline import today
    from cds_service.record.normalise import build_record
    from cds_service.render.patient_view import patient_view_cards
    from cds_service.render.state_card import state_card

    runtime = current_app.extensions["mmcds"]
    settings, knowledge = runtime.settings, runtime.knowledge
    try:
        gathered = gather(hook_request, dict(PREFETCH), settings)
    except DataUnavailable as exc:
        raise SmartError(502, "The record could not be read", f"The FHIR server did not provide the data: {exc.detail}.") from exc
    as_of = today(settings)
    record = build_record(gathered.resources, as_of, knowledge)
    state = derive_state(record, as_of)
    for key in gathered.missing:
        note = f"{key}: not available ({gathered.problems.get(key, 'absent')})"
        if note not in state.missing:
            state.missing.append(note)
    cards: list[dict[str, Any]] = []
    if state.multiple_myeloma:
        cards.append(state_card(state, knowledge))
        cards.extend(patient_view_cards(state, knowledge, settings))
    patient_id = (hook_request.get("context") or {}).get("patientId")
    return Evidence(state=state, cards=cards, patient=_patient_banner(gathered.resources, patient_id),
                    missing=list(state.missing))


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _ext(card: dict[str, Any]) -> dict[str, Any]:
    return (card.get("extension") or {}).get(EXTENSION_KEY) or {}


_OPTION_KNOWN = ("regimen", "tier", "rank", "grade", "sources")


def _option_view(opt: dict[str, Any]) -> dict[str, Any]:
    """An option with its known fields, and every further field (trials, figures…) shown as text."""
    extras = []
    for key, value in opt.items():
        if key in _OPTION_KNOWN or value in (None, "", [], {}):
            continue
        extras.append({"key": _label(key), "value": _plain(value)})
    return {
        "regimen": str(opt.get("regimen") or ""),
        "tier": str(opt.get("tier") or ""),
        "rank": opt.get("rank"),
        "grade": opt.get("grade"),
        "sources": [_source_view(s) for s in opt.get("sources") or [] if isinstance(s, dict)],
        "extras": extras,
    }


def _label(key: str) -> str:
    """'beyondSeeds' → 'Beyond seeds': extension keys as words."""
    words = re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", str(key)).replace("_", " ").replace("-", " ")
    return words[:1].upper() + words[1:].lower()


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value)
    return _fmt(value)


def _source_view(src: dict[str, Any]) -> dict[str, Any]:
    return {"citation": str(src.get("citation") or src.get("seed") or ""), "seed": src.get("seed"),
            "url": safe_url(src["url"]) if isinstance(src.get("url"), str) else None}


def evidence_context(ev: Evidence) -> dict[str, Any]:
    """Plain values for the template."""
    st = ev.state
    options_card = next((c for c in ev.cards if _ext(c).get("kind") == "options"), None)
    opt_ext = _ext(options_card) if options_card else {}
    notices = [c for c in ev.cards if _ext(c).get("kind") in ("notice", "finding")]
    sources: list[dict[str, Any]] = []
    seen: set[str] = set()
    for card in ev.cards:
        for src in _ext(card).get("sources") or []:
            if isinstance(src, dict):
                view = _source_view(src)
                ident = view["citation"] + str(view["url"])
                if ident not in seen:
                    seen.add(ident)
                    sources.append(view)
    agents = sorted(st.agents.values(), key=lambda a: (a.status != "refractory", a.agent))
    flags = [
        ("Double-refractory (IMiD + PI)", st.double_refractory),
        ("Triple-class exposed", st.triple_class_exposed),
        ("Triple-class refractory", st.triple_class_refractory),
        ("Penta-refractory", st.penta_refractory),
        ("Progressed on lenalidomide maintenance", st.progressed_on_len_maintenance),
        ("Lenalidomide stopped 60 days – 6 months before progression", st.len_recent_exposure),
        ("Short response (< 18 months)", st.short_response),
        ("Plasma cell leukemia", st.plasma_cell_leukemia),
        ("Extramedullary disease", st.extramedullary),
        ("Frail", st.frail),
    ]
    return {
        "patient": ev.patient,
        "mm": st.multiple_myeloma,
        "as_of": _fmt(st.as_of),
        "lines": [
            {"number": ln.number, "label": ln.label, "start": _fmt(ln.start), "end": "ongoing" if ln.ongoing else _fmt(ln.end),
             "asct": _fmt(ln.asct_date) if ln.includes_asct else None, "maintenance": ", ".join(ln.maintenance_agents),
             "ended_by": ln.ended_by, "progression": _fmt(ln.progression_date), "sources": ln.sources}
            for ln in st.lines
        ],
        "agents": [
            {"agent": a.agent, "status": a.status, "lines": ", ".join(str(n) for n in a.lines), "first": _fmt(a.first_dose),
             "last": "ongoing" if a.ongoing else _fmt(a.last_dose), "progression": _fmt(a.progression_date),
             "reason": a.reason, "sources": a.sources}
            for a in agents
        ],
        "classes": dict(st.classes),
        "flags": [(label, _fmt(value)) for label, value in flags],
        "last_progression": _fmt(st.last_progression),
        "last_response_months": st.last_response_months,
        "progressions": [{"date": _fmt(e.date), "kind": e.kind, "detail": e.detail, "source": e.source}
                         for e in st.progression_events],
        "cyto": {
            "tested": st.cytogenetics.tested, "high_risk": _fmt(st.cytogenetics.high_risk),
            "findings": st.cytogenetics.findings, "negatives": st.cytogenetics.negatives,
            "t11_14": _fmt(st.cytogenetics.t11_14), "sources": st.cytogenetics.sources,
        },
        "transplant": {
            "prior": st.transplant.prior_asct, "date": _fmt(st.transplant.asct_date),
            "months": _fmt(st.transplant.months_asct_to_progression),
            "maintenance": _fmt(st.transplant.maintenance_after_asct),
            "salvage": st.transplant.salvage_asct or "not assessed", "reason": st.transplant.salvage_reason,
            "eligible": _fmt(st.transplant.transplant_eligible), "sources": st.transplant.sources,
        },
        "patient_facts": {"age": _fmt(st.age), "ecog": _fmt(st.ecog), "frail": _fmt(st.frail)},
        "setting": opt_ext.get("setting"),
        "options": [_option_view(o) for o in opt_ext.get("options") or [] if isinstance(o, dict)],
        "avoid": [{"regimen": str(a.get("regimen") or ""), "reason": _plain(a.get("reasons") or a.get("reason")),
                   "note": _plain(a.get("note")) if a.get("note") else ""}
                  for a in opt_ext.get("avoid") or [] if isinstance(a, dict)],
        "options_detail": render_markdown(options_card.get("detail")) if options_card else None,
        "options_summary": options_card.get("summary") if options_card else None,
        "notices": [{"summary": c.get("summary"), "indicator": c.get("indicator") or "info",
                     "code": _ext(c).get("code"), "detail": render_markdown(c.get("detail"))} for c in notices],
        "sources": sources,
        "missing": ev.missing,
        "card_count": len(ev.cards),
    }


def render_evidence(hook_request: dict[str, Any], preview_of: str | None = None, banner: bool = True) -> Response:
    """The evidence page for one patient (the SMART view, or its sandbox preview)."""
    try:
        ev = build_evidence(hook_request)
    except SmartError as exc:
        return error_page(exc)
    html = render_template("smart_evidence.html", v=evidence_context(ev), preview_of=preview_of, banner=banner)
    return _headers(Response(html, status=200, mimetype="text/html"))
