"""Fetch mode against a real local FHIR server: round trips, tokens, and servers that misbehave."""

from __future__ import annotations

import time

import pytest

from cds_service.config import Settings
from cds_service.gather.gather import DataUnavailable, gather
from cds_service.hooks import registry
from cds_service.hooks.registry import PREFETCH
from tests.builders import hook_request, len_refractory_patient
from tests.fhir_server import FhirTestServer, resources_from_prefetch


def _resources() -> list[dict]:
    return resources_from_prefetch(len_refractory_patient())


def _request(base: str, token: str | None = None) -> dict:
    body = hook_request("patient-view", None)
    body["fhirServer"] = base
    if token:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "mmcds"}
    return body


def test_all_queries_run_in_parallel_one_round_trip():
    with FhirTestServer(_resources(), delay_s=0.2) as srv:
        started = time.monotonic()
        result = gather(_request(srv.base_url, "tok"), PREFETCH, Settings(fhir_timeout_s=3, fhir_deadline_s=6))
        elapsed = time.monotonic() - started
    assert sorted(result.fetched) == sorted(PREFETCH)
    assert result.fhir_calls == len(PREFETCH)
    # eight queries at 200 ms each: sequential would take 1.6 s; parallel is about one round trip.
    # The bound is loose on purpose (a busy machine): it only has to rule out one-by-one fetching.
    assert elapsed < 0.2 * len(PREFETCH) * 0.75


def test_bearer_token_is_sent_and_required():
    with FhirTestServer(_resources(), require_token="tok") as srv:
        result = gather(_request(srv.base_url, "tok"), PREFETCH, Settings())
        assert any(r["resourceType"] == "Condition" for r in result.resources)
        with pytest.raises(DataUnavailable):
            gather(_request(srv.base_url, None), PREFETCH, Settings())


@pytest.mark.parametrize("mode", ["500", "html", "broken-bundle", "operation-outcome", "401"])
def test_broken_server_gives_data_unavailable(mode):
    with FhirTestServer(_resources(), fail=mode) as srv, pytest.raises(DataUnavailable):
        gather(_request(srv.base_url), PREFETCH, Settings(fhir_timeout_s=1, fhir_deadline_s=2))


def test_hanging_server_is_answered_within_twice_the_timeout():
    timeout = 0.5
    with FhirTestServer(_resources(), fail="hang") as srv:
        started = time.monotonic()
        with pytest.raises(DataUnavailable):
            gather(_request(srv.base_url), PREFETCH, Settings(fhir_timeout_s=timeout, fhir_deadline_s=2 * timeout))
        assert time.monotonic() - started < 2 * timeout + 0.5


def test_failing_optional_search_still_answers():
    with FhirTestServer(_resources(), fail="500", fail_types=["DiagnosticReport"]) as srv:
        result = gather(_request(srv.base_url), PREFETCH, Settings())
    assert result.missing == ["diagnosticReports"]


def test_paged_searches_are_followed():
    with FhirTestServer(_resources(), page_size=1) as srv:
        result = gather(_request(srv.base_url), PREFETCH, Settings())
    meds = [r for r in result.resources if r["resourceType"] == "MedicationStatement"]
    assert len(meds) == 3


def test_dstu2_server_falls_back_to_medication_order():
    res = [r for r in _resources() if r["resourceType"] != "MedicationStatement"]
    res.append({"resourceType": "MedicationOrder", "id": "mo1", "patient": {"reference": "Patient/p1"},
                "status": "active", "dateWritten": "2021-02-01",
                "medicationCodeableConcept": {"text": "Revlimid 10 mg capsule"}})
    with FhirTestServer(res, fail="operation-outcome", fail_types=["MedicationRequest"]) as srv:
        result = gather(_request(srv.base_url), PREFETCH, Settings())
    assert "medicationRequests" in result.fetched
    assert any(r["resourceType"] == "MedicationOrder" for r in result.resources)


def test_paging_cap_is_reported_as_incomplete():
    with FhirTestServer(_resources(), page_size=1) as srv:
        result = gather(_request(srv.base_url), PREFETCH, Settings(fhir_max_pages=2))
    assert "medicationStatements" in result.fetched
    assert result.problems["medicationStatements"] == "stopped after 2 pages"


def _with_noise(resources: list[dict]) -> list[dict]:
    """The chart plus routine labs and vital signs the service never reads, and a MedicationRequest
    with intent 'plan' (stopped: it counts, so filtering by intent must keep it)."""
    noise = [{"resourceType": "Observation", "id": f"cbc{i}", "status": "final", "subject": {"reference": "Patient/p1"},
              "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": "laboratory"}]}],
              "code": {"text": "Hemoglobin"}, "valueQuantity": {"value": 11.0 + i / 10, "unit": "g/dL"}}
             for i in range(20)]
    return resources + noise


def test_a_filtering_server_sends_only_what_the_service_reads():
    """Observations by code: the routine labs stay on the server; the myeloma results arrive."""
    res = _with_noise(_resources())
    with FhirTestServer(res, filters=True) as srv:
        filtered = gather(_request(srv.base_url), PREFETCH, Settings())
    with FhirTestServer(res) as srv:
        everything = gather(_request(srv.base_url), PREFETCH, Settings())
    ids = {r["id"] for r in filtered.resources}
    assert not any(i.startswith("cbc") for i in ids)
    assert sum(1 for r in everything.resources if r["id"].startswith("cbc")) == 20
    wanted = {r["id"] for r in everything.resources if not r["id"].startswith("cbc")}
    assert wanted <= ids  # everything the chart holds for the logic came through the filters
    assert filtered.missing == [] and filtered.problems == {}


def test_server_without_multiple_or_gets_one_search_per_code():
    """multipleOr on Observation.code is only SHOULD in US Core: a refused list falls back to one
    patient+code search per code (SHALL), in the second round, and the key counts as fetched."""
    res = _with_noise(_resources())
    with FhirTestServer(res, filters=True, multiple_or=False, delay_s=0.05) as srv:
        result = gather(_request(srv.base_url), PREFETCH, Settings())
        obs_searches = [e for e in srv.requests if e["path"].endswith("/Observation")]
    assert "observations" in result.fetched and "observations" not in result.missing
    assert not any(r["id"].startswith("cbc") for r in result.resources)
    assert sum(1 for r in result.resources if r["resourceType"] == "Observation") == \
        sum(1 for r in _resources() if r["resourceType"] == "Observation")
    assert len(obs_searches) == 1 + len(registry.FALLBACK_QUERIES["observations"])
    assert all("," not in dict(e["params"])["code"] for e in obs_searches[1:])
