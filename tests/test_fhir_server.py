"""Tests of the local FHIR test server (tests/fhir_server.py): it must behave like a real one."""

from __future__ import annotations

import time

import pytest
import requests

from tests.fhir_server import FhirTestServer, resources_from_prefetch

P1, P2 = "p1", "p2"


def _resources() -> list[dict]:
    res: list[dict] = [
        {"resourceType": "Patient", "id": P1, "birthDate": "1960-01-01"},
        {"resourceType": "Patient", "id": P2, "birthDate": "1970-01-01"},
        {"resourceType": "Medication", "id": "med-len", "code": {"text": "lenalidomide 10 mg"}},
        {"resourceType": "MedicationRequest", "id": "mr1", "status": "completed", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/med-len"}},
        {"resourceType": "MedicationRequest", "id": "mr2", "status": "completed", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/med-len"}},
        {"resourceType": "MedicationRequest", "id": "mr3", "status": "completed", "intent": "order",
         "subject": {"reference": "Patient/p1"},
         "contained": [{"resourceType": "Medication", "id": "c1", "code": {"text": "x"}}],
         "medicationReference": {"reference": "#c1"}},
        {"resourceType": "MedicationRequest", "id": "mr-other", "status": "completed", "intent": "order",
         "subject": {"reference": "Patient/p2"}, "medicationCodeableConcept": {"text": "aspirin"}},
    ]
    for i in range(7):
        res.append({"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": {"text": "x"},
                    "subject": {"reference": "Patient/p1"}})
    res.append({"resourceType": "Observation", "id": "o-p2", "status": "final", "code": {"text": "x"},
                "subject": {"reference": "Patient/p2"}})
    return res


def _ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def test_read_metadata_and_search() -> None:
    with FhirTestServer(_resources()) as srv:
        assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/fhir")
        r = requests.get(f"{srv.base_url}/metadata", timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/fhir+json")
        cap = r.json()
        assert cap["resourceType"] == "CapabilityStatement" and cap["fhirVersion"] == "4.0.1"

        r = requests.get(f"{srv.base_url}/Patient/p1", timeout=5)
        assert r.json()["id"] == P1
        r = requests.get(f"{srv.base_url}/Patient/nope", timeout=5)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"

        b = requests.get(f"{srv.base_url}/Observation?patient=p1", timeout=5).json()
        assert b["type"] == "searchset" and b["total"] == 7 and len(_ids(b)) == 7
        b = requests.get(f"{srv.base_url}/Observation", params={"subject": "Patient/p2"}, timeout=5).json()
        assert _ids(b) == ["o-p2"]
        b = requests.get(f"{srv.base_url}/Observation?patient=Patient/p1&code=http://loinc.org|1-1&foo=bar",
                         timeout=5).json()
        assert b["total"] == 7  # unknown / unsupported params are ignored
        b = requests.get(f"{srv.base_url}/Patient?_id=p2", timeout=5).json()
        assert _ids(b) == [P2]
        b = requests.get(f"{srv.base_url}/Condition?patient=p1", timeout=5).json()
        assert b["total"] == 0 and "entry" not in b
        assert srv.request_count == 8
        assert srv.requests[0]["path"] == "/fhir/metadata"


def test_include_medication_only_when_asked() -> None:
    with FhirTestServer(_resources()) as srv:
        b = requests.get(f"{srv.base_url}/MedicationRequest?patient=p1", timeout=5).json()
        assert sorted(_ids(b)) == ["mr1", "mr2", "mr3"] and _ids(b, "include") == []
        b = requests.get(f"{srv.base_url}/MedicationRequest",
                         params={"patient": "p1", "_include": "MedicationRequest:medication"}, timeout=5).json()
        assert _ids(b, "include") == ["med-len"]  # once, although two requests reference it
        assert b["total"] == 3  # total counts matches only
        # the Medication is not found by a patient search (it has no subject), only by read/_include
        b = requests.get(f"{srv.base_url}/Medication?patient=p1", timeout=5).json()
        assert b["total"] == 0
        assert requests.get(f"{srv.base_url}/Medication/med-len", timeout=5).status_code == 200


def test_post_search() -> None:
    with FhirTestServer(_resources()) as srv:
        r = requests.post(f"{srv.base_url}/MedicationRequest/_search",
                          data={"patient": "p1", "_include": "MedicationRequest:medication"}, timeout=5)
        b = r.json()
        assert r.status_code == 200 and sorted(_ids(b)) == ["mr1", "mr2", "mr3"] and _ids(b, "include") == ["med-len"]
        assert srv.requests[-1]["method"] == "POST"


def test_paging_follows_next_links() -> None:
    with FhirTestServer(_resources(), page_size=3) as srv:
        url: str | None = f"{srv.base_url}/Observation?patient=p1"
        seen: list[str] = []
        pages = 0
        while url and pages < 10:
            b = requests.get(url, timeout=5).json()
            assert b["total"] == 7
            seen += _ids(b)
            url = next((link["url"] for link in b["link"] if link["relation"] == "next"), None)
            pages += 1
        assert pages == 3 and sorted(seen) == [f"o{i}" for i in range(7)]
        # _count is honoured (and never exceeds the server's page size)
        b = requests.get(f"{srv.base_url}/Observation?patient=p1&_count=2", timeout=5).json()
        assert len(_ids(b)) == 2 and any(lk["relation"] == "next" for lk in b["link"])
    with FhirTestServer(_resources()) as srv:
        b = requests.get(f"{srv.base_url}/Observation?patient=p1&_count=5", timeout=5).json()
        assert len(_ids(b)) == 5
        b = requests.get(f"{srv.base_url}/Observation?patient=p1", timeout=5).json()
        assert len(_ids(b)) == 7 and all(lk["relation"] != "next" for lk in b["link"])


def test_delay() -> None:
    with FhirTestServer(_resources(), delay_s=0.2) as srv:
        t0 = time.perf_counter()
        requests.get(f"{srv.base_url}/Patient/p1", timeout=5)
        assert time.perf_counter() - t0 >= 0.2


def test_require_token() -> None:
    with FhirTestServer(_resources(), require_token="secret") as srv:
        r = requests.get(f"{srv.base_url}/Patient/p1", timeout=5)
        assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
        r = requests.get(f"{srv.base_url}/Patient/p1", headers={"Authorization": "Bearer secret"}, timeout=5)
        assert r.status_code == 200
        assert srv.requests[-1]["authorization"] == "Bearer secret"


@pytest.mark.parametrize("mode", ["500", "html", "broken-bundle", "operation-outcome", "401"])
def test_failure_modes(mode: str) -> None:
    with FhirTestServer(_resources(), fail=mode) as srv:
        r = requests.get(f"{srv.base_url}/Observation?patient=p1", timeout=5)
        if mode == "500":
            assert r.status_code == 500
        elif mode == "html":
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
        elif mode == "broken-bundle":
            assert r.status_code == 200
            with pytest.raises(ValueError):
                r.json()
        elif mode == "operation-outcome":
            assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
        else:
            assert r.status_code == 401


def test_fail_only_some_types() -> None:
    with FhirTestServer(_resources(), fail="500", fail_types={"Observation"}) as srv:
        assert requests.get(f"{srv.base_url}/Observation?patient=p1", timeout=5).status_code == 500
        assert requests.get(f"{srv.base_url}/Patient/p1", timeout=5).status_code == 200


def test_hang_times_out_client_and_server_still_stops() -> None:
    t0 = time.perf_counter()
    with FhirTestServer(_resources(), fail="hang") as srv, pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{srv.base_url}/Patient/p1", timeout=0.3)
    assert time.perf_counter() - t0 < 10


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        FhirTestServer([], fail="teapot")
    with pytest.raises(ValueError):
        FhirTestServer([{"resourceType": "Patient"}])


def test_resources_from_prefetch_dedupes() -> None:
    med = {"resourceType": "Medication", "id": "m"}
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p"},
        "a": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": med}, {"resource": med}]},
        "b": {"resourceType": "Bundle", "type": "searchset"},
    }
    got = resources_from_prefetch(prefetch)
    assert [(r["resourceType"], r["id"]) for r in got] == [("Patient", "p"), ("Medication", "m")]


def test_parallel_searches_do_not_stall() -> None:
    """16 parallel searches (a service fetching all prefetch keys at once) finish promptly: no SYN drops."""
    from concurrent.futures import ThreadPoolExecutor

    with FhirTestServer(_resources()) as srv:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: requests.get(f"{srv.base_url}/Observation?patient=p1", timeout=5)
                                  .status_code, range(16)))
        assert codes == [200] * 16
        assert time.perf_counter() - t0 < 0.9  # a dropped SYN costs >= 1 s


def test_include_can_be_unsupported() -> None:
    with FhirTestServer(_resources(), include_supported=False) as srv:
        b = requests.get(f"{srv.base_url}/MedicationRequest",
                         params={"patient": "p1", "_include": "MedicationRequest:medication"}, timeout=5).json()
        assert _ids(b, "include") == [] and b["total"] == 3
        assert requests.get(f"{srv.base_url}/Medication/med-len", timeout=5).status_code == 200
        b = requests.get(f"{srv.base_url}/Medication?_id=med-len", timeout=5).json()
        assert _ids(b) == ["med-len"]
