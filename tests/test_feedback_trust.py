"""Feedback that can be trusted, through the real app: the conformance harness's traffic is marked and
left out of the clinicians' report; one decision counts once; feedback on a card the service never
issued, another service's card or a suggestion the card did not carry is refused 422; the comment
is kept; the report breaks overrides down by reason and date range; `purge` keeps the store bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cds_service.app import create_app
from cds_service.store.report import feedback_report_main, purge_main
from tests.builders import hook_request, len_refractory_patient

CHECK = {"MMCDS-Origin": "check"}


@pytest.fixture
def app(tmp_path):
    return create_app({"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{tmp_path / 'fb.sqlite3'}",
                       "DATA_DIR": str(tmp_path), "AS_OF_DATE": "2026-11-01", "WARMUP": "false"})


def cards_of(client, headers=None) -> list[dict]:
    resp = client.post("/cds-services/mm-next-line", json=hook_request("patient-view", len_refractory_patient()),
                       headers=headers or {})
    assert resp.status_code == 200, resp.data
    return resp.get_json()["cards"]


def fb(card: dict, outcome: str = "overridden", ts: str = "2026-11-21T05:00:00Z", **extra) -> dict:
    return {"feedback": [{"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": ts, **extra}]}


def post(client, body, service="mm-next-line", headers=None):
    return client.post(f"/cds-services/{service}/feedback", json=body, headers=headers or {})


def report(app, **kw) -> dict:
    return app.extensions["mmcds"].store.feedback_report(**kw)


def test_the_same_feedback_posted_twice_counts_once(app):
    client = app.test_client()
    card = cards_of(client)[0]
    for ts in ("2026-11-21T05:00:00Z", "2026-11-21T05:00:00Z", "2026-11-21T05:00:07Z"):  # retry, second click
        assert post(client, fb(card, ts=ts)).status_code == 200
    assert report(app)["total"] == 1
    assert post(client, fb(card, "accepted")).status_code == 200  # another decision on the card counts
    assert report(app)["total"] == 2


def test_feedback_that_matches_no_issued_card_is_refused_422(app):
    client = app.test_client()
    cards = cards_of(client)
    with_suggestion = next((c for c in cards if c.get("suggestions")), None)
    unknown = post(client, {"feedback": [{"card": "never-issued", "outcome": "accepted",
                                          "outcomeTimestamp": "2026-11-21T05:00:00Z"}]})
    assert unknown.status_code == 422 and unknown.get_json()["error"] == "unknown card"
    other = post(client, fb(cards[0]), service="mm-order-sign")
    assert other.status_code == 422 and other.get_json()["error"] == "card of another service"
    bad_suggestion = post(client, fb(cards[0], "accepted", acceptedSuggestions=[{"id": "not-a-suggestion"}]))
    assert bad_suggestion.status_code == 422 and bad_suggestion.get_json()["error"] == "unknown suggestion"
    if with_suggestion is not None:
        ok = post(client, fb(with_suggestion, "accepted",
                             acceptedSuggestions=[{"id": with_suggestion["suggestions"][0]["uuid"]}]))
        assert ok.status_code == 200
    assert report(app)["total"] == (1 if with_suggestion else 0)  # refused posts stored nothing


def test_user_comment_is_kept(app):
    client = app.test_client()
    card = cards_of(client)[0]
    reason = {"reason": {"system": "http://example.org/r", "code": "patient-declined"},
              "userComment": "Discussed at tumour board; patient prefers oral therapy."}
    assert post(client, fb(card, overrideReason=reason)).status_code == 200
    row = app.extensions["mmcds"].store.feedback_rows()[0]
    assert row["user_comment"] == reason["userComment"] and row["override_code"] == "patient-declined"
    assert isinstance(row["outcome_timestamp"], datetime) and isinstance(row["received_at"], datetime)


def test_check_traffic_is_marked_and_not_counted_as_clinicians_feedback(app, tmp_path, capsys):
    client = app.test_client()
    clinician_card = cards_of(client)[0]
    check_cards = cards_of(client, CHECK)
    assert post(client, fb(clinician_card)).status_code == 200
    # feedback on a card the harness received is `check` even without the header
    assert post(client, fb(check_cards[0])).status_code == 200
    assert post(client, fb(check_cards[1]), headers=CHECK).status_code == 200
    audit = app.extensions["mmcds"].store.audit_rows()
    assert {r["origin"] for r in audit if r["card_uuid"] in {c["uuid"] for c in check_cards}} == {"check"}
    assert report(app)["total"] == 1 and report(app)["excluded"] == {"check": 2, "sandbox": 0}
    assert report(app, origins=("ehr", "check"))["total"] == 3
    url = app.extensions["mmcds"].settings.database_url
    assert feedback_report_main(["--json", "--database-url", url]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1
    assert feedback_report_main(["--json", "--include-check", "--database-url", url]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 3


def test_report_by_override_reason_and_date_range(app, capsys):
    client = app.test_client()
    cards = cards_of(client)
    assert len(cards) >= 3
    reasons = ["patient-declined", "patient-declined", None]
    days = ["2026-11-02T10:00:00Z", "2026-11-10T10:00:00+02:00", "2026-11-20T23:59:59Z"]
    for card, code, ts in zip(cards, reasons, days, strict=False):
        extra = {"overrideReason": {"reason": {"system": "http://example.org/r", "code": code}}} if code else {}
        assert post(client, fb(card, ts=ts, **extra)).status_code == 200
    full = report(app)
    assert full["byOverrideReason"] == {"patient-declined": 2, "(no coded reason)": 1}
    window = report(app, since=datetime(2026, 11, 5, tzinfo=UTC), until=datetime(2026, 11, 20, tzinfo=UTC))
    assert window["total"] == 1 and window["byOverrideReason"] == {"patient-declined": 1}
    url = app.extensions["mmcds"].settings.database_url
    assert feedback_report_main(["--json", "--since", "2026-11-05", "--until", "2026-11-21", "--database-url", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"] == 2 and out["range"]["since"].startswith("2026-11-05")
    assert feedback_report_main(["--database-url", url]) == 0
    assert "patient-declined: 2" in capsys.readouterr().out


def test_purge_removes_old_audit_and_feedback_rows(app, capsys):
    client = app.test_client()
    card = cards_of(client)[0]
    assert post(client, fb(card)).status_code == 200
    store = app.extensions["mmcds"].store
    url = store.database_url
    assert purge_main(["--older-than", "1", "--database-url", url]) == 0
    assert "deleted 0 audit rows and 0 feedback rows" in capsys.readouterr().out
    future = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert purge_main(["--before", future, "--dry-run", "--database-url", url]) == 0
    assert "would delete" in capsys.readouterr().out and store.feedback_rows()
    assert purge_main(["--before", future, "--database-url", url]) == 0
    assert store.audit_rows() == [] and store.feedback_rows() == []
    with pytest.raises(SystemExit):
        purge_main(["--older-than", "0", "--database-url", url])


def test_sandbox_page_traffic_is_marked_and_not_counted_as_clinicians_feedback(app):
    """The /sandbox page marks its calls (sandbox.js sends `MMCDS-Origin: sandbox`): trying the cards
    there is not what clinicians did with them."""
    client = app.test_client()
    sandbox = {"MMCDS-Origin": "sandbox"}
    clinician_card, page_card = cards_of(client)[0], cards_of(client, sandbox)[0]
    assert post(client, fb(clinician_card)).status_code == 200
    assert post(client, fb(page_card), headers=sandbox).status_code == 200
    audit = app.extensions["mmcds"].store.audit_rows()
    assert {r["origin"] for r in audit if r["card_uuid"] == page_card["uuid"]} == {"sandbox"}
    assert report(app)["total"] == 1 and report(app)["excluded"] == {"check": 0, "sandbox": 1}
    js = (Path(__file__).resolve().parent.parent / "cds_service" / "web" / "static" / "sandbox.js").read_text()
    assert '"MMCDS-Origin": "sandbox"' in js
