"""The service as an EHR meets it: the Flask app from `create_app`, called over its HTTP API.

`service(**config)` gives a test client for one institution's configuration (LABEL_REGION,
CAR_T_AVAILABLE, AS_OF_DATE...); `call(client, request)` posts a CDS Hooks request, checks the
response against the CDS Hooks schema and the hygiene every card must meet, and returns the cards.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_valid_response
from tests.fhir_server import FhirTestServer, resources_from_prefetch

AS_OF = "2026-11-01"
SERVICE = {"patient-view": "mm-next-line", "order-select": "mm-order-check", "order-sign": "mm-order-sign"}
# seed file names ("003", "001_...") and the name of the seeds' author are internal, never card text
_INTERNAL = re.compile(r"(?<![\d.\-/])00[0-4](?![\d.\-/%])|\b00[0-4]_|dr\.?\s*oracle", re.I)
_SEARCH_URL = re.compile(r"pubmed\.ncbi\.nlm\.nih\.gov/\?|[?&]term=|/search\b|google\.", re.I)


class Checker:
    """Soft assertions: a patient's expectations are all checked and all failures reported together,
    so a developer sees every clinical point the answer misses, not only the first."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.hygiene: list[str] = []

    def __call__(self, condition: object, message: str, hygiene: bool = False) -> bool:
        bucket = self.hygiene if hygiene else self.failures
        if not condition and message not in bucket:
            bucket.append(message)
        return bool(condition)

    def done(self) -> None:
        """Clinical failures first, then card hygiene (first three of each kind, with the count)."""
        lines = [f"- {f}" for f in self.failures]
        if self.hygiene:
            lines.append(f"- card hygiene: {len(self.hygiene)} problem(s), e.g.:")
            lines += [f"    {h}" for h in self.hygiene[:3]]
        assert not lines, "\n".join(lines)


@pytest.fixture
def ck() -> Checker:
    return Checker()


def check_hygiene(hook: str, cards: list[dict[str, Any]], ck: Checker) -> None:
    """What every answer owes a busy clinician (CONTRACT; developers' guide 'cards for busy clinicians')."""
    if hook == "patient-view":
        ck(len(cards) <= 4, hygiene=True, message=f"{len(cards)} cards on chart open (max 4): {[c.get('summary') for c in cards]}")
    for card in cards:
        summary = card.get("summary", "")
        ck(len(summary) < 140, hygiene=True, message=f"summary of {len(summary)} chars: {summary!r}")
        text = "\n".join([summary, card.get("detail") or ""]
                         + [lk.get("label", "") for lk in card.get("links") or []]
                         + [s.get("label", "") for s in card.get("suggestions") or []])
        bad = _INTERNAL.search(text)
        where = text[max(0, bad.start() - 60):bad.end() + 60] if bad else ""
        ck(not bad, hygiene=True, message=f"internal identifier in card text: {where!r}")
        urls = [lk.get("url", "") for lk in card.get("links") or []]
        urls += [s.get("url") or "" for s in card.get("extension", {}).get("org.mmcds.card", {}).get("sources", [])]
        for opt in card.get("extension", {}).get("org.mmcds.card", {}).get("options", []) or []:
            ck(any(src.get("url") for src in opt.get("sources") or []), hygiene=True,
               message=f"option {opt.get('regimen')} has no source one click away")
        for url in urls:
            ck(not _SEARCH_URL.search(url), hygiene=True, message=f"source link is a search, not the paper/guideline: {url}")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    from cds_service.app import create_app

    clients: dict[tuple[tuple[str, Any], ...], Any] = {}

    def get(**config: Any) -> Any:
        key = tuple(sorted(config.items()))
        if key not in clients:
            tmp: Path = tmp_path_factory.mktemp("specialist")
            cfg = {"AUTH_MODE": "none", "AS_OF_DATE": AS_OF, "DATABASE_URL": f"sqlite:///{tmp / 's.sqlite3'}",
                   "DATA_DIR": str(tmp), **config}
            clients[key] = create_app(cfg).test_client()
        return clients[key]

    return get


def call(client: Any, request: dict[str, Any], ck: Checker, via: str = "prefetch") -> list[dict[str, Any]]:
    """POST one CDS Hooks request. `via="fhir"`: no prefetch — the service reads the chart from a
    real local FHIR server, as with EHRs that prefetch nothing (or not Procedures)."""
    hook = request["hook"]
    if via == "fhir":
        request = copy.deepcopy(request)
        with FhirTestServer(resources_from_prefetch(request.pop("prefetch"))) as srv:
            request["fhirServer"] = srv.base_url
            resp = client.post(f"/cds-services/{SERVICE[hook]}", json=request)
            assert srv.request_count > 0, "the service did not read the FHIR server"
    else:
        resp = client.post(f"/cds-services/{SERVICE[hook]}", json=request)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    body = resp.get_json()
    assert_valid_response(body)
    cards = body.get("cards", [])
    check_hygiene(hook, cards, ck)
    return cards
