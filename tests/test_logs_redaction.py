"""Structured logs: one JSON object per line, and no patient data or tokens ever reach them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.logs import CurrentStderr, JsonFormatter, RedactFilter, configure_logging, log_event, scrub
from tests.jwt_helpers import TestKey, bearer, claims, jwks, sign

JWT_LIKE = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
NAME = "Wilhelmina Quackenbush"
MRN = "MRN-55501234"
PATIENT_ID = "pt-7f3c9e2a"
FHIR_TOKEN = "fhir-access-SECRET-4711"


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The service's own JSON handler, pointed at a buffer, at DEBUG."""
    buf = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    configure_logging("DEBUG", stream=buf)
    try:
        yield buf
    finally:
        configure_logging("WARNING", stream=CurrentStderr())  # type: ignore[arg-type]
        root.setLevel(old_level)


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_lines_are_json_with_allow_listed_fields(log_buffer):
    log = logging.getLogger("cds_service.test")
    log.info("hook answered", extra={"service": "mm-next-line", "status": 200, "ms": 3.2, "patient_name": NAME})
    log_event(log, logging.INFO, "feedback stored", service="mm-next-line", count=2, body={"name": NAME})
    out = lines(log_buffer)
    assert out[0]["msg"] == "hook answered" and out[0]["service"] == "mm-next-line" and out[0]["status"] == 200
    assert out[0]["level"] == "info" and out[0]["logger"] == "cds_service.test" and out[0]["ts"].endswith("Z")
    assert out[0]["dropped"] == ["patient_name"] and out[1]["dropped"] == ["body"]
    assert out[1]["count"] == 2
    assert NAME not in log_buffer.getvalue()


def test_configure_logging_is_idempotent(log_buffer):
    configure_logging("INFO")
    configure_logging("INFO")
    logging.getLogger("x").warning("once")
    assert len(lines(log_buffer)) == 1
    assert sum(1 for h in logging.getLogger().handlers if h.get_name() == "mmcds-json") == 1


@pytest.mark.parametrize(
    "text, secret",
    [
        (f"Authorization: Bearer {JWT_LIKE}", JWT_LIKE),
        ("Authorization: Bearer opaque-token-123", "opaque-token-123"),
        (f"token {JWT_LIKE} seen", JWT_LIKE),
        (f"GET http://fhir/Observation?patient={PATIENT_ID}&_count=50", PATIENT_ID),
        (f'{{"access_token": "{FHIR_TOKEN}", "token_type": "Bearer"}}', FHIR_TOKEN),
    ],
)
def test_scrub_removes_credentials_and_query_values(text, secret):
    assert secret not in scrub(text)


def test_exceptions_are_logged_without_their_message(log_buffer):
    try:
        raise KeyError(NAME)
    except KeyError:
        logging.getLogger("cds_service.test").exception("failed", extra={"error_type": "KeyError"})
    out = lines(log_buffer)[-1]
    assert out["exc"]["type"] == "KeyError" and out["exc"]["frames"]
    assert NAME not in log_buffer.getvalue()


def test_message_arguments_are_scrubbed(log_buffer):
    logging.getLogger("urllib3.connectionpool").warning("GET %s", f"/Patient?identifier={MRN}")
    logging.getLogger("cds_service").warning("header %s", f"Bearer {JWT_LIKE}")
    text = log_buffer.getvalue()
    assert MRN not in text and JWT_LIKE not in text


def test_redact_filter_for_foreign_handlers():
    record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, "bad %s", (f"Bearer {JWT_LIKE}",), None)
    assert RedactFilter().filter(record) is True
    assert JWT_LIKE not in record.getMessage()
    assert JsonFormatter().format(record)


def _planted_request(pid: str) -> dict:
    from tests.builders import hook_request, len_refractory_patient

    prefetch = len_refractory_patient(pid)
    prefetch["patient"]["name"] = [{"family": NAME.split()[1], "given": [NAME.split()[0]], "text": NAME}]
    prefetch["patient"]["identifier"] = [{"system": "urn:oid:1.2.3.4", "value": MRN}]
    body = hook_request("patient-view", prefetch, pid=pid)
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: any fetch fails quickly
    body["fhirAuthorization"] = {"access_token": FHIR_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "mm-cds"}
    return body


def test_full_run_logs_carry_no_token_name_or_identifier(tmp_path: Path, log_buffer):
    """Requests carrying a JWT, a FHIR token, a patient name, an MRN and a patient id, through the
    real app (JWT auth on): valid, refused, malformed, fetch-failing and feedback calls."""
    from cds_service.app import create_app

    iss = "https://sandbox.cds-hooks.org"
    key = TestKey("ec384", "sb")
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(key)))
    app = create_app({
        "AUTH_MODE": "jwt", "TRUSTED_ISSUERS": json.dumps({iss: str(tmp_path / "jwks.json")}),
        "PUBLIC_BASE_URL": "http://cds.test", "DATABASE_URL": f"sqlite:///{tmp_path / 'logs.sqlite3'}",
        "DATA_DIR": str(tmp_path), "LOG_LEVEL": "DEBUG", "FHIR_TIMEOUT_S": "0.5", "AS_OF_DATE": "2026-11-01",
    })
    configure_logging("DEBUG", stream=log_buffer)
    client = app.test_client()
    tokens: list[str] = []

    def tok(path: str) -> dict:
        t = sign(key, claims(iss, f"http://cds.test{path}"))
        tokens.append(t)
        return {"Authorization": bearer(t), "Origin": "http://localhost:3000"}

    svc = "/cds-services/mm-next-line"
    ok = client.post(svc, json=_planted_request(PATIENT_ID), headers=tok(svc))
    assert ok.status_code == 200, ok.data
    cards = ok.get_json()["cards"]
    for drop in (["medicationStatements"], None):  # fetched with the FHIR token from a dead server
        missing = _planted_request(PATIENT_ID)
        for name in drop or list(missing["prefetch"]):
            del missing["prefetch"][name]
        assert client.post(svc, json=missing, headers=tok(svc)).status_code < 500
    wrong_hook = _planted_request(PATIENT_ID) | {"hook": f"hook-{NAME}"}
    assert client.post(svc, json=wrong_hook, headers=tok(svc)).status_code == 400
    assert client.post(svc, data=f"{{{NAME} {MRN}", headers=tok(svc) | {"Content-Type": "application/json"}
                       ).status_code == 400
    forged = sign(TestKey("ec384", "sb"), claims(iss, f"http://cds.test{svc}", sub=NAME))
    assert client.post(svc, json=_planted_request(PATIENT_ID), headers={"Authorization": bearer(forged)}
                       ).status_code == 401
    replay = {"Authorization": bearer(tokens[0])}
    assert client.post(svc, json=_planted_request(PATIENT_ID), headers=replay).status_code == 401
    fb = f"{svc}/feedback"
    good = {"feedback": [{"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T05:00:00Z",
                          "overrideReason": {"userComment": f"{NAME} {MRN} declined"}}]}
    assert client.post(fb, json=good, headers=tok(fb)).status_code == 200
    bad = {"feedback": [{"card": MRN, "outcome": NAME, "outcomeTimestamp": "x"}]}
    assert client.post(fb, json=bad, headers=tok(fb)).status_code == 400
    text = log_buffer.getvalue()
    assert len(lines(log_buffer)) >= 8  # the run did log (every line parsed as JSON)
    for secret in [NAME, *NAME.split(), MRN, PATIENT_ID, FHIR_TOKEN, forged, *tokens]:
        assert secret not in text, f"leaked into logs: {secret[:20]}…"


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=80) | st.sampled_from([
    "GET /Observation?patient=123", "Bearer abc.def", "basic dXNlcg==", '{"access_token": "x"}',
    "eyJhbGciOi.eyJzdWIi.sig", "plain service id mm-next-line", "BEARER   token"]))
def test_scrub_shortcut_changes_nothing(text: str) -> None:
    """The pre-check that skips the substitutions never skips a string they would change."""
    from cds_service import logs

    full = logs._JWT.sub("[token]", text)
    full = logs._BEARER.sub(r"\1 [redacted]", full)
    full = logs._SECRET_JSON.sub(r'\1"[redacted]"', full)
    full = logs._QUERY.sub(r"\1[redacted]", full)
    full = full if len(full) <= logs._MAX_STR else full[:logs._MAX_STR] + "…"
    assert logs.scrub(text) == full
