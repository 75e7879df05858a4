"""A small, real FHIR R4 server for tests: serves a fixed list of resources over HTTP on 127.0.0.1.

Why: the service must work when the EHR sends no prefetch and it has to fetch the record itself,
and real FHIR servers page, include referenced Medications only on request, are slow, and fail in
ugly ways (HTML error pages, truncated JSON, OperationOutcomes, 401s, hangs). This server lets the
vignettes and the robustness tests exercise exactly those paths without any network.

Usage::

    with FhirTestServer(resources, page_size=5) as srv:
        requests.get(f"{srv.base_url}/Observation?patient=p1")
        srv.requests  # the request log

Supported: ``GET /metadata``; ``GET /Type/id``; ``GET /Type?patient=ID`` (also ``patient=Patient/ID``,
``subject=Patient/ID``, ``subject=ID``, ``_id=ID``); ``POST /Type/_search`` (form body); ``_include``
of ``*:medication`` (and ``*:*``; ignored when ``include_supported=False``); ``_count``; paging with ``link[next]``; unknown parameters are
ignored. Searchset Bundles carry ``total`` (matches only, not includes). With ``filters=True`` the
token parameters ``code``, ``category``, ``intent`` and ``status`` filter (``system|code`` or a bare
code, comma = OR) as a US Core server does; otherwise they are ignored, as a server that sends the
whole record does. ``multiple_or=False`` refuses a comma list in ``code`` or ``category`` with 400
(multipleOr there is only SHOULD/MAY in US Core; for MedicationRequest.intent it is SHALL).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FAIL_MODES = ("500", "html", "broken-bundle", "hang", "operation-outcome", "401")
HANG_LIMIT_S = 30.0  # a hung request still ends: tests must never block forever
FHIR_JSON = "application/fhir+json; charset=utf-8"


def _ref_id(value: Any, rtype: str = "Patient") -> str | None:
    """'Patient/123', 'http://x/fhir/Patient/123' or '123' -> '123'."""
    if not isinstance(value, str) or not value:
        return None
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == rtype:
        return parts[-1]
    if len(parts) == 1:
        return parts[0]
    return None


def _patient_of(resource: dict[str, Any]) -> str | None:
    """The patient a resource belongs to (subject / patient reference, or itself for Patient)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict):
            pid = _ref_id(ref.get("reference"))
            if pid:
                return pid
    return None


def _codings(value: Any) -> list[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept, a list of them, or a plain code string."""
    if isinstance(value, str):
        return [("", value)]
    if isinstance(value, list):
        return [pair for v in value for pair in _codings(v)]
    if isinstance(value, dict):
        return [(str(c.get("system") or ""), str(c.get("code") or "")) for c in value.get("coding") or []
                if isinstance(c, dict)]
    return []


TOKEN_PARAMS = {"code": lambda r: _codings(r.get("code")), "category": lambda r: _codings(r.get("category")),
                "intent": lambda r: _codings(r.get("intent")), "status": lambda r: _codings(r.get("status"))}


class SearchRefused(Exception):
    """A search the server does not support (answered 400 with an OperationOutcome)."""


def _token_match(have: list[tuple[str, str]], wanted: str) -> bool:
    for token in wanted.split(","):
        system, bar, code = token.rpartition("|")
        if any(c == code and (not bar or s == system) for s, c in have):
            return True
    return False


def matches_tokens(resource: dict[str, Any], params: list[tuple[str, str]]) -> bool:
    """Whether a resource passes the token search parameters (code, category, intent, status) of a
    search, as a FHIR server applying them would judge; other parameters are not token filters."""
    return all(_token_match(TOKEN_PARAMS[key](resource), value) for key, value in params if key in TOKEN_PARAMS)


def operation_outcome(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


class _Server(ThreadingHTTPServer):
    # the default listen backlog (5) drops SYNs when a client fetches 8 searches in parallel,
    # which shows up as a 1-second TCP retransmit stall: not what a real FHIR server does
    request_queue_size = 128
    daemon_threads = True


class FhirTestServer:
    """Context manager running a threaded FHIR R4 test server on 127.0.0.1 (port chosen by the OS)."""

    def __init__(
        self,
        resources: Iterable[dict[str, Any]],
        delay_s: float = 0.0,
        fail: str | None = None,
        page_size: int | None = None,
        require_token: str | None = None,
        fail_types: Iterable[str] | None = None,
        include_supported: bool = True,
        filters: bool = False,
        multiple_or: bool = True,
    ) -> None:
        if fail is not None and fail not in FAIL_MODES:
            raise ValueError(f"fail must be one of {FAIL_MODES}, got {fail!r}")
        self.delay_s = delay_s
        self.fail = fail
        # restrict failures to some resource types (e.g. only Observation searches fail)
        self.fail_types = set(fail_types) if fail_types else None
        self.page_size = page_size
        # many real servers ignore _include=MedicationRequest:medication: the client must then read them
        self.include_supported = include_supported
        self.require_token = require_token
        self.filters = filters
        self.multiple_or = multiple_or
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        for res in resources:
            self.add(res)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ----------------------------------------------------------------- data
    def add(self, resource: dict[str, Any]) -> None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            raise ValueError("every served resource needs resourceType and id")
        self.store.setdefault(rtype, {})[rid] = resource

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> FhirTestServer:
        handler = type("Handler", (_Handler,), {"fhir": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/fhir"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # releases hung handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -------------------------------------------------------------- search
    def search(self, rtype: str, params: list[tuple[str, str]], path_for_links: str) -> dict[str, Any]:
        """A searchset Bundle for `rtype` with the given (already merged) parameters."""
        pool = list(self.store.get(rtype, {}).values())
        includes: list[str] = []
        count: int | None = None
        offset = 0
        for key, value in params:
            if not self.multiple_or and key in ("code", "category") and "," in value:
                raise SearchRefused(f"multiple values for '{key}' are not supported")
            base_key = key.split(":")[0]
            if base_key in ("patient", "subject"):
                pid = _ref_id(value)
                pool = [r for r in pool if _patient_of(r) == pid]
            elif key == "_id":
                ids = set(value.split(","))
                pool = [r for r in pool if r.get("id") in ids]
            elif key == "_include":
                includes.append(value)
            elif key == "_count":
                with contextlib.suppress(ValueError):
                    count = max(0, int(value))
            elif key == "_offset":
                with contextlib.suppress(ValueError):
                    offset = max(0, int(value))
            elif key in TOKEN_PARAMS and self.filters:
                pool = [r for r in pool if matches_tokens(r, [(key, value)])]
            # every other parameter is ignored, as many real servers do with unknown ones
        size = count if count is not None else self.page_size
        if self.page_size is not None and size is not None:
            size = min(size, self.page_size)
        total = len(pool)
        page = pool[offset: offset + size] if size is not None else pool[offset:]
        entries = [self._entry(r, "match") for r in page]
        if self.include_supported and any(inc.endswith(":medication") or inc.endswith(":*") for inc in includes):
            seen: set[str] = set()
            for r in page:
                ref = (r.get("medicationReference") or {}).get("reference") if isinstance(r.get("medicationReference"), dict) else None
                mid = _ref_id(ref, "Medication") if isinstance(ref, str) and not ref.startswith("#") else None
                if mid and mid not in seen and mid in self.store.get("Medication", {}):
                    seen.add(mid)
                    entries.append(self._entry(self.store["Medication"][mid], "include"))
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": f"search-{rtype}-{offset}",
            "type": "searchset",
            "total": total,
            "link": [{"relation": "self", "url": self._url(path_for_links, params)}],
            "entry": entries,
        }
        if size is not None and offset + size < total:
            nxt = [(k, v) for k, v in params if k != "_offset"] + [("_offset", str(offset + size))]
            if count is None and self.page_size is not None:
                nxt.append(("_count", str(size)))
            bundle["link"].append({"relation": "next", "url": self._url(path_for_links, nxt)})
        if not entries:
            del bundle["entry"]
        return bundle

    def _url(self, path: str, params: list[tuple[str, str]]) -> str:
        root = self.base_url.rsplit("/fhir", 1)[0]
        return f"{root}{path}" + (f"?{urlencode(params)}" if params else "")

    def _entry(self, resource: dict[str, Any], mode: str) -> dict[str, Any]:
        return {
            "fullUrl": f"{self.base_url}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": mode},
        }

    def capability_statement(self) -> dict[str, Any]:
        types = sorted(set(self.store) | {"Patient", "Condition", "Observation", "DiagnosticReport", "Procedure",
                                           "MedicationStatement", "MedicationRequest", "MedicationAdministration",
                                           "Medication"})
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-01-01",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "implementation": {"description": "mmcds test FHIR server", "url": self.base_url},
            "rest": [{
                "mode": "server",
                "resource": [
                    {
                        "type": t,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "patient", "type": "reference"},
                                        {"name": "subject", "type": "reference"}],
                        "searchInclude": [f"{t}:medication"] if t.startswith("Medication") and t != "Medication" else [],
                    }
                    for t in types
                ],
            }],
        }


class _Handler(BaseHTTPRequestHandler):
    fhir: FhirTestServer  # set on the per-server subclass
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return

    # ----------------------------------------------------------- plumbing
    def _send(self, status: int, body: bytes, content_type: str = FHIR_JSON, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), extra=extra)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle(body=b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(body=self.rfile.read(length) if length > 0 else b"")

    # ------------------------------------------------------------ routing
    def _handle(self, body: bytes) -> None:
        srv = self.fhir
        split = urlsplit(self.path)
        params = parse_qsl(split.query, keep_blank_values=True)
        path = split.path
        if self.command == "POST" and body:
            params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        srv._log({
            "method": self.command,
            "path": path,
            "query": split.query,
            "params": params,
            "authorization": self.headers.get("Authorization"),
            "accept": self.headers.get("Accept"),
            "time": time.time(),
        })
        if srv.delay_s:
            time.sleep(srv.delay_s)
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "fhir":
            self._json(404, operation_outcome("not-found", f"unknown path {path}"))
            return
        parts = parts[1:]
        rtype = parts[0] if parts else ""

        if srv.require_token is not None and self.headers.get("Authorization") != f"Bearer {srv.require_token}":
            self._json(401, operation_outcome("login", "missing or wrong bearer token"),
                       extra={"WWW-Authenticate": 'Bearer realm="fhir"'})
            return
        if srv.fail and (srv.fail_types is None or rtype in srv.fail_types):
            self._fail(srv.fail)
            return

        if parts == ["metadata"] and self.command == "GET":
            self._json(200, srv.capability_statement())
        elif len(parts) == 1 and self.command == "GET" or len(parts) == 2 and parts[1] == "_search" \
                and self.command == "POST":
            try:
                self._json(200, srv.search(rtype, params, path if len(parts) == 1 else f"/fhir/{rtype}"))
            except SearchRefused as exc:
                self._json(400, operation_outcome("not-supported", str(exc)))
        elif len(parts) == 2 and self.command == "GET":
            res = srv.store.get(rtype, {}).get(parts[1])
            if res is None:
                self._json(404, operation_outcome("not-found", f"{rtype}/{parts[1]} not found"))
            else:
                self._json(200, res)
        else:
            self._json(400, operation_outcome("not-supported", f"{self.command} {path} not supported"))

    def _fail(self, mode: str) -> None:
        if mode == "500":
            self._send(500, b'{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}')
        elif mode == "html":
            page = b"<!DOCTYPE html><html><head><title>Login</title></head><body><h1>Please sign in</h1></body></html>"
            self._send(200, page, content_type="text/html; charset=utf-8")
        elif mode == "broken-bundle":
            self._send(200, b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Obs')
        elif mode == "operation-outcome":
            self._json(400, operation_outcome("processing", "search failed: parameter not supported"))
        elif mode == "401":
            self._json(401, operation_outcome("login", "authentication required"),
                       extra={"WWW-Authenticate": 'Bearer realm="fhir"'})
        elif mode == "hang":
            self.fhir._stop.wait(HANG_LIMIT_S)
            with contextlib.suppress(OSError):
                self._send(504, b'{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"timeout"}]}')


def resources_from_prefetch(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """Unpack a CDS Hooks prefetch (Bundles and single resources) into unique resources to serve."""
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def keep(res: Any) -> None:
        if isinstance(res, dict) and isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
            out.setdefault((res["resourceType"], res["id"]), res)

    for value in (prefetch or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                if isinstance(entry, dict):
                    keep(entry.get("resource"))
        else:
            keep(value)
    return list(out.values())
