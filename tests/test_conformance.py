"""The conformance harness: passes against a correct service, fails (loudly, by name) against broken ones.

Most runs use the app in a threaded werkzeug server in this process (fast); `test_serve.py` runs the
same command against a real gunicorn `serve`.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from werkzeug.serving import make_server

from cds_service import conformance
from cds_service.app import create_app
from cds_service.cli import build_parser
from cds_service.conformance import Harness, Signer, check_main, expected_statuses, jwk_thumbprint, load_fixtures
from tests.jwt_helpers import TestKey
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-01"
KEYS = ["patient", "conditions", "observations", "medicationRequests"]


@contextmanager
def served(app: Any, port: int | None = None) -> Iterator[str]:
    """A WSGI app on 127.0.0.1 in a thread; yields its base URL."""
    server = make_server("127.0.0.1", port or 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}", "AS_OF_DATE": AS_OF,
            "DATA_DIR": str(tmp_path), **extra}


def _run(base_url: str, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    args = build_parser().parse_args(["check", "--base-url", base_url, "--timeout", "20", *extra])
    code = args.func(args)
    out = capsys.readouterr().out
    return code, out.rstrip("\n").splitlines()


def _summary(lines: list[str]) -> tuple[int, int]:
    passed, _, rest = lines[-1].partition(" passed, ")
    assert rest.endswith(" failed"), lines[-1]
    return int(passed), int(rest.removesuffix(" failed"))


# ------------------------------------------------------------------------------------ unit level


def test_expected_status_is_read_from_the_fixture() -> None:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    full = {"prefetch": {k: bundle for k in KEYS}}
    assert expected_statuses(full, KEYS) == (200,)
    assert expected_statuses({"prefetch": {"patientToGreet": {"resourceType": "Patient"}}}, KEYS) == (412,)
    assert expected_statuses({}, KEYS) == (412,)
    assert expected_statuses({"prefetch": None}, KEYS) == (412,)
    partial = {"prefetch": {"conditions": bundle, "patient": None}}
    assert expected_statuses(partial, KEYS) == (200, 412)
    outcome = {"prefetch": {k: {"resourceType": "OperationOutcome"} for k in KEYS}}
    assert expected_statuses(outcome, KEYS) == (412,)


def test_fixtures_are_found_from_the_package_data_root() -> None:
    fixtures = load_fixtures()
    names = {f.path for f in fixtures}
    assert "spec/patient-view-request.json" in names and "spec/order-select-request.json" in names
    assert "spec/discovery.json" not in names and "spec/response.json" not in names  # not requests
    assert all(isinstance(f.request["context"], dict) for f in fixtures)
    patients = [f for f in fixtures if f.path.startswith("patients/")]
    assert len(patients) == len(list((ROOT / "fixtures" / "patients").glob("*.json")))


def test_fixture_sent_without_fhir_server_and_with_fresh_hook_instance() -> None:
    request = json.loads((ROOT / "fixtures" / "spec" / "patient-view-request.json").read_text())
    sent = conformance.as_sent(request)
    assert "fhirServer" not in sent and "fhirAuthorization" not in sent
    assert sent["hookInstance"] != request["hookInstance"] and sent["context"] == request["context"]


@pytest.mark.parametrize("kind,alg", [("ec384", "ES384"), ("rsa", "RS384"), ("ec256", "ES256")])
def test_signer_picks_alg_by_key_type_and_signs_cds_hooks_claims(kind: str, alg: str) -> None:
    import jwt

    key = TestKey(kind, "k1")
    pem = key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    signer = Signer(pem, "https://ehr.test")
    assert signer.alg == alg and signer.kid == jwk_thumbprint(key.public)
    aud = "https://cds.example.org/cds-services/mm-next-line"
    token = signer.token(aud)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "typ": "JWT", "kid": signer.kid}
    claims = jwt.decode(token, key.public, algorithms=[alg], audience=aud, issuer="https://ehr.test")
    assert {"iss", "aud", "exp", "iat", "jti"} <= claims.keys() and claims["exp"] - claims["iat"] == 300
    assert signer.token(aud) != token  # a fresh jti every time
    assert Signer(pem, "https://ehr.test", kid="mine").kid == "mine"


def test_rfc7638_thumbprint_matches_pyjwt() -> None:
    from jwt.algorithms import ECAlgorithm

    key = TestKey("ec384", "x")
    jwk = json.loads(ECAlgorithm.to_jwk(key.public))
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    import base64
    import hashlib

    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    assert jwk_thumbprint(key.public) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_contract_rules_beyond_the_schema() -> None:
    def card(kind: str, version: str = "v1") -> dict[str, Any]:
        return {"extension": {"org.mmcds.card": {"kind": kind, "knowledgeVersion": version}}}

    assert conformance.contract_problem("patient-view", [card("state"), card("options"), card("notice")], "v1") is None
    assert conformance.contract_problem("order-sign", [card("finding")], "v1") is None
    assert "not allowed for order-select" in conformance.contract_problem("order-select", [card("state")], "v1")
    assert "not allowed for patient-view" in conformance.contract_problem("patient-view", [card("finding")], None)
    assert "more than one state card" in conformance.contract_problem("patient-view", [card("state"), card("state")],
                                                                        None)
    assert "knowledgeVersion v0" in conformance.contract_problem("patient-view", [card("state", "v0")], "v1")
    assert conformance.contract_problem("patient-view", [card("state", "v0")], None) is None


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_main(argparse.Namespace(base_url="ftp://x", jwt_key=None, issuer=None, kid=None, timeout=1)) == 2
    key = tmp_path / "k.pem"
    key.write_text("not a key")
    ns = argparse.Namespace(base_url="http://127.0.0.1:9", jwt_key=str(key), issuer=None, kid=None, timeout=1)
    assert check_main(ns) == 2
    ns.issuer = "https://ehr.test"
    assert check_main(ns) == 2
    assert "cannot use" in capsys.readouterr().err


def test_unreachable_deployment_fails_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(f"http://127.0.0.1:{free_port()}", capsys=capsys)
    assert code == 1
    assert _summary(lines) == (0, 1)
    assert lines[-2].startswith("FAIL") and "request failed" in lines[-2]


# ------------------------------------------------------------------- against the real application


def test_check_passes_against_the_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(_config(tmp_path))
    fixtures = load_fixtures()  # before the run (others may add fixtures meanwhile)
    with served(app) as url:
        code, lines = _run(url, capsys=capsys)
    assert code == 0, "\n".join(line for line in lines if line.startswith("FAIL"))
    passed, failed = _summary(lines)
    assert failed == 0
    body = "\n".join(lines)
    for sid in ("mm-next-line", "mm-order-check", "mm-order-sign"):
        assert any(line.startswith("PASS") and f" {sid} " in line for line in lines), sid
    fixture_lines = [line for line in lines if "  fixture " in line]
    assert len(fixture_lines) >= len(fixtures)  # every fixture through every matching service
    for fx in fixtures:
        assert f"fixture {fx.path}" in body
    assert "spec/order-select-request.json" in body and "412 JSON error" in body
    for case in ("→ 404 JSON", "malformed JSON → 400", "wrong hook", "→ 415 JSON", "missing context → 400",
                 "→ 413 JSON", "feedback: accept", "feedback: override", "preflight"):
        assert case in body, case
    assert passed > 40
    assert lines[0].startswith("conformance check of http://127.0.0.1:")
    assert lines[1].split()[:3] == ["RESULT", "SERVICE", "CHECK"]
    for case in ("the same decision posted again → 200", "never issued → 422"):
        assert case in body, case
    # The harness's calls are marked: its cards and feedback never reach the clinicians' report.
    store = app.extensions["mmcds"].store
    assert {r["origin"] for r in store.audit_rows()} == {"check"}
    report = store.feedback_report()
    assert report["total"] == 0 and report["byRule"] == {} and report["excluded"]["check"] == 2


def _pem_file(tmp_path: Path, key: TestKey) -> Path:
    path = tmp_path / f"{key.kid}.pem"
    path.write_bytes(key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return path


@pytest.mark.parametrize("kind", ["ec384", "rsa"])
def test_check_signs_every_call_in_jwt_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    key = TestKey(kind, f"conformance-{kind}")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.jwk()]}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(_config(tmp_path, AUTH_MODE="jwt", PUBLIC_BASE_URL=base,
                             TRUSTED_ISSUERS={"https://ehr.test": str(tmp_path / "jwks.json")}))
    with served(app, port) as url:
        assert url == base
        code, lines = _run(url, "--jwt-key", str(_pem_file(tmp_path, key)), "--issuer", "https://ehr.test",
                           "--kid", key.kid, capsys=capsys)
        body = "\n".join(lines)
        assert code == 0, "\n".join(line for line in lines if line.startswith("FAIL"))
        assert f"signed {key.alg}" in lines[0]
        for sid in ("mm-next-line", "mm-order-check", "mm-order-sign"):
            assert any(sid in line and "unsigned call → 401" in line and line.startswith("PASS") for line in lines)
        assert "replayed token" in body and "token for another endpoint" in body
        # Signed with a key the deployment does not trust: every hook call is refused → the check fails.
        stranger = TestKey(kind, "stranger")
        code, lines = _run(url, "--jwt-key", str(_pem_file(tmp_path, stranger)), "--issuer", "https://ehr.test",
                           capsys=capsys)
    assert code == 1
    failures = [line for line in lines if line.startswith("FAIL")]
    assert any("fixture" in line and "status 401" in line for line in failures)
    assert _summary(lines)[1] == len(failures)


def test_check_in_jwt_mode_fails_against_an_open_deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--jwt-key promises the deployment refuses unsigned calls; an AUTH_MODE=none service does not."""
    key = TestKey("ec384", "k")
    with served(create_app(_config(tmp_path))) as url:
        code, lines = _run(url, "--jwt-key", str(_pem_file(tmp_path, key)), "--issuer", "https://ehr.test",
                           capsys=capsys)
    assert code == 1
    failures = [line for line in lines if line.startswith("FAIL")]
    assert failures and all("401" in line for line in failures)


# ------------------------------------------------------------------------- against broken services


def _middleware(app: Any, mutate: Callable[[str, str, int, bytes], tuple[int, bytes, str] | None]) -> Any:
    """Wrap a WSGI app; `mutate(method, path, status, body)` may replace (status, body, content type)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = b"".join(app(environ, capture))
        status = int(captured["status"].split()[0])
        headers = captured["headers"]
        changed = mutate(environ["REQUEST_METHOD"], environ["PATH_INFO"], status, body)
        if changed is not None:
            status, body, ctype = changed
            headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
            headers += [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        start_response(f"{status} X", headers)
        return [body]

    return wsgi


def _failures_against(tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Callable[..., Any]) -> list[str]:
    app = create_app(_config(tmp_path))
    with served(_middleware(app.wsgi_app, mutate)) as url:
        code, lines = _run(url, capsys=capsys)
    failures = [line for line in lines if line.startswith("FAIL")]
    assert code == 1 and failures
    assert _summary(lines)[1] == len(failures)
    return failures


def test_invalid_cards_are_reported_by_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def drop_indicator(method: str, path: str, status: int, body: bytes) -> Any:
        if method == "POST" and path == "/cds-services/mm-next-line" and status == 200:
            data = json.loads(body)
            for card in data["cards"]:
                card.pop("indicator", None)
            return 200, json.dumps(data).encode(), "application/json"
        return None

    failures = _failures_against(tmp_path, capsys, drop_indicator)
    assert all("mm-next-line" in line and "fixture patients/" in line and "response schema" in line
               for line in failures)
    with_cards = [f for f in load_fixtures() if f.request["hook"] == "patient-view" and f.path.startswith("patients/")]
    assert 0 < len(failures) <= len(with_cards)


def test_html_errors_and_wrong_statuses_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def break_errors(method: str, path: str, status: int, body: bytes) -> Any:
        if status == 413:
            return 413, b"<html><body>Too large</body></html>", "text/html"
        if status == 415:
            return 400, body, "application/json"
        if status == 412:  # a service that answers 200 with no cards when it had no data
            return 200, b'{"cards": []}', "application/json"
        return None

    failures = _failures_against(tmp_path, capsys, break_errors)
    text = "\n".join(failures)
    assert "→ 413 JSON" in text and "error body is not a JSON object" in text
    assert sum("→ 415 JSON" in line and "status 400, expected 415" in line for line in failures) == 3
    assert "fixture spec/order-select-request.json" in text and "status 200, expected 412" in text


def test_a_replica_with_other_knowledge_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def stale_knowledge(method: str, path: str, status: int, body: bytes) -> Any:
        if method == "POST" and path == "/cds-services/mm-order-check" and status == 200:
            data = json.loads(body)
            for card in data["cards"]:
                card["extension"]["org.mmcds.card"]["knowledgeVersion"] = "1999.01.0"
            return 200, json.dumps(data).encode(), "application/json"
        return None

    failures = _failures_against(tmp_path, capsys, stale_knowledge)
    assert all("mm-order-check" in line and "knowledgeVersion 1999.01.0" in line for line in failures)


def test_missing_service_and_cors_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def hide_and_close(method: str, path: str, status: int, body: bytes) -> Any:
        if method == "GET" and path == "/cds-services":
            data = json.loads(body)
            data["services"] = [s for s in data["services"] if s["id"] != "mm-order-sign"]
            return 200, json.dumps(data).encode(), "application/json"
        if method == "OPTIONS":
            return 405, b"{}", "application/json"
        return None

    failures = _failures_against(tmp_path, capsys, hide_and_close)
    assert any("mm-order-sign" in line and "listed in discovery" in line and "missing" in line for line in failures)
    assert any("cors" in line and "preflight" in line for line in failures)


def test_output_table_lines_up(capsys: pytest.CaptureFixture[str]) -> None:
    results = [conformance.CheckResult("discovery", "a", True, "ok", 1.0),
               conformance.CheckResult("mm-next-line", "a longer check", False, "bad", None)]
    out = io.StringIO()
    conformance.render_table(results, out)
    lines = out.getvalue().splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[1].startswith("PASS  ") and lines[2].startswith("FAIL  ")
    assert lines[1].index("ok") == lines[2].index("bad")


def test_harness_defaults_to_shipped_fixtures() -> None:
    assert Harness("http://x/").base_url == "http://x"
    assert Harness("http://x").fixtures is None
