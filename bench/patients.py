"""Benchmark patients: a synthetic penta-refractory myeloma chart of a chosen size, and Synthea.

Why synthetic: cost must be measured against record size with the clinical picture held fixed,
so the generator builds one realistic treatment history (three lines ending penta-refractory)
and pads it with the noise real charts carry — per-cycle MedicationRequests, per-dose
MedicationAdministrations, lab and vital-sign Observations, unrelated medications and
encounter-like Conditions — until the requested resource count is reached.

Every code below names its source. RxNorm codes come only from docs/reference
(drug_codes.json / terminology.md §1 for ingredients, cibmtr_rxnorm_valuesets.fsh for products);
LOINC / SNOMED / ICD-10-CM codes from terminology.md. Where no verified code exists (vital signs,
most unrelated drugs) the resource carries text only, as many EHR feeds do.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.hooks.registry import PREFETCH

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"  # FHIR R4 CodeSystem
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"  # FHIR R4 CodeSystem

PATIENT_ID = "bench-penta"
DEFAULT_SIZES = (50, 200, 1000, 5000)
SYNTHEA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "synthea-10"

# Anti-myeloma agents: (ingredient RxCUI, product RxCUI, product display, route).
# Ingredients: drug_codes.json / terminology.md §1 (verified). Products: cibmtr_rxnorm_valuesets.fsh.
DRUGS: dict[str, tuple[str, str | None, str | None, str]] = {
    "lenalidomide": ("342369", "643720", "lenalidomide 25 MG Oral Capsule", "oral"),
    "pomalidomide": ("1369713", None, None, "oral"),
    "bortezomib": ("358258", "402244", "bortezomib 3.5 MG Injection [Velcade]", "sc"),
    "carfilzomib": ("1302966", "1806940", "carfilzomib 60 MG Injection", "iv"),
    "daratumumab": ("1721947", "1726439", "20 ML daratumumab 20 MG/ML Injection", "iv"),
    "dexamethasone": ("3264", None, None, "oral"),
    "melphalan": ("6718", None, None, "iv"),
}
# Unrelated medications. Ursodiol 858751: cibmtr_rxnorm_valuesets.fsh (RxNormUrsodiolVS); the
# others have no verified code in the reference folder and are sent as text, as many feeds do.
UNRELATED_MEDS: list[tuple[str | None, str]] = [
    ("858751", "ursodiol 250 MG Oral Tablet"),
    (None, "acetaminophen 500 mg oral tablet"),
    (None, "pantoprazole 40 mg delayed-release tablet"),
    (None, "amlodipine 5 mg oral tablet"),
    (None, "atorvastatin 20 mg oral tablet"),
    (None, "metformin 500 mg oral tablet"),
    (None, "senna 8.6 mg oral tablet"),
    (None, "oxycodone 5 mg oral tablet"),
]
# Supportive care a penta-refractory patient on therapy would have (text only, see above).
SUPPORTIVE_MEDS = ["acyclovir 400 mg oral tablet", "aspirin 81 mg oral tablet"]

# Lab Observations with verified LOINC codes (terminology.md §3a): (code, display, unit, low, high).
LABS: list[tuple[str, str, str, float, float]] = [
    ("36916-5", "Kappa light chains.free [Mass/volume] in Serum", "mg/L", 5.0, 400.0),
    ("33944-0", "Lambda light chains.free [Mass/volume] in Serum", "mg/L", 3.0, 30.0),
    ("48378-4", "Kappa/Lambda free light chain [Mass Ratio] in Serum", "{ratio}", 0.3, 40.0),
    ("1952-1", "Beta-2-Microglobulin [Mass/volume] in Serum or Plasma", "mg/L", 1.5, 6.0),
    ("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 5.8, 8.9),
    ("2862-1", "Albumin [Mass/volume] in Serum or Plasma by Electrophoresis", "g/dL", 2.9, 4.6),
]
# Vital signs: no LOINC in the reference folder, so text codes with the FHIR vital-signs category.
VITALS: list[tuple[str, str, float, float]] = [
    ("Body weight", "kg", 58.0, 74.0),
    ("Heart rate", "/min", 58.0, 102.0),
    ("Body temperature", "Cel", 36.1, 37.9),
    ("Respiratory rate", "/min", 12.0, 20.0),
    ("Oxygen saturation", "%", 92.0, 99.0),
]
# Encounter-like Conditions: ICD-10-CM Z51.11 / Z51.12 (terminology.md §2a, ICD10CM-26) and text.
ENCOUNTER_CONDITIONS: list[tuple[str | None, str]] = [
    ("Z51.11", "Encounter for antineoplastic chemotherapy"),
    ("Z51.12", "Encounter for antineoplastic immunotherapy"),
    (None, "Fatigue"),
    (None, "Anemia in neoplastic disease"),
    (None, "Upper respiratory infection"),
    (None, "Back pain"),
]

# The treatment history: three lines, each ending in documented progression while on therapy.
# Line 1: VRd induction → ASCT (melphalan) → lenalidomide maintenance; progression on maintenance.
# Line 2: DKd (daratumumab, carfilzomib, dexamethasone); progression on it.
# Line 3: PVd (pomalidomide, bortezomib, dexamethasone); progression on it → penta-refractory.
LINES: list[dict[str, Any]] = [
    {"start": date(2021, 3, 1), "end": date(2023, 5, 20), "progression": date(2023, 5, 20),
     "agents": {"bortezomib": (date(2021, 3, 1), date(2021, 6, 20)),
                "lenalidomide": (date(2021, 3, 1), date(2023, 5, 20)),
                "dexamethasone": (date(2021, 3, 1), date(2021, 6, 20))},
     "asct": date(2021, 8, 10)},
    {"start": date(2023, 6, 5), "end": date(2024, 10, 2), "progression": date(2024, 10, 2),
     "agents": {"daratumumab": (date(2023, 6, 5), date(2024, 10, 2)),
                "carfilzomib": (date(2023, 6, 5), date(2024, 10, 2)),
                "dexamethasone": (date(2023, 6, 5), date(2024, 10, 2))}},
    {"start": date(2024, 10, 20), "end": date(2026, 9, 15), "progression": date(2026, 9, 15),
     "agents": {"pomalidomide": (date(2024, 10, 20), date(2026, 9, 15)),
                "bortezomib": (date(2024, 10, 20), date(2026, 9, 15)),
                "dexamethasone": (date(2024, 10, 20), date(2026, 9, 15))}},
]
DIAGNOSIS = date(2021, 2, 10)
AS_OF = date(2026, 11, 1)  # the benchmark's fixed MMCDS_AS_OF_DATE


class _Ids:
    """Deterministic, readable resource ids (a seeded generator must give the same chart twice)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)

    def __call__(self, prefix: str) -> str:
        self.counts[prefix] += 1
        return f"{prefix}-{self.counts[prefix]}"


def _subject(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def _med_concept(agent: str, product: bool) -> dict[str, Any]:
    ingredient, prod_code, prod_display, _route = DRUGS[agent]
    if product and prod_code:
        return {"coding": [{"system": RXNORM, "code": prod_code, "display": prod_display}], "text": prod_display}
    return {"coding": [{"system": RXNORM, "code": ingredient, "display": agent}], "text": agent}


def _text_concept(text: str, code: str | None = None, system: str = RXNORM) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": system, "code": code, "display": text}]
    return concept


def _dt(d: date, hour: int = 9) -> str:
    return f"{d.isoformat()}T{hour:02d}:00:00Z"


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 2), "unit": unit, "system": UCUM, "code": unit}


def _medication_request(ids: _Ids, pid: str, agent: str, start: date, end: date, status: str,
                        product: bool, stop_reason: dict[str, Any] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": ids("mr"), "status": status, "intent": "order",
        "subject": _subject(pid), "authoredOn": _dt(start, 8),
        "medicationCodeableConcept": _med_concept(agent, product),
        "dosageInstruction": [{"text": f"{agent} per protocol",
                               "timing": {"repeat": {"boundsPeriod": {"start": start.isoformat(),
                                                                      "end": end.isoformat()}}},
                               "route": {"text": DRUGS[agent][3]}}],
    }
    if stop_reason:
        res["statusReason"] = stop_reason
    return res


def _progression_obs(ids: _Ids, pid: str, when: date) -> dict[str, Any]:
    # mCODE CancerDiseaseStatus: LOINC 97509-4, SNOMED 271299001 (terminology.md §2c)
    return {"resourceType": "Observation", "id": ids("status"), "status": "final", "subject": _subject(pid),
            "code": {"coding": [{"system": LOINC, "code": "97509-4", "display": "Cancer disease status"}]},
            "effectiveDateTime": _dt(when),
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "271299001",
                                                 "display": "Patient's condition worsened"}]}}


def _core(ids: _Ids, pid: str) -> list[dict[str, Any]]:
    """The clinical picture: diagnosis, three lines with progression, ASCT, FISH, ECOG (~30 resources)."""
    out: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "birthDate": "1957-06-14", "gender": "female",
         "name": [{"family": "Benchmark", "given": ["Synthetic"]}]},
        # ICD-10-CM C90.00 / C90.02 (terminology.md §2a, ICD10CM-26); SNOMED 109989006 (§2a, SYN)
        {"resourceType": "Condition", "id": ids("cond"), "subject": _subject(pid),
         "clinicalStatus": {"coding": [{"system": COND_CLINICAL, "code": "active"}]},
         "code": {"coding": [{"system": ICD10CM, "code": "C90.00",
                              "display": "Multiple myeloma not having achieved remission"},
                             {"system": SNOMED, "code": "109989006", "display": "Multiple myeloma (disorder)"}],
                  "text": "Multiple myeloma"},
         "onsetDateTime": _dt(DIAGNOSIS)},
        {"resourceType": "Condition", "id": ids("cond"), "subject": _subject(pid),
         "clinicalStatus": {"coding": [{"system": COND_CLINICAL, "code": "relapse"}]},
         "code": {"coding": [{"system": ICD10CM, "code": "C90.02", "display": "Multiple myeloma in relapse"}],
                  "text": "Multiple myeloma in relapse"},
         "onsetDateTime": _dt(LINES[-1]["progression"])},
        # ECOG 89247-1 (terminology.md §3a, mCODE)
        {"resourceType": "Observation", "id": ids("ecog"), "status": "final", "subject": _subject(pid),
         "code": {"coding": [{"system": LOINC, "code": "89247-1", "display": "ECOG performance status score"}]},
         "effectiveDateTime": _dt(date(2026, 9, 20)), "valueInteger": 1},
        # FISH at diagnosis: GR-IG Variant 69548-6, ISCN component 81291-7, method SNOMED 426329006
        # (terminology.md §3b / §2b); answer LA9633-4 Present (§3b).
        {"resourceType": "Observation", "id": ids("fish"), "status": "final", "subject": _subject(pid),
         "code": {"coding": [{"system": LOINC, "code": "69548-6", "display": "Genetic variant assessment"}]},
         "method": {"coding": [{"system": SNOMED, "code": "426329006",
                                "display": "Fluorescence in situ hybridization"}]},
         "effectiveDateTime": _dt(DIAGNOSIS + timedelta(days=5)),
         "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9633-4", "display": "Present"}]},
         "component": [{"code": {"coding": [{"system": LOINC, "code": "81291-7"}]},
                        "valueCodeableConcept": {"text": "t(4;14)(p16;q32)"}}]},
        # Autologous transplant: SNOMED 58776007 (terminology.md §2b, SYN)
        {"resourceType": "Procedure", "id": ids("proc"), "status": "completed", "subject": _subject(pid),
         "code": {"coding": [{"system": SNOMED, "code": "58776007",
                              "display": "Autologous bone marrow transplant (procedure)"}],
                  "text": "Autologous stem cell transplant"},
         "performedDateTime": _dt(LINES[0]["asct"])},
        _medication_request(ids, pid, "melphalan", LINES[0]["asct"] - timedelta(days=2),
                            LINES[0]["asct"] - timedelta(days=1), "completed", product=False),
    ]
    for number, line in enumerate(LINES):
        for agent, (start, end) in line["agents"].items():
            last = number == len(LINES) - 1
            ended_by_progression = end >= line["progression"]
            # SNOMED 266721009 "No response to treatment" (terminology.md §2c, mCODE)
            reason = ({"coding": [{"system": SNOMED, "code": "266721009",
                                   "display": "No response to treatment (situation)"}]}
                      if ended_by_progression else None)
            status = "stopped" if ended_by_progression else "completed"
            if last and agent == "dexamethasone":
                reason, status = None, "stopped"
            out.append(_medication_request(ids, pid, agent, start, end, status, product=False, stop_reason=reason))
        out.append(_progression_obs(ids, pid, line["progression"]))
    # M-protein at each progression (LOINC 33358-3, terminology.md §3a)
    for line in LINES:
        out.append(_lab(ids, pid, "33358-3", "Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis",
                        "g/dL", 1.4, line["progression"]))
    return out


def _lab(ids: _Ids, pid: str, code: str, display: str, unit: str, value: float, when: date) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": ids("lab"), "status": "final", "subject": _subject(pid),
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "effectiveDateTime": _dt(when, 7), "valueQuantity": _quantity(value, unit)}


def _m_protein_value(when: date) -> float:
    """A serum M-spike curve that is consistent with the documented progressions.

    Each line: falls to a nadir in its first half, rises again before the progression date,
    so an IMWG-from-labs reader finds progression only near the documented dates.
    """
    for line in LINES:
        start, prog = line["start"], line["progression"]
        if start <= when <= prog:
            frac = (when - start).days / max(1, (prog - start).days)
            if frac < 0.5:
                return 3.0 - 4.6 * frac  # 3.0 → 0.7
            return 0.7 + 1.4 * (frac - 0.5)  # 0.7 → 1.4 at progression
    return 3.2 if when < LINES[0]["start"] else 1.5


def _spread(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _padding(ids: _Ids, rng: random.Random, pid: str, count: int) -> list[dict[str, Any]]:
    """`count` noise resources in a fixed mix, drawn from the treatment periods and the years around."""
    intervals = [(agent, span, line) for line in LINES for agent, span in line["agents"].items()]
    parenteral = [(a, s, line) for a, s, line in intervals if DRUGS[a][3] in ("iv", "sc")]
    out: list[dict[str, Any]] = []
    mix = [("admin", 30), ("cycle", 15), ("mprotein", 8), ("lab", 22), ("vital", 10), ("unrelated", 10),
           ("encounter", 5)]
    kinds = [k for k, w in mix for _ in range(w)]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "admin":
            agent, (start, end), _line = parenteral[i % len(parenteral)]
            day = _spread(rng, start, end - timedelta(days=1))
            route = DRUGS[agent][3]
            out.append({"resourceType": "MedicationAdministration", "id": ids("ma"), "status": "completed",
                        "subject": _subject(pid), "medicationCodeableConcept": _med_concept(agent, product=True),
                        "effectiveDateTime": _dt(day, 10),
                        "dosage": {"route": {"text": "subcutaneous" if route == "sc" else "intravenous"},
                                   "text": f"{agent} dose"}})
        elif kind == "cycle":
            agent, (start, end), _line = intervals[i % len(intervals)]
            cycle_start = _spread(rng, start, end - timedelta(days=1))
            cycle_end = min(end, cycle_start + timedelta(days=27))
            out.append(_medication_request(ids, pid, agent, cycle_start, cycle_end, "completed", product=True))
        elif kind == "mprotein":
            day = _spread(rng, DIAGNOSIS, AS_OF - timedelta(days=1))
            out.append(_lab(ids, pid, "33358-3",
                            "Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis", "g/dL",
                            _m_protein_value(day), day))
        elif kind == "lab":
            code, display, unit, low, high = LABS[i % len(LABS)]
            day = _spread(rng, DIAGNOSIS - timedelta(days=365), AS_OF - timedelta(days=1))
            out.append(_lab(ids, pid, code, display, unit, rng.uniform(low, high), day))
        elif kind == "vital":
            text, unit, low, high = VITALS[i % len(VITALS)]
            day = _spread(rng, DIAGNOSIS - timedelta(days=3 * 365), AS_OF - timedelta(days=1))
            out.append({"resourceType": "Observation", "id": ids("vital"), "status": "final",
                        "subject": _subject(pid),
                        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs"}]}],
                        "code": {"text": text}, "effectiveDateTime": _dt(day, 11),
                        "valueQuantity": _quantity(rng.uniform(low, high), unit)})
        elif kind == "unrelated":
            if i % 7 == 0:
                text, code = SUPPORTIVE_MEDS[i % len(SUPPORTIVE_MEDS)], None
            else:
                code, text = UNRELATED_MEDS[i % len(UNRELATED_MEDS)]
            start = _spread(rng, DIAGNOSIS - timedelta(days=5 * 365), AS_OF - timedelta(days=30))
            out.append({"resourceType": "MedicationRequest", "id": ids("mr"), "status": "active" if i % 3 else "completed",
                        "intent": "order", "subject": _subject(pid), "authoredOn": _dt(start, 8),
                        "medicationCodeableConcept": _text_concept(text, code),
                        "dosageInstruction": [{"text": "as directed"}]})
        else:
            code, text = ENCOUNTER_CONDITIONS[i % len(ENCOUNTER_CONDITIONS)]
            day = _spread(rng, DIAGNOSIS, AS_OF - timedelta(days=1))
            out.append({"resourceType": "Condition", "id": ids("cond"), "subject": _subject(pid),
                        "clinicalStatus": {"coding": [{"system": COND_CLINICAL, "code": "resolved"}]},
                        "code": _text_concept(text, code, ICD10CM), "onsetDateTime": _dt(day),
                        "abatementDateTime": _dt(day + timedelta(days=1))})
    return out


def penta_refractory_patient(size: int = 200, seed: int = 7, pid: str = PATIENT_ID) -> list[dict[str, Any]]:
    """A penta-refractory myeloma chart of exactly `size` resources (at least the ~30 of the core)."""
    rng = random.Random(seed)
    ids = _Ids()
    core = _core(ids, pid)
    return core + _padding(ids, rng, pid, max(0, size - len(core)))


# --------------------------------------------------------------------------------- Synthea
def _owner(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return ref["reference"].rstrip("/").split("/")[-1].removeprefix("urn:uuid:")
    return None


def synthea_patients(folder: Path = SYNTHEA_DIR) -> dict[str, list[dict[str, Any]]]:
    """Synthea bulk NDJSON grouped by patient id (every file in the folder)."""
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(folder.glob("*.ndjson")):
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    res = orjson.loads(line)
                    owner = _owner(res)
                    if owner:
                        by_patient[owner].append(res)
    return dict(by_patient)


def largest_synthea_patient(folder: Path = SYNTHEA_DIR) -> tuple[str, list[dict[str, Any]]]:
    """The Synthea patient with the most resources: (patient id, resources)."""
    patients = synthea_patients(folder)
    pid = max(patients, key=lambda p: len(patients[p]))
    return pid, patients[pid]


# --------------------------------------------------------------------------------- requests
KEY_OF_TYPE = {
    "Condition": "conditions", "Observation": "observations", "DiagnosticReport": "diagnosticReports",
    "Procedure": "procedures", "MedicationStatement": "medicationStatements",
    "MedicationRequest": "medicationRequests", "MedicationAdministration": "medicationAdministrations",
}


def _searchset(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['resourceType'] + '/' + str(r.get('id')))}",
                "resource": r, "search": {"mode": "match"}} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def prefetch_for(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap a chart into the prefetch keys of `cds_service.hooks.registry.PREFETCH`.

    Every key is present (an empty searchset when the chart has nothing of that type), the way an
    EHR answers a search; resource types the service does not ask for are left out.
    """
    grouped: dict[str, list[dict[str, Any]]] = {key: [] for key in PREFETCH if key != "patient"}
    patient: dict[str, Any] | None = None
    for res in resources:
        rtype = res.get("resourceType")
        if rtype == "Patient":
            patient = res
        elif rtype in KEY_OF_TYPE and KEY_OF_TYPE[rtype] in grouped:
            grouped[KEY_OF_TYPE[rtype]].append(res)
    prefetch: dict[str, Any] = {key: _searchset(items) for key, items in grouped.items()}
    if "patient" in PREFETCH and patient is not None:
        prefetch["patient"] = patient
    return prefetch


def served_resources(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chart as a FHIR server would hold it (only the types the service can search for)."""
    return [r for r in resources if r.get("resourceType") == "Patient" or r.get("resourceType") in KEY_OF_TYPE]


def hook_request(patient_id: str, prefetch: dict[str, Any] | None = None, fhir_server: str | None = None,
                 hook: str = "patient-view") -> dict[str, Any]:
    """A patient-view CDS Hooks request (prefetch mode, or FHIR-fetch mode with `fhir_server`)."""
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{patient_id}")),
        "context": {"userId": "Practitioner/bench", "patientId": patient_id},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    return body


def count_resources(request: dict[str, Any]) -> int:
    """Resources carried in a request's prefetch (Bundle entries and single resources)."""
    n = 0
    for value in (request.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            n += len(value.get("entry") or [])
        elif isinstance(value, dict):
            n += 1
    return n


def fhir_test_double() -> Any:
    """The project's FHIR test double, tests/fhir_server.py (loaded by path: `tests` is not a package),
    shared by the fetch-mode benchmark and the filtering EHR of bench/charts.py."""
    import importlib.util
    import sys

    name = "mmcds_bench_fhir_server"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "tests" / "fhir_server.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.exists():
        raise RuntimeError(f"FHIR test server not found at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
