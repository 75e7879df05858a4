"""The sandbox page in a real browser: Debian's headless Chromium against the app on a real HTTP server.

Without Chromium these tests are skipped with the reason and the install command; with
`MMCDS_REQUIRE_BROWSER=1` (`.ci/run` sets it and installs Chromium) a missing browser is a failure.
Interaction (picking a fixture, clicking a suggestion, dismissing with a reason, pasting a request)
is driven by a small harness page served beside the app (test-only WSGI wrapper) that loads
`/sandbox` in a same-origin iframe and clicks through it; Chromium's `--dump-dom` then reads the
harness's result. Screenshots are kept in `test-artifacts/` (gitignored) for people to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from cds_service.http import sandbox
from cds_service.web.markdown import render_markdown
from tests.test_sandbox import UUID_RE, parse

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
]


def chromium_binary() -> str:
    for name in (os.environ.get("MMCDS_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name) or name
    reason = ("Chromium is needed for the sandbox browser tests: `apt-get install -y chromium` "
              "(Debian) or set MMCDS_CHROMIUM to the binary")
    if os.environ.get("MMCDS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MMCDS_REQUIRE_BROWSER=1: {reason}", pytrace=False)
    pytest.skip(reason)


def chromium(url: str, profile: Path, *extra: str, timeout: float = 120) -> str:
    """Run headless Chromium once on `url`; returns stdout (the DOM with --dump-dom)."""
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


class Harness:
    """WSGI wrapper: extra test pages beside the app, same origin (so the iframe can be driven)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pages: dict[str, str] = {}
        self.blocked: set[str] = set()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO", "") in self.blocked:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        page = self.pages.get(environ.get("PATH_INFO", ""))
        if page is not None:
            body = page.encode("utf-8")
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


@pytest.fixture
def live(app) -> Iterator[tuple[str, Harness]]:
    harness = Harness(app)
    server = make_server("127.0.0.1", 0, harness, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", harness
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _script_json(value: Any) -> str:
    return json.dumps(value).replace("</", "<\\/").replace("<!--", "<\\!--")


def test_sandbox_renders_real_cards_in_chromium(live, client, tmp_path):
    base, _ = live
    dom = chromium(f"{base}/sandbox", tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    assert 'data-sandbox-ready="1"' in dom, "the page script did not run"
    page = parse(dom)
    assert 'data-rendered-by="js"' in dom  # the cards below came from the browser-side renderer
    fx = sandbox.find_fixture(page.selected.get("fixture"))
    assert fx is not None and fx.hook == "patient-view"
    expected = client.post(f"/cds-services/{fx.service_id}", json=fx.request).get_json()["cards"]
    assert len(expected) >= 3
    assert len(page.cards) == len(expected)
    assert [c["summary"].strip() for c in page.cards] == [c["summary"] for c in expected]
    assert [c["indicator"] for c in page.cards] == [c["indicator"] for c in expected]
    assert all(UUID_RE.match(c["uuid"] or "") for c in page.cards)
    for c in page.cards:
        assert f"ind-{c['indicator']}" in c["class"]
    # markdown detail became real structure, the treatment history panel is shown, the raw JSON is there
    assert "<table>" in dom and "<li>" in dom
    assert 'id="history"' in dom and "Prior lines" in dom
    assert '<section id="history" class="panel" aria-labelledby="history-title" hidden' not in dom
    assert "&quot;cards&quot;" in dom or '"cards"' in dom


def test_sandbox_without_its_script_still_shows_the_cards(live, tmp_path):
    """The page's script blocked (as with JavaScript off; --dump-dom itself needs script enabled)."""
    base, harness = live
    harness.blocked.add("/sandbox/static/sandbox.js")
    dom = chromium(f"{base}/sandbox", tmp_path / "profile", "--virtual-time-budget=3000", "--dump-dom")
    assert 'data-sandbox-ready="1"' not in dom  # the script really did not run
    assert 'data-rendered-by="server"' in dom
    page = parse(dom)
    assert len(page.cards) >= 3 and all(UUID_RE.match(c["uuid"] or "") for c in page.cards)
    assert 'id="load-btn"' in dom  # the no-JS "Load fixture" button is there


def test_sandbox_screenshot(live, tmp_path):
    base, _ = live
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "sandbox.png"
    target.unlink(missing_ok=True)
    chromium(f"{base}/sandbox", tmp_path / "profile", "--virtual-time-budget=5000", f"--screenshot={target}",
             "--window-size=1280,2000")
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


CARD_SCREENSHOT_FIXTURES = [
    "patients/p04-b-len-maint-statusreason-del17p",  # first relapse on maintenance, high-risk FISH
    "patients/p34-b-len-maintenance-holiday",  # salvage ASCT to discuss: a notice card of its own
    "patients/p49-e-after-isakd-and-teclistamab",  # triple-class refractory, after a bispecific
    "patients/p20-pcl-asct-12mo-short",  # plasma cell leukaemia: a line of the options card, critical
    "patients/p04-b-len-maint-statusreason-del17p.o1-drd-len-refractory.order-select",  # replacements
    "patients/p01-a-vrd-fixed-mcode.o1-dkd-no-zoster.order-select",  # coded supportive suggestion
]


@pytest.mark.parametrize("key", CARD_SCREENSHOT_FIXTURES)
def test_card_screenshots_for_review(live, client, tmp_path, key):
    """Screenshots of the rendered cards of several fixtures, kept in test-artifacts/ to look at.

    The page must show exactly the service's cards for that fixture, none of them with an internal
    source id or chart reference in its text (the same reading as tests/test_render_economy.py)."""
    from tests.test_render_economy import text_problems

    base, _ = live
    fx = sandbox.find_fixture(key)
    assert fx is not None, key
    expected = client.post(f"/cds-services/{fx.service_id}", json=fx.request).get_json()["cards"]
    assert expected and all(not text_problems(c) for c in expected), [text_problems(c) for c in expected]
    url = f"{base}/sandbox?fixture={key}&details=open"
    page = parse(chromium(url, tmp_path / "dom", "--virtual-time-budget=5000", "--dump-dom"))
    assert [c["summary"].strip() for c in page.cards] == [c["summary"] for c in expected]
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / f"cards-{key.split('/')[-1]}.png"
    target.unlink(missing_ok=True)
    chromium(url, tmp_path / "shot", "--virtual-time-budget=5000", f"--screenshot={target}", "--window-size=1280,4200")
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_evidence_preview_screenshot(live, tmp_path):
    base, _ = live
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "evidence.png"
    target.unlink(missing_ok=True)
    dom = chromium(f"{base}/sandbox/evidence", tmp_path / "p1", "--virtual-time-budget=3000", "--dump-dom")
    assert "Lines of therapy" in dom and "Next-line options" in dom and "Refractoriness by agent" in dom
    chromium(f"{base}/sandbox/evidence", tmp_path / "p2", "--virtual-time-budget=3000", f"--screenshot={target}",
             "--window-size=1280,2400")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


HARNESS = """<!doctype html><html><head><meta charset="utf-8"><title>harness</title></head><body>
<iframe id="f" src="/sandbox" width="1200" height="1400"></iframe>
<pre id="results">pending</pre>
<script>
(function () {
  var FIXTURE = %(fixture)s, SERVICE = %(service)s, PASTE = %(paste)s;
  var out = {}, f = document.getElementById("f");
  function doc() { return f.contentDocument; }
  function finish(err) {
    out.error = err || null;
    document.getElementById("results").textContent = JSON.stringify(out);
    document.body.setAttribute("data-done", "1");
  }
  function wait(cond, then, label, n) {
    n = n === undefined ? 600 : n;
    var ok = false;
    try { ok = !!cond(); } catch (e) { ok = false; }
    if (ok) { try { then(); } catch (e) { finish("step failed after " + label + ": " + e); } return; }
    if (n <= 0) { finish("timeout: " + label); return; }
    setTimeout(function () { wait(cond, then, label, n - 1); }, 25);
  }
  function summaries() {
    return Array.prototype.map.call(doc().querySelectorAll("[data-card-uuid] .card-summary"), function (h) { return h.textContent; });
  }
  wait(function () { return doc().body.getAttribute("data-sandbox-ready") === "1"; }, function () {
    out.initialCards = doc().querySelectorAll("[data-card-uuid]").length;
    var sel = doc().getElementById("fixture");
    sel.value = FIXTURE;
    sel.dispatchEvent(new Event("change"));
    wait(function () {
      return doc().getElementById("service").value === SERVICE && doc().querySelector("[data-card-uuid] .suggestion") &&
        doc().getElementById("run-status").textContent.indexOf("HTTP 200") === 0;
    }, accept, "order fixture");
  }, "ready");
  function accept() {
    out.orderSummaries = summaries();
    var btn = doc().querySelector("[data-card-uuid] .suggestion");
    var card = btn.closest("[data-card-uuid]");
    out.acceptedCard = card.getAttribute("data-card-uuid");
    out.acceptedSuggestion = btn.getAttribute("data-suggestion-uuid");
    btn.click();
    wait(function () { return card.querySelector(".card-feedback.ok, .card-feedback.bad"); }, function () {
      out.acceptFeedback = card.querySelector(".card-feedback").textContent;
      dismiss();
    }, "accept feedback");
  }
  function dismiss() {
    var cards = doc().querySelectorAll("[data-card-uuid]");
    var card = cards[cards.length - 1];
    var sel = card.querySelector(".override-select");
    if (sel) sel.selectedIndex = 1;
    out.dismissedCard = card.getAttribute("data-card-uuid");
    out.dismissReason = sel ? sel.options[1].getAttribute("data-code") : null;
    card.querySelector(".dismiss-btn").click();
    wait(function () { return card.querySelector(".card-feedback.ok, .card-feedback.bad"); }, function () {
      out.dismissFeedback = card.querySelector(".card-feedback").textContent;
      out.dismissedClass = card.className;
      paste();
    }, "dismiss feedback");
  }
  function paste() {
    var d = doc();
    d.getElementById("request").value = "{broken";
    d.getElementById("run-btn").click();
    wait(function () { return !doc().getElementById("error-box").hidden; }, function () {
      out.pasteError = doc().getElementById("error-box").textContent;
      d.getElementById("request").value = PASTE;
      d.getElementById("service").value = "mm-next-line";
      d.getElementById("service").dispatchEvent(new Event("change"));
      d.getElementById("run-btn").click();
      wait(function () {
        return doc().getElementById("error-box").hidden && doc().getElementById("run-status").textContent.indexOf("HTTP 200") === 0;
      }, function () {
        out.pastedSummaries = summaries();
        out.historyVisible = !doc().getElementById("history").hidden;
        finish();
      }, "pasted run");
    }, "paste error");
  }
})();
</script></body></html>"""


def _results(dom: str) -> dict[str, Any]:
    assert 'data-done="1"' in dom, dom[-3000:]
    text = dom.split('<pre id="results">')[1].split("</pre>")[0]
    import html

    return json.loads(html.unescape(text))


def test_sandbox_interaction_feedback_and_paste(live, client, app, tmp_path):
    base, harness = live
    order_fx = None
    for fx in sandbox.all_fixtures():
        if fx.group != "patients" or fx.hook != "order-select":
            continue
        cards = client.post(f"/cds-services/{fx.service_id}", json=fx.request).get_json()["cards"]
        with_suggestions = [i for i, c in enumerate(cards) if c.get("suggestions")]
        # the harness accepts the first card with suggestions and dismisses the last card: two cards
        if with_suggestions and with_suggestions[0] != len(cards) - 1 and cards[-1].get("overrideReasons"):
            order_fx = fx
            break
    assert order_fx is not None, "no shipped order-select fixture with two cards, suggestions and override reasons"
    pv = next(f for f in sandbox.all_fixtures() if f.group == "patients" and f.hook == "patient-view"
              and len(client.post("/cds-services/mm-next-line", json=f.request).get_json()["cards"]) >= 2)
    expected_pasted = [c["summary"] for c in client.post("/cds-services/mm-next-line", json=pv.request).get_json()["cards"]]
    order_cards = client.post("/cds-services/mm-order-check", json=order_fx.request).get_json()["cards"]
    expected_order = [c["summary"] for c in order_cards]
    first_suggestion = next(c for c in order_cards if c.get("suggestions"))["suggestions"][0]
    harness.pages["/__harness__"] = HARNESS % {
        "fixture": _script_json(order_fx.key), "service": _script_json("mm-order-check"),
        "paste": _script_json(json.dumps(pv.request, indent=1)),
    }
    dom = chromium(f"{base}/__harness__", tmp_path / "profile", "--virtual-time-budget=30000", "--dump-dom",
                   "--window-size=1280,1600")
    out = _results(dom)
    assert out["error"] is None, out
    assert out["initialCards"] >= 3
    assert out["orderSummaries"] == expected_order
    assert "recorded (HTTP 200)" in out["acceptFeedback"], out
    assert out["acceptFeedback"].startswith("Accepted: " + first_suggestion["label"])
    if first_suggestion.get("actions"):
        assert "the EHR would: " + first_suggestion["actions"][0]["type"] in out["acceptFeedback"]
    assert "recorded (HTTP 200)" in out["dismissFeedback"], out
    assert "dismissed" in out["dismissedClass"]
    assert "malformed JSON" in out["pasteError"]
    assert out["pastedSummaries"] == expected_pasted
    assert out["historyVisible"] is True

    # the clicks reached the real feedback endpoint and the store, tied to audited cards
    store = app.extensions["mmcds"].store
    rows = store.feedback_rows()
    by_card = {r["card_uuid"]: r for r in rows}
    assert by_card[out["acceptedCard"]]["outcome"] == "accepted"
    assert out["acceptedSuggestion"] in json.dumps(by_card[out["acceptedCard"]], default=str)
    assert by_card[out["dismissedCard"]]["outcome"] == "overridden"
    assert out["dismissReason"] and out["dismissReason"] in json.dumps(by_card[out["dismissedCard"]], default=str)
    # the page marks its calls: stored as `sandbox`, never counted as clinicians' feedback
    assert {r["origin"] for r in rows} == {"sandbox"}
    report = store.feedback_report()
    assert report["total"] == 0 and report["excluded"]["sandbox"] == 2
    assert store.feedback_report(origins=("sandbox",))["total"] == 2


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[x](https://a.example/?q=1&r=<b>)",
    "| <b>a</b> | b |\n|---|:-:|\n| <i onclick=x>1</i> | 2 |",
    "- <svg onload=alert(1)>\n- `<script>`\n  - nested **b**",
    "> quote <iframe src=//evil>\n> line two",
    "1. one  \n   two\n2. three\n\n---\n\n## Head _x_ *y* __z__",
    "snake_case_name and 2*3*4, it's \"quoted\" & more",
    "[doi](https://doi.org/10.1016/S0140-6736(21)00933-8), [b](https://x.org/(a)b(c)) [j](javascript:x(1))",
]


def test_js_markdown_renderer_matches_python_and_is_safe(live, client, tmp_path):
    base, harness = live
    texts = list(HOSTILE)
    for fx in sandbox.all_fixtures():
        if fx.group != "patients":
            continue
        resp = client.post(f"/cds-services/{fx.service_id}", json=fx.request)
        if resp.status_code == 200:
            texts.extend(c["detail"] for c in resp.get_json()["cards"] if c.get("detail"))
    texts = list(dict.fromkeys(texts))
    harness.pages["/__markdown__"] = (
        '<!doctype html><html><head><meta charset="utf-8"><script src="/sandbox/static/markdown.js"></script></head>'
        '<body><pre id="out">pending</pre><script>'
        f"var inputs = {_script_json(texts)};"
        'document.getElementById("out").textContent = JSON.stringify(inputs.map(function (t) { return window.MMCDSMarkdown.render(t); }));'
        "</script></body></html>"
    )
    dom = chromium(f"{base}/__markdown__", tmp_path / "profile", "--virtual-time-budget=3000", "--dump-dom")
    import html

    rendered = json.loads(html.unescape(dom.split('<pre id="out">')[1].split("</pre>")[0]))
    assert len(rendered) == len(texts)
    for text, js in zip(texts, rendered, strict=True):
        assert js == str(render_markdown(text)), text[:200]
    for js in rendered[: len(HOSTILE)]:
        assert "<script" not in js and "<img" not in js and "<iframe" not in js and "<svg" not in js
        assert "javascript:" not in js
