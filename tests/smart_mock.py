"""A local SMART-on-FHIR EHR for tests: authorization server and FHIR R4 server on one 127.0.0.1 port.

Why: the evidence viewer's launch must be exercised end to end (discovery, authorize redirect,
PKCE-checked code exchange, Bearer-protected FHIR reads) without any network. Strict where a real
EHR is strict: the authorize endpoint checks client_id, redirect_uri, aud, launch, scope and the S256
challenge; the token endpoint checks the code (single use), redirect_uri, client_id and the PKCE
verifier; FHIR calls need the issued Bearer token.

Usage::

    with SmartMock(resources, patient_id="p1") as ehr:
        ehr.iss                   # FHIR base URL, e.g. http://127.0.0.1:PORT/fhir
        ehr.launch_id             # the opaque launch context the EHR hands to the app
        ehr.log                   # every request (method, path, query, form, authorization)

FHIR searches reuse `tests.fhir_server.FhirTestServer`'s search engine (paging, _include).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from tests.fhir_server import FhirTestServer, operation_outcome

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


class SmartMock:
    def __init__(
        self,
        resources: Iterable[dict[str, Any]],
        patient_id: str,
        *,
        client_id: str = "mmcds-evidence-viewer",
        well_known: bool = True,
        token_patient: bool = True,
        need_patient_banner: bool = True,
        expected_redirect: str | None = None,
    ) -> None:
        self.fhir = FhirTestServer(resources)  # used as a search engine only (not started)
        self.patient_id = patient_id
        self.client_id = client_id
        self.well_known = well_known
        self.token_patient = token_patient
        self.need_patient_banner = need_patient_banner
        self.expected_redirect = expected_redirect
        self.launch_id = "launch-" + secrets.token_hex(8)
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # --------------------------------------------------------------- lifecycle
    def __enter__(self) -> SmartMock:
        handler = type("Handler", (_Handler,), {"mock": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.fhir.base_url = self.iss
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def iss(self) -> str:
        return self.base_url + "/fhir"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/auth/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/auth/token"

    def smart_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.base_url,
            "authorization_endpoint": self.authorize_url,
            "token_endpoint": self.token_url,
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "scopes_supported": ["launch", "openid", "fhirUser", "patient/*.read"],
            "response_types_supported": ["code"],
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient", "permission-patient"],
        }

    def capability_statement(self) -> dict[str, Any]:
        cs = self.fhir.capability_statement()
        cs["rest"][0]["security"] = {
            "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                     "code": "SMART-on-FHIR"}]}],
            "extension": [{"url": OAUTH_URIS, "extension": [
                {"url": "authorize", "valueUri": self.authorize_url},
                {"url": "token", "valueUri": self.token_url},
            ]}],
        }
        return cs

    # ------------------------------------------------------------------ OAuth
    def authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """302 back to the app with a code, or with error=… (RFC 6749 §4.1.2.1)."""
        redirect = q.get("redirect_uri", "")
        if not redirect.startswith("http") or (self.expected_redirect and redirect != self.expected_redirect):
            return 400, {"Content-Type": "text/plain"}, b"invalid redirect_uri"
        problems = []
        if q.get("response_type") != "code":
            problems.append("response_type")
        if q.get("client_id") != self.client_id:
            problems.append("client_id")
        if q.get("aud", "").rstrip("/") != self.iss:
            problems.append("aud")
        if q.get("launch") != self.launch_id:
            problems.append("launch")
        scopes = q.get("scope", "").split()
        if "launch" not in scopes or not any(s.startswith("patient/") for s in scopes):
            problems.append("scope")
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) != 43:
            problems.append("code_challenge")
        if not q.get("state"):
            problems.append("state")
        if problems:
            params = {"error": "invalid_request", "error_description": ",".join(problems), "state": q.get("state", "")}
            return 302, {"Location": redirect + "?" + urlencode(params)}, b""
        code = secrets.token_urlsafe(16)
        with self._lock:
            self.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": redirect, "client_id": q["client_id"],
                                "scope": q["scope"], "used": False}
        return 302, {"Location": redirect + "?" + urlencode({"code": code, "state": q["state"]})}, b""

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            entry = self.codes.get(form.get("code", ""))
            if entry is None or entry["used"]:
                return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
            entry["used"] = True
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("redirect_uri") != entry["redirect_uri"] or form.get("client_id") != entry["client_id"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri or client_id mismatch"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest()).rstrip(b"=").decode()
        if not (43 <= len(verifier) <= 128) or digest != entry["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        token = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                "scope": entry["scope"], "need_patient_banner": self.need_patient_banner}
        if self.token_patient:
            body["patient"] = self.patient_id
        return 200, body


class _Handler(BaseHTTPRequestHandler):
    mock: SmartMock
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, content_type: str = "application/json") -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": content_type})

    def do_GET(self) -> None:  # noqa: N802
        self._handle({})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self._handle({k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()})

    def _handle(self, form: dict[str, str]) -> None:
        m = self.mock
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        auth = self.headers.get("Authorization")
        with m._lock:
            m.log.append({"method": self.command, "path": split.path, "query": query, "form": form, "authorization": auth})
        path = split.path
        if path == "/fhir/.well-known/smart-configuration":
            if not m.well_known:
                self._json(404, operation_outcome("not-found", "no SMART configuration"), "application/fhir+json")
            else:
                self._json(200, m.smart_configuration())
        elif path == "/fhir/metadata":
            self._json(200, m.capability_statement(), "application/fhir+json")
        elif path == "/auth/authorize" and self.command == "GET":
            status, headers, body = m.authorize(query)
            self._send(status, body, headers)
        elif path == "/auth/token" and self.command == "POST":
            status, body = m.token(form)
            self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json", "Cache-Control": "no-store"})
        elif path.startswith("/fhir/"):
            token = auth[7:] if isinstance(auth, str) and auth.startswith("Bearer ") else None
            if token not in m.tokens:
                self._send(401, json.dumps(operation_outcome("login", "bearer token required")).encode(),
                           {"Content-Type": "application/fhir+json", "WWW-Authenticate": 'Bearer realm="fhir"'})
                return
            parts = [p for p in path.split("/") if p][1:]
            params = parse_qsl(split.query, keep_blank_values=True) + list(form.items())
            if len(parts) == 1:
                self._json(200, m.fhir.search(parts[0], params, path), "application/fhir+json")
            elif len(parts) == 2 and parts[1] == "_search":
                self._json(200, m.fhir.search(parts[0], params, f"/fhir/{parts[0]}"), "application/fhir+json")
            elif len(parts) == 2:
                res = m.fhir.store.get(parts[0], {}).get(parts[1])
                if res is None:
                    self._json(404, operation_outcome("not-found", "not found"), "application/fhir+json")
                else:
                    self._json(200, res, "application/fhir+json")
            else:
                self._json(400, operation_outcome("not-supported", "not supported"), "application/fhir+json")
        else:
            self._json(404, {"error": "not found"})
