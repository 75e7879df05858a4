"""Benchmark charts: many different myeloma patients, and one long chart with a real EHR's noise.

Why: an EHR calls the service for one patient after another, so the figure that matters is the
cost of a chart the service has never seen, over charts that differ the way real ones do — not one
chart sent again. And a long chart shows what a bare `Observation?patient=` search costs: eight
years of routine labs and vital signs that the logic never reads.

- `distinct_charts(n)`: n different patients (ids, dates, one to four lines of therapy from six
  regimens, transplant or not, medications as MedicationRequest / MedicationStatement /
  MedicationAdministration with ingredient, product or text-only concepts, FISH as a Genomics
  Variant Observation or a narrative laboratory report, ICD-10-CM or SNOMED diagnosis), each
  about the size a filtering EHR sends (~180 resources: the history and its supportive care).
- `long_chart(years)`: the myeloma history of `years` of treatment plus the noise around it —
  routine CBC/CMP results (text-coded, as many lab feeds send them), vital signs and
  supportive-care administrations (premedication, hydration) that no rule reads.
- `filtered(resources)`: what an EHR that honours the discovery templates' filters sends (the
  same token matching as a FHIR server: `code`, `category`, `intent`).

Codes: only those of bench/patients.py (sources named there) and mappings/observations.yaml.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bench import patients
from bench.patients import (
    COND_CLINICAL,
    ICD10CM,
    LOINC,
    OBS_CATEGORY,
    SNOMED,
    _dt,
    _Ids,
    _med_concept,
    _quantity,
    _subject,
    _text_concept,
)
from cds_service.hooks.registry import PREFETCH

AS_OF = patients.AS_OF
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"  # US Core lab report category LAB

REGIMENS: dict[str, tuple[str, ...]] = {
    "VRd": ("bortezomib", "lenalidomide", "dexamethasone"),
    "DRd": ("daratumumab", "lenalidomide", "dexamethasone"),
    "DKd": ("daratumumab", "carfilzomib", "dexamethasone"),
    "PVd": ("pomalidomide", "bortezomib", "dexamethasone"),
    "Kd": ("carfilzomib", "dexamethasone"),
    "Rd": ("lenalidomide", "dexamethasone"),
}
FIRST_LINE = ("VRd", "DRd", "Rd")
LATER_LINES = ("DKd", "PVd", "Kd", "DRd")
# Cytogenetics written as a laboratory result (ISCN text, terminology.md §3b components in patients.py).
FISH_FINDINGS = ("t(4;14)(p16;q32)", "t(11;14)(q13;q32)", "del(17p)", "gain(1q21)", "t(14;16)(q32;q23)")
# Routine results nobody reads for myeloma decisions (text codes, as many feeds send them).
ROUTINE_LABS = ("Hemoglobin", "Hematocrit", "Leukocytes", "Platelets", "Erythrocytes", "MCV", "MCH", "MCHC", "RDW",
                "Neutrophils absolute", "Lymphocytes absolute", "Monocytes absolute", "Sodium", "Potassium",
                "Chloride", "Carbon dioxide", "Urea nitrogen", "Glucose", "ALT", "AST", "Alkaline phosphatase",
                "Bilirubin total")
VITALS = ("Body weight", "Heart rate", "Body temperature", "Respiratory rate", "Oxygen saturation",
          "Systolic blood pressure")
# Administrations around infusions that no rule reads (premedication, hydration, electrolytes).
NEUTRAL_ADMINS = ("sodium chloride 0.9 % 250 mL infusion", "diphenhydramine 25 mg injection",
                  "acetaminophen 650 mg oral tablet", "famotidine 20 mg injection", "loratadine 10 mg oral tablet",
                  "potassium chloride 20 mEq oral tablet", "magnesium sulfate 2 g infusion")


# ------------------------------------------------------------------------------ one history
def _lab(ids: _Ids, pid: str, code: str | None, display: str, unit: str, value: float, when: date,
         category: str = "laboratory") -> dict[str, Any]:
    concept: dict[str, Any] = {"text": display}
    if code:
        concept["coding"] = [{"system": LOINC, "code": code, "display": display}]
    return {"resourceType": "Observation", "id": ids("obs"), "status": "final", "subject": _subject(pid),
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
            "code": concept, "effectiveDateTime": _dt(when, 7), "valueQuantity": _quantity(value, unit)}


def _medication(ids: _Ids, rng: random.Random, pid: str, agent: str, start: date, end: date, status: str,
                encoding: str, progression: bool) -> dict[str, Any]:
    concept = (_med_concept(agent, product=encoding == "product") if encoding != "text"
               else _text_concept(f"{agent} per protocol"))
    reason = ({"coding": [{"system": SNOMED, "code": "266721009", "display": "No response to treatment (situation)"}]}
              if progression else None)
    if encoding == "statement":
        res: dict[str, Any] = {"resourceType": "MedicationStatement", "id": ids("ms"), "status": status,
                               "subject": _subject(pid), "medicationCodeableConcept": concept,
                               "effectivePeriod": {"start": start.isoformat(), "end": end.isoformat()}}
        if reason:
            res["statusReason"] = [reason]
        return res
    res = {"resourceType": "MedicationRequest", "id": ids("mr"), "status": status, "intent": "order",
           "subject": _subject(pid), "authoredOn": _dt(start, 8), "medicationCodeableConcept": concept,
           "dosageInstruction": [{"text": f"{agent} per protocol",
                                  "timing": {"repeat": {"boundsPeriod": {"start": start.isoformat(),
                                                                         "end": end.isoformat()}}}}]}
    if reason:
        res["statusReason"] = reason
    return res


def _administration(ids: _Ids, pid: str, concept: dict[str, Any], when: date, route: str) -> dict[str, Any]:
    return {"resourceType": "MedicationAdministration", "id": ids("ma"), "status": "completed",
            "subject": _subject(pid), "medicationCodeableConcept": concept, "effectiveDateTime": _dt(when, 10),
            "dosage": {"route": {"text": route}}}


def history(seed: int, pid: str, years: float, n_lines: int | None = None, visits_per_month: float = 1.0,
            doses: bool = True) -> list[dict[str, Any]]:
    """A myeloma history: diagnosis `years` before AS_OF, lines ending in progression, monthly
    M-protein and free light chains, quarterly ECOG and beta-2 microglobulin, FISH at diagnosis,
    per-cycle orders and parenteral doses, supportive care. Encodings vary with `seed`."""
    rng = random.Random(seed)
    ids = _Ids()
    diagnosis = AS_OF - timedelta(days=int(365.25 * years))
    n_lines = n_lines or rng.randint(1, 4)
    med_encoding = rng.choice(("ingredient", "product", "statement", "text"))
    out: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "birthDate": f"{1940 + rng.randint(0, 30)}-0{rng.randint(1, 9)}-15",
         "gender": rng.choice(("female", "male"))}]
    # ICD-10-CM C90.00 / SNOMED 109989006 (terminology.md §2a, as in bench/patients.py)
    code = (
        {"coding": [{"system": ICD10CM, "code": "C90.00", "display": "Multiple myeloma not having achieved remission"}]}
        if rng.random() < 0.5 else
        {"coding": [{"system": SNOMED, "code": "109989006", "display": "Multiple myeloma (disorder)"}]})
    out.append({"resourceType": "Condition", "id": ids("cond"), "subject": _subject(pid),
                "clinicalStatus": {"coding": [{"system": COND_CLINICAL, "code": "active"}]},
                "code": code, "onsetDateTime": _dt(diagnosis)})
    # FISH at diagnosis: Genomics Variant (69548-6 + ISCN 81291-7, present LA9633-4) or a laboratory report
    finding = rng.choice(FISH_FINDINGS)
    when = diagnosis + timedelta(days=7)
    if rng.random() < 0.5:
        out.append({"resourceType": "Observation", "id": ids("fish"), "status": "final", "subject": _subject(pid),
                    "code": {"coding": [{"system": LOINC, "code": "69548-6", "display": "Genetic variant assessment"}]},
                    "effectiveDateTime": _dt(when),
                    "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9633-4", "display": "Present"}]},
                    "component": [{"code": {"coding": [{"system": LOINC, "code": "81291-7"}]},
                                   "valueCodeableConcept": {"text": finding}}]})
    else:
        out.append({"resourceType": "DiagnosticReport", "id": ids("dr"), "status": "final", "subject": _subject(pid),
                    "category": [{"coding": [{"system": V2_0074, "code": "LAB"}]}],
                    "code": {"text": "FISH, plasma cell myeloma panel (CD138-enriched bone marrow)"},
                    "effectiveDateTime": _dt(when),
                    "conclusion": f"FISH: {finding} detected in 62% of plasma cells. Other probes negative."})
    # lines of therapy between diagnosis and ~2 months before AS_OF
    span = (AS_OF - timedelta(days=60) - diagnosis).days
    cuts = sorted(rng.sample(range(120, max(121, span - 60)), n_lines - 1)) if n_lines > 1 else []
    bounds = [0, *cuts, span]
    for number in range(n_lines):
        start = diagnosis + timedelta(days=bounds[number] + 14)
        end = diagnosis + timedelta(days=bounds[number + 1])
        name = rng.choice(FIRST_LINE if number == 0 else LATER_LINES)
        for agent in REGIMENS[name]:
            out.append(_medication(ids, rng, pid, agent, start, end, "stopped", med_encoding, progression=True))
            if doses and patients.DRUGS[agent][3] in ("iv", "sc"):  # weekly doses in the first 2 cycles, then fortnightly
                day, k = start, 0
                while day < end:
                    out.append(_administration(ids, pid, _med_concept(agent, product=True), day,
                                               "subcutaneous" if patients.DRUGS[agent][3] == "sc" else "intravenous"))
                    k += 1
                    day += timedelta(days=7 if k < 8 else 14)
        if number == 0 and rng.random() < 0.5:  # ASCT (SNOMED 58776007) after induction
            asct = start + timedelta(days=min(150, (end - start).days // 2))
            out.append({"resourceType": "Procedure", "id": ids("proc"), "status": "completed", "subject": _subject(pid),
                        "code": {"coding": [{"system": SNOMED, "code": "58776007",
                                             "display": "Autologous bone marrow transplant (procedure)"}]},
                        "performedDateTime": _dt(asct)})
        # progression: mCODE disease status 97509-4 / SNOMED 271299001
        out.append({"resourceType": "Observation", "id": ids("status"), "status": "final", "subject": _subject(pid),
                    "code": {"coding": [{"system": LOINC, "code": "97509-4", "display": "Cancer disease status"}]},
                    "effectiveDateTime": _dt(end),
                    "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "271299001",
                                                         "display": "Patient's condition worsened"}]}})
    # supportive care that rules read: zoster prophylaxis, thromboprophylaxis (text, as in patients.py)
    for text in patients.SUPPORTIVE_MEDS:
        out.append({"resourceType": "MedicationRequest", "id": ids("mr"), "status": "active", "intent": "order",
                    "subject": _subject(pid), "authoredOn": _dt(diagnosis + timedelta(days=20), 8),
                    "medicationCodeableConcept": _text_concept(text), "dosageInstruction": [{"text": "daily"}]})
    # monitoring: M-protein 33358-3, FLC 36916-5 / 33944-0 monthly; ECOG 89247-1, beta-2 microglobulin 1952-1 quarterly
    months = int(years * 12 * visits_per_month)
    for m in range(months):
        day = diagnosis + timedelta(days=int(m * 30.44 / visits_per_month) + rng.randint(0, 5))
        if day >= AS_OF:
            break
        out.append(_lab(ids, pid, "33358-3", "Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis",
                        "g/dL", round(rng.uniform(0.2, 2.5), 2), day))
        out.append(_lab(ids, pid, "36916-5", "Kappa light chains.free [Mass/volume] in Serum", "mg/L",
                        round(rng.uniform(5, 400), 1), day))
        out.append(_lab(ids, pid, "33944-0", "Lambda light chains.free [Mass/volume] in Serum", "mg/L",
                        round(rng.uniform(3, 30), 1), day))
        if m % 3 == 0:
            out.append(_lab(ids, pid, "1952-1", "Beta-2-Microglobulin [Mass/volume] in Serum or Plasma", "mg/L",
                            round(rng.uniform(1.5, 6.0), 2), day))
            out.append({"resourceType": "Observation", "id": ids("ecog"), "status": "final", "subject": _subject(pid),
                        "code": {"coding": [{"system": LOINC, "code": "89247-1",
                                             "display": "ECOG performance status score"}]},
                        "effectiveDateTime": _dt(day), "valueInteger": rng.choice((0, 1, 1, 2))})
    return out


# --------------------------------------------------------------------------------- noise
def noise(seed: int, pid: str, years: float, labs: int, vitals: int, admins: int) -> list[dict[str, Any]]:
    """Routine labs (in panels on draw days), vital signs and neutral administrations over `years`."""
    rng = random.Random(seed + 10_000)
    ids = _Ids()
    start = AS_OF - timedelta(days=int(365.25 * years))
    days = max(1, (AS_OF - start).days)
    out: list[dict[str, Any]] = []
    draws = max(1, labs // len(ROUTINE_LABS))
    for i in range(labs):
        day = start + timedelta(days=(i // len(ROUTINE_LABS)) * days // draws)
        name = ROUTINE_LABS[i % len(ROUTINE_LABS)]
        out.append(_lab(ids, pid, None, name, "1", round(rng.uniform(1, 140), 1), day))
    for i in range(vitals):
        day = start + timedelta(days=rng.randrange(days))
        out.append(_lab(ids, pid, None, VITALS[i % len(VITALS)], "1", round(rng.uniform(36, 140), 1), day,
                        category="vital-signs"))
    for i in range(admins):
        day = start + timedelta(days=rng.randrange(days))
        text = NEUTRAL_ADMINS[i % len(NEUTRAL_ADMINS)]
        out.append(_administration(ids, pid, _text_concept(text), day, "oral" if "oral" in text else "intravenous"))
    for r in out:  # ids distinct from the history's
        r["id"] = f"n{r['id']}"
    return out


def long_chart(years: float = 8.0, seed: int = 8, pid: str = "bench-long", labs: int = 16_000, vitals: int = 1_500,
               admins: int = 2_500) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the bare myeloma history, the whole chart with its noise) of `years` of treatment."""
    bare = history(seed, pid, years, n_lines=max(2, min(6, round(years / 2))))
    scale = years / 8.0
    return bare, bare + noise(seed, pid, years, int(labs * scale), int(vitals * scale), int(admins * scale))


def distinct_charts(n: int, seed: int = 1000, size: int = 180) -> list[tuple[str, list[dict[str, Any]]]]:
    """n different patients: (patient id, resources), each what a filtering EHR sends (~`size` resources)."""
    out = []
    for i in range(n):
        pid = f"bench-{seed + i}"
        rng = random.Random(seed + i)
        years = rng.uniform(2.0, 4.5)
        chart = history(seed + i, pid, years)
        doses = [j for j, r in enumerate(chart) if r["resourceType"] == "MedicationAdministration"]
        drop = set(doses[:max(0, len(chart) - size)])  # the oldest doses first: ~`size` resources in all
        chart = [r for j, r in enumerate(chart) if j not in drop]
        chart += noise(seed + i, pid, years, labs=0, vitals=0, admins=max(0, size - len(chart)))
        out.append((pid, chart))
    return out


# ------------------------------------------------------------------------------ filtering
def filtered(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an EHR honouring the discovery templates' filters sends for this chart."""
    wanted: dict[str, list[tuple[str, str]]] = {}
    for template in PREFETCH.values():
        split = urlsplit(template)
        rtype = split.path.split("/")[0]
        wanted[rtype] = [(k, v) for k, v in parse_qsl(split.query) if k not in ("patient", "_include")]
    matches = patients.fhir_test_double().matches_tokens  # the token filters as the FHIR test server applies them
    return [r for r in resources if r.get("resourceType") in wanted and matches(r, wanted[r["resourceType"]])]


# ------------------------------------------------------------------------------- requests
def requests_for(pid: str, resources: list[dict[str, Any]], hook: str = "patient-view",
                 draft_agent: str = "carfilzomib", instance: str = "") -> dict[str, Any]:
    """A CDS Hooks request for the chart: patient-view, or order-select with one draft order of
    `draft_agent` (RxNorm ingredient of bench/patients.py) — the same prefetch either way."""
    body = patients.hook_request(pid, patients.prefetch_for(resources), hook=hook)
    if instance:
        body["hookInstance"] = instance
    if hook != "patient-view":
        ingredient = patients.DRUGS[draft_agent][0]
        draft = {"resourceType": "MedicationRequest", "id": f"draft-{pid}", "status": "draft", "intent": "order",
                 "subject": {"reference": f"Patient/{pid}"},
                 "medicationCodeableConcept": {"coding": [{"system": patients.RXNORM, "code": ingredient,
                                                           "display": draft_agent}], "text": draft_agent},
                 "dosageInstruction": [{"text": f"{draft_agent} per protocol"}]}
        body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}
        if hook == "order-select":
            body["context"]["selections"] = [f"MedicationRequest/{draft['id']}"]
    return body
