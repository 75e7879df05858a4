"""The sandbox page without a browser: server-side rendering, the no-JS form, access rules, markdown safety."""

from __future__ import annotations

import json
import re
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest

from cds_service.http import sandbox
from cds_service.web.markdown import render_markdown, safe_url
from tests.fhir_server import FhirTestServer, resources_from_prefetch

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class CardParser(HTMLParser):
    """Cards (elements with data-card-uuid) of a page: uuid, indicator, summary text."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, Any]] = []
        self._in_summary = False
        self.selected: dict[str, str] = {}
        self._select: str | None = None
        self.attrs_by_id: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.attrs_by_id[a["id"] or ""] = a
        if "data-card-uuid" in a:
            self.cards.append({"uuid": a["data-card-uuid"], "indicator": a.get("data-indicator"),
                               "kind": a.get("data-kind"), "summary": "", "class": a.get("class") or ""})
        if tag == "h3" and "card-summary" in (a.get("class") or ""):
            self._in_summary = True
        if tag == "select":
            self._select = a.get("id")
        if tag == "option" and "selected" in a and self._select:
            self.selected[self._select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3":
            self._in_summary = False
        if tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._in_summary and self.cards:
            self.cards[-1]["summary"] += data


def parse(html: str) -> CardParser:
    p = CardParser()
    p.feed(html)
    return p


def api_answer(client, service_id: str, request: dict) -> dict:
    resp = client.post(f"/cds-services/{service_id}", json=request)
    assert resp.status_code == 200, resp.data[:300]
    return resp.get_json()


# ------------------------------------------------------------------------------ fixtures list


def test_every_shipped_request_fixture_is_offered_with_a_readable_name():
    fixtures = sandbox.all_fixtures()
    patient_files = sorted(p.stem for p in (sandbox.fixtures_root() / "patients").glob("*.json"))
    assert patient_files, "no shipped patient fixtures"
    offered = {f.key for f in fixtures}
    for stem in patient_files:
        assert f"patients/{stem}" in offered
    for f in fixtures:
        assert f.name and "-" not in f.name.split("—")[-1].strip()[:3]
        assert f.service_id in ("mm-next-line", "mm-order-check", "mm-order-sign")
    # discovery.json / response.json are not requests and are not offered
    assert "spec/discovery" not in offered and "spec/response" not in offered
    assert "spec/patient-view-request" in offered


def test_pretty_names():
    assert sandbox._pretty_stem("p04-b-len-maint-del17p") == "P04 — b len maint del17p"
    assert sandbox._pretty_stem("p04-b-len.o1-drd-len-refractory.order-select") == "P04 › o1 drd len refractory"
    assert sandbox._pretty_stem("patient-view-request") == "Patient view request"


# ------------------------------------------------------------------------------ the page


def test_page_opens_with_a_myeloma_fixture_and_its_cards_rendered_on_the_server(client):
    resp = client.get("/sandbox")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    page = parse(resp.get_data(as_text=True))
    key = page.selected.get("fixture")
    fx = sandbox.find_fixture(key)
    assert fx is not None and fx.hook == "patient-view" and fx.group == "patients"
    assert page.selected.get("service") == "mm-next-line"
    expected = api_answer(client, "mm-next-line", fx.request)["cards"]
    assert len(expected) >= 3, "the default fixture should be a myeloma patient with several cards"
    assert [c["summary"].strip() for c in page.cards] == [c["summary"] for c in expected]
    assert [c["indicator"] for c in page.cards] == [c["indicator"] for c in expected]
    assert all(UUID_RE.match(c["uuid"]) for c in page.cards)
    assert page.cards[0]["kind"] == "state"
    html = resp.get_data(as_text=True)
    assert 'id="history"' in html and "Prior lines" in html
    assert "Raw JSON response" in html
    # the page is self-contained: no external scripts, styles or fonts
    assert not re.search(r'(src|href)="(https?:)?//(?!127\.0\.0\.1|localhost)[^"]*\.(js|css|woff2?)"', html)
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_default_is_the_fixture_with_most_cards(client, app):
    resp = client.get("/sandbox")
    chosen = parse(resp.get_data(as_text=True)).selected["fixture"]
    counts = {}
    for fx in sandbox.all_fixtures():
        if fx.group == "patients" and fx.hook == "patient-view":
            counts[fx.key] = len(api_answer(client, fx.service_id, fx.request)["cards"])
    assert counts[chosen] == max(counts.values())


def test_configured_default_fixture(app_config):
    from cds_service.app import create_app

    order = next(f for f in sandbox.all_fixtures() if f.hook == "order-select" and f.group == "patients")
    app = create_app({**app_config, "SANDBOX_DEFAULT_FIXTURE": order.key})
    page = parse(app.test_client().get("/sandbox").get_data(as_text=True))
    assert page.selected["fixture"] == order.key
    assert page.selected["service"] == "mm-order-check"


def test_query_selects_fixture_and_service(client):
    fx = next(f for f in sandbox.all_fixtures() if f.hook == "order-select" and f.group == "patients")
    resp = client.get("/sandbox", query_string={"fixture": fx.key})
    page = parse(resp.get_data(as_text=True))
    assert page.selected == {"fixture": fx.key, "service": "mm-order-check"}
    expected = api_answer(client, "mm-order-check", fx.request)["cards"]
    assert [c["summary"].strip() for c in page.cards] == [c["summary"] for c in expected]
    # the banner names the draft orders the cards are about, the selected ones marked
    html = resp.get_data(as_text=True)
    assert "Draft orders:" in html
    orders = sandbox.draft_orders(fx.request["context"])
    assert orders and any(o["selected"] for o in orders)
    for o in orders:
        assert (o["label"].replace("&", "&amp;") in html) or (o["label"] in html)


def test_suggestions_links_and_override_reasons_are_rendered(client):
    for fx in sandbox.all_fixtures():
        if fx.hook != "order-select" or fx.group != "patients":
            continue
        cards = api_answer(client, fx.service_id, fx.request)["cards"]
        card = next((c for c in cards if c.get("suggestions") and c.get("overrideReasons")), None)
        if card:
            break
    else:
        pytest.fail("no order fixture yields a card with suggestions and override reasons")
    html = client.get("/sandbox", query_string={"fixture": fx.key}).get_data(as_text=True)
    for s in card["suggestions"]:
        assert 'data-suggestion-uuid="' in html
        assert s["label"].replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;") in html or s["label"] in html
    assert "Dismiss with reason" in html
    for r in card["overrideReasons"]:
        assert 'data-code="' + r["code"] + '"' in html


def test_smart_link_on_options_card_is_shown_as_smart_app(client):
    html = client.get("/sandbox").get_data(as_text=True)
    assert 'data-link-type="smart"' in html and "SMART app" in html
    assert "/sandbox/evidence?fixture=" in html


def test_no_js_form_runs_pasted_request(client):
    fx = next(f for f in sandbox.all_fixtures() if f.hook == "patient-view" and f.group == "patients")
    resp = client.post("/sandbox", data={"service": "mm-next-line", "request": json.dumps(fx.request), "action": "request"})
    assert resp.status_code == 200
    expected = api_answer(client, "mm-next-line", fx.request)["cards"]
    assert [c["summary"].strip() for c in parse(resp.get_data(as_text=True)).cards] == [c["summary"] for c in expected]


def test_no_js_form_loads_a_fixture(client):
    fx = next(f for f in sandbox.all_fixtures() if f.hook == "order-sign" and f.group == "patients")
    resp = client.post("/sandbox", data={"fixture": fx.key, "service": "", "request": "", "action": "fixture"})
    page = parse(resp.get_data(as_text=True))
    assert page.selected == {"fixture": fx.key, "service": "mm-order-sign"}


def test_bad_pasted_requests_show_the_service_error(client):
    resp = client.post("/sandbox", data={"service": "mm-next-line", "request": "{not json", "action": "request"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "malformed JSON" in html and not parse(html).cards
    fx = next(f for f in sandbox.all_fixtures() if f.hook == "patient-view" and f.group == "patients")
    resp = client.post("/sandbox", data={"service": "mm-order-check", "request": json.dumps(fx.request)})
    html = resp.get_data(as_text=True)
    assert "HTTP 400" in html and "wrong hook" in html


def test_a_pipeline_crash_is_shown_on_the_page(client, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(sandbox, "run", boom)
    fx = next(f for f in sandbox.all_fixtures() if f.hook == "patient-view" and f.group == "patients")
    resp = client.post("/sandbox", data={"service": "mm-next-line", "request": json.dumps(fx.request)})
    assert resp.status_code == 200 and "HTTP 500" in resp.get_data(as_text=True)
    assert client.post("/sandbox/evaluate", json={"serviceId": "mm-next-line", "request": fx.request}).status_code == 500


def test_hostile_card_text_is_escaped(client, monkeypatch):
    evil = {"cards": [{"uuid": str(uuid.uuid4()), "summary": "<script>alert(1)</script>", "indicator": "critical",
                       "detail": "<img src=x onerror=alert(1)> [x](javascript:alert(1)) **ok**",
                       "source": {"label": "<b>src</b>", "url": "javascript:alert(2)"},
                       "links": [{"label": "l", "url": "javascript:alert(3)", "type": "absolute"}]}]}
    monkeypatch.setattr(sandbox, "evaluate", lambda service_id, req: (200, evil))
    html = client.get("/sandbox").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "javascript:alert" not in html.split('id="sandbox-config"')[0].split("<pre")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<strong>ok</strong>" in html
    # the JSON for the script is escaped for a <script> element
    config = html.split('id="sandbox-config">')[1].split("</script>")[0]
    assert "<" not in config


# -------------------------------------------------------------------- JSON endpoints and access


def test_fixture_json(client):
    fx = sandbox.all_fixtures()[0]
    data = client.get(f"/sandbox/fixtures/{fx.key}").get_json()
    assert data["request"] == fx.request and data["serviceId"] == fx.service_id
    assert client.get("/sandbox/fixtures/patients/nope").status_code == 404


def test_evaluate_json_matches_service(client):
    fx = next(f for f in sandbox.all_fixtures() if f.hook == "patient-view" and f.group == "patients")
    resp = client.post("/sandbox/evaluate", json={"serviceId": "mm-next-line", "request": fx.request})
    assert resp.status_code == 200
    got = [c["summary"] for c in resp.get_json()["cards"]]
    assert got == [c["summary"] for c in api_answer(client, "mm-next-line", fx.request)["cards"]]
    assert client.post("/sandbox/evaluate", json={"serviceId": "nope", "request": fx.request}).status_code == 404
    assert client.post("/sandbox/evaluate", json={"request": {}}).status_code == 400


def test_under_none_the_page_calls_the_real_endpoints_and_audits(client, app):
    html = client.get("/sandbox").get_data(as_text=True)
    config = json.loads(html.split('id="sandbox-config">')[1].split("</script>")[0])
    assert config["realEndpoints"] is True
    assert config["serviceUrl"] == "/cds-services/__ID__"
    assert config["feedbackUrl"] == "/cds-services/__ID__/feedback"
    # the cards shown were audited, so feedback from the page is tied to their rules
    uuids = {c["uuid"] for c in parse(html).cards}
    audited = {row["card_uuid"] for row in app.extensions["mmcds"].store.audit_rows()}
    assert uuids and uuids <= audited


@pytest.fixture
def jwt_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "AUTH_MODE": "jwt", "TRUSTED_ISSUERS": {}}


def test_under_jwt_the_sandbox_is_off_by_default(jwt_config):
    from cds_service.app import create_app

    client = create_app(jwt_config).test_client()
    resp = client.get("/sandbox")
    assert resp.status_code == 403 and b"SANDBOX_ENABLED" in resp.data
    fx = sandbox.all_fixtures()[0]
    assert client.post("/sandbox/evaluate", json={"serviceId": fx.service_id, "request": fx.request}).status_code == 403
    assert client.post("/sandbox", data={"request": "{}"}).status_code == 403
    assert client.get(f"/sandbox/fixtures/{fx.key}").status_code == 403
    assert client.get("/sandbox/evidence").status_code == 403


def test_under_jwt_enabled_sandbox_runs_server_side_on_prefetch_only(jwt_config):
    from cds_service.app import create_app

    app = create_app({**jwt_config, "SANDBOX_ENABLED": "true"})
    client = app.test_client()
    resp = client.get("/sandbox")
    assert resp.status_code == 200 and parse(resp.get_data(as_text=True)).cards
    config = json.loads(resp.get_data(as_text=True).split('id="sandbox-config">')[1].split("</script>")[0])
    assert config["realEndpoints"] is False and config["serviceUrl"] == "/sandbox/evaluate"
    # the real endpoint still refuses unsigned calls
    fx = next(f for f in sandbox.all_fixtures() if f.hook == "patient-view" and f.group == "patients")
    assert client.post("/cds-services/mm-next-line", json=fx.request).status_code == 401
    # a request without prefetch pointing at a FHIR server is NOT fetched: 412, and the server saw nothing
    bare = {k: v for k, v in fx.request.items() if k != "prefetch"}
    with FhirTestServer(resources_from_prefetch(fx.request["prefetch"])) as srv:
        bare["fhirServer"] = srv.base_url
        resp = client.post("/sandbox/evaluate", json={"serviceId": "mm-next-line", "request": bare})
        assert resp.status_code == 412
        assert srv.request_count == 0
    # nothing audited, feedback validated but not stored
    assert app.extensions["mmcds"].store.audit_rows() == []
    card = str(uuid.uuid4())
    fb = {"feedback": [{"card": card, "outcome": "accepted", "acceptedSuggestions": [{"id": "x"}],
                        "outcomeTimestamp": "2026-11-01T10:00:00Z"}]}
    resp = client.post("/sandbox/feedback/mm-next-line", json=fb)
    assert resp.status_code == 200 and resp.get_json()["stored"] is False
    assert app.extensions["mmcds"].store.feedback_rows() == []
    bad = {"feedback": [{"card": card, "outcome": "maybe", "outcomeTimestamp": "2026-11-01T10:00:00Z"}]}
    assert client.post("/sandbox/feedback/mm-next-line", json=bad).status_code == 400
    assert client.post("/sandbox/feedback/nope", json=fb).status_code == 404


# ------------------------------------------------------------------------------- markdown


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    '[x](https://a.example/" onmouseover="alert(1))',
    "| <b>a</b> | b |\n|---|---|\n| <i onclick=x>1</i> | 2 |",
    "- <svg onload=alert(1)>\n- `<script>`",
    "> <iframe src=//evil>",
    "**<u>bold</u>**",
])
def test_markdown_never_emits_foreign_markup(text):
    out = str(render_markdown(text))
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", out))
    assert tags <= {"p", "strong", "em", "code", "a", "ul", "ol", "li", "div", "table", "thead", "tbody", "tr", "th",
                    "td", "blockquote", "br", "hr", "h3", "h4", "h5", "h6"}
    assert "javascript:" not in out.lower() and "data:" not in out.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", out)


def test_markdown_subset():
    text = ("## Heading\n\n**Setting:** later relapse _(chart)_\n\n| # | Regimen |\n|---|:-:|\n| 1 | DRd |\n\n"
            "1. **DKd** [1A]  \n   figures line\n   - nested\n2. Kd\n\n- [PubMed](https://pubmed.ncbi.nlm.nih.gov/?term=a&b=c)\n\n"
            "> quoted `code`\n\n---")
    out = str(render_markdown(text))
    assert "<h4>Heading</h4>" in out
    assert "<strong>Setting:</strong>" in out and "<em>(chart)</em>" in out
    assert '<th>#</th><th class="al-center">Regimen</th>' in out and '<td class="al-center">DRd</td>' in out
    assert "<li><strong>DKd</strong> [1A]<br>figures line<ul><li>nested</li></ul></li>" in out
    assert '<a href="https://pubmed.ncbi.nlm.nih.gov/?term=a&amp;b=c" target="_blank" rel="noopener noreferrer">PubMed</a>' in out
    assert "<blockquote><p>quoted <code>code</code></p></blockquote>" in out
    assert "<hr>" in out
    assert str(render_markdown("snake_case_name and 2*3*4")) == "<p>snake_case_name and 2*3*4</p>"
    doi = str(render_markdown("[CARTITUDE-1](https://doi.org/10.1016/S0140-6736(21)00933-8), next"))
    assert doi == ('<p><a href="https://doi.org/10.1016/S0140-6736(21)00933-8" target="_blank" '
                   'rel="noopener noreferrer">CARTITUDE-1</a>, next</p>')


def test_safe_url():
    assert safe_url("https://x.org/a") == "https://x.org/a"
    assert safe_url("/smart/launch") == "/smart/launch"
    assert safe_url("mailto:a@b.c") == "mailto:a@b.c"
    for bad in ("javascript:alert(1)", " javascript:x", "vbscript:x", "data:text/html,x", "java\nscript:x"):
        assert safe_url(bad) is None
