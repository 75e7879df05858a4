"""The counters an operator alerts on move when the thing they count happens."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from tests.builders import hook_request, len_refractory_patient
from tests.fhir_server import FhirTestServer


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_feedback_outcomes_are_counted(client, call_service):
    resp = call_service("mm-next-line", hook_request("patient-view", len_refractory_patient()))
    card = resp.get_json()["cards"][0]
    before = _value("mmcds_feedback_total", service="mm-next-line", outcome="overridden")
    fb = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                        "outcomeTimestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}]}
    assert client.post("/cds-services/mm-next-line/feedback", json=fb).status_code == 200
    assert _value("mmcds_feedback_total", service="mm-next-line", outcome="overridden") == before + 1


def test_fhir_errors_are_counted_when_the_call_ends_in_412(call_service):
    before = _value("mmcds_fhir_fetch_errors_total", service="mm-next-line")
    with FhirTestServer([], fail="500") as srv:
        body = hook_request("patient-view", None)
        body["fhirServer"] = srv.base_url
        assert call_service("mm-next-line", body).status_code == 412
    assert _value("mmcds_fhir_fetch_errors_total", service="mm-next-line") > before


def test_state_cache_hits_and_misses_are_counted(call_service):
    import copy
    import uuid

    body = hook_request("patient-view", len_refractory_patient())
    miss0, hit0 = _value("mmcds_state_cache_total", result="miss"), _value("mmcds_state_cache_total", result="hit")
    first = copy.deepcopy(body)
    first["hookInstance"] = str(uuid.uuid4())
    assert call_service("mm-next-line", first).status_code == 200
    again = copy.deepcopy(body)
    again["hookInstance"] = str(uuid.uuid4())
    assert call_service("mm-next-line", again).status_code == 200
    assert _value("mmcds_state_cache_total", result="miss") == miss0 + 1
    assert _value("mmcds_state_cache_total", result="hit") == hit0 + 1
