"""The HTTP side of authentication and CORS: which endpoints need a token, what a refusal says."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask, jsonify

from cds_service.config import load_settings
from cds_service.http import auth, cors, feedback
from cds_service.store.db import Store
from tests.jwt_helpers import TestKey, bearer, claims, jwks, sign

ISS = "https://sandbox.cds-hooks.org"
KEY = TestKey("ec384", "sandbox-key")
OTHER = TestKey("ec384", "sandbox-key")
PUBLIC = "https://cds.example.org"


def build_app(tmp_path: Path, **config) -> Flask:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks(KEY)))
    cfg = {"AUTH_MODE": "jwt", "TRUSTED_ISSUERS": {ISS: str(jwks_file)}}
    cfg.update(config)
    settings = load_settings(cfg, environ={})
    store = Store(f"sqlite:///{tmp_path / 'http.sqlite3'}")
    store.create_schema()
    # feedback is checked against the audit of issued cards: the card `feedback_body` names was issued
    store.record_audit(hook_instance="h", service_id="mm-next-line", hook="patient-view",
                       cards=[{"uuid": "c-1", "suggestions": [{"uuid": "s-1"}]}], input_hash="0" * 64, timings_ms={},
                       knowledge_version="kv")
    runtime = SimpleNamespace(settings=settings, store=store)
    app = Flask("t")
    app.extensions["mmcds"] = runtime
    cors.install(app, settings)
    auth.install(app, lambda: runtime)
    app.register_blueprint(feedback.bp)

    @app.get("/cds-services")
    def discovery():
        return jsonify({"services": []})

    @app.post("/cds-services/<service_id>")
    def invoke(service_id: str):
        return jsonify({"cards": []})

    return app


def feedback_body() -> dict:
    return {"feedback": [{"card": "c-1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}],
                          "outcomeTimestamp": "2026-11-21T05:00:00.000Z"}]}


def test_valid_token_passes_with_public_base_url(tmp_path):
    client = build_app(tmp_path, PUBLIC_BASE_URL=PUBLIC).test_client()
    token = sign(KEY, claims(ISS, f"{PUBLIC}/cds-services/mm-next-line"))
    resp = client.post("/cds-services/mm-next-line", json={}, headers={"Authorization": bearer(token)})
    assert resp.status_code == 200, resp.data
    token = sign(KEY, claims(ISS, f"{PUBLIC}/cds-services/mm-next-line/feedback"))
    resp = client.post("/cds-services/mm-next-line/feedback", json=feedback_body(),
                       headers={"Authorization": bearer(token)})
    assert resp.status_code == 200, resp.data


def test_audience_derived_from_request_without_public_base_url(tmp_path):
    client = build_app(tmp_path).test_client()
    token = sign(KEY, claims(ISS, "http://localhost:8080/cds-services/mm-order-sign"))
    resp = client.post("/cds-services/mm-order-sign", json={}, headers={"Authorization": bearer(token)},
                       base_url="http://localhost:8080")
    assert resp.status_code == 200


def test_host_header_is_not_trusted_when_public_base_url_is_set(tmp_path):
    client = build_app(tmp_path, PUBLIC_BASE_URL=PUBLIC).test_client()
    token = sign(KEY, claims(ISS, "http://other-service.example/cds-services/mm-next-line"))
    resp = client.post("/cds-services/mm-next-line", json={}, headers={"Authorization": bearer(token)},
                       base_url="http://other-service.example")
    assert resp.status_code == 401


def test_aud_alias_is_accepted(tmp_path):
    alias = "https://epic-configured.example.org/cds"
    client = build_app(tmp_path, PUBLIC_BASE_URL=PUBLIC, AUD_ALIASES=json.dumps([alias])).test_client()
    resp = client.post("/cds-services/mm-next-line", json={},
                       headers={"Authorization": bearer(sign(KEY, claims(ISS, alias)))})
    assert resp.status_code == 200


@pytest.mark.parametrize("path", ["/cds-services/mm-next-line", "/cds-services/mm-next-line/feedback",
                                  "/cds-services/no-such-service"])
@pytest.mark.parametrize("kind", ["missing", "forged", "replayed"])
def test_refusals_are_bare_401(tmp_path, path, kind):
    client = build_app(tmp_path, PUBLIC_BASE_URL=PUBLIC).test_client()
    headers = {}
    if kind == "forged":
        headers["Authorization"] = bearer(sign(OTHER, claims(ISS, PUBLIC + path)))
    elif kind == "replayed":
        token = sign(KEY, claims(ISS, PUBLIC + path))
        headers["Authorization"] = bearer(token)
        client.post(path, json=feedback_body(), headers=headers)
    resp = client.post(path, json=feedback_body(), headers=headers)
    assert resp.status_code == 401
    assert resp.get_json() == {"error": "unauthorized", "detail": "invalid or missing bearer token"}
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_discovery_and_preflight_stay_open(tmp_path):
    client = build_app(tmp_path).test_client()
    assert client.get("/cds-services").status_code == 200
    resp = client.options("/cds-services/mm-next-line", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert int(resp.headers["Access-Control-Max-Age"]) > 0


def test_auth_mode_none_lets_requests_through_and_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        client = build_app(tmp_path, AUTH_MODE="none").test_client()
    assert any("AUTH_MODE=none" in r.getMessage() for r in caplog.records)
    assert client.post("/cds-services/mm-next-line", json={}).status_code == 200


def test_cors_headers_on_normal_and_error_responses(tmp_path):
    client = build_app(tmp_path).test_client()
    resp = client.post("/cds-services/mm-next-line", json={}, headers={"Origin": "http://localhost:3000"})
    assert resp.status_code == 401
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/cds-services", headers={"Origin": "http://x"}).headers["Access-Control-Allow-Origin"] == "*"


def test_cors_origin_list_echoes_only_allowed_origins(tmp_path):
    client = build_app(tmp_path, AUTH_MODE="none", CORS_ORIGINS="https://sandbox.cds-hooks.org").test_client()
    ok = client.options("/cds-services/mm-next-line", headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    assert "Origin" in ok.headers["Vary"]
    normal = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert normal.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    assert "Origin" in normal.headers["Vary"]
    bad = client.options("/cds-services/mm-next-line", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in bad.headers
    assert "Access-Control-Allow-Origin" not in client.get("/cds-services", headers={"Origin": "https://evil.example"}).headers


def test_store_outage_fails_closed_with_503(tmp_path):
    app = build_app(tmp_path, PUBLIC_BASE_URL=PUBLIC)

    class DownStore:
        def claim_jti(self, *_a):
            raise ConnectionError("db down")

    app.extensions["mmcds"].store = DownStore()
    token = sign(KEY, claims(ISS, f"{PUBLIC}/cds-services/mm-next-line"))
    resp = app.test_client().post("/cds-services/mm-next-line", json={}, headers={"Authorization": bearer(token)})
    assert resp.status_code == 503
    assert resp.get_json() == {"error": "unavailable", "detail": "authentication is temporarily unavailable"}


def test_refusal_is_logged_with_reason_and_trusted_issuer_only(tmp_path, caplog):
    client = build_app(tmp_path, PUBLIC_BASE_URL=PUBLIC).test_client()
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        client.post("/cds-services/mm-next-line", json={},
                    headers={"Authorization": bearer(sign(KEY, claims(ISS, "https://wrong.example/x")))})
        client.post("/cds-services/mm-next-line", json={},
                    headers={"Authorization": bearer(sign(KEY, claims("https://evil.example", "x")))})
    first, second = [r for r in caplog.records if r.getMessage() == "token refused"]
    assert first.reason == "audience mismatch" and first.issuer == ISS
    assert second.reason == "issuer not trusted" and second.issuer is None


def test_concurrent_tokens_pass_and_a_concurrent_replay_wins_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    app = build_app(tmp_path, PUBLIC_BASE_URL=PUBLIC)
    aud = f"{PUBLIC}/cds-services/mm-next-line"

    def call(token: str) -> int:
        return app.test_client().post("/cds-services/mm-next-line", json={},
                                      headers={"Authorization": bearer(token)}).status_code

    distinct = [sign(KEY, claims(ISS, aud)) for _ in range(60)]
    same = [sign(KEY, claims(ISS, aud))] * 40
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(call, distinct)) == [200] * 60
        assert sorted(pool.map(call, same)) == [200] + [401] * 39
