"""Prometheus metrics, safe under several gunicorn workers (multiprocess mode when configured).

`serve` sets PROMETHEUS_MULTIPROC_DIR before the workers start, so every worker writes its
samples to that folder and `/metrics` sums them; without it (tests, `evaluate`) the default
in-process registry is used.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("mmcds_hook_requests_total", "CDS service calls", ["service", "status"])
LATENCY = Histogram("mmcds_hook_latency_seconds", "CDS service call latency", ["service", "status"],
                    buckets=LATENCY_BUCKETS)
CARDS = Counter("mmcds_cards_total", "Cards returned", ["service", "rule"])
FHIR_FETCH = Histogram("mmcds_fhir_fetch_seconds", "Time gathering from the EHR's FHIR server", ["service"],
                       buckets=LATENCY_BUCKETS)
FHIR_ERRORS = Counter("mmcds_fhir_fetch_errors_total", "FHIR queries that failed", ["service"])
FEEDBACK = Counter("mmcds_feedback_total", "Feedback items stored", ["service", "outcome"])
HTTP_ERRORS = Counter("mmcds_http_errors_total", "Error responses by status", ["status"])


def observe_hook(service: str, status: int, seconds: float, cards: list[dict] | None = None) -> None:
    REQUESTS.labels(service, str(status)).inc()
    LATENCY.labels(service, str(status)).observe(seconds)
    for card in cards or []:
        rule = card.get("extension", {}).get("org.mmcds.card", {}).get("ruleId", "unknown")
        CARDS.labels(service, rule).inc()


def observe_fetch(service: str, seconds: float, errors: int) -> None:
    FHIR_FETCH.labels(service).observe(seconds)
    if errors:
        FHIR_ERRORS.labels(service).inc(errors)


def observe_feedback(service: str, outcome: str, count: int = 1) -> None:
    FEEDBACK.labels(service, outcome).inc(count)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
