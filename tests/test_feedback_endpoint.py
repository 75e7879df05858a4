"""`POST /cds-services/{id}/feedback`: accepted shapes, validation (400), unknown service (404), feedback
that does not match an issued card (422), load.

Feedback is checked against the audit of the cards the service issued, so the fixtures audit the
cards (`card-1`, `card-2`, … with suggestion `sugg-1`) before posting feedback on them."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.config import load_settings
from cds_service.http import feedback
from cds_service.render.cards import make_card
from cds_service.store.db import Store
from tests.store_helpers import backend_params, fresh_store

TS = "2026-11-21T05:07:39.123Z"  # what the sandbox sends: new Date().toISOString()


def make_app(store: Store, **config) -> Flask:
    app = Flask("feedback-test")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["mmcds"] = SimpleNamespace(store=store, settings=load_settings(config, environ={}))
    app.register_blueprint(feedback.bp)
    return app


@pytest.fixture(params=backend_params())
def store(request, tmp_path: Path):
    with fresh_store(request.param, tmp_path) as s:
        yield s


AUDITED = ("card-1", "card-2", "bare", "single", "c")


def audit(store: Store, uuids, service: str = "mm-next-line", rule: str = "rule.x",
          suggestions: tuple[str, ...] = ("sugg-1",)) -> None:
    cards = [{"uuid": u, "suggestions": [{"uuid": s} for s in suggestions],
              "extension": {"org.mmcds.card": {"ruleId": rule, "kind": "finding"}}} for u in uuids]
    hook = {"mm-next-line": "patient-view", "mm-order-check": "order-select"}.get(service, "order-sign")
    store.record_audit(hook_instance=str(uuid.uuid4()), service_id=service, hook=hook, cards=cards,
                       input_hash="0" * 64, timings_ms={}, knowledge_version="kv")


@pytest.fixture
def client(store):
    audit(store, AUDITED)
    return make_app(store).test_client()


def item(card: str = "card-1", outcome: str = "accepted", **extra) -> dict:
    out = {"card": card, "outcome": outcome, "outcomeTimestamp": TS}
    if outcome == "accepted":
        out["acceptedSuggestions"] = [{"id": "sugg-1"}]
    out.update(extra)
    return out


def post(client, body, service: str = "mm-next-line", **kwargs):
    return client.post(f"/cds-services/{service}/feedback", data=json.dumps(body), content_type="application/json",
                       **kwargs)


def assert_error(resp, status: int) -> dict:
    assert resp.status_code == status, resp.data
    data = resp.get_json()
    assert set(data) == {"error", "detail"} and data["detail"]
    return data


# ------------------------------------------------------------------ accepted


def test_spec_shape_is_stored(client, store):
    resp = post(client, {"feedback": [item(), item("card-2", "overridden", overrideReason={
        "reason": {"system": "http://example.org/reasons", "code": "not-applicable", "display": "N/A"},
        "userComment": "free text"})]})
    assert resp.status_code == 200 and resp.get_json() == {}
    rows = store.feedback_rows()
    assert [(r["card_uuid"], r["outcome"]) for r in rows] == [("card-1", "accepted"), ("card-2", "overridden")]
    assert rows[0]["accepted_suggestions"] == ["sugg-1"] and rows[1]["override_code"] == "not-applicable"


def test_bare_object_and_single_object_in_feedback_are_accepted(client, store):
    assert post(client, item("bare")).status_code == 200
    assert post(client, {"feedback": item("single")}).status_code == 200
    assert {r["card_uuid"] for r in store.feedback_rows()} == {"bare", "single"}


def test_sandbox_accept_feedback(client, store):
    card, suggestion = str(uuid.uuid4()), str(uuid.uuid4())
    audit(store, [card], service="mm-order-check", suggestions=(suggestion,))
    body = {"feedback": [{"card": card, "outcome": "accepted",
                          "acceptedSuggestions": [{"id": suggestion}], "outcomeTimestamp": TS}]}
    assert post(client, body, service="mm-order-check").status_code == 200


def test_accepted_without_suggestions_is_allowed(client):
    # A card without suggestions (information only) can be acknowledged; refusing would break the EHR page.
    assert post(client, {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": TS}]}).status_code == 200


@pytest.mark.parametrize("ts", ["2026-11-21T05:07:39Z", "2026-11-21T05:07:39.123456789+01:00",
                                "2026-11-21T05:07", "2026-11-21T05:07:39-0500", "2026-11-21T05:07:39"])
def test_timestamp_variants(client, ts):
    assert post(client, item(outcomeTimestamp=ts)).status_code == 200


def test_overridden_without_reason_is_allowed(client):
    assert post(client, item(outcome="overridden")).status_code == 200


# ------------------------------------------------------------------ refused


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"feedback": [{"card": "c", "outcomeTimestamp": TS}]}, id="missing-outcome"),
        pytest.param({"feedback": [item(outcome="ignored")]}, id="bad-outcome"),
        pytest.param({"feedback": [item(outcome=None)]}, id="null-outcome"),
        pytest.param({"feedback": [item(outcomeTimestamp="yesterday")]}, id="bad-timestamp"),
        pytest.param({"feedback": [item(outcomeTimestamp="2026-13-45T25:61:00Z")]}, id="impossible-date"),
        pytest.param({"feedback": [item(outcomeTimestamp=1732165659)]}, id="numeric-timestamp"),
        pytest.param({"feedback": [{"card": "c", "outcome": "accepted"}]}, id="missing-timestamp"),
        pytest.param({"feedback": [item(card=None)]}, id="missing-card"),
        pytest.param({"feedback": [item(card="")]}, id="empty-card"),
        pytest.param({"feedback": [item(card=42)]}, id="numeric-card"),
        pytest.param({"feedback": "accepted"}, id="feedback-not-a-list"),
        pytest.param({"feedback": []}, id="empty-list"),
        pytest.param({"feedback": [item(), "x"]}, id="item-not-object"),
        pytest.param({"feedback": [item(acceptedSuggestions="sugg-1")]}, id="suggestions-not-list"),
        pytest.param({"feedback": [item(acceptedSuggestions=[{"uuid": "x"}])]}, id="suggestion-without-id"),
        pytest.param({"feedback": [item(outcome="overridden", acceptedSuggestions=[{"id": "s"}])]},
                     id="override-with-accepted-suggestions"),
        pytest.param({"feedback": [item(overrideReason={"reason": {"code": "x"}})]}, id="accept-with-override-reason"),
        pytest.param({"feedback": [item(outcome="overridden", overrideReason={"reason": "typo"})]},
                     id="reason-not-coding"),
        pytest.param({"feedback": [item(outcome="overridden", overrideReason={"userComment": 5})]},
                     id="comment-not-string"),
        pytest.param({"feedback": [item(f"c{i}") for i in range(101)]}, id="too-many-items"),
        pytest.param({"feedback": [item(card="x" * 5000)]}, id="huge-card-id"),
        pytest.param("just a string", id="string-body"),
        pytest.param(42, id="number-body"),
        pytest.param(None, id="null-body"),
    ],
)
def test_invalid_feedback_is_400(client, store, body):
    assert_error(post(client, body), 400)
    assert store.feedback_rows() == []  # nothing stored from a refused request (all or nothing)


def test_error_detail_does_not_echo_values(client):
    data = assert_error(post(client, {"feedback": [item(outcome="Jane Doe MRN 123")]}), 400)
    assert "Jane" not in data["detail"] and "outcome" in data["detail"]


def test_malformed_json_is_400(client):
    resp = client.post("/cds-services/mm-next-line/feedback", data=b'{"feedback": [', content_type="application/json")
    assert_error(resp, 400)


def test_not_json_is_415(client):
    resp = client.post("/cds-services/mm-next-line/feedback", data=b"card=1", content_type="text/plain")
    assert_error(resp, 415)


def test_unknown_service_is_404(client):
    assert_error(post(client, {"feedback": [item()]}, service="no-such-service"), 404)


def test_huge_body_is_refused(client, store):
    resp = post(client, {"feedback": [item(card="c", padding="x" * 200_000)]})
    assert resp.status_code == 413
    assert store.feedback_rows() == []


def test_store_failure_is_503_json(tmp_path):
    class Broken:
        def record_feedback(self, *_a, **_k):
            raise RuntimeError("disk full")

    resp = post(make_app(Broken()).test_client(), {"feedback": [item()]})  # type: ignore[arg-type]
    assert_error(resp, 503)


# ------------------------------------------------------------------ load


@pytest.mark.parametrize("backend", backend_params())
def test_200_concurrent_posts_are_all_counted_by_rule(backend, tmp_path):
    """200 feedback posts from 32 threads through the app, then a new Store on the same database."""
    with fresh_store(backend, tmp_path) as store:
        cards = [make_card(kind="finding", rule_id=f"rule.{i % 4}", knowledge_version="kv", summary="s",
                           suggestions=[{"label": "x", "actions": []}]) for i in range(200)]
        store.record_audit(hook_instance="h", service_id="mm-order-sign", hook="order-sign", cards=cards,
                           input_hash="0" * 64, timings_ms={}, knowledge_version="kv")
        app = make_app(store)

        def send(i: int) -> int:
            c = cards[i]
            body = {"feedback": [item(c["uuid"], acceptedSuggestions=[{"id": c["suggestions"][0]["uuid"]}])
                                 if i % 5 else item(c["uuid"], "overridden")]}
            return post(app.test_client(), body, service="mm-order-sign").status_code

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(send, range(200)))
        assert statuses == [200] * 200
        reopened = Store(store.database_url, schema=store.schema)  # as after a restart
        report = reopened.feedback_report()
        reopened.dispose()
        assert report["total"] == 200 and report["unknownCards"] == 0
        assert {r: (c["accepted"], c["overridden"]) for r, c in report["byRule"].items()} == {
            f"rule.{r}": (40, 10) for r in range(4)}


def test_end_to_end_hook_audit_feedback_report(tmp_path, capsys):
    """Through the real app: cards are audited, feedback on them is tied to their rules by the report."""
    from cds_service.app import create_app
    from cds_service.store.report import feedback_report_main
    from tests.builders import hook_request, len_refractory_patient

    url = f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    app = create_app({"AUTH_MODE": "none", "DATABASE_URL": url, "DATA_DIR": str(tmp_path), "AS_OF_DATE": "2026-11-01",
                      "MAX_BODY_BYTES": "100000"})
    client = app.test_client()
    resp = client.post("/cds-services/mm-next-line", json=hook_request("patient-view", len_refractory_patient()))
    assert resp.status_code == 200, resp.data
    cards = resp.get_json()["cards"]
    assert cards
    rules = [c["extension"]["org.mmcds.card"]["ruleId"] for c in cards]
    items = [item(c["uuid"], "overridden") for c in cards]
    assert post(client, {"feedback": items + [item("not-ours", "accepted")]}).status_code == 422  # all or nothing
    assert post(client, {"feedback": items}).status_code == 200
    too_big = post(client, {"feedback": [item(padding="x" * 200_000)]})
    assert too_big.status_code == 413 and set(too_big.get_json()) == {"error", "detail"}
    # the report runs elsewhere (another process, its own connection): the app's audit writer
    # commits in batches a few ms after the answer, so wait for it as a worker does when it stops
    assert app.extensions["mmcds"].store.flush()
    assert feedback_report_main(["--json", "--database-url", url]) == 0
    report = json.loads(capsys.readouterr().out)
    expected: dict[str, dict[str, int]] = {}
    for rule in rules:
        expected.setdefault(rule, {"accepted": 0, "overridden": 0})["overridden"] += 1
    assert {k: report[k] for k in ("total", "unknownCards")} == {"total": len(cards), "unknownCards": 0}
    assert {r: {k: c[k] for k in ("accepted", "overridden")} for r, c in report["byRule"].items()} == expected


_FUZZ_APP: dict = {}
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_item_like = st.fixed_dictionaries(
    {},
    optional={
        "card": _json_values | st.text(max_size=40),
        "outcome": st.sampled_from(["accepted", "overridden", "ACCEPTED", ""]) | _json_values,
        "acceptedSuggestions": _json_values | st.lists(st.fixed_dictionaries({"id": _json_values}), max_size=3),
        "overrideReason": _json_values | st.fixed_dictionaries({"reason": _json_values, "userComment": _json_values}),
        "outcomeTimestamp": st.sampled_from(["2026-11-21T05:00:00Z", "2026-02-30T00:00:00Z", "x"]) | _json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_json_values | _item_like | st.fixed_dictionaries({"feedback": st.lists(_item_like, max_size=3) | _json_values}))
def test_fuzzed_feedback_never_5xx(tmp_path_factory, body):
    app = _FUZZ_APP.get("app")
    if app is None:
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite3'}")
        store.create_schema()
        app = _FUZZ_APP["app"] = make_app(store)
    resp = post(app.test_client(), body)
    # 422: well-formed feedback naming a card this deployment never issued
    assert resp.status_code in (200, 400, 422), (resp.status_code, resp.data)
    assert isinstance(resp.get_json(), dict)

