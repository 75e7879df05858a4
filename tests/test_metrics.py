"""/metrics: requests and latency per service and status, cards per rule, FHIR fetches, feedback —
in-process, and summed across the workers of a real `serve` (prometheus multiprocess mode)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cds_service import metrics
from cds_service.conformance import expected_statuses, load_fixtures
from cds_service.hooks.registry import SERVICES
from tests.fhir_server import FhirTestServer, resources_from_prefetch
from tests.servers import ServedApp

ROOT = Path(__file__).resolve().parent.parent
PREFETCH_KEYS = list(SERVICES["mm-next-line"].prefetch)


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text → {(sample name, sorted labels): value}."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum over every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and want <= set(lbl))


def scrape(client: Any) -> dict:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return parse(resp.get_data(as_text=True))


def patient_view_fixtures() -> list[dict[str, Any]]:
    """Shipped patient-view fixtures whose prefetch is complete (they must be answered 200)."""
    return [f.request for f in load_fixtures() if f.request["hook"] == "patient-view"
            and expected_statuses(f.request, PREFETCH_KEYS) == (200,)]


@pytest.fixture(autouse=True)
def _in_process_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def test_hook_calls_latency_and_cards_per_rule(client) -> None:
    before = scrape(client)
    cards: list[dict[str, Any]] = []
    sent = 0
    for request in patient_view_fixtures():
        resp = client.post("/cds-services/mm-next-line", json=request)
        assert resp.status_code == 200
        cards.extend(resp.get_json()["cards"])
        sent += 1
        if len(cards) >= 5:
            break
    assert cards, "no shipped patient-view fixture produced a card"
    after = scrape(client)
    name = "mmcds_hook_requests_total"
    assert value(after, name, service="mm-next-line", status="200") - value(before, name, service="mm-next-line",
                                                                            status="200") == sent
    count = "mmcds_hook_latency_seconds_count"
    assert value(after, count, service="mm-next-line", status="200") - value(
        before, count, service="mm-next-line", status="200") == sent
    assert value(after, "mmcds_hook_latency_seconds_sum", service="mm-next-line", status="200") > value(
        before, "mmcds_hook_latency_seconds_sum", service="mm-next-line", status="200")
    by_rule: dict[str, int] = {}
    for card in cards:
        rule = card["extension"]["org.mmcds.card"]["ruleId"]
        by_rule[rule] = by_rule.get(rule, 0) + 1
    for rule, n in by_rule.items():
        got = value(after, "mmcds_cards_total", service="mm-next-line", rule=rule) - value(
            before, "mmcds_cards_total", service="mm-next-line", rule=rule)
        assert got == n, rule


def test_refusals_are_counted_by_service_and_status(client) -> None:
    before = scrape(client)
    assert client.post("/cds-services/nope", json={}).status_code == 404
    assert client.post("/cds-services/mm-order-sign", data=b"x", content_type="text/plain").status_code == 415
    assert client.post("/cds-services/mm-order-sign", data=b"{", content_type="application/json").status_code == 400
    after = scrape(client)
    for service, status in (("unknown", "404"), ("mm-order-sign", "415"), ("mm-order-sign", "400")):
        assert value(after, "mmcds_hook_requests_total", service=service, status=status) - value(
            before, "mmcds_hook_requests_total", service=service, status=status) == 1, (service, status)
    assert value(after, "mmcds_http_errors_total", status="415") - value(before, "mmcds_http_errors_total",
                                                                         status="415") == 1


def test_fhir_fetch_latency_and_errors(client) -> None:
    """No prefetch: the record comes from a FHIR server; one resource type failing counts as errors."""
    request = patient_view_fixtures()[0]
    resources = resources_from_prefetch(request["prefetch"])
    base = {k: v for k, v in request.items() if k not in ("prefetch", "fhirAuthorization")}
    before = scrape(client)
    with FhirTestServer(resources) as fhir:
        resp = client.post("/cds-services/mm-next-line", json=base | {"fhirServer": fhir.base_url})
        assert resp.status_code == 200 and fhir.request_count > 0
    mid = scrape(client)
    assert value(mid, "mmcds_fhir_fetch_seconds_count", service="mm-next-line") - value(
        before, "mmcds_fhir_fetch_seconds_count", service="mm-next-line") == 1
    assert value(mid, "mmcds_fhir_fetch_errors_total", service="mm-next-line") == value(
        before, "mmcds_fhir_fetch_errors_total", service="mm-next-line")
    with FhirTestServer(resources, fail="500", fail_types=["Observation", "DiagnosticReport"]) as fhir:
        resp = client.post("/cds-services/mm-next-line", json=base | {"fhirServer": fhir.base_url})
        assert resp.status_code == 200
    after = scrape(client)
    assert value(after, "mmcds_fhir_fetch_errors_total", service="mm-next-line") - value(
        mid, "mmcds_fhir_fetch_errors_total", service="mm-next-line") >= 2
    assert value(after, "mmcds_fhir_fetch_seconds_count", service="mm-next-line") - value(
        mid, "mmcds_fhir_fetch_seconds_count", service="mm-next-line") == 1


def test_feedback_outcomes(client) -> None:
    before = scrape(client)
    metrics.observe_feedback("mm-next-line", "accepted")
    metrics.observe_feedback("mm-next-line", "overridden", 2)
    after = scrape(client)
    assert value(after, "mmcds_feedback_total", service="mm-next-line", outcome="accepted") - value(
        before, "mmcds_feedback_total", service="mm-next-line", outcome="accepted") == 1
    assert value(after, "mmcds_feedback_total", service="mm-next-line", outcome="overridden") - value(
        before, "mmcds_feedback_total", service="mm-next-line", outcome="overridden") == 2


def test_metrics_names_are_documented() -> None:
    readme = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for metric in (metrics.REQUESTS, metrics.LATENCY, metrics.CARDS, metrics.FHIR_FETCH, metrics.FHIR_ERRORS,
                   metrics.FEEDBACK, metrics.HTTP_ERRORS):
        name = metric._name + ("_total" if metric._type == "counter" else "")
        assert f"`{name}`" in readme, name


# ------------------------------------------------------------------------------- multiprocess


def _post(url: str, body: bytes) -> int:
    # A new connection per call, so the kernel spreads them over the workers.
    return requests.post(url, data=body, headers={"Content-Type": "application/json", "Connection": "close"},
                         timeout=30).status_code


@pytest.mark.slow
def test_counts_from_every_worker_add_up_under_serve(tmp_path: Path) -> None:
    request = patient_view_fixtures()[0]
    body = json.dumps(request).encode()
    with ServedApp(tmp_path, workers=2, threads=4) as srv:
        # serve gives each instance its own folder under DATA_DIR/prometheus (<port>-<pid>)
        prom_dir = tmp_path / "prometheus" / f"{srv.port}-{srv.proc.pid}"
        url = srv.url("/cds-services/mm-next-line")
        sent = 0
        with ThreadPoolExecutor(max_workers=12) as pool:
            # Which worker accepts a connection is the kernel's choice: send batches until both have
            # served (usually the first batch; bounded for a loaded machine).
            for _round in range(40):
                statuses = list(pool.map(lambda _i: _post(url, body), range(24)))
                assert statuses == [200] * 24, f"{statuses}\n{srv.logs()[-2000:]}"
                sent += 24
                pids = {p.stem.rsplit("_", 1)[-1] for p in prom_dir.glob("counter_*.db")}
                pids.discard(str(srv.proc.pid))  # the gunicorn master serves nothing
                if len(pids) >= 2:
                    break
        assert len(pids) >= 2, f"only {pids} served; files: {sorted(p.name for p in prom_dir.iterdir())}"
        # Any worker may answer the scrape: every scrape sees the sum of all workers.
        for _ in range(4):
            text = requests.get(srv.url("/metrics"), headers={"Connection": "close"}, timeout=10).text
            samples = parse(text)
            assert value(samples, "mmcds_hook_requests_total", service="mm-next-line", status="200") == sent
            assert value(samples, "mmcds_hook_latency_seconds_count", service="mm-next-line", status="200") == sent
            assert total(samples, "mmcds_cards_total", service="mm-next-line") > 0
        assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None  # set for the server only
