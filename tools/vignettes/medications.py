"""Medication encoders: MedicationStatement (period, single date or only dateAsserted), MedicationRequest per
cycle or per monthly fill, MedicationAdministration per dose, orders naming only a local protocol.

Why several shapes for the same therapy: EHRs record one regimen as a patient-reported statement, as
one order per cycle or as one administration per dose; the service must reach the same treatment
history from each, so the vignettes send each.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tools.vignettes.catalog import catalog, codings
from tools.vignettes.chart import Chart, DataError, Spec, day, encoder, iso, schedule


def stop_reason(kind: str) -> dict[str, Any]:
    """mCODE TreatmentTerminationReasonVS concept: 'progression' | 'toxicity'."""
    reasons = catalog()["stop_reasons"]
    if kind not in reasons:
        raise DataError(f"reason: {kind!r} is not one of {sorted(reasons)}")
    r = reasons[kind]
    return {"coding": codings([[c["system"], c["code"], c["display"]] for c in r["coding"]]), "text": r["text"]}


@encoder("statement")
def statement(chart: Chart, spec: Spec, asserted: bool = True) -> None:
    """One MedicationStatement per drug. When: `start` [+ `end`] (effectivePeriod), or `date`
    (effectiveDateTime), or neither (only `asserted`, the date it was recorded). Status defaults to
    completed with an end, else active; `reason` (progression | toxicity) becomes statusReason."""
    start, end, when = spec.opt("start"), spec.opt("end"), spec.opt("date")
    status, reason, dosage, rid = spec.opt("status"), spec.opt("reason"), spec.opt("dosage"), spec.opt("id")
    claimed = spec.opt("asserted")
    if end and not start:
        raise DataError(f"statement: end {end} without start")
    for d in spec.drugs():
        r: dict[str, Any] = {"resourceType": "MedicationStatement", "id": rid or chart.nid("ms"),
                             "status": status or ("completed" if end else "active"),
                             **chart.medication(d, chart.includes["medicationStatements"]), "subject": chart.subject}
        if start:
            r["effectivePeriod"] = {"start": start, **({"end": end} if end else {})}
        elif when:
            r["effectiveDateTime"] = when
        if asserted:
            r["dateAsserted"] = claimed or end or start or when
            if not r["dateAsserted"]:
                raise DataError("statement: needs start, date or asserted")
        if reason:
            r["statusReason"] = [stop_reason(reason)]
        if dosage or d.get("dosage"):
            r["dosage"] = [{"text": d.get("dosage") or dosage}]
        chart.add("medicationStatements", r)


@encoder("supportive")
def supportive(chart: Chart, spec: Spec) -> None:
    """A non-myeloma drug the patient takes (aspirin, acyclovir ...): a statement without dateAsserted."""
    statement(chart, spec, asserted=False)


@encoder("cycles")
def cycles(chart: Chart, spec: Spec) -> None:
    """One MedicationRequest per cycle and drug: authoredOn `authored_before` days (2) before the cycle,
    boundsPeriod over `treated_days` (default the whole `days`-long cycle). All cycles completed; the last
    one `last_status` (completed), `last_reason`, ending `last_end`, or active with `active_last`."""
    start, count, days = day(spec.req("start")), spec.req("count"), spec.req("days")
    treated = spec.opt("treated_days", days)
    before = spec.opt("authored_before", 2)
    last_status, last_reason, last_end = spec.opt("last_status", "completed"), spec.opt("last_reason"), spec.opt("last_end")
    active_last = spec.opt("active_last", False)
    drugs = spec.drugs()
    for i in range(count):
        cs = start + timedelta(days=i * days)
        ce = cs + timedelta(days=treated - 1)
        is_last = i == count - 1
        if is_last and last_end:
            ce = day(last_end)
        for d in drugs:
            status = ("active" if active_last else last_status) if is_last else "completed"
            r: dict[str, Any] = {
                "resourceType": "MedicationRequest", "id": chart.nid("mr"), "status": status, "intent": "order",
                **chart.medication(d, chart.includes["medicationRequests"]), "subject": chart.subject,
                "authoredOn": iso(cs - timedelta(days=before)),
                "dosageInstruction": [{
                    "text": d.get("dosage", f"cycle {i + 1}"),
                    "timing": {"repeat": {"boundsPeriod": {"start": iso(cs), "end": iso(ce)}}}}],
            }
            if is_last and last_reason:
                r["statusReason"] = stop_reason(last_reason)
            chart.add("medicationRequests", r)


@encoder("prescription")
def prescription(chart: Chart, spec: Spec) -> None:
    """A MedicationRequest without boundsPeriod (an outpatient prescription), `authored` on a date; with
    `count` and `every` (days) repeated as refills; `dispense` {quantity, unit, days} adds a dispenseRequest."""
    first, status, rid = day(spec.req("authored")), spec.opt("status", "completed"), spec.opt("id")
    count, every, dosage, dispense = spec.opt("count", 1), spec.opt("every", 0), spec.opt("dosage"), spec.opt("dispense")
    if rid and count > 1:
        raise DataError("prescription: a fixed id cannot repeat")
    for d in spec.drugs():
        for i in range(count):
            r: dict[str, Any] = {"resourceType": "MedicationRequest", "id": rid or chart.nid("mr"), "status": status,
                                 "intent": "order", **chart.medication(d, chart.includes["medicationRequests"]),
                                 "subject": chart.subject, "authoredOn": iso(first + timedelta(days=i * every))}
            if dosage or d.get("dosage"):
                r["dosageInstruction"] = [{"text": d.get("dosage") or dosage}]
            if dispense:
                r["dispenseRequest"] = {
                    "quantity": {"value": dispense["quantity"], "unit": dispense["unit"]},
                    "expectedSupplyDuration": {"value": dispense["days"], "unit": "days",
                                               "system": "http://unitsofmeasure.org", "code": "d"}}
            chart.add("medicationRequests", r)


@encoder("protocol-order")
def protocol_order(chart: Chart, spec: Spec) -> None:
    """An order that names only a local chemotherapy protocol (`code`, `display`): no drug can be read."""
    chart.add("medicationRequests", {
        "resourceType": "MedicationRequest", "id": spec.opt("id") or chart.nid("mr"),
        "status": spec.opt("status", "completed"), "intent": "order", "subject": chart.subject,
        "authoredOn": spec.req("authored"),
        "medicationCodeableConcept": {"coding": codings([["local-formulary", spec.req("code"), spec.req("display")]])}})


@encoder("administrations")
def administrations(chart: Chart, spec: Spec) -> None:
    """One MedicationAdministration per dose date (see `schedule`) at `time` (09:30:00Z), optional `route` text.
    Several drugs on one record: all doses of the first, then of the next."""
    dates, time, route = schedule(spec), spec.opt("time", "09:30:00Z"), spec.opt("route")
    for d in spec.drugs():
        for dt in dates:
            r: dict[str, Any] = {"resourceType": "MedicationAdministration", "id": chart.nid("ma"),
                                 "status": "completed",
                                 **chart.medication(d, chart.includes["medicationAdministrations"]),
                                 "subject": chart.subject, "effectiveDateTime": f"{iso(dt)}T{time}"}
            if route:
                r["dosage"] = {"route": {"text": route}}
            chart.add("medicationAdministrations", r)
