"""Prometheus metrics, safe under several gunicorn workers (multiprocess mode when configured).

`serve` sets PROMETHEUS_MULTIPROC_DIR before the workers start, so every worker writes its
samples to that folder and `/metrics` sums them; without it (tests, `evaluate`) the default
in-process registry is used.
"""

from __future__ import annotations

import os
from typing import Any

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
STATE_CACHE = Counter("mmcds_state_cache_total", "Answered calls whose chart was read afresh (miss) or reused (hit)",
                      ["result"])


_CHILDREN: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: `labels()` validates and locks on every call, and a
    patient-view call counts ~8 series (label sets are few: services × statuses, services × rules)."""
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def observe_hook(service: str, status: int, seconds: float, cards: list[dict] | None = None) -> None:
    code = str(status)
    _child(REQUESTS, service, code).inc()
    _child(LATENCY, service, code).observe(seconds)
    for card in cards or []:
        rule = card.get("extension", {}).get("org.mmcds.card", {}).get("ruleId", "unknown")
        _child(CARDS, service, rule).inc()


def observe_state_cache(hit: bool) -> None:
    _child(STATE_CACHE, "hit" if hit else "miss").inc()


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
