"""The EHR's FHIR token goes only to a FHIR server allowed for the calling issuer (security/forwarding.py):
per-issuer allow-list, the issuer's own origin by default, loopback and the allow-list in development;
anything else is refused 403 with a log line that names the host, never the token."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cds_service.app import create_app
from cds_service.config import load_settings
from cds_service.security.forwarding import TokenForwardingRefused, check_destination, scope_for, use_scope
from tests.builders import hook_request, len_refractory_patient
from tests.fhir_server import FhirTestServer, resources_from_prefetch
from tests.jwt_helpers import TestKey, bearer, claims, jwks, sign

ISS = "https://ehr.example.org"
KEY = TestKey("ec384", "fwd")
TOKEN = "fhir-access-token-never-forwarded"


def _scope(auth: str, issuer: str | None = ISS, allow: dict | None = None):
    cfg = {"AUTH_MODE": auth, "TRUSTED_ISSUERS": {ISS: "builtin:cds-hooks-sandbox"}}
    if allow is not None:
        cfg["FHIR_SERVER_ALLOWLIST"] = allow
    return scope_for(load_settings(cfg, environ={}), issuer)


@pytest.mark.parametrize(("server", "allowed"), [
    ("https://ehr.example.org/fhir/R4", True),  # the issuer's own origin: the documented default
    ("https://ehr.example.org:443/other", True),
    ("http://ehr.example.org/fhir", False),  # another scheme is another origin
    ("https://ehr.example.org.evil.test/fhir", False),
    ("https://ehr.example.org@evil.test/fhir", False),
    ("https://fhir.partner.org/R4", True),  # allow-listed for this issuer (path prefix)
    ("https://fhir.partner.org/R4/Patient", True),
    ("https://fhir.partner.org/R4x", False),  # a prefix ends at a path segment
    ("https://fhir.partner.org/", False),
    ("https://shared.example.net/fhir", True),  # "*": every issuer
    ("http://127.0.0.1:8080/fhir", False),  # loopback is no exception under JWT
    ("http://10.0.0.5/internal", False),
    ("not a url", False),
])
def test_jwt_scope_is_the_issuer_origin_plus_its_allow_list(server, allowed):
    scope = _scope("jwt", allow={ISS: ["https://fhir.partner.org/R4/"], "*": ["https://shared.example.net"],
                                 "https://other-issuer.example": ["http://10.0.0.5"]})
    assert scope.allows(server) is allowed


def test_unauthenticated_jwt_calls_and_development_scope():
    assert not _scope("jwt", issuer=None).allows("https://ehr.example.org/fhir")
    dev = _scope("none", allow={ISS: ["https://fhir.partner.org/R4"]})
    assert dev.allows("http://127.0.0.1:9/fhir") and dev.allows("http://localhost/fhir")
    assert dev.allows("http://[::1]:8080/fhir") and dev.allows("https://fhir.partner.org/R4/x")
    assert not dev.allows("http://hooks.smarthealthit.org:9080") and not dev.allows("http://10.1.2.3/fhir")


def test_check_destination_only_guards_calls_that_carry_a_token():
    with use_scope(_scope("jwt")):
        check_destination("https://anywhere.example/fhir", None)  # no token, nothing to leak
        check_destination("https://ehr.example.org/fhir", TOKEN)
        with pytest.raises(TokenForwardingRefused) as info:
            check_destination("http://10.0.0.5/fhir", TOKEN)
    assert TOKEN not in str(info.value) and "10.0.0.5" in str(info.value)


@pytest.fixture
def chart():
    prefetch = len_refractory_patient()
    with FhirTestServer(resources_from_prefetch(prefetch)) as srv:
        yield srv


def _app(tmp_path: Path, **config):
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(KEY)))
    return create_app({"AUTH_MODE": "jwt", "TRUSTED_ISSUERS": {ISS: str(tmp_path / "jwks.json")},
                       "PUBLIC_BASE_URL": "http://cds.test", "DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}",
                       "DATA_DIR": str(tmp_path), "AS_OF_DATE": "2026-11-01", "WARMUP": "false", **config})


def _call(client, server: str):
    body = hook_request("patient-view", None)
    body["fhirServer"] = server
    body["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "mmcds"}
    path = "/cds-services/mm-next-line"
    token = sign(KEY, claims(ISS, f"http://cds.test{path}"))
    return client.post(path, json=body, headers={"Authorization": bearer(token)})


def test_internal_server_never_receives_the_token_under_jwt(tmp_path, chart, caplog):
    client = _app(tmp_path).test_client()
    with caplog.at_level(logging.INFO):
        resp = _call(client, chart.base_url)  # a loopback URL: not the issuer's, not allow-listed
    assert resp.status_code == 403, resp.data
    assert resp.get_json()["error"] == "fhirServer not allowed"
    assert chart.requests == []  # nothing was sent at all
    refused = [r for r in caplog.records if r.getMessage() == "fhir token forwarding refused"]
    assert refused and refused[0].url_host == "127.0.0.1"
    assert TOKEN not in caplog.text and TOKEN not in resp.get_data(as_text=True)


def test_allow_listed_server_gets_the_token(tmp_path, chart):
    client = _app(tmp_path, FHIR_SERVER_ALLOWLIST={ISS: [chart.base_url]}).test_client()
    resp = _call(client, chart.base_url)
    assert resp.status_code == 200, resp.data
    assert resp.get_json()["cards"]
    assert chart.requests and {r["authorization"] for r in chart.requests} == {f"Bearer {TOKEN}"}


def test_development_mode_sends_the_token_to_loopback_only(tmp_path, chart):
    app = create_app({"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}",
                      "DATA_DIR": str(tmp_path), "AS_OF_DATE": "2026-11-01", "WARMUP": "false"})
    client = app.test_client()
    body = hook_request("patient-view", None)
    body["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "mmcds"}
    assert client.post("/cds-services/mm-next-line", json={**body, "fhirServer": chart.base_url}).status_code == 200
    assert chart.requests
    refused = client.post("/cds-services/mm-next-line", json={**body, "fhirServer": "http://10.255.255.1/fhir"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "fhirServer not allowed"


def test_image_defaults_to_jwt_mode():
    dockerfile = (Path(__file__).resolve().parent.parent / "deploy" / "Dockerfile").read_text()
    env_lines = " ".join(dockerfile.replace("\\\n", " ").split("\nENV ")[1:])
    assert "MMCDS_AUTH_MODE=jwt" in env_lines
