"""The SMART-on-FHIR evidence viewer: the full EHR launch against a local authorization + FHIR server.

The Flask test client plays the browser (it keeps the launch cookie); the redirects to and from the
mock EHR are followed by hand, the authorize step over real HTTP.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cds_service.http import sandbox, smart
from tests.fhir_server import resources_from_prefetch
from tests.smart_mock import SmartMock


def _patient_view_fixtures() -> list[sandbox.Fixture]:
    return [f for f in sandbox.all_fixtures() if f.group == "patients" and f.hook == "patient-view"]


def _rich_fixture(client) -> tuple[sandbox.Fixture, list[dict[str, Any]]]:
    """A shipped myeloma patient with an options card that has options and an avoid list."""
    for fx in _patient_view_fixtures():
        cards = client.post("/cds-services/mm-next-line", json=fx.request).get_json()["cards"]
        opt = next((c for c in cards if c["extension"]["org.mmcds.card"]["kind"] == "options"), None)
        ext = opt["extension"]["org.mmcds.card"] if opt else {}
        if opt and len(ext.get("options") or []) >= 2 and ext.get("avoid"):
            return fx, cards
    pytest.fail("no shipped patient-view fixture with options and an avoid list")


def _mock_for(fx: sandbox.Fixture, **kw: Any) -> SmartMock:
    return SmartMock(resources_from_prefetch(fx.request["prefetch"]), fx.request["context"]["patientId"], **kw)


def launch(client, ehr: SmartMock, **query: str):
    """The EHR opens the app: /smart/launch → authorization server → back to /smart/redirect."""
    params = {"iss": ehr.iss, "launch": ehr.launch_id, **query}
    resp = client.get("/smart/launch", query_string=params)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    location = resp.headers["Location"]
    assert location.startswith(ehr.authorize_url + "?")
    back = requests.get(location, allow_redirects=False, timeout=10)
    assert back.status_code == 302
    target = urlsplit(back.headers["Location"])
    assert target.path == "/smart/redirect"
    return resp, client.get(target.path, query_string=target.query)


def test_full_launch_shows_the_evidence_view(client, app, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    fx, cards = _rich_fixture(client)
    with _mock_for(fx) as ehr:
        first, page = launch(client, ehr)

        # the authorization request (SMART App Launch, EHR launch, public client + PKCE)
        q = {k: v[0] for k, v in parse_qs(urlsplit(first.headers["Location"]).query).items()}
        assert q["response_type"] == "code"
        assert q["client_id"] == "mmcds-evidence-viewer"
        assert q["redirect_uri"] == "http://localhost/smart/redirect"
        assert q["launch"] == ehr.launch_id
        assert q["aud"] == ehr.iss
        assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
        assert len(q["state"]) >= 22
        scopes = q["scope"].split()
        assert "launch" in scopes and "patient/MedicationRequest.read" in scopes and "patient/Observation.read" in scopes
        assert not any(s.startswith(("user/", "system/")) or s.endswith(".write") or "*" in s for s in scopes)
        # the launch cookie: signed, HttpOnly, scoped, and it holds no verifier
        cookie = first.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/smart" in cookie

        # the code exchange and the FHIR reads
        token_calls = [e for e in ehr.log if e["path"] == "/auth/token"]
        assert len(token_calls) == 1
        form = token_calls[0]["form"]
        assert form["grant_type"] == "authorization_code" and form["client_id"] == "mmcds-evidence-viewer"
        assert form["code_verifier"] not in cookie and q["state"] not in form["code_verifier"]
        token = next(iter(ehr.tokens))
        fhir_calls = [e for e in ehr.log if e["path"].startswith("/fhir/") and "well-known" not in e["path"]]
        assert fhir_calls, "the record was not read from the FHIR server"
        assert all(e["authorization"] == f"Bearer {token}" for e in fhir_calls)
        read_types = {e["path"].split("/")[2] for e in fhir_calls}
        assert {"Condition", "MedicationRequest", "Observation"} <= read_types

    assert page.status_code == 200, page.get_data(as_text=True)[:1000]
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # the token never reaches the browser or the logs; neither does the patient id reach the logs
    assert token not in html and token not in page.headers.get("Set-Cookie", "")
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err):
        assert token not in text
        assert fx.request["context"]["patientId"] not in text
    # the full evidence view: lines, refractoriness with evidence, cytogenetics, transplant, options, avoid, sources
    state = cards[0]["extension"]["org.mmcds.card"]["state"]
    ext = next(c for c in cards if c["extension"]["org.mmcds.card"]["kind"] == "options")["extension"]["org.mmcds.card"]
    for heading in ("Lines of therapy", "Refractoriness by agent", "Cytogenetics", "Transplant", "Next-line options",
                    "Avoid", "Sources"):
        assert heading in html
    assert f'Lines of therapy <span class="count">{state["priorLines"]}</span>' in html
    for agent, status in state["agents"].items():
        assert f"<td><b>{agent}</b></td><td><span class=\"chip st-{status}\">{status}</span>" in html
    for option in ext["options"]:
        assert f'<b class="option-regimen">{option["regimen"]}</b>' in html
        if option.get("grade"):
            assert f"grade {option['grade']}" in html
    for avoid in ext["avoid"]:
        assert f"<b>{avoid['regimen']}</b>" in html
    assert ext["setting"] in html
    assert "https://doi.org/" in html and "?term=" not in html  # sources open the work, never a search
    assert "Trials, figures and reasoning" in html


@pytest.mark.parametrize("fx", _patient_view_fixtures(), ids=lambda f: f.key.split("/")[-1][:40])
def test_every_shipped_patient_completes_the_flow(fx, app_config):
    from cds_service.app import create_app

    client = create_app(app_config).test_client()
    expected = client.post("/cds-services/mm-next-line", json=fx.request).get_json()["cards"]
    with _mock_for(fx) as ehr:
        _, page = launch(client, ehr)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    if not expected:
        assert "No multiple myeloma diagnosis" in html
        return
    opt = next((c for c in expected if c["extension"]["org.mmcds.card"]["kind"] == "options"), None)
    for option in (opt["extension"]["org.mmcds.card"].get("options") or []) if opt else []:
        assert f'<b class="option-regimen">{option["regimen"]}</b>' in html
    for c in expected:
        if c["extension"]["org.mmcds.card"]["kind"] == "notice":
            assert c["summary"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;") in html


def test_discovery_falls_back_to_metadata(client):
    fx, _ = _rich_fixture(client)
    with _mock_for(fx, well_known=False) as ehr:
        _, page = launch(client, ehr)
        assert any(e["path"] == "/fhir/metadata" for e in ehr.log)
    assert page.status_code == 200 and "Next-line options" in page.get_data(as_text=True)


def test_state_is_checked_and_single_use(client):
    fx, _ = _rich_fixture(client)
    with _mock_for(fx) as ehr:
        first = client.get("/smart/launch", query_string={"iss": ehr.iss, "launch": ehr.launch_id})
        back = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
        target = urlsplit(back.headers["Location"])
        params = {k: v[0] for k, v in parse_qs(target.query).items()}
        forged = client.get("/smart/redirect", query_string={"code": params["code"], "state": "forged-state"})
        assert forged.status_code == 400 and "Launch expired" in forged.get_data(as_text=True)
        assert client.get("/smart/redirect", query_string={"code": "c", "state": "é✓"}).status_code == 400
        assert not [e for e in ehr.log if e["path"] == "/auth/token"], "a forged state must not reach the token endpoint"
        ok = client.get("/smart/redirect", query_string=params)
        assert ok.status_code == 200
        replay = client.get("/smart/redirect", query_string=params)
        assert replay.status_code == 400


def test_a_different_browser_cannot_complete_the_launch(client, app):
    fx, _ = _rich_fixture(client)
    with _mock_for(fx) as ehr:
        first = client.get("/smart/launch", query_string={"iss": ehr.iss, "launch": ehr.launch_id})
        back = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
        target = urlsplit(back.headers["Location"])
        other = app.test_client()  # no launch cookie
        resp = other.get(target.path, query_string=target.query)
        assert resp.status_code == 400


def test_replicas_sharing_secret_key_complete_each_others_launches(app_config, tmp_path):
    from cds_service.app import create_app

    cfg = {**app_config, "SECRET_KEY": "s3cret-shared-by-replicas-0123456789"}
    a = create_app(cfg).test_client()
    b = create_app({**cfg, "DATABASE_URL": f"sqlite:///{tmp_path / 'b.sqlite3'}"}).test_client()
    fx, _ = _rich_fixture(a)
    with _mock_for(fx) as ehr:
        first = a.get("/smart/launch", query_string={"iss": ehr.iss, "launch": ehr.launch_id})
        b.set_cookie(smart.COOKIE, a.get_cookie(smart.COOKIE, path="/smart").value, path="/smart")
        back = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
        target = urlsplit(back.headers["Location"])
        assert b.get(target.path, query_string=target.query).status_code == 200


def test_secret_is_generated_once_into_the_data_folder(app_config, tmp_path):
    from cds_service.app import create_app

    a = create_app(app_config)
    with a.test_request_context("/"):
        first = smart._secret()
    b = create_app(app_config)
    with b.test_request_context("/"):
        assert smart._secret() == first
    path = tmp_path / "smart_secret"
    assert path.exists() and (path.stat().st_mode & 0o077) == 0


def test_pkce_is_enforced_by_the_mock_and_refusal_is_shown(client, monkeypatch):
    fx, _ = _rich_fixture(client)
    with _mock_for(fx) as ehr:
        first = client.get("/smart/launch", query_string={"iss": ehr.iss, "launch": ehr.launch_id})
        back = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
        target = urlsplit(back.headers["Location"])
        monkeypatch.setattr(smart, "pkce_verifier", lambda state: "x" * 43)
        resp = client.get(target.path, query_string=target.query)
        assert resp.status_code == 502 and "refused the code" in resp.get_data(as_text=True)
        assert not ehr.tokens


def test_patient_banner_follows_need_patient_banner(client):
    fx, _ = _rich_fixture(client)
    name = " ".join(fx.request["prefetch"]["patient"]["name"][0]["given"])
    with _mock_for(fx) as ehr:
        _, page = launch(client, ehr)
    assert name in page.get_data(as_text=True)
    with _mock_for(fx, need_patient_banner=False) as ehr:
        _, page = launch(client, ehr)
    assert page.status_code == 200 and name not in page.get_data(as_text=True)


def test_no_patient_in_token_response(client):
    fx, _ = _rich_fixture(client)
    with _mock_for(fx, token_patient=False) as ehr:
        _, page = launch(client, ehr)
    assert page.status_code == 502 and "No patient in context" in page.get_data(as_text=True)


def test_authorization_denied_is_shown_escaped(client):
    resp = client.get("/smart/redirect", query_string={"error": "<script>access_denied", "state": "x"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "&lt;script&gt;access_denied" in html and "<script>access" not in html


def test_launch_needs_iss_and_launch(client):
    resp = client.get("/smart/launch")
    assert resp.status_code == 400 and "Open this app from the EHR" in resp.get_data(as_text=True)
    assert client.get("/smart/launch", query_string={"iss": "javascript:alert(1)", "launch": "x"}).status_code == 400
    assert client.get("/smart/launch", query_string={"iss": "http://127.0.0.1:9/fhir"}).status_code == 400


def test_unreachable_or_unsmart_server(client):
    resp = client.get("/smart/launch", query_string={"iss": "http://127.0.0.1:9/fhir", "launch": "x"})
    assert resp.status_code == 502 and "Authorization server not found" in resp.get_data(as_text=True)


def test_allowed_issuers(app_config):
    from cds_service.app import create_app

    client = create_app({**app_config, "SMART_ALLOWED_ISSUERS": "https://ehr.example.org/fhir"}).test_client()
    resp = client.get("/smart/launch", query_string={"iss": "http://127.0.0.1:9/fhir", "launch": "x"})
    assert resp.status_code == 403


def test_configured_client_id_and_public_base_url(app_config):
    from cds_service.app import create_app

    client = create_app({**app_config, "SMART_CLIENT_ID": "my-client", "PUBLIC_BASE_URL": "https://cds.example.org/"}).test_client()
    fx = _patient_view_fixtures()[0]
    with _mock_for(fx, client_id="my-client", expected_redirect="https://cds.example.org/smart/redirect") as ehr:
        first = client.get("/smart/launch", query_string={"iss": ehr.iss, "launch": ehr.launch_id})
        q = {k: v[0] for k, v in parse_qs(urlsplit(first.headers["Location"]).query).items()}
        assert q["client_id"] == "my-client"
        assert q["redirect_uri"] == "https://cds.example.org/smart/redirect"
        cookie = first.headers["Set-Cookie"]
        assert "Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie and "HttpOnly" in cookie


def test_pkce_helpers():
    from cds_service.app import create_app

    app = create_app({"AUTH_MODE": "none", "SECRET_KEY": "k" * 40, "DATABASE_URL": "sqlite://"})
    with app.test_request_context("/"):
        v = smart.pkce_verifier("state-1")
        assert len(v) == 43 and all(c.isalnum() or c in "-_" for c in v)
        assert smart.pkce_verifier("state-1") == v != smart.pkce_verifier("state-2")
        # RFC 7636 appendix B example
        assert smart.pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
