"""Gather the patient's resources: prefetch first, the FHIR server for whatever is missing.

Two round trips at most in the usual case: the missing template queries in parallel, then the
Medication resources referenced but not included. Resources that name another patient are
dropped (a FHIR server that lies must not leak someone else's chart into a card).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cds_service.config import Settings
from cds_service.gather import fhir_client
from cds_service.gather.prefetch import bundle_resources, read_prefetch, render_template
from cds_service.hooks.registry import FALLBACK_QUERIES

# Without these the service cannot tell whether the patient has myeloma or what was given.
REQUIRED_KEYS = ("conditions",)
MEDICATION_KEYS = ("medicationStatements", "medicationRequests", "medicationAdministrations")
# Second-round searches for a refused template (hooks/registry.py): a DSTU2 server (the CDS Hooks
# sandbox's default) has MedicationOrder instead of MedicationRequest; a server without multipleOr
# on Observation.code answers one search per code.


class DataUnavailable(Exception):
    """The data needed cannot be had (→ 412 with an OperationOutcome)."""

    def __init__(self, detail: str, missing: list[str], fetch_errors: int = 0):
        super().__init__(detail)
        self.detail = detail
        self.missing = missing
        self.fetch_errors = fetch_errors  # failed queries against the FHIR server, for the metrics


@dataclass
class GatherResult:
    resources: list[dict[str, Any]]
    missing: list[str] = field(default_factory=list)  # template keys we could not obtain
    fetched: list[str] = field(default_factory=list)  # template keys fetched from the server
    problems: dict[str, str] = field(default_factory=dict)
    fhir_calls: int = 0
    dropped_other_patient: int = 0
    elapsed_ms: float = 0.0


def _patient_ref_id(resource: dict[str, Any]) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            value = ref["reference"].rstrip("/")
            parts = value.split("/")
            if len(parts) >= 2 and parts[-2] == "Patient":
                return parts[-1]
    return None


def _dedupe(resources: list[dict[str, Any]], patient_id: str | None) -> tuple[list[dict[str, Any]], int]:
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, Any]] = []
    dropped = 0
    own = f"Patient/{patient_id}" if patient_id else None
    for res in resources:
        rtype = res.get("resourceType")
        rid = res.get("id")
        if own is not None:
            if rtype == "Patient" and isinstance(rid, str) and rid != patient_id:
                dropped += 1
                continue
            ref = res.get("subject")
            value = ref.get("reference") if type(ref) is dict else None
            # the usual case, a plain reference to this patient, without taking the reference apart
            if value != own and _patient_ref_id(res) not in (None, patient_id):
                dropped += 1
                continue
        if isinstance(rid, str) and isinstance(rtype, str):
            ident = (rtype, rid)
            if ident in seen:
                continue
            seen.add(ident)
        out.append(res)
    return out, dropped


def _missing_medication_refs(resources: list[dict[str, Any]]) -> list[str]:
    have = {r.get("id") for r in resources if r.get("resourceType") == "Medication"}
    wanted: list[str] = []
    for res in resources:
        ref = res.get("medicationReference")
        if not isinstance(ref, dict):
            med = res.get("medication")
            ref = med.get("reference") if isinstance(med, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            value = ref["reference"]
            if value.startswith("#"):
                continue
            parts = value.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "Medication" and parts[-1] not in have:
                target = f"Medication/{parts[-1]}"
                if target not in wanted:
                    wanted.append(target)
    return wanted[:50]


def gather(request: dict[str, Any], templates: dict[str, str], settings: Settings) -> GatherResult:
    started = time.monotonic()
    deadline = started + settings.fhir_deadline_s
    context = request.get("context") if isinstance(request.get("context"), dict) else {}
    patient_id = context.get("patientId") if isinstance(context.get("patientId"), str) else None
    outcomes, extra = read_prefetch(request.get("prefetch"), templates)

    server = request.get("fhirServer") if isinstance(request.get("fhirServer"), str) else None
    auth = request.get("fhirAuthorization")
    token = auth.get("access_token") if isinstance(auth, dict) and isinstance(auth.get("access_token"), str) else None

    resources: list[dict[str, Any]] = list(extra)
    result = GatherResult(resources=[])
    jobs: dict[str, tuple[str | None, str | None]] = {}
    for key, outcome in outcomes.items():
        resources.extend(outcome.resources)
        if outcome.satisfied and not outcome.next_url:
            continue
        if outcome.satisfied and outcome.next_url:
            jobs[key] = (None, outcome.next_url)
            continue
        query = render_template(templates[key], context)
        if query is None:
            result.problems[key] = "template token missing from context"
            continue
        jobs[key] = (query, None)

    if server:
        fetched: dict[str, fhir_client.FetchResult] = {}
        if jobs:
            fetched = fhir_client.fetch_many(jobs, server, token, settings.fhir_timeout_s, deadline,
                                             settings.fhir_max_pages)
        for key, fr in fetched.items():
            result.fhir_calls += fr.calls
            resources.extend(fr.resources)
            if fr.problem:
                result.problems[key] = fr.problem
                if not fr.resources and not outcomes[key].satisfied:
                    continue
            result.fetched.append(key)
            outcomes[key].satisfied = True
        # Second round, in parallel: Medications referenced but not included, and DSTU2 fallbacks.
        # Draft orders may name a Medication that only the FHIR server holds: read it too.
        drafts = context.get("draftOrders")
        draft_resources = bundle_resources(drafts) if isinstance(drafts, dict) else []
        second: dict[str, tuple[str | None, str | None]] = {
            ref: (ref, None) for ref in _missing_medication_refs(resources + draft_resources)}
        for key, queries in FALLBACK_QUERIES.items():
            if key in jobs and not outcomes[key].satisfied and key in result.problems:
                for i, query in enumerate(queries):
                    rendered = render_template(query, context)
                    if rendered:
                        second[f"fallback:{key}:{i}"] = (rendered, None)
        second_results: dict[str, fhir_client.FetchResult] = {}
        if second and time.monotonic() < deadline:
            second_results = fhir_client.fetch_many(second, server, token, settings.fhir_timeout_s, deadline,
                                                    settings.fhir_max_pages)
        fallback_ok: dict[str, list[bool]] = {}
        for name, fr in second_results.items():
            result.fhir_calls += fr.calls
            resources.extend(fr.resources)
            if name.startswith("fallback:"):
                fallback_ok.setdefault(name.split(":")[1], []).append(not fr.problem)
            elif fr.problem:
                result.problems[name] = fr.problem
        for key, oks in fallback_ok.items():
            if all(oks) and len(oks) == len(FALLBACK_QUERIES[key]):  # every fallback search answered
                outcomes[key].satisfied = True
                result.fetched.append(key)
                result.problems.pop(key, None)
    else:
        for key in jobs:
            if not outcomes[key].satisfied:
                result.problems.setdefault(key, outcomes[key].problem or "absent")

    result.missing = [k for k, o in outcomes.items() if not o.satisfied]
    result.resources, result.dropped_other_patient = _dedupe(resources, patient_id)
    result.elapsed_ms = (time.monotonic() - started) * 1000

    needed = [k for k in REQUIRED_KEYS if k in result.missing]
    if all(k in result.missing for k in MEDICATION_KEYS if k in templates):
        needed.append("medications")
    if needed:
        how = "no fhirServer to fetch it from" if not server else "the FHIR server did not provide it"
        raise DataUnavailable(f"prefetch missing for {', '.join(needed)} and {how}", result.missing,
                              fetch_errors=len(result.problems) if server else 0)
    return result
