"""`python -m cds_service check`: the conformance harness a hospital runs against its own deployment.

It drives a running service over HTTP the way an EHR would and checks what comes back:

- discovery: the document is valid and lists the CONTRACT's three services with their hooks;
- every shipped fixture (`fixtures/patients/*.json`, `fixtures/spec/*.json`) through every service
  whose hook matches the fixture's `hook`, each 200 validated against the response schema;
- the CONTRACT error cases (404, 400 ×3, 413, 415), each a JSON `{"error", "detail"}`;
- a feedback round trip on cards from a real response (accept a suggestion, override a card, the
  same post again, a card never issued → 422); every call carries `MMCDS-Origin: check`, so the
  harness's cards and feedback stay out of the clinicians' feedback report;
- a CORS preflight as the CDS Hooks sandbox sends it; `/healthz` and `/readyz`;
- with `--jwt-key`: every request is signed (CDS Hooks 2.0.1 client JWT: `iss`, `aud` = the exact
  endpoint URL, `exp`, `iat`, `jti`, `kid`), and unsigned or wrongly addressed calls must be 401.

What status a fixture should get is read from the fixture, never from its name: fixtures are sent
without `fhirServer`/`fhirAuthorization` (a check must not reach out to some FHIR server), so a
fixture whose prefetch covers every key the service asks for must get 200, one that covers none
must get 412 with a JSON error (CONTRACT: prefetch missing and no FHIR server), and a partial one
may get either (the service may answer with cards that say what was missing).

Output: one line per check (PASS/FAIL, service or group, check, detail), then `N passed, M failed`;
exit status 1 on any failure, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import requests

from cds_service.security.jwk import jwk_thumbprint

ORIGIN_HEADER = "MMCDS-Origin"  # http/feedback.py: `check` traffic is kept out of the feedback report
# CONTRACT.md: the service ids a deployment must offer, with their hooks.
CONTRACT_SERVICES = {"mm-next-line": "patient-view", "mm-order-check": "order-select", "mm-order-sign": "order-sign"}
CORS_ORIGIN = "https://sandbox.cds-hooks.org"
OVERSIZE_BYTES = 12 * 1024 * 1024  # above the default 8 MiB MAX_BODY_BYTES
JWT_LIFETIME_S = 300


@dataclass
class CheckResult:
    scope: str  # a service id or a group (discovery, cors, ops, feedback, auth)
    name: str
    ok: bool
    detail: str = ""
    ms: float | None = None


@dataclass
class Fixture:
    path: str  # shown as e.g. "patients/p01.json"
    request: dict[str, Any]


# --------------------------------------------------------------------------------------- signing


class Signer:
    """Signs CDS client JWTs with a PEM private key: ES384 (P-384), ES256/ES512 by curve, RS384 for RSA."""

    def __init__(self, pem: bytes, issuer: str, kid: str | None = None) -> None:
        import jwt  # noqa: F401 - fail early when PyJWT[crypto] is missing
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        key = serialization.load_pem_private_key(pem, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            self.alg = {"secp384r1": "ES384", "secp256r1": "ES256", "secp521r1": "ES512"}.get(key.curve.name, "")
            if not self.alg:
                raise ValueError(f"unsupported EC curve {key.curve.name}")
        elif isinstance(key, rsa.RSAPrivateKey):
            self.alg = "RS384"
        else:
            raise ValueError("the key must be an EC (P-384 preferred) or RSA private key")
        self.key = key
        self.issuer = issuer
        self.kid = kid or jwk_thumbprint(key.public_key())

    def token(self, aud: str, **overrides: Any) -> str:
        import jwt

        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": self.issuer, "aud": aud, "iat": now,
                                  "exp": now + JWT_LIFETIME_S, "jti": str(uuid.uuid4())}
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm=self.alg, headers={"typ": "JWT", "kid": self.kid})


# -------------------------------------------------------------------------------------- fixtures


def fixture_dirs() -> list[Path]:
    """The shipped fixture folders (inside the wheel when installed, else the checkout)."""
    from cds_service.knowledge.loader import data_root

    root = data_root() / "fixtures"
    return [root / "patients", root / "spec"]


def load_fixtures(dirs: Iterable[Path] | None = None) -> list[Fixture]:
    """Every JSON file that is a CDS Hooks request (has `hook` and `context`); others are skipped."""
    out: list[Fixture] = []
    for folder in dirs if dirs is not None else fixture_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and isinstance(data.get("hook"), str) and isinstance(data.get("context"), dict):
                out.append(Fixture(f"{folder.name}/{path.name}", data))
    return out


def _usable(entry: Any) -> bool:
    """A prefetch value the service can use without asking a FHIR server."""
    return isinstance(entry, dict) and isinstance(entry.get("resourceType"), str) \
        and entry["resourceType"] != "OperationOutcome"


def expected_statuses(request: dict[str, Any], prefetch_keys: Iterable[str]) -> tuple[int, ...]:
    """What a correct service answers to this fixture when it is sent without a FHIR server."""
    keys = list(prefetch_keys)
    prefetch = request.get("prefetch") if isinstance(request.get("prefetch"), dict) else {}
    have = [k for k in keys if _usable(prefetch.get(k))]
    if keys and len(have) == len(keys):
        return (200,)
    if not have:
        return (412,)
    return (200, 412)


def as_sent(request: dict[str, Any]) -> dict[str, Any]:
    """The fixture as the harness sends it: no FHIR server or token, a fresh hookInstance."""
    body = {k: v for k, v in request.items() if k not in ("fhirServer", "fhirAuthorization")}
    body["hookInstance"] = str(uuid.uuid4())
    return body


# CONTRACT "Card extension": which card kinds each hook may return.
KINDS_BY_HOOK = {"patient-view": {"state", "options", "notice"}, "order-select": {"finding"},
                 "order-sign": {"finding"}}


def contract_problem(hook: str, cards: list[dict[str, Any]], knowledge_version: str | None) -> str | None:
    """CONTRACT rules a JSON Schema cannot express: card kinds per hook, one state card, and one
    knowledge version across the deployment (a replica serving other knowledge shows up here)."""
    exts = [c["extension"]["org.mmcds.card"] for c in cards]
    allowed = KINDS_BY_HOOK.get(hook)
    if allowed is not None:
        wrong = sorted({e["kind"] for e in exts} - allowed)
        if wrong:
            return f"card kind(s) {', '.join(wrong)} not allowed for {hook}"
    if sum(e["kind"] == "state" for e in exts) > 1:
        return "more than one state card"
    if knowledge_version is not None:
        other = sorted({e["knowledgeVersion"] for e in exts} - {knowledge_version})
        if other:
            return f"cards cite knowledgeVersion {', '.join(other)}, /readyz says {knowledge_version}"
    return None


# ------------------------------------------------------------------------------------- the harness


@dataclass
class Harness:
    base_url: str
    timeout: float = 30.0
    signer: Signer | None = None
    fixtures: list[Fixture] | None = None
    results: list[CheckResult] = field(default_factory=list)
    session: requests.Session = field(default_factory=requests.Session)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    cards: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (service id, card)
    knowledge_version: str | None = None  # from /readyz: every card must cite the same version

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    # ---- plumbing

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
                content_type: str | None = "application/json", sign: bool = True,
                headers: dict[str, str] | None = None, token: str | None = None) -> tuple[requests.Response, float]:
        # Marks the harness's calls: its cards and feedback never count as clinicians' feedback.
        hdrs = {"Accept": "application/json", ORIGIN_HEADER: "check"}
        if content_type:
            hdrs["Content-Type"] = content_type
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        elif sign and self.signer is not None and method == "POST":
            hdrs["Authorization"] = f"Bearer {self.signer.token(self.url(path))}"
        hdrs.update(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
        started = time.perf_counter()
        resp = self.session.request(method, self.url(path), data=data, headers=hdrs, timeout=self.timeout)
        return resp, (time.perf_counter() - started) * 1000

    def record(self, scope: str, name: str, ok: bool, detail: str = "", ms: float | None = None) -> bool:
        self.results.append(CheckResult(scope, name, ok, detail, ms))
        return ok

    def guarded(self, scope: str, name: str, fn: Callable[[], tuple[bool, str, float | None]]) -> bool:
        """Run one check; a transport error or an unexpected exception is that check's failure."""
        try:
            ok, detail, ms = fn()
        except requests.RequestException as exc:
            ok, detail, ms = False, f"request failed: {type(exc).__name__}: {str(exc)[:160]}", None
        except Exception as exc:  # a harness must report, not crash, whatever the server sends
            ok, detail, ms = False, f"{type(exc).__name__}: {str(exc)[:160]}", None
        return self.record(scope, name, ok, detail, ms)

    # ---- checks

    def run(self) -> list[CheckResult]:
        if not self.check_discovery():
            return self.results  # nothing else can be addressed without discovery
        self.check_ops()
        self.check_fixtures()
        self.check_errors()
        self.check_feedback()
        self.check_cors()
        if self.signer is not None:
            self.check_auth()
        return self.results

    def check_discovery(self) -> bool:
        from cds_service.hooks import schemas

        def fetch() -> tuple[bool, str, float | None]:
            resp, ms = self.request("GET", "/cds-services", content_type=None)
            if resp.status_code != 200:
                return False, f"status {resp.status_code}", ms
            body = _json(resp)
            if body is None:
                return False, f"not JSON (Content-Type {resp.headers.get('Content-Type')})", ms
            problems = schemas.errors("discovery", body)
            if problems:
                return False, "; ".join(problems), ms
            for svc in body["services"]:
                self.services[svc["id"]] = svc
            return True, f"{len(self.services)} services", ms

        if not self.guarded("discovery", "GET /cds-services: valid discovery document", fetch):
            return False
        for sid, hook in CONTRACT_SERVICES.items():
            svc = self.services.get(sid)
            if svc is None:
                self.record(sid, "listed in discovery", False, "missing")
            elif svc.get("hook") != hook:
                self.record(sid, "listed in discovery", False, f"hook {svc.get('hook')!r}, expected {hook!r}")
            else:
                keys = sorted((svc.get("prefetch") or {}).keys())
                self.record(sid, "listed in discovery", True, f"hook {hook}, prefetch: {', '.join(keys) or 'none'}")
        return True

    def check_ops(self) -> None:
        def probe(path: str) -> Callable[[], tuple[bool, str, float | None]]:
            def fn() -> tuple[bool, str, float | None]:
                resp, ms = self.request("GET", path, content_type=None)
                body = _json(resp)
                ok = resp.status_code == 200 and isinstance(body, dict)
                detail = f"status {resp.status_code}"
                if isinstance(body, dict) and isinstance(body.get("knowledgeVersion"), str):
                    detail += f", knowledge {body['knowledgeVersion']}"
                    if path == "/readyz":
                        self.knowledge_version = body["knowledgeVersion"]
                return ok, detail, ms
            return fn

        self.guarded("ops", "GET /healthz: 200 JSON", probe("/healthz"))
        self.guarded("ops", "GET /readyz: 200 JSON (knowledge loaded, store reachable)", probe("/readyz"))

    def _services_for(self, hook: str) -> list[str]:
        return [sid for sid, svc in self.services.items() if svc.get("hook") == hook]

    def check_fixtures(self) -> None:
        from cds_service.hooks import schemas

        fixtures = self.fixtures if self.fixtures is not None else load_fixtures()
        if not fixtures:
            self.record("fixtures", "shipped fixtures found", False, f"none under {fixture_dirs()}")
            return
        for fx in fixtures:
            targets = self._services_for(fx.request["hook"])
            if not targets:
                self.record("fixtures", f"{fx.path}: a service answers hook {fx.request['hook']}", False, "none listed")
                continue
            for sid in targets:
                expect = expected_statuses(fx.request, (self.services[sid].get("prefetch") or {}).keys())

                def call(sid: str = sid, fx: Fixture = fx, expect: tuple[int, ...] = expect):
                    resp, ms = self.request("POST", f"/cds-services/{sid}", body=as_sent(fx.request))
                    body = _json(resp)
                    want = " or ".join(map(str, expect))
                    if resp.status_code not in expect:
                        return False, f"status {resp.status_code}, expected {want}{_why(body)}", ms
                    if resp.status_code != 200:
                        problem = _error_problem(body)
                        return problem is None, problem or f"{resp.status_code} JSON error (prefetch incomplete)", ms
                    if body is None:
                        return False, "200 but not JSON", ms
                    problems = schemas.check_response(body)
                    if problems:
                        return False, "response schema: " + "; ".join(problems), ms
                    uuids = [c.get("uuid") for c in body["cards"]]
                    if len(set(uuids)) != len(uuids):
                        return False, "card uuids are not unique", ms
                    problem = contract_problem(self.services[sid]["hook"], body["cards"], self.knowledge_version)
                    if problem:
                        return False, problem, ms
                    self.cards.extend((sid, c) for c in body["cards"])
                    kinds = sorted({c["extension"]["org.mmcds.card"]["kind"] for c in body["cards"]})
                    return True, f"200, {len(body['cards'])} cards ({', '.join(kinds) or 'none'}), schema ok", ms

                self.guarded(sid, f"fixture {fx.path}", call)

    def _minimal_request(self, sid: str) -> dict[str, Any]:
        """A well-formed request for this service (with the hook's required context)."""
        hook = self.services.get(sid, {}).get("hook", CONTRACT_SERVICES.get(sid, "patient-view"))
        context: dict[str, Any] = {"userId": "Practitioner/conformance", "patientId": "conformance-check"}
        if hook in ("order-select", "order-sign"):
            context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
            if hook == "order-select":
                context["selections"] = []
        return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}

    def _expect_error(self, scope: str, name: str, status: int, method: str, path: str, **kw: Any) -> bool:
        def fn() -> tuple[bool, str, float | None]:
            resp, ms = self.request(method, path, **kw)
            body = _json(resp)
            if resp.status_code != status:
                return False, f"status {resp.status_code}, expected {status}{_why(body)}", ms
            problem = _error_problem(body)
            return problem is None, problem or f"{status} {body.get('error')!r}", ms

        return self.guarded(scope, name, fn)

    def check_errors(self) -> None:
        targets = [sid for sid in CONTRACT_SERVICES if sid in self.services]
        if not targets:
            return
        first = targets[0]
        self._expect_error("errors", "unknown service → 404 JSON", 404, "POST", "/cds-services/no-such-service-conformance",
                           body=self._minimal_request(first))
        for sid in targets:
            path = f"/cds-services/{sid}"
            hook = self.services[sid]["hook"]
            self._expect_error(sid, "malformed JSON → 400 JSON", 400, "POST", path, data=b'{"hook": "' + hook.encode())
            other = next(h for h in ("patient-view", "order-select", "order-sign") if h != hook)
            wrong = self._minimal_request(sid) | {"hook": other}
            self._expect_error(sid, f"wrong hook ({other}) → 400 JSON", 400, "POST", path, body=wrong)
            self._expect_error(sid, "not JSON (text/plain) → 415 JSON", 415, "POST", path, data=b"hello",
                               content_type="text/plain")
            no_context = {k: v for k, v in self._minimal_request(sid).items() if k != "context"}
            self._expect_error(sid, "missing context → 400 JSON", 400, "POST", path, body=no_context)
        # One oversized body is enough to prove the limit; it costs a few MiB of upload.
        big = json.dumps(self._minimal_request(first) | {"padding": "x" * OVERSIZE_BYTES}).encode()
        self._expect_error(first, f"body of {len(big) // (1024 * 1024)} MiB → 413 JSON", 413, "POST",
                           f"/cds-services/{first}", data=big)

    def check_feedback(self) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        with_suggestion = next(((sid, c) for sid, c in self.cards if c.get("suggestions")), None)
        accept = with_suggestion or (self.cards[0] if self.cards else None)
        if accept is None:
            self.record("feedback", "round trip on a real card", False, "no fixture response carried a card")
            return
        sid, card = accept
        item: dict[str, Any] = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": now}
        what = "accept a card"
        if card.get("suggestions"):
            suggestion = card["suggestions"][0]
            if suggestion.get("uuid"):
                item["acceptedSuggestions"] = [{"id": suggestion["uuid"]}]
                what = "accept a suggestion"

        def post(sid: str, payload: dict[str, Any]) -> Callable[[], tuple[bool, str, float | None]]:
            def fn() -> tuple[bool, str, float | None]:
                resp, ms = self.request("POST", f"/cds-services/{sid}/feedback", body=payload)
                body = _json(resp)
                return resp.status_code == 200, f"status {resp.status_code}{_why(body)}", ms
            return fn

        self.guarded(sid, f"feedback: {what} → 200", post(sid, {"feedback": [item]}))
        self.guarded(sid, "feedback: the same decision posted again → 200 (stored once)", post(sid, {"feedback": [item]}))
        self._expect_error(sid, "feedback: a card this deployment never issued → 422 JSON", 422, "POST",
                           f"/cds-services/{sid}/feedback",
                           body={"feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted",
                                              "outcomeTimestamp": now}]})
        other = next(((s, c) for s, c in self.cards if c is not card), accept)
        sid2, card2 = other
        override: dict[str, Any] = {"card": card2["uuid"], "outcome": "overridden", "outcomeTimestamp": now,
                                    "overrideReason": {"userComment": "conformance check"}}
        if card2.get("overrideReasons"):
            override["overrideReason"]["reason"] = card2["overrideReasons"][0]
        self.guarded(sid2, "feedback: override a card → 200", post(sid2, {"feedback": [override]}))
        bad = {"feedback": [{"card": card["uuid"], "outcome": "maybe", "outcomeTimestamp": now}]}
        self._expect_error(sid, "feedback: invalid outcome → 400 JSON", 400, "POST", f"/cds-services/{sid}/feedback",
                           body=bad)

    def check_cors(self) -> None:
        sid = next((s for s in CONTRACT_SERVICES if s in self.services), None)
        if sid is None:
            return

        def preflight() -> tuple[bool, str, float | None]:
            resp, ms = self.request("OPTIONS", f"/cds-services/{sid}", content_type=None, sign=False, headers={
                "Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type"})
            if resp.status_code not in (200, 204):
                return False, f"status {resp.status_code}", ms
            origin = resp.headers.get("Access-Control-Allow-Origin")
            if origin not in ("*", CORS_ORIGIN):
                return False, f"Access-Control-Allow-Origin {origin!r} (is {CORS_ORIGIN} in CORS_ORIGINS?)", ms
            allowed = {h.strip().lower() for h in resp.headers.get("Access-Control-Allow-Headers", "").split(",")}
            missing = {"authorization", "content-type"} - allowed - ({"authorization", "content-type"} if "*" in allowed else set())
            if missing:
                return False, f"Access-Control-Allow-Headers lacks {', '.join(sorted(missing))}", ms
            methods = resp.headers.get("Access-Control-Allow-Methods", "").upper()
            if "POST" not in methods and "*" not in methods:
                return False, f"Access-Control-Allow-Methods {methods!r} lacks POST", ms
            return True, f"{resp.status_code}, origin {origin}", ms

        def simple() -> tuple[bool, str, float | None]:
            resp, ms = self.request("GET", "/cds-services", content_type=None, headers={"Origin": CORS_ORIGIN})
            origin = resp.headers.get("Access-Control-Allow-Origin")
            return origin in ("*", CORS_ORIGIN), f"Access-Control-Allow-Origin {origin!r}", ms

        self.guarded("cors", f"preflight OPTIONS /cds-services/{sid} (Authorization, Content-Type)", preflight)
        self.guarded("cors", "GET /cds-services with Origin gets Access-Control-Allow-Origin", simple)

    def check_auth(self) -> None:
        assert self.signer is not None
        for sid in (s for s in CONTRACT_SERVICES if s in self.services):
            path = f"/cds-services/{sid}"
            body = self._minimal_request(sid)
            self._expect_error(sid, "unsigned call → 401 JSON", 401, "POST", path, body=body, sign=False)
            wrong_aud = self.signer.token(self.url("/cds-services/another-service"))
            self._expect_error(sid, "token for another endpoint (aud) → 401 JSON", 401, "POST", path, body=body,
                               token=wrong_aud)
        sid = next((s for s in CONTRACT_SERVICES if s in self.services), None)
        if sid is not None:
            self._expect_error(sid, "unsigned feedback → 401 JSON", 401, "POST", f"/cds-services/{sid}/feedback",
                               body={"feedback": []}, sign=False)
            token = self.signer.token(self.url(f"/cds-services/{sid}"))
            body = self._minimal_request(sid)
            first, _ = self.request("POST", f"/cds-services/{sid}", body=body, token=token)
            if first.status_code == 401:
                self.record(sid, "replayed token (same jti) → 401 JSON", False, "the first use was already refused")
            else:
                self._expect_error(sid, "replayed token (same jti) → 401 JSON", 401, "POST", f"/cds-services/{sid}",
                                   body=body, token=token)


# --------------------------------------------------------------------------------------- helpers


def _json(resp: requests.Response) -> Any:
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _error_problem(body: Any) -> str | None:
    """None when the body is the CONTRACT's JSON error, else what is wrong with it."""
    if not isinstance(body, dict):
        return "error body is not a JSON object"
    if not isinstance(body.get("error"), str) or not isinstance(body.get("detail"), str):
        return "error body lacks string 'error' and 'detail'"
    return None


def _why(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f" ({body['error']}: {str(body.get('detail', ''))[:120]})"
    return ""


def render_table(results: list[CheckResult], out: TextIO) -> None:
    width_scope = max([len("SERVICE")] + [len(r.scope) for r in results])
    width_name = min(100, max([len("CHECK")] + [len(r.name) for r in results]))
    out.write(f"{'RESULT':<6}  {'SERVICE':<{width_scope}}  {'CHECK':<{width_name}}  {'MS':>7}  DETAIL\n")
    for r in results:
        ms = f"{r.ms:7.1f}" if r.ms is not None else f"{'-':>7}"
        out.write(f"{'PASS' if r.ok else 'FAIL':<6}  {r.scope:<{width_scope}}  {r.name:<{width_name}}  {ms}  {r.detail}\n")
    passed = sum(r.ok for r in results)
    out.write(f"{passed} passed, {len(results) - passed} failed\n")


def check_main(args: argparse.Namespace) -> int:
    """Entry point of `python -m cds_service check`; returns the exit status."""
    base_url = getattr(args, "base_url", None)
    if not base_url or not base_url.startswith(("http://", "https://")):
        print("error: --base-url must be an http(s) URL", file=sys.stderr)
        return 2
    signer = None
    key_file = getattr(args, "jwt_key", None)
    if key_file:
        issuer = getattr(args, "issuer", None)
        if not issuer:
            print("error: --jwt-key needs --issuer", file=sys.stderr)
            return 2
        try:
            signer = Signer(Path(key_file).read_bytes(), issuer, getattr(args, "kid", None))
        except (OSError, ValueError, TypeError) as exc:
            print(f"error: cannot use {key_file} as a signing key: {exc}", file=sys.stderr)
            return 2
    harness = Harness(base_url, timeout=float(getattr(args, "timeout", 30.0) or 30.0), signer=signer)
    print(f"conformance check of {harness.base_url}" + (f" (signed {signer.alg}, kid {signer.kid})" if signer else ""))
    results = harness.run()
    render_table(results, sys.stdout)
    sys.stdout.flush()
    return 0 if results and all(r.ok for r in results) else 1
