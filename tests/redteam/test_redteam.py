"""Clinical red team: patients encoded the way *other* EHRs and clinicians write them.

Each case builds one patient with tests/redteam/builders.py, states the outcome CLINICAL_LOGIC.md
and CONTRACT.md require (with the rule cited next to it) and runs it twice, as the hidden harness
does: with prefetch, and with the record fetched from a real local FHIR server. Keys not asserted
are ones where CLINICAL_LOGIC is ambiguous (noted in the case).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_valid_response
from tests.fhir_server import FhirTestServer, resources_from_prefetch
from tests.redteam import builders as b
from tests.vignettes.test_vignettes import Checker, check_order, check_patient_view

AS_OF = "2026-11-01"
SERVICE = {"patient-view": "mm-next-line", "order-select": "mm-order-check", "order-sign": "mm-order-sign"}


@dataclass
class Case:
    name: str
    build: Callable[[], dict[str, Any]]  # -> CDS Hooks request (with prefetch)
    expect: dict[str, Any]
    rule: str = ""
    extra_resources: list[dict[str, Any]] = field(default_factory=list)


CASES: list[Case] = []


def case(name: str, expect: dict[str, Any], rule: str = "") -> Callable[[Callable[[], dict[str, Any]]], Any]:
    def deco(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        CASES.append(Case(name, fn, expect, rule))
        return fn
    return deco


def add_days(day: str, n: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


NO_FISH = {"tested": False, "highRisk": None, "findings": [], "t11_14": None}


# ============================================================ 1. Epic-style per-order requests
@case("r01-epic-vcd-asct-len-maint-pd", {
    "state": {
        "multipleMyeloma": True, "priorLines": 1,
        # VCd + melphalan conditioning + ASCT + R maintenance = ONE line (IMWG, CLINICAL_LOGIC §1);
        # progression on maintenance -> lenalidomide refractory (§1 "includes progression on lenalidomide
        # maintenance"); VCd ended > 60 days before progression -> exposed.
        "agents": {"bortezomib": "exposed", "cyclophosphamide": "exposed", "dexamethasone": "exposed",
                   "melphalan": "exposed", "lenalidomide": "refractory"},
        "classes": {"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
        "progressedOnLenalidomideMaintenance": True, "doubleRefractory": False, "tripleClassExposed": False,
        "cytogenetics": NO_FISH,
        # ASCT 2024-04-10 -> PD 2026-09-10 = 29 months; with maintenance: >= 18 (002) but < 36 (003) -> discuss
        "transplant": {"priorASCT": True, "monthsAsctToProgression": [28, 30], "salvageASCT": "discuss"},
        "frail": False, "plasmaCellLeukemia": False, "extramedullary": False,
    },
    "setting": "first-relapse-len-refractory",  # §2 B
    "preferred_include": ["PVd"],  # B preferred [1A] (003)
    "preferred_exclude": ["DRd", "KRd", "IRd", "EloRd", "Rd"],
    "avoid_include": ["DRd"],  # B avoid: lenalidomide-based
    "notices_include": ["salvage-asct-discuss"],
    "notices_exclude": ["salvage-asct-candidate", "salvage-asct-not-recommended", "insufficient-data"],
})
def r01() -> dict[str, Any]:
    p = b.Patient("rt01", birth="1962-05-20", gender="male")
    p.myeloma(onset="2023-11-15")
    for c in range(4):  # VCd q28d; three orders per cycle, Epic-style
        s = add_days("2023-12-01", 28 * c)
        p.request(b.rx("1804997"), s, bounds=(s, add_days(s, 11)), course="acute", category="outpatient",
                  dosage_text="1.3 mg/m2 SC days 1,4,8,11")
        p.request(b.rx("cyclophosphamide", text="cyclophosphamide 300 mg/m2 PO weekly"), s, duration_days=22,
                  course="acute", category="outpatient")
        p.request(b.rx("dexamethasone"), s, count=8, course="acute", dosage_text="40 mg PO weekly",
                  validity=(s, add_days(s, 27)))
    # melphalan 200 mg/m2 conditioning, timezone-stamped period only
    p.administration(b.rx("melphalan", text="Melphalan 200 mg/m2 IV"),
                     period=("2024-04-08T09:00:00+01:00", "2024-04-08T09:45:00+01:00"))
    p.procedure("38241", b.CPT, "2024-04-10", "Hematopoietic progenitor cell (HPC); autologous transplantation")
    # lenalidomide 10 mg maintenance, one order per month, continuous course
    s = "2024-06-01"
    while s < "2026-08-20":
        last = add_days(s, 28) >= "2026-08-20"
        p.request(b.rx("602910"), s, status="stopped" if last else "completed", duration_days=28,
                  validity=(s, add_days(s, 30)), course="continuous", category="community",
                  reason_text="Disease progression" if last else None)
        s = add_days(s, 28)
    p.disease_status("2026-09-10")
    p.ecog("2026-09-10", 1)
    return p.cds_request()


# ============================================== 2. Cerner-style administrations + Medication refs
@case("r02-cerner-dara-sc-admin-drd-frontline", {
    "state": {
        "multipleMyeloma": True, "priorLines": 1,
        # D-Rd continuous until PD: daratumumab (SC, Faspro product code) and lenalidomide refractory (§1)
        "agents": {"daratumumab": "refractory", "lenalidomide": "refractory", "dexamethasone": "refractory"},
        "classes": {"IMiD": "refractory", "PI": "naive", "anti-CD38": "refractory"},
        "doubleRefractory": False, "tripleClassExposed": False, "tripleClassRefractory": False,
        "progressedOnLenalidomideMaintenance": False, "cytogenetics": NO_FISH,
        "transplant": {"priorASCT": False, "monthsAsctToProgression": None},
        # frail not asserted: no ECOG recorded -> null (unknown) or false is ambiguous (report)
    },
    "setting": "first-relapse-after-anti-cd38",  # §2 C after D-Rd
    "preferred_exclude": ["DRd", "DKd", "DVd", "DPd", "IsaKd", "IsaPd", "KRd"],
    "avoid_include": ["DRd"],
})
def r02() -> dict[str, Any]:
    p = b.Patient("rt02", birth="1949-06-01")
    p.myeloma(onset="2022-02-10", extra_codings=[{"system": b.SNOMED, "code": "109989006",
                                                   "display": "Multiple myeloma (disorder)"}])
    faspro = p.medication(code=b.rx("2375141"))
    days = [add_days("2022-03-01", 7 * i) for i in range(8)] + [add_days("2022-04-26", 14 * i) for i in range(8)]
    d = "2022-08-16"
    while d <= "2026-08-25":
        days.append(d)
        d = add_days(d, 28)
    for day in days:
        p.administration({"ref": faspro}, period=(f"{day}T10:00:00Z", f"{day}T10:05:00Z"))
    s = "2022-03-01"
    while s <= "2026-08-25":
        p.request(b.text_cc("Revlimid 15 mg capsule"), s, validity=(s, add_days(s, 27)), course="continuous",
                  category="outpatient", dosage_text="15 mg PO daily days 1-21 of 28")
        s = add_days(s, 28)
    p.statement(b.text_cc("Dexamethasone 20 mg tablet"), "2022-03-01", "2026-09-01", status="completed",
                dosage=[{"text": "20 mg PO weekly"}])
    p.disease_status("2026-09-05")
    return p.cds_request()


# ================================ 3. Oncology-EHR regimen orders: Medication with ingredient[]
@case("r03-beacon-krd-regimen-ingredients-mprotein", {
    "state": {
        "multipleMyeloma": True, "priorLines": 1,
        # KRd x8 then R maintenance stopped for toxicity 2024-03; IMWG PD from M-protein 2026-09:
        # everything stopped > 60 days before progression -> exposed (§1)
        "agents": {"carfilzomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
        "classes": {"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
        "progressedOnLenalidomideMaintenance": False, "cytogenetics": NO_FISH,
    },
    "setting": "first-relapse-len-sensitive",  # §2 A (lenalidomide stopped > 6 months before PD)
    "preferred_include": ["DRd"],
    "avoid_exclude": ["DRd"],
})
def r03() -> dict[str, Any]:
    p = b.Patient("rt03", birth="1957-01-09")
    p.myeloma(onset="2021-12-01")
    krd = p.medication(code={"text": "KRd"}, ingredients=[b.rx("carfilzomib"), b.rx("lenalidomide"),
                                                          b.rx("dexamethasone")])
    for c in range(8):
        s = add_days("2022-01-03", 28 * c)
        p.request({"ref": krd}, s, bounds=(s, add_days(s, 27)), dosage_text=f"KRd cycle {c + 1}",
                  category="outpatient")
    p.statement(b.text_cc("Revlimid 10 mg capsule"), "2022-09-20", "2024-03-15", status="stopped",
                reason_text="Pt intolerant - rash", reason_code=("407563006", "Treatment not tolerated"))
    for day, val in (("2023-06-01", 0.2), ("2024-06-01", 0.2), ("2025-06-01", 0.25), ("2026-08-01", 0.5),
                     ("2026-09-10", 0.8), ("2026-10-10", 0.9)):
        p.m_protein(day, val)
    return p.cds_request()


# ================================== 4. Two lines; the second line's progression only in statusReason
@case("r04-two-lines-statusreason-text-only", {
    "state": {
        "multipleMyeloma": True, "priorLines": 2,
        # line 2 DKd stopped for progression (statusReason text) -> carfilzomib, daratumumab refractory;
        # line 1 VRd ended 2020 -> exposed (§1)
        "agents": {"bortezomib": "exposed", "lenalidomide": "exposed", "carfilzomib": "refractory",
                   "daratumumab": "refractory"},
        "classes": {"IMiD": "exposed", "PI": "refractory", "anti-CD38": "refractory"},
        "doubleRefractory": False, "tripleClassExposed": True, "tripleClassRefractory": False,
        "pentaRefractory": False,
    },
    "setting": "later-relapse",  # §2 D: >= 2 prior lines, not TCR
    "preferred_exclude": ["DKd", "DRd", "DPd", "DVd", "IsaPd", "IsaKd", "Kd", "KPd"],
})
def r04() -> dict[str, Any]:
    p = b.Patient("rt04", birth="1955-08-30", gender="male")
    p.myeloma(onset="2019-12-01")
    for txt in ("Velcade 1.3 mg/m2 SC", "Revlimid 25 mg capsule", "Dexamethasone 40 mg tablet"):
        p.statement(b.text_cc(txt), "2020-01-15", "2020-07-15", status="completed")
    p.condition("C90.02", display="Multiple myeloma in relapse", onset="2022-05-02")
    for c in range(52):
        s = add_days("2022-05-16", 28 * c)
        last = c == 51
        for med in (b.rx("1721954"), b.rx("1806942"), b.rx("dexamethasone")):
            p.request(med, s, status="stopped" if last else "completed", bounds=(s, add_days(s, 27)),
                      reason_text=("progressive disease on C52" if last else None))
    return p.cds_request()


# ============================================= 5. Progression-evidence matrix on one Rd story
def _rd_story(pid: str, stop: str | None = None, reason_text: str | None = None,
              reason_code: tuple[str, str] | None = None) -> b.Patient:
    """Rd continuous from 2024-01-10 (no ASCT, 68 y); ongoing unless `stop` is given."""
    p = b.Patient(pid, birth="1958-02-11")
    p.myeloma(onset="2023-12-01")
    p.statement(b.rx("lenalidomide"), "2024-01-10", stop, status="stopped" if stop else "active",
                reason_text=reason_text, reason_code=reason_code)
    p.statement(b.rx("dexamethasone"), "2024-01-10", stop, status="stopped" if stop else "active")
    return p


RD_REFRACTORY = {
    "state": {"multipleMyeloma": True, "priorLines": 1,
              "agents": {"lenalidomide": "refractory", "dexamethasone": "refractory"},
              "classes": {"IMiD": "refractory", "PI": "naive", "anti-CD38": "naive"},
              "progressedOnLenalidomideMaintenance": False},
    "setting": "first-relapse-len-refractory",
    "avoid_include": ["DRd"],
    "preferred_exclude": ["DRd", "KRd", "Rd", "IRd"],
}
RD_NOT_RELAPSED = {
    "state": {"multipleMyeloma": True,
              "agents": {"lenalidomide": "exposed", "dexamethasone": "exposed"},
              "classes": {"IMiD": "exposed", "PI": "naive", "anti-CD38": "naive"}},
    "setting": "not-relapsed",
}


def _progression_variant(name: str, fn: Callable[[b.Patient], None], expect: dict[str, Any],
                         stop: str | None = None, reason_text: str | None = None,
                         reason_code: tuple[str, str] | None = None, rule: str = "") -> None:
    def build() -> dict[str, Any]:
        p = _rd_story(name.split("-")[0], stop, reason_text, reason_code)
        fn(p)
        return p.cds_request()
    CASES.append(Case(name, build, copy.deepcopy(expect), rule))


# §1: "a response/disease-status Observation saying progression (... or an IMWG response of PD)"
_progression_variant("r05a-disease-status-text-valuestring", lambda p: p.observation(
    {"text": "Disease status"}, "2026-09-03", valueString="Progressive disease (IMWG)"), RD_REFRACTORY)
_progression_variant("r05b-mcode-value-text-only", lambda p: p.observation(
    {"coding": [{"system": b.LOINC, "code": "97509-4"}]}, "2026-09-03",
    valueCodeableConcept={"text": "Progressive disease"}), RD_REFRACTORY)
# §1: "a Condition coded C90.02 with an onset date" - EHRs often carry only recordedDate
_progression_variant("r05c-c9002-recorded-date-only", lambda p: p.condition(
    "C90.02", display="Multiple myeloma in relapse", recorded="2026-09-03"), RD_REFRACTORY)
# Condition clinicalStatus relapse/recurrence with onsetPeriod
_progression_variant("r05d-c9002-recurrence-onset-period", lambda p: p.add({
    "resourceType": "Condition", "code": {"coding": [{"system": b.ICD10, "code": "C90.02"}]},
    "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "recurrence"}]},
    "onsetPeriod": {"start": "2026-09-03"}}), RD_REFRACTORY)


def _mprot(values: list[tuple[str, float]], unit: str) -> Callable[[b.Patient], None]:
    def fn(p: b.Patient) -> None:
        for day, v in values:
            p.m_protein(day, v, unit)
    return fn


# §1 IMWG: >= 25 % from nadir and >= 0.5 g/dL absolute - in g/L and mg/dL
_progression_variant("r05e-mprotein-g-per-l", _mprot(
    [("2024-06-01", 3.0), ("2025-06-01", 3.0), ("2026-08-01", 9.0), ("2026-09-01", 10.0)], "g/L"), RD_REFRACTORY)
_progression_variant("r05f-mprotein-mg-per-dl", _mprot(
    [("2024-06-01", 300), ("2025-06-01", 300), ("2026-08-01", 900), ("2026-09-01", 1000)], "mg/dL"),
    RD_REFRACTORY)
# statusReason coded "No response to treatment" (266721009, terminology.md §2c) on a stopped statement
_progression_variant("r05g-statusreason-no-response", lambda p: None, RD_REFRACTORY, stop="2026-09-03",
                     reason_code=("266721009", "No response to treatment"))
_progression_variant("r05h-statusreason-text-pd-cycle", lambda p: None, RD_REFRACTORY, stop="2026-09-03",
                     reason_text="progressive disease on C32")
# partial and time-zoned dates on the progression observation
_progression_variant("r05i-disease-status-partial-month", lambda p: p.observation(
    {"coding": [{"system": b.LOINC, "code": "97509-4"}]}, "2026-09",
    valueCodeableConcept={"coding": [{"system": b.SNOMED, "code": "271299001"}]}), RD_REFRACTORY)
_progression_variant("r05j-disease-status-timezone", lambda p: p.observation(
    {"coding": [{"system": b.LOINC, "code": "97509-4"}]}, "2026-09-03T23:30:00-05:00",
    valueCodeableConcept={"coding": [{"system": b.SNOMED, "code": "271299001"}]}), RD_REFRACTORY)
# negatives: no progression may be invented
# 1.0 -> 1.4 g/dL = +40 % but only +0.4 g/dL absolute: not IMWG PD (§1 needs both)
_progression_variant("r05k-mprotein-25pct-not-05", _mprot(
    [("2024-06-01", 1.0), ("2025-06-01", 1.0), ("2026-08-01", 1.3), ("2026-09-01", 1.4),
     ("2026-10-01", 1.4)], "g/dL"), RD_NOT_RELAPSED)


def _flc_only(p: b.Patient) -> None:
    # FLC-only values, modest kappa rise (dFLC +60 mg/L = 6 mg/dL < 10 mg/dL): no M-protein PD to invent
    for day, kappa in (("2025-06-01", 40.0), ("2026-06-01", 70.0), ("2026-09-01", 100.0)):
        p.observation({"coding": [{"system": b.LOINC, "code": "36916-5"}]}, day,
                      valueQuantity={"value": kappa, "unit": "mg/L"})
        p.observation({"coding": [{"system": b.LOINC, "code": "33944-0"}]}, day,
                      valueQuantity={"value": 10.0, "unit": "mg/L"})


_progression_variant("r05l-flc-only-subthreshold", _flc_only, RD_NOT_RELAPSED)
_progression_variant("r05m-disease-status-improved", lambda p: p.disease_status("2026-09-03", worsened=False),
                     RD_NOT_RELAPSED)


# ======================================================= 6. non-myeloma patients stay quiet
@case("r06-smoldering-on-lenalidomide-quiet", {"quiet": True})
def r06() -> dict[str, Any]:
    # smoldering myeloma: D47.2 (AHA Coding Clinic) + SNOMED 413587002 (terminology.md §2a); not MM
    p = b.Patient("rt06", birth="1966-04-04")
    p.condition("D47.2", display="Monoclonal gammopathy", onset="2024-01-10",
                extra_codings=[{"system": b.SNOMED, "code": "413587002", "display": "Smoldering myeloma"}],
                text="Smoldering multiple myeloma, high risk")
    p.statement(b.rx("1429367"), "2024-03-01", "2026-03-01", status="completed")
    p.disease_status("2026-09-01")
    return p.cds_request()


@case("r07-al-amyloidosis-dara-cybord-quiet", {"quiet": True})
def r07() -> dict[str, Any]:
    # AL amyloidosis E85.81 (terminology.md §2a) on Dara-CyBorD: myeloma drugs, no myeloma -> quiet
    p = b.Patient("rt07", birth="1961-10-10", gender="male")
    p.condition("E85.81", display="Light chain (AL) amyloidosis", onset="2025-01-15")
    for c in range(6):
        s = add_days("2025-02-01", 28 * c)
        p.administration(b.rx("2375139"), when=s)
        p.administration(b.rx("1804997"), when=s)
        p.request(b.rx("cyclophosphamide"), s, bounds=(s, add_days(s, 21)))
        p.request(b.rx("dexamethasone"), s, bounds=(s, add_days(s, 21)))
    p.disease_status("2026-09-01")
    return p.cds_request()


@case("r08-myeloma-entered-in-error-mgus-quiet", {"quiet": True})
def r08() -> dict[str, Any]:
    # a C90.00 Condition entered in error / refuted never happened; the real diagnosis is MGUS (D47.2,
    # SNOMED 277577000, terminology.md §2a); cyclophosphamide given for vasculitis
    p = b.Patient("rt08", birth="1950-12-12")
    p.condition("C90.00", display="Multiple myeloma", onset="2025-05-01", verification="entered-in-error",
                status=None)
    p.condition("C90.00", display="Multiple myeloma", onset="2025-05-02", verification="refuted",
                status="inactive")
    p.condition("277577000", system=b.SNOMED, display="Monoclonal gammopathy of undetermined significance",
                onset="2025-05-01")
    p.statement(b.text_cc("Cytoxan 50 mg tablet"), "2025-06-01", "2026-01-01", status="completed")
    return p.cds_request()


# ============================================================ 7. PCL / EMD, other encodings
@case("r09-pcl-snomed-emd-relapse-code", {
    "state": {"multipleMyeloma": True, "plasmaCellLeukemia": True, "extramedullary": True, "priorLines": 1},
    "notices_include": ["plasma-cell-leukemia", "extramedullary-disease"],
})
def r09() -> dict[str, Any]:
    # PCL SNOMED 95210003 (terminology.md §2a, single source) and extramedullary C90.22 (verified)
    p = b.Patient("rt09", birth="1970-03-03", gender="male")
    p.myeloma(onset="2024-01-05")
    p.condition("95210003", system=b.SNOMED, display="Plasma cell leukemia, disease", onset="2024-01-05")
    p.condition("C90.22", display="Extramedullary plasmacytoma in relapse", onset="2026-09-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2024-01-15", "2024-07-15", status="completed")
    p.disease_status("2026-09-01")
    return p.cds_request()


# ============================================================== 8. frailty and age
def _frail_story(pid: str, birth: str, ecog: Callable[[b.Patient], Any] | None) -> dict[str, Any]:
    p = _rd_story(pid)
    p.resources[0]["birthDate"] = birth
    p.disease_status("2026-09-03")
    if ecog:
        ecog(p)
    return p.cds_request()


for _name, _birth, _fn, _frail in (
    ("r10a-ecog2-valuestring", "1950-01-01", lambda p: p.ecog("2026-09-03", 2, style="string"), True),
    ("r10b-ecog2-cc-text", "1950-01-01", lambda p: p.ecog("2026-09-03", 2, style="cc-text"), True),
    ("r10c-ecog2-integer-old", "1946-01-01", lambda p: p.ecog("2026-09-03", 2), True),
    # ECOG 1 at 80: not frail (age > 75 is a separate modifier, §1 "frailty: ECOG >= 2 or frailty documented")
    ("r10d-ecog1-age80", "1946-01-01", lambda p: p.ecog("2026-09-03", 1), False),
    # ECOG 3 long ago then ECOG 0 now: the latest assessment counts
    ("r10e-ecog-improved", "1960-01-01",
     lambda p: (p.ecog("2024-01-05", 3), p.ecog("2026-09-03", 0)), False),
):
    CASES.append(Case(_name, (lambda n=_name, bd=_birth, f=_fn: _frail_story(n.split("-")[0], bd, f)),
                      {"state": {"multipleMyeloma": True, "frail": _frail,
                                 "agents": {"lenalidomide": "refractory", "dexamethasone": "refractory"}},
                       "setting": "first-relapse-len-refractory"}))


# ============================================================== 9. cytogenetics encodings
@case("r11-gr-variant-iscn-text-t1114", {
    "state": {"multipleMyeloma": True,
              # t(11;14) present, del(17p) tested and absent: tested, not high risk (§1)
              "cytogenetics": {"tested": True, "highRisk": False, "findings": ["t(11;14)"], "t11_14": True}},
})
def r11() -> dict[str, Any]:
    p = _rd_story("rt11")
    p.disease_status("2026-09-03")
    fish = {"coding": [{"system": b.SNOMED, "code": "426329006", "display": "Fluorescence in situ hybridization"}]}
    var = {"coding": [{"system": b.LOINC, "code": "69548-6", "display": "Genetic variant assessment"}]}
    p.observation(var, "2023-12-05", method=fish, valueCodeableConcept={"text": "t(11;14)(q13;q32) detected"})
    p.observation(var, "2023-12-05", method=fish, valueCodeableConcept={"text": "Absent"},
                  component=[{"code": {"coding": [{"system": b.LOINC, "code": "81291-7"}]},
                              "valueCodeableConcept": {"text": "del(17p)"}}])
    return p.cds_request()


@case("r12-fish-all-negative-report", {
    "state": {"multipleMyeloma": True,
              "cytogenetics": {"tested": True, "highRisk": False, "findings": [], "t11_14": False}},
    "notices_exclude": ["high-risk-cytogenetics"],
})
def r12() -> dict[str, Any]:
    p = _rd_story("rt12")
    p.disease_status("2026-09-03")
    p.fish_report("2023-12-05", "Interphase FISH on CD138-enriched plasma cells: no evidence of TP53 (17p13.1) "
                                "deletion. IGH/FGFR3, IGH/MAF and IGH/CCND1 rearrangements not detected. "
                                "No 1q21 (CKS1B) gain. CDKN2C (1p32) not deleted.")
    return p.cds_request()


# ============================================ 10. the same therapy recorded three ways
@case("r13-duplicate-statement-request-admin-one-line", {
    "state": {"multipleMyeloma": True, "priorLines": 1,
              # the same Rd recorded as statement, monthly orders and administrations is ONE exposure
              "agents": {"lenalidomide": "refractory", "dexamethasone": "refractory"},
              "classes": {"IMiD": "refractory", "PI": "naive", "anti-CD38": "naive"}},
    "setting": "first-relapse-len-refractory",
})
def r13() -> dict[str, Any]:
    p = _rd_story("rt13")
    s = "2024-01-10"
    while s < "2026-09-01":
        p.request(b.rx("1428947"), s, duration_days=21, course="continuous")
        p.administration(b.rx("dexamethasone"), when=s)
        s = add_days(s, 28)
    p.disease_status("2026-09-03")
    return p.cds_request()


# ================================================== 11. tandem and allogeneic transplants
@case("r14-tandem-asct-len-maint", {
    "state": {"multipleMyeloma": True, "priorLines": 1, "progressedOnLenalidomideMaintenance": True,
              "agents": {"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed",
                         "melphalan": "exposed"},
              # ASCT1 2023-03-10, ASCT2 2023-06-15, PD 2026-09-15: 39 (from last) .. 42 (from first) months
              "transplant": {"priorASCT": True, "monthsAsctToProgression": [39, 42]}},
    "setting": "first-relapse-len-refractory",
})
def r14() -> dict[str, Any]:
    p = b.Patient("rt14", birth="1965-07-07", gender="male")
    p.myeloma(onset="2022-10-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2022-10-15", "2023-02-01")
    for day in ("2023-03-08", "2023-06-13"):
        p.administration(b.rx("melphalan"), when=day)
    p.asct("2023-03-10")
    p.procedure("234336002", b.SNOMED, "2023-06-15", "Hemopoietic stem cell transplant",
                text="Second autologous PBSCT (tandem)")
    p.statement(b.rx("lenalidomide", text="lenalidomide 10 mg maintenance"), "2023-09-01", "2026-09-15",
                status="stopped", reason_text="Disease progression")
    p.disease_status("2026-09-15")
    return p.cds_request()


@case("r15-allogeneic-transplant-not-asct", {
    "state": {"multipleMyeloma": True,
              # allogeneic BMT (SNOMED 58390007) is not an autologous transplant
              "transplant": {"priorASCT": False, "monthsAsctToProgression": None}},
})
def r15() -> dict[str, Any]:
    p = b.Patient("rt15", birth="1972-02-02", gender="male")
    p.myeloma(onset="2021-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2021-01-15", "2021-06-01")
    p.procedure("58390007", b.SNOMED, "2021-08-01", "Allogeneic bone marrow transplantation")
    p.disease_status("2026-09-01")
    return p.cds_request()


# ======================================================= 12. isatuximab, text and ATC only
@case("r16-isapd-second-line-atc-text", {
    "state": {"multipleMyeloma": True, "priorLines": 2,
              "agents": {"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "refractory",
                         "isatuximab": "refractory", "pomalidomide": "refractory"},
              "classes": {"IMiD": "refractory", "PI": "exposed", "anti-CD38": "refractory"},
              "tripleClassExposed": True, "tripleClassRefractory": False, "doubleRefractory": False},
    "setting": "later-relapse",
    # §2 C: never rank an anti-CD38 regimen preferred in an anti-CD38-refractory patient
    "preferred_exclude": ["IsaPd", "IsaKd", "DKd", "DPd", "DRd", "DVd", "Pd", "KPd", "EloPd"],
})
def r16() -> dict[str, Any]:
    p = b.Patient("rt16", birth="1960-09-09")
    p.myeloma(onset="2019-01-01")
    for txt in ("Velcade", "Revlimid 25 mg", "dexamethasone 40 mg"):
        p.statement(b.text_cc(txt), "2019-01-20", "2019-07-20")
    p.disease_status("2021-06-15")
    for c in range(20):
        s = add_days("2021-07-01", 28 * c) if c < 20 else ""
        p.request(b.atc_cc("isatuximab", text="Sarclisa 10 mg/kg IV"), s, bounds=(s, add_days(s, 27)))
    p.statement(b.text_cc("Pomalyst 4 mg capsule"), "2021-07-01", None, status="active")
    p.statement(b.rx("dexamethasone"), "2021-07-01", None, status="active")
    # isatuximab continued monthly as one long active order afterwards
    p.request(b.atc_cc("isatuximab-old", text="isatuximab-irfc"), "2022-12-01", status="active",
              bounds=("2022-12-01", None), course="continuous")
    p.disease_status("2026-09-20")
    return p.cds_request()


# ================================================================ 13. order hooks
def _len_refractory(pid: str, fish: str | None = None, extra: Callable[[b.Patient], Any] | None = None) -> b.Patient:
    """Rd continuous, progression 2026-09-03 on it: lenalidomide refractory, PI / anti-CD38 naive, 68 y."""
    p = _rd_story(pid)
    p.disease_status("2026-09-03")
    p.ecog("2026-09-03", 1)
    if fish:
        p.fish_report("2023-12-05", fish)
    if extra:
        extra(p)
    return p


def order_case(name: str, expect: dict[str, Any], hook: str = "order-select",
               patient: Callable[[str], b.Patient] = _len_refractory,
               drafts: Callable[[str], list[dict[str, Any]]] = lambda pid: [],
               selections: Callable[[str], list[str] | None] = lambda pid: None, rule: str = "") -> None:
    def build() -> dict[str, Any]:
        pid = name.split("-")[0]
        p = patient(pid)
        return p.cds_request(hook, drafts(pid), selections(pid))
    CASES.append(Case(name, build, expect, rule))


def D(pid: str, did: str, med: dict[str, Any] | None, **kw: Any) -> dict[str, Any]:  # noqa: N802
    return b.draft(pid, did, med, **kw)


DEX = b.rx("dexamethasone")

# §3.1 refractory agent: lenalidomide as a DSTU2 MedicationOrder with a Revlimid SBD code (clients.md)
order_case("o01-dstu2-medicationorder-revlimid-sbd", {
    "findings_include": [{"code": "refractory-agent-ordered", "agents": ["lenalidomide"],
                          "orders": ["MedicationOrder/mo-1"]}]},
    hook="order-sign",
    drafts=lambda pid: [{"resourceType": "MedicationOrder", "id": "mo-1", "status": "draft",
                         "patient": {"reference": f"Patient/{pid}"},
                         "medicationCodeableConcept": b.rx("1429367"),
                         "dosageInstruction": [{"text": "20 mg daily d1-21"}]}])

# sandbox shape: no intent, single objects where arrays belong, selection given as a full URL
order_case("o02-sandbox-shape-full-url-selection", {
    "findings_include": [{"code": "refractory-agent-ordered", "agents": ["lenalidomide"],
                          "orders": ["MedicationRequest/req-9"]}]},
    drafts=lambda pid: [{"resourceType": "MedicationRequest", "id": "req-9", "status": "draft",
                         "subject": {"reference": f"Patient/{pid}"},
                         "medicationCodeableConcept": {"coding": {"system": b.RXNORM, "code": "342369",
                                                                  "display": "lenalidomide"}},
                         "dosageInstruction": {"text": "25 mg PO daily"},
                         "category": {"text": "outpatient"}, "reasonCode": {"text": "myeloma"}}],
    selections=lambda pid: ["http://ehr.example.org/fhir/MedicationRequest/req-9"])

# contained Medication with ingredient[] (regimen "Pom-dex") : pomalidomide is NOT refractory
# (agent-level, issue 4) but an IMiD without antithrombotic -> thromboprophylaxis (§3.4)
order_case("o03-contained-regimen-ingredients-pom", {
    "findings_include": [{"code": "missing-thromboprophylaxis", "agents": ["pomalidomide"],
                          "orders": ["MedicationRequest/rg-1"]}],
    "findings_exclude": ["refractory-agent-ordered"]},
    drafts=lambda pid: [{"resourceType": "MedicationRequest", "id": "rg-1", "status": "draft", "intent": "order",
                         "subject": {"reference": f"Patient/{pid}"},
                         "contained": [{"resourceType": "Medication", "id": "reg",
                                        "code": {"text": "Pom-dex"},
                                        "ingredient": [{"itemCodeableConcept": b.rx("pomalidomide")},
                                                       {"itemCodeableConcept": DEX}]}],
                         "medicationReference": {"reference": "#reg"}}])

# same, with an active apixaban (text) in the chart: no thromboprophylaxis finding
order_case("o04-pom-with-apixaban-active", {
    "findings_exclude": ["missing-thromboprophylaxis", "refractory-agent-ordered"]},
    patient=lambda pid: _len_refractory(pid, extra=lambda p: p.statement(
        b.text_cc("Eliquis 2.5 mg tablet"), "2025-01-01", None, status="active")),
    drafts=lambda pid: [D(pid, "d-pom", b.text_cc("Pomalyst 4 mg capsule")), D(pid, "d-dex", DEX),
                        D(pid, "d-btz", b.rx("1804997"), dosageInstruction=[{"route": {"text": "Subcutaneous"}}]),
                        D(pid, "d-acv", b.text_cc("valacyclovir 500 mg tablet"))])

# aspirin ended a year ago is not active: finding stays
order_case("o05-pom-aspirin-stopped-long-ago", {
    "findings_include": [{"code": "missing-thromboprophylaxis", "agents": ["pomalidomide"]}]},
    patient=lambda pid: _len_refractory(pid, extra=lambda p: p.statement(
        b.text_cc("aspirin 81 mg tablet"), "2024-01-10", "2025-06-01", status="completed")),
    drafts=lambda pid: [D(pid, "d-pom", b.rx("pomalidomide")), D(pid, "d-dex", DEX),
                        D(pid, "d-cfz", b.rx("carfilzomib")), D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])

# §3.3 venetoclax: t(11;14) negative in a free-text report -> critical
order_case("o06-venetoclax-t1114-negative-critical", {
    "findings_include": [{"code": "venetoclax-without-t11-14", "agents": ["venetoclax"],
                          "orders": ["MedicationRequest/d-ven"]}],
    "findings_exclude": ["venetoclax-t11-14-unknown"], "indicators": {"venetoclax-without-t11-14": "critical"}},
    patient=lambda pid: _len_refractory(pid, fish="FISH: IGH/CCND1 fusion negative. TP53 deletion not detected."),
    drafts=lambda pid: [D(pid, "d-ven", b.rx("venetoclax")), D(pid, "d-btz", b.rx("bortezomib")),
                        D(pid, "d-dex", DEX)])

# unknown t(11;14) (no FISH) -> warning to obtain FISH
order_case("o07-venetoclax-unknown", {
    "findings_include": [{"code": "venetoclax-t11-14-unknown", "agents": ["venetoclax"]}],
    "findings_exclude": ["venetoclax-without-t11-14"]},
    drafts=lambda pid: [D(pid, "d-ven", b.text_cc("Venclexta 100 mg tablet"))])

# t(11;14) present: venetoclax is allowed (§2 modifier, VenVd)
order_case("o08-venetoclax-t1114-present", {
    "findings_exclude": ["venetoclax-without-t11-14", "venetoclax-t11-14-unknown", "refractory-agent-ordered"]},
    patient=lambda pid: _len_refractory(pid, fish="t(11;14)(q13;q32) detected in 62% of nuclei; "
                                                  "no del(17p)."),
    drafts=lambda pid: [D(pid, "d-ven", b.rx("venetoclax")), D(pid, "d-btz", b.rx("bortezomib"),
                                                               dosageInstruction=[{"text": "1.3 mg/m2 SC"}]),
                        D(pid, "d-dex", DEX), D(pid, "d-acv", b.text_cc("acyclovir 400 mg BID"))])

# §3.4 selinexor without antiemetic -> finding; with ondansetron drafted -> none
order_case("o09-selinexor-no-antiemetic", {
    "findings_include": [{"code": "missing-antiemetic", "agents": ["selinexor"], "orders": ["MedicationRequest/d-sel"]}]},
    drafts=lambda pid: [D(pid, "d-sel", b.atc_cc("selinexor", text="Xpovio 100 mg tablet")), D(pid, "d-dex", DEX),
                        D(pid, "d-btz", b.rx("bortezomib")), D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])
order_case("o10-selinexor-with-ondansetron", {"findings_exclude": ["missing-antiemetic"]},
           drafts=lambda pid: [D(pid, "d-sel", b.text_cc("selinexor 100 mg weekly")), D(pid, "d-dex", DEX),
                               D(pid, "d-ond", b.text_cc("ondansetron 8 mg tablet"))])

# §3.4 PI without zoster prophylaxis; active acyclovir statement -> none
order_case("o11-carfilzomib-no-acyclovir", {
    "findings_include": [{"code": "missing-zoster-prophylaxis", "agents": ["carfilzomib"],
                          "orders": ["MedicationRequest/d-cfz"]}]},
    drafts=lambda pid: [D(pid, "d-cfz", b.rx("1806937")), D(pid, "d-pom", b.rx("pomalidomide")),
                        D(pid, "d-dex", DEX), D(pid, "d-asa", b.text_cc("aspirin 81 mg"))])
order_case("o12-carfilzomib-acyclovir-active", {"findings_exclude": ["missing-zoster-prophylaxis"]},
           patient=lambda pid: _len_refractory(pid, extra=lambda p: p.request(
               b.text_cc("acyclovir 400 mg tablet"), "2026-09-20", status="active", course="continuous")),
           drafts=lambda pid: [D(pid, "d-cfz", b.rx("1806937")), D(pid, "d-pom", b.rx("pomalidomide")),
                               D(pid, "d-dex", DEX), D(pid, "d-asa", b.text_cc("aspirin 81 mg"))])

# §3.5 doublet Kd in a fit 68-year-old -> suggest triplets; frail (ECOG 3) -> no finding
order_case("o13-kd-doublet-fit", {
    "findings_include": [{"code": "doublet-when-triplet-tolerated", "agents": ["carfilzomib"]}]},
    drafts=lambda pid: [D(pid, "d-cfz", b.rx("carfilzomib")), D(pid, "d-dex", DEX),
                        D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])
order_case("o14-kd-doublet-frail-ecog3", {"findings_exclude": ["doublet-when-triplet-tolerated"]},
           patient=lambda pid: _len_refractory(pid, extra=lambda p: p.ecog("2026-10-01", 3, style="cc-text")),
           drafts=lambda pid: [D(pid, "d-cfz", b.rx("carfilzomib")), D(pid, "d-dex", DEX),
                               D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])

# §3.4 bortezomib IV with peripheral neuropathy (text-only Condition) -> suggest SC; SC -> none
_neuro = lambda pid: _len_refractory(pid, extra=lambda p: p.add({  # noqa: E731
    "resourceType": "Condition", "code": {"text": "Peripheral neuropathy, chemotherapy-induced"},
    "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "active"}]}, "onsetDateTime": "2025-01-01"}))
order_case("o15-bortezomib-iv-neuropathy", {
    "findings_include": [{"code": "bortezomib-route-neuropathy", "agents": ["bortezomib"],
                          "orders": ["MedicationRequest/d-btz"]}]},
    patient=_neuro,
    drafts=lambda pid: [D(pid, "d-btz", b.rx("1804997"), dosageInstruction=[{"text": "1.3 mg/m2 IV push",
                                                                             "route": {"text": "IV"}}]),
                        D(pid, "d-pom", b.rx("pomalidomide")), D(pid, "d-dex", DEX)])
order_case("o16-bortezomib-sc-neuropathy", {"findings_exclude": ["bortezomib-route-neuropathy"]},
           patient=_neuro,
           drafts=lambda pid: [D(pid, "d-btz", b.rx("1804997"), dosageInstruction=[{
               "text": "1.3 mg/m2 subcut", "route": {"coding": [{"system": b.SNOMED, "code": "34206005",
                                                                  "display": "Subcutaneous route"}]}}]),
                               D(pid, "d-pom", b.rx("pomalidomide")), D(pid, "d-dex", DEX)])


# §3.2 anti-CD38 re-ordered in a daratumumab-refractory patient (Faspro SBD) -> retreatment info;
# isatuximab -> cross-resistance
def _dara_refractory(pid: str) -> b.Patient:
    p = b.Patient(pid, birth="1956-06-06", gender="male")
    p.myeloma(onset="2022-01-01")
    for day in [add_days("2022-02-01", 28 * i) for i in range(80)]:
        if day > "2026-08-20":
            break
        p.administration(b.rx("2375139"), when=day)
    p.statement(b.rx("lenalidomide"), "2022-02-01", "2026-08-25", status="stopped", reason_text="PD")
    p.disease_status("2026-09-01")
    p.ecog("2026-09-01", 1)
    return p


order_case("o17-dara-sc-reorder-refractory", {
    "findings_include": [{"code": "anti-cd38-retreatment", "agents": ["daratumumab"],
                          "orders": ["MedicationRequest/d-dara"]}],
    "findings_exclude": ["anti-cd38-cross-resistance"]},
    patient=_dara_refractory,
    drafts=lambda pid: [D(pid, "d-dara", b.rx("2375141")), D(pid, "d-cfz", b.rx("carfilzomib")),
                        D(pid, "d-dex", DEX), D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])
order_case("o18-isatuximab-after-dara", {
    "findings_include": [{"code": "anti-cd38-cross-resistance", "agents": ["isatuximab"],
                          "orders": ["MedicationRequest/d-isa"]}],
    "findings_exclude": ["anti-cd38-retreatment"]},
    patient=_dara_refractory,
    drafts=lambda pid: [D(pid, "d-isa", b.text_cc("Sarclisa (isatuximab-irfc) 10 mg/kg IV")),
                        D(pid, "d-cfz", b.rx("carfilzomib")), D(pid, "d-dex", DEX),
                        D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])

# §3.6 FISH panel for primary translocations at relapse (ServiceRequest, text only)
order_case("o19-fish-panel-servicerequest-text", {
    "findings_include": [{"code": "repeat-fish-primary-translocations", "orders": ["ServiceRequest/d-fish"]}]},
    patient=lambda pid: _len_refractory(pid, fish="t(4;14) not detected; TP53 deletion not detected"),
    drafts=lambda pid: [{"resourceType": "ServiceRequest", "id": "d-fish", "status": "draft", "intent": "order",
                         "subject": {"reference": f"Patient/{pid}"},
                         "code": {"text": "FISH plasma cell myeloma panel: t(4;14), t(14;16), t(11;14), 17p, 1q"}}])

# non-myeloma (MGUS) patient: order hooks stay quiet whatever is drafted
order_case("o20-mgus-dex-cyclophosphamide-quiet", {"quiet": True, "no_findings": True},
           hook="order-sign",
           patient=lambda pid: (lambda p: (p.condition("D47.2", display="Monoclonal gammopathy",
                                                       onset="2024-01-01"), p)[1])(b.Patient(pid)),
           drafts=lambda pid: [D(pid, "d-dex", DEX), D(pid, "d-cy", b.rx("cyclophosphamide"))])

# draft Medication by reference to an entry of the draft bundle (fullUrl urn:uuid)
def _bundle_ref(pid: str) -> list[dict[str, Any]]:
    return [D(pid, "d-len-ref", None, medicationReference={"reference": "Medication/rev-1"})]


def o21() -> dict[str, Any]:
    p = _len_refractory("o21")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://ehr/fhir/Medication/rev-1",
         "resource": {"resourceType": "Medication", "id": "rev-1", "code": b.text_cc("REVLIMID 10MG CAP")}},
        {"fullUrl": "http://ehr/fhir/MedicationRequest/d-len-ref", "resource": _bundle_ref("o21")[0]}]}
    return p.cds_request("order-select", draft_bundle=bundle, selections=["MedicationRequest/d-len-ref"])


CASES.append(Case("o21-medication-in-draft-bundle-by-reference", o21, {
    "findings_include": [{"code": "refractory-agent-ordered", "agents": ["lenalidomide"],
                          "orders": ["MedicationRequest/d-len-ref"]}]}))


# ====================================================== 14. lines, refractoriness edges
@case("r17-dvrd-induction-asct-r-maint-dara-exposed-only", {
    "state": {
        "multipleMyeloma": True, "priorLines": 1,
        # PERSEUS-like D-VRd induction -> ASCT -> R maintenance = one line; daratumumab stopped after
        # consolidation 2023, PD 2026-09 on R alone: daratumumab exposed, lenalidomide refractory (§1)
        "agents": {"daratumumab": "exposed", "bortezomib": "exposed", "lenalidomide": "refractory",
                   "dexamethasone": "exposed", "melphalan": "exposed"},
        "classes": {"IMiD": "refractory", "PI": "exposed", "anti-CD38": "exposed"},
        "progressedOnLenalidomideMaintenance": True, "tripleClassExposed": True, "tripleClassRefractory": False,
        "transplant": {"priorASCT": True, "monthsAsctToProgression": [40, 42], "salvageASCT": "candidate"},
    },
    # §2 "A/B with prior anti-CD38 exposure that is not refractory: the same tiers apply" -> B, not C
    "setting": "first-relapse-len-refractory",
    "avoid_include": ["DRd"],
    "options_include": ["DKd"],
})
def r17() -> dict[str, Any]:
    p = b.Patient("rt17", birth="1964-04-04", gender="male")
    p.myeloma(onset="2022-11-01")
    for c in range(4):
        s = add_days("2022-11-15", 28 * c)
        p.administration(b.rx("2375139"), when=s)
        p.administration(b.rx("1804997"), when=s)
        p.request(b.rx("1429367"), s, bounds=(s, add_days(s, 20)))
        p.request(b.rx("dexamethasone"), s, bounds=(s, add_days(s, 20)))
    p.administration(b.rx("melphalan"), when="2023-04-01")
    p.asct("2023-04-03")
    for c in range(2):  # D-VRd consolidation
        s = add_days("2023-06-01", 28 * c)
        p.administration(b.rx("2375139"), when=s)
        p.administration(b.rx("1804997"), when=s)
        p.request(b.rx("1429367"), s, bounds=(s, add_days(s, 20)))
    p.statement(b.rx("602910", ), "2023-08-01", None, status="active")
    p.disease_status("2026-09-10")
    p.ecog("2026-09-10", 0)
    return p.cds_request()


@case("r18-newly-diagnosed-smm-progression-before-therapy", {
    "state": {"multipleMyeloma": True,
              "agents": {"daratumumab": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
              "classes": {"IMiD": "exposed", "PI": "naive", "anti-CD38": "exposed"}},
    # the 'worsened' status and C90.02-free history before any therapy is progression from smoldering
    # to active myeloma, not a relapse: on first-line D-Rd -> not-relapsed (issue 4)
    "setting": "not-relapsed",
})
def r18() -> dict[str, Any]:
    p = b.Patient("rt18", birth="1952-02-02")
    p.condition("D47.2", display="Monoclonal gammopathy", onset="2021-01-01", status="resolved",
                text="Smoldering myeloma")
    p.myeloma(onset="2026-06-20")
    p.disease_status("2026-06-15")  # SMM -> MM
    p.m_protein("2025-06-01", 1.5)
    p.m_protein("2026-06-10", 3.2)
    for c in range(5):
        s = add_days("2026-07-01", 28 * c)
        if s > AS_OF:
            break
        p.administration(b.rx("2375141"), when=s)
        p.request(b.rx("1429367"), s, status="active" if c == 4 else "completed", bounds=(s, add_days(s, 20)))
        p.request(b.rx("dexamethasone"), s, status="active" if c == 4 else "completed", bounds=(s, add_days(s, 20)))
    p.m_protein("2026-09-01", 1.0)
    p.m_protein("2026-10-15", 0.4)
    return p.cds_request()


@case("r19-primary-refractory-less-than-mr", {
    "state": {"multipleMyeloma": True,
              # VRd x4: M-protein 3.0 -> 2.8 -> 2.8 (< 25 % reduction = below MR) then switched to DKd
              # with statusReason 'no response': failure to reach MR -> refractory (§1)
              "agents": {"bortezomib": "refractory", "lenalidomide": "refractory", "dexamethasone": "refractory",
                         "daratumumab": "exposed", "carfilzomib": "exposed"},
              "classes": {"IMiD": "refractory", "PI": "refractory", "anti-CD38": "exposed"},
              "doubleRefractory": True},
})
def r19() -> dict[str, Any]:
    p = b.Patient("rt19", birth="1966-06-16", gender="male")
    p.myeloma(onset="2026-01-05")
    for c in range(4):
        s = add_days("2026-01-10", 21 * c)
        for med in (b.rx("bortezomib"), b.rx("lenalidomide"), b.rx("dexamethasone")):
            p.request(med, s, bounds=(s, add_days(s, 13)))
    for day, v in (("2026-01-08", 3.0), ("2026-02-20", 2.8), ("2026-03-30", 2.8)):
        p.m_protein(day, v)
    p.statement(b.rx("bortezomib"), "2026-01-10", "2026-04-10", status="stopped",
                reason_code=("266721009", "No response to treatment"))
    for c in range(6):
        s = add_days("2026-04-20", 28 * c)
        for med in (b.rx("1721954"), b.rx("carfilzomib"), b.rx("dexamethasone")):
            p.request(med, s, status="active" if c == 5 else "completed", bounds=(s, add_days(s, 27)))
    p.m_protein("2026-08-01", 1.0)
    p.m_protein("2026-10-01", 0.5)
    return p.cds_request()


def _pd_after_last_dose(pid: str, gap_days: int) -> dict[str, Any]:
    """Line 1 VRd done 2020; line 2 KPd by administrations; carfilzomib last dose gap_days before PD."""
    p = b.Patient(pid, birth="1959-09-09")
    p.myeloma(onset="2019-10-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2019-10-15", "2020-04-15")
    p.disease_status("2023-01-10")
    pd = "2026-09-05"
    last = add_days(pd, -gap_days)
    d = "2023-02-01"
    while d <= last:
        p.administration(b.rx("1806942"), when=d)
        d = add_days(d, 14)
    p.administration(b.rx("1806942"), when=last)
    p.statement(b.rx("pomalidomide"), "2023-02-01", last, status="completed")
    p.disease_status(pd)
    return p.cds_request()


# 60-day rule at its boundary (IMWG, §1): 57 days -> refractory, 66 days -> exposed
CASES.append(Case("r20a-carfilzomib-last-dose-57-days", lambda: _pd_after_last_dose("rt20a", 57), {
    "state": {"priorLines": 2, "agents": {"carfilzomib": "refractory", "pomalidomide": "refractory",
                                          "bortezomib": "exposed", "lenalidomide": "exposed"}}}))
CASES.append(Case("r20b-carfilzomib-last-dose-66-days", lambda: _pd_after_last_dose("rt20b", 66), {
    "state": {"priorLines": 2, "agents": {"carfilzomib": "exposed", "pomalidomide": "exposed",
                                          "bortezomib": "exposed", "lenalidomide": "exposed"}}}))


@case("r21-dose-reductions-and-holiday-one-line", {
    # strength changes (25 -> 20 -> 10 mg product codes) and a 3-week holiday are not new lines (§1)
    "state": {"priorLines": 1, "agents": {"lenalidomide": "refractory"},
              "classes": {"IMiD": "refractory", "PI": "naive", "anti-CD38": "naive"}},
    "setting": "first-relapse-len-refractory",
})
def r21() -> dict[str, Any]:
    p = b.Patient("rt21", birth="1956-05-05")
    p.myeloma(onset="2024-02-01")
    s = "2024-02-10"
    i = 0
    while s < "2026-09-01":
        code = "643722" if i < 6 else ("1429367" if i < 14 else "602910")
        p.request(b.rx(code, display={"643722": "lenalidomide 25 MG Oral Capsule [Revlimid]"}.get(code)),
                  s, bounds=(s, add_days(s, 20)))
        s = add_days(s, 49 if i == 10 else 28)
        i += 1
    p.disease_status("2026-09-12")
    return p.cds_request()


@case("r22-len-on-hold-at-progression", {
    # on-hold 4 weeks for cytopenia (drug holiday), PD within 60 days of last dose -> refractory (§1)
    "state": {"agents": {"lenalidomide": "refractory", "bortezomib": "exposed", "dexamethasone": "exposed"},
              "progressedOnLenalidomideMaintenance": True},
    "setting": "first-relapse-len-refractory",
})
def r22() -> dict[str, Any]:
    p = b.Patient("rt22", birth="1963-03-03")
    p.myeloma(onset="2022-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2022-01-15", "2022-05-15")
    p.asct("2022-07-01")
    p.statement(b.rx("lenalidomide", text="Revlimid 10 mg maintenance"), "2022-09-01", None, status="on-hold",
                reason_text="Held for neutropenia", effectivePeriod={"start": "2022-09-01", "end": "2026-08-10"})
    p.disease_status("2026-09-20")
    return p.cds_request()


# ======================================================= 15. transplant encodings
@case("r23-asct-as-z9484-condition", {
    "state": {"transplant": {"priorASCT": True}, "priorLines": 1},
})
def r23() -> dict[str, Any]:
    # Z94.84 Stem cells transplant status (terminology.md §2a, ICD10CM-26): infer ASCT (§2b)
    p = b.Patient("rt23", birth="1961-01-01")
    p.myeloma(onset="2021-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2021-01-15", "2021-05-15")
    p.condition("Z94.84", display="Stem cells transplant status", onset="2021-07-01")
    p.disease_status("2026-09-01")
    return p.cds_request()


@case("r24-asct-procedure-text-only", {
    "state": {"transplant": {"priorASCT": True, "monthsAsctToProgression": [62, 63]}},
})
def r24() -> dict[str, Any]:
    p = b.Patient("rt24", birth="1961-01-01")
    p.myeloma(onset="2021-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2021-01-15", "2021-05-15")
    p.add({"resourceType": "Procedure", "status": "completed",
           "code": {"text": "Autologous peripheral blood stem cell transplant"}, "performedPeriod": {
               "start": "2021-07-01T08:00:00Z", "end": "2021-07-02T12:00:00Z"}})
    p.disease_status("2026-09-01")
    return p.cds_request()


# ======================================================= 16. cytogenetics over time
@case("r25-t414-at-diagnosis-stands-later-negative", {
    # primary translocations found at any time stand (§1); later del(17p) positive counts (acquired)
    "state": {"cytogenetics": {"tested": True, "highRisk": True, "findings": ["t(4;14)", "del(17p)"],
                               "t11_14": False}},
    "notices_include": ["high-risk-cytogenetics"],
})
def r25() -> dict[str, Any]:
    p = _rd_story("rt25")
    p.disease_status("2026-09-03")
    p.fish_report("2023-12-05", "IGH/FGFR3 fusion (t(4;14)) detected in 80% of nuclei. TP53 deletion not "
                                "detected. IGH/CCND1 not detected.")
    p.fish_report("2026-09-10", "Relapse FISH: t(4;14) not detected (insufficient plasma cells, 50 nuclei). "
                                "TP53 (17p13.1) deletion detected in 35% of nuclei.")
    return p.cds_request()


@case("r26-karyotype-iscn-t1114", {
    "state": {"cytogenetics": {"tested": True, "t11_14": True}},
})
def r26() -> dict[str, Any]:
    p = _rd_story("rt26")
    p.disease_status("2026-09-03")
    p.add({"resourceType": "DiagnosticReport", "status": "final",
           "code": {"text": "Chromosome analysis, bone marrow"}, "effectiveDateTime": "2023-12-05",
           "conclusion": "46,XX,t(11;14)(q13;q32)[7]/46,XX[13]"})
    return p.cds_request()


# ======================================================= 17. more quiet non-myeloma patients
@case("r27-mds-del5q-on-revlimid-quiet", {"quiet": True})
def r27() -> dict[str, Any]:
    p = b.Patient("rt27", birth="1948-08-08")
    p.add({"resourceType": "Condition", "code": {"text": "Myelodysplastic syndrome with isolated del(5q)"},
           "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "active"}]},
           "onsetDateTime": "2024-01-01"})
    p.statement(b.rx("1429367"), "2024-02-01", None, status="active")
    p.disease_status("2026-09-01")
    return p.cds_request()


@case("r28-solitary-plasmacytoma-quiet", {"quiet": True})
def r28() -> dict[str, Any]:
    # C90.30 Solitary plasmacytoma (terminology.md §2a, verified) is not multiple myeloma
    p = b.Patient("rt28", birth="1970-08-08", gender="male")
    p.condition("C90.30", display="Solitary plasmacytoma not having achieved remission", onset="2025-03-01")
    p.statement(b.rx("dexamethasone"), "2025-03-05", "2025-04-05")
    return p.cds_request()


@case("r29-frailty-documented-condition", {
    # §1 frailty: "ECOG >= 2 or frailty documented" - a Condition "Frailty" (text), ECOG 1
    "state": {"frail": True},
})
def r29() -> dict[str, Any]:
    p = _rd_story("rt29")
    p.disease_status("2026-09-03")
    p.ecog("2026-09-03", 1)
    p.add({"resourceType": "Condition", "code": {"text": "Frailty syndrome"},
           "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "active"}]},
           "onsetDateTime": "2026-06-01"})
    return p.cds_request()


# ====================================================== 18. statuses and odd fields
def _vrd_then(pid: str, birth: str = "1960-10-10") -> b.Patient:
    """VRd x6 fixed (2021), progression 2026-09-02 by mCODE: everything exposed, first relapse."""
    p = b.Patient(pid, birth=birth)
    p.myeloma(onset="2021-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2021-01-15", "2021-07-15")
    p.disease_status("2026-09-02")
    p.ecog("2026-09-02", 1)
    return p


VRD_EXPOSED = {"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"}


@case("r30-never-given-records-ignored", {
    # FHIR status semantics: a not-done administration, a draft order left in the chart, a doNotPerform
    # order and an entered-in-error statement were never given -> daratumumab / pomalidomide naive
    "state": {"priorLines": 1, "agents": VRD_EXPOSED,
              "classes": {"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"}},
    "setting": "first-relapse-len-sensitive",
})
def r30() -> dict[str, Any]:
    p = _vrd_then("rt30")
    p.administration(b.rx("1721954"), when="2026-09-20", status="not-done",
                     statusReason=[{"text": "Infusion reaction to premedication - not given"}])
    p.request(b.rx("1721954"), "2026-09-25", status="draft")
    p.request(b.rx("pomalidomide"), "2026-09-25", status="active", doNotPerform=True)
    p.statement(b.rx("2375139"), "2026-09-25", None, status="entered-in-error")
    return p.cds_request()


@case("r31-completed-12-month-rx-validity-only", {
    # one completed 12-month prescription (validity 2023-03 .. 2024-03), nothing after; PD 2026-09:
    # lenalidomide last given > 6 months before PD -> exposed, first relapse len-sensitive (§1, §2 A)
    "state": {"priorLines": 1, "agents": {"lenalidomide": "exposed", "dexamethasone": "exposed"},
              "classes": {"IMiD": "exposed", "PI": "naive", "anti-CD38": "naive"}},
    "setting": "first-relapse-len-sensitive",
})
def r31() -> dict[str, Any]:
    p = b.Patient("rt31", birth="1950-03-03")
    p.myeloma(onset="2023-02-01")
    p.request(b.rx("1429367"), "2023-03-01", status="completed", validity=("2023-03-01", "2024-03-01"),
              dispenseRequest={"validityPeriod": {"start": "2023-03-01", "end": "2024-03-01"},
                               "numberOfRepeatsAllowed": 11, "quantity": {"value": 21, "unit": "capsule"}})
    p.request(b.rx("dexamethasone"), "2023-03-01", status="completed", validity=("2023-03-01", "2024-03-01"))
    p.disease_status("2026-09-02")
    return p.cds_request()


@case("r32-statement-date-asserted-only", {
    # statements with dateAsserted only: completed 2021 -> exposed; lenalidomide active, asserted
    # 2026-06-01 -> on it at PD 2026-09-02 -> refractory (§1)
    "state": {"agents": {"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"}},
})
def r32() -> dict[str, Any]:
    p = b.Patient("rt32", birth="1960-10-10")
    p.myeloma(onset="2021-01-01")
    p.statement(b.rx("bortezomib"), None, status="completed", dateAsserted="2021-07-15")
    p.statement(b.rx("dexamethasone"), None, status="completed", dateAsserted="2021-07-15")
    p.statement(b.rx("lenalidomide"), None, status="active", dateAsserted="2026-06-01")
    p.disease_status("2026-09-02")
    return p.cds_request()


@case("r33-reasoncode-progression-on-new-line-not-stop", {
    # line 2 DPd started for progression on R maintenance (reasonCode says so) and is ongoing and
    # responding: the reason a drug was STARTED is not progression ON it -> daratumumab and pomalidomide
    # exposed; lenalidomide refractory (§1)
    "state": {"agents": {"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "refractory",
                         "daratumumab": "exposed", "pomalidomide": "exposed"},
              "classes": {"IMiD": "refractory", "PI": "exposed", "anti-CD38": "exposed"},
              "tripleClassRefractory": False},
})
def r33() -> dict[str, Any]:
    p = b.Patient("rt33", birth="1962-02-22")
    p.myeloma(onset="2021-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2021-01-15", "2021-06-15")
    p.asct("2021-08-01")
    p.statement(b.rx("lenalidomide"), "2021-10-01", "2026-05-20", status="stopped", reason_text="Disease progression")
    p.disease_status("2026-05-25")
    reason = [{"text": "Disease progression on Revlimid maintenance (relapsed multiple myeloma)"}]
    for c in range(6):
        s = add_days("2026-06-01", 28 * c)
        if s > AS_OF:
            break
        st = "active" if add_days(s, 28) > AS_OF else "completed"
        p.request(b.rx("1721954"), s, status=st, bounds=(s, add_days(s, 27)), reasonCode=reason)
        p.request(b.rx("pomalidomide"), s, status=st, bounds=(s, add_days(s, 20)), reasonCode=reason)
        p.request(b.rx("dexamethasone"), s, status=st, bounds=(s, add_days(s, 27)), reasonCode=reason)
    p.m_protein("2026-05-20", 1.8)
    p.m_protein("2026-08-01", 0.6)
    p.m_protein("2026-10-01", 0.3)
    return p.cds_request()


NOT_PD_TEXTS = [
    "No evidence of progression - completed 8 planned cycles",
    "Completed planned therapy; not progressive disease",
    "Stopped for toxicity (not for progression)",
    "Progression-free; proceeding to ASCT",
]
for _i, _txt in enumerate(NOT_PD_TEXTS):
    # negated progression wording in statusReason is not progression; PD only 2026-09 (> 60 days)
    def _build(t: str = _txt, i: int = _i) -> dict[str, Any]:
        p = b.Patient(f"rt34{i}", birth="1960-10-10")
        p.myeloma(onset="2023-01-01")
        p.statement(b.rx("carfilzomib"), "2023-01-15", "2023-09-15", status="stopped", reason_text=t)
        p.statement(b.rx("lenalidomide"), "2023-01-15", "2023-09-15", status="stopped", reason_text=t)
        p.statement(b.rx("dexamethasone"), "2023-01-15", "2023-09-15", status="stopped", reason_text=t)
        p.disease_status("2026-09-02")
        return p.cds_request()
    CASES.append(Case(f"r34{'abcd'[_i]}-negated-progression-text", _build, {
        "state": {"priorLines": 1,
                  "agents": {"carfilzomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"}},
        "setting": "first-relapse-len-sensitive"}, rule=_txt))

NOT_PD_STATUS = ["No progression", "Stable disease - no evidence of progression", "VGPR", "Progressive disease ruled out"]
for _i, _txt in enumerate(NOT_PD_STATUS):
    def _build2(t: str = _txt, i: int = _i) -> dict[str, Any]:
        p = _rd_story(f"rt35{i}")
        p.observation({"text": "Disease status"}, "2026-09-03", valueString=t)
        return p.cds_request()
    CASES.append(Case(f"r35{'abcd'[_i]}-disease-status-not-pd", _build2, copy.deepcopy(RD_NOT_RELAPSED), rule=_txt))


@case("r36-mprotein-odd-values-no-pd", {
    # 'None detected', a '<0.1' comparator, an entered-in-error 5.0 and a rise to 0.45 (< 0.5 g/dL
    # absolute): no IMWG progression may be invented (§1)
    **RD_NOT_RELAPSED,
})
def r36() -> dict[str, Any]:
    p = _rd_story("rt36")
    code = {"coding": [{"system": b.LOINC, "code": "33358-3"}]}
    p.observation(code, "2024-09-01", valueString="None detected")
    p.observation(code, "2025-03-01", valueQuantity={"value": 0.1, "comparator": "<", "unit": "g/dL"})
    p.observation(code, "2025-09-01", valueQuantity={"value": 5.0, "unit": "g/dL"}, status="entered-in-error")
    p.m_protein("2026-08-01", 0.3)
    p.m_protein("2026-09-01", 0.45)
    p.m_protein("2026-10-01", 0.45)
    return p.cds_request()


@case("r37-fish-in-presentedform-only", {
    "state": {"cytogenetics": {"tested": True, "t11_14": True, "findings": ["t(11;14)"], "highRisk": False}},
})
def r37() -> dict[str, Any]:
    import base64

    p = _rd_story("rt37")
    p.disease_status("2026-09-03")
    txt = ("PLASMA CELL FISH PANEL\nIGH/CCND1 [t(11;14)]: DETECTED (68% of nuclei)\nTP53/CEP17: NOT DETECTED\n"
           "IGH/FGFR3 [t(4;14)]: NOT DETECTED\nIGH/MAF [t(14;16)]: NOT DETECTED\n1q21 (CKS1B): NOT DETECTED\n")
    p.add({"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "FISH, myeloma panel"},
           "effectiveDateTime": "2023-12-05",
           "presentedForm": [{"contentType": "text/plain", "data": base64.b64encode(txt.encode()).decode()}]})
    return p.cds_request()


@case("r38-tcr-isatuximab-carvykti", {
    "state": {"priorLines": 3,
              # KRd PD on it, IsaPd PD on it -> TCR via isatuximab (§1 anti-CD38 includes isatuximab);
              # cilta-cel 2025-10, PD 2026-09: a CAR-T is given once, any later PD is its failure
              # (CLINICAL_LOGIC §5) -> refractory, BCMA refractory
              "agents": {"carfilzomib": "refractory", "lenalidomide": "refractory", "dexamethasone": "refractory",
                         "isatuximab": "refractory", "pomalidomide": "refractory",
                         "ciltacabtagene-autoleucel": "refractory", "cyclophosphamide": "exposed"},
              "targets": {"BCMA": "refractory", "GPRC5D": "naive"},
              "classes": {"IMiD": "refractory", "PI": "refractory", "anti-CD38": "refractory"},
              "tripleClassRefractory": True, "doubleRefractory": True},
    "setting": "triple-class-refractory",
})
def r38() -> dict[str, Any]:
    p = b.Patient("rt38", birth="1958-12-12", gender="male")
    p.myeloma(onset="2021-01-01")
    for txt in ("Kyprolis 56 mg/m2", "Revlimid 25 mg", "dexamethasone 40 mg"):
        p.statement(b.text_cc(txt), "2021-01-20", "2023-03-01", status="stopped", reason_text="PD")
    p.disease_status("2023-03-01")
    for txt in ("Sarclisa 10 mg/kg", "Pomalyst 4 mg", "dexamethasone 40 mg"):
        p.statement(b.text_cc(txt), "2023-03-15", "2025-08-01", status="stopped", reason_text="PD")
    p.disease_status("2025-08-01")
    p.administration(b.text_cc("cyclophosphamide 300 mg/m2 IV (lymphodepletion)"), when="2025-10-01")
    p.administration(b.text_cc("CARVYKTI (ciltacabtagene autoleucel) suspension for IV infusion"),
                     when="2025-10-06")
    p.disease_status("2026-09-02")
    return p.cds_request()


@case("r39-age-from-year-only-birthdate", {
    "state": {"frail": False, "transplant": {"priorASCT": False, "salvageASCT": "not-recommended"}},
})
def r39() -> dict[str, Any]:
    # birthDate '1950' (year only, valid FHIR) -> 76 y: never transplanted and > 70 -> not eligible
    # for a first (salvage) ASCT (§1 transplant eligibility: fit and age <= 70)
    p = _vrd_then("rt39", birth="1950")
    return p.cds_request()


# order hooks: more boundaries
order_case("o22-dara-iv-product-after-sc-refractory", {
    "findings_include": [{"code": "anti-cd38-retreatment", "agents": ["daratumumab"],
                          "orders": ["MedicationRequest/d-dara-iv"]}]},
    patient=_dara_refractory,
    drafts=lambda pid: [D(pid, "d-dara-iv", b.rx("1721954")), D(pid, "d-pom", b.rx("pomalidomide")),
                        D(pid, "d-dex", DEX), D(pid, "d-asa", b.text_cc("aspirin 81 mg"))])
order_case("o23-pom-with-enoxaparin-tallman-valacyclovir", {
    "findings_exclude": ["missing-thromboprophylaxis", "missing-zoster-prophylaxis", "refractory-agent-ordered"]},
    patient=lambda pid: _len_refractory(pid, extra=lambda p: (
        p.request(b.text_cc("enoxaparin (LOVENOX) 40 mg/0.4 mL injection"), "2026-09-15", status="active"),
        p.request(b.text_cc("valACYclovir (VALTREX) 500 mg tablet"), "2026-09-15", status="active"))),
    drafts=lambda pid: [D(pid, "d-pom", b.rx("pomalidomide")), D(pid, "d-btz", b.rx("bortezomib")),
                        D(pid, "d-dex", DEX)])
order_case("o24-non-drug-orders-no-findings", {"no_findings": True},
           drafts=lambda pid: [{"resourceType": "ServiceRequest", "id": "sr-cbc", "status": "draft",
                                "intent": "order", "subject": {"reference": f"Patient/{pid}"},
                                "code": {"text": "CBC with differential"}},
                               {"resourceType": "NutritionOrder", "id": "no-1", "status": "draft",
                                "intent": "order", "patient": {"reference": f"Patient/{pid}"}}])
order_case("o25-len-exposed-not-refractory-no-finding", {
    "findings_exclude": ["refractory-agent-ordered"]},
    patient=lambda pid: _vrd_then(pid),
    drafts=lambda pid: [D(pid, "d-len", b.rx("1429367")), D(pid, "d-dara", b.rx("1721954")),
                        D(pid, "d-dex", DEX), D(pid, "d-asa", b.text_cc("aspirin 81 mg"))])


# ====================================================== 19. lines & transplant boundaries
@case("r40-vrd-asct-krd-consolidation-r-maint-one-line", {
    # planned induction -> ASCT -> consolidation (another PI) -> maintenance is ONE line (IMWG, §1)
    "state": {"priorLines": 1, "progressedOnLenalidomideMaintenance": True,
              "agents": {"bortezomib": "exposed", "carfilzomib": "exposed", "lenalidomide": "refractory",
                         "dexamethasone": "exposed", "melphalan": "exposed"}},
    "setting": "first-relapse-len-refractory",
})
def r40() -> dict[str, Any]:
    p = b.Patient("rt40", birth="1966-01-01")
    p.myeloma(onset="2022-01-01")
    for c in range(4):
        s = add_days("2022-01-10", 21 * c)
        for med in (b.rx("bortezomib"), b.rx("lenalidomide"), b.rx("dexamethasone")):
            p.request(med, s, bounds=(s, add_days(s, 13)))
    p.administration(b.rx("melphalan"), when="2022-05-01")
    p.asct("2022-05-03")
    for c in range(4):
        s = add_days("2022-07-15", 28 * c)
        for med in (b.rx("carfilzomib"), b.rx("lenalidomide"), b.rx("dexamethasone")):
            p.request(med, s, bounds=(s, add_days(s, 20)))
    p.statement(b.rx("lenalidomide"), "2022-11-15", None, status="active")
    p.disease_status("2026-09-05")
    return p.cds_request()


@case("r41-first-progression-after-asct-counts", {
    # ASCT 2020-06-01 -> first PD 2023-06-05 (36 months, with maintenance): both thresholds met;
    # the later PD on line 2 does not change months ASCT -> progression (§1 "months from ASCT to progression").
    # This is the second relapse (2 lines before it): salvage ASCT is a first-relapse option -> not-recommended
    "state": {"priorLines": 2, "transplant": {"priorASCT": True, "monthsAsctToProgression": [36, 36],
                                              "salvageASCT": "not-recommended"}},
})
def r41() -> dict[str, Any]:
    p = b.Patient("rt41", birth="1964-01-01")
    p.myeloma(onset="2019-12-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2020-01-01", "2020-04-15")
    p.asct("2020-06-01")
    p.statement(b.rx("lenalidomide"), "2020-08-01", "2023-06-05", status="stopped", reason_text="Disease progression")
    p.disease_status("2023-06-05")
    for txt in ("1721954", "pomalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2023-06-20", None, status="active")
    p.disease_status("2026-09-05")
    return p.cds_request()


def _asct_months(pid: str, asct: str, pd: str, maintenance: bool) -> dict[str, Any]:
    p = b.Patient(pid, birth="1964-01-01")
    p.myeloma(onset="2023-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2023-01-15", add_days(asct, -60))
    p.asct(asct)
    if maintenance:
        p.statement(b.rx("lenalidomide"), add_days(asct, 60), pd, status="stopped", reason_text="progression")
    p.disease_status(pd)
    p.ecog(pd, 0)
    return p.cds_request()


# §2 salvage ASCT thresholds: 002 >= 18 months; 003 >= 36 (>= 24 without maintenance); candidate where
# both agree, discuss between them, not-recommended < 18.
for _n, _asct, _pd, _maint, _want in (
    ("r42a-asct-24mo-no-maint", "2024-09-01", "2026-09-02", False, "candidate"),
    ("r42b-asct-23-7mo-no-maint", "2024-09-10", "2026-09-01", False, "discuss"),
    ("r42c-asct-17-7mo", "2025-03-10", "2026-09-01", False, "not-recommended"),
    ("r42d-asct-35-7mo-maint", "2023-09-10", "2026-09-01", True, "discuss"),
    ("r42e-asct-36mo-maint", "2023-09-01", "2026-09-02", True, "candidate"),
):
    CASES.append(Case(_n, (lambda n=_n, a=_asct, d=_pd, m=_maint: _asct_months(n.split("-")[0], a, d, m)),
                      {"state": {"transplant": {"priorASCT": True, "salvageASCT": _want}}}))

# §1 transplant eligibility: fit and age <= 70 -> never-transplanted patient is a salvage-ASCT candidate
CASES.append(Case("r43a-never-transplanted-age-70", lambda: _vrd_then("rt43a", birth="1955-11-02").cds_request(),
                  {"state": {"transplant": {"priorASCT": False, "salvageASCT": "candidate"}}}))
CASES.append(Case("r43b-never-transplanted-age-71", lambda: _vrd_then("rt43b", birth="1955-10-30").cds_request(),
                  {"state": {"transplant": {"priorASCT": False, "salvageASCT": "not-recommended"}}}))


@case("r44-vtd-thalidomide-bortezomib-double-refractory-len-naive", {
    # PD on VTd: thalidomide + bortezomib refractory -> double-refractory (IMiD + PI, §1); lenalidomide
    # naive -> agent-level: first relapse is lenalidomide-sensitive (§2 A) and DRd is not avoided
    "state": {"priorLines": 1, "doubleRefractory": True,
              "agents": {"thalidomide": "refractory", "bortezomib": "refractory", "dexamethasone": "refractory"},
              "classes": {"IMiD": "refractory", "PI": "refractory", "anti-CD38": "naive"}},
    "setting": "first-relapse-len-sensitive",
    "preferred_include": ["DRd"],
    "preferred_exclude": ["DVd", "VCd", "Vd", "PVd"],
    "avoid_exclude": ["DRd"],
})
def r44() -> dict[str, Any]:
    p = b.Patient("rt44", birth="1960-06-06")
    p.myeloma(onset="2025-01-01")
    for txt in ("Thalomid 100 mg capsule", "Velcade 1.3 mg/m2", "Decadron 40 mg"):
        p.statement(b.text_cc(txt), "2025-01-15", None, status="active")
    p.disease_status("2026-09-05")
    return p.cds_request()


@case("r45-penta-refractory-with-isatuximab", {
    "state": {"pentaRefractory": True, "tripleClassRefractory": True,
              "agents": {"lenalidomide": "refractory", "bortezomib": "refractory", "carfilzomib": "refractory",
                         "pomalidomide": "refractory", "isatuximab": "refractory", "dexamethasone": "refractory"}},
    "setting": "triple-class-refractory",
})
def r45() -> dict[str, Any]:
    p = b.Patient("rt45", birth="1957-07-07")
    p.myeloma(onset="2019-01-01")
    stories = (("2019-01-15", "2021-03-01", ("bortezomib", "lenalidomide", "dexamethasone")),
               ("2021-03-15", "2023-05-01", ("carfilzomib", "pomalidomide", "dexamethasone")))
    for start, end, meds in stories:
        for m in meds:
            p.statement(b.rx(m), start, end, status="stopped", reason_code=("266721009", "No response to treatment"))
        p.disease_status(end)
    p.statement(b.atc_cc("isatuximab", text="isatuximab"), "2023-05-20", "2026-09-01", status="stopped",
                reason_text="progression")
    p.statement(b.rx("dexamethasone"), "2023-05-20", "2026-09-01", status="stopped")
    p.disease_status("2026-09-01")
    return p.cds_request()


# ====================================================== 20. labs and dates, more edges
_progression_variant("r46a-single-mprotein-spike-then-back", _mprot(
    # one qualifying value followed by values back at baseline: IMWG needs 2 consecutive assessments
    [("2024-06-01", 0.5), ("2025-06-01", 0.5), ("2026-08-01", 1.2), ("2026-09-01", 0.5), ("2026-10-01", 0.5)],
    "g/dL"), RD_NOT_RELAPSED)
_progression_variant("r46b-progression-dated-after-as-of", lambda p: p.disease_status("2027-01-05"),
                     RD_NOT_RELAPSED)
_progression_variant("r46c-disease-status-effective-period", lambda p: p.add({
    "resourceType": "Observation", "status": "final", "code": {"coding": [{"system": b.LOINC, "code": "97509-4"}]},
    "effectivePeriod": {"start": "2026-09-03"},
    "valueCodeableConcept": {"coding": [{"system": b.SNOMED, "code": "271299001"}]}}), RD_REFRACTORY)
_progression_variant("r46d-disease-status-issued-only", lambda p: p.add({
    "resourceType": "Observation", "status": "amended", "code": {"coding": [{"system": b.LOINC, "code": "97509-4"}]},
    "issued": "2026-09-03T14:00:00+02:00",
    "valueCodeableConcept": {"coding": [{"system": b.SNOMED, "code": "271299001"}]}}), RD_REFRACTORY)


@case("r47-pd-date-is-first-qualifying-value", {
    # Rd completed 2026-07-01 (no reason). M-protein nadir 0.2; 2026-08-20 0.9 (first qualifying, 50 days
    # after the last dose), confirmed 2026-09-25: IMWG dates PD at the first -> within 60 days -> refractory
    "state": {"agents": {"lenalidomide": "refractory", "dexamethasone": "refractory"}},
    "setting": "first-relapse-len-refractory",
})
def r47() -> dict[str, Any]:
    p = b.Patient("rt47", birth="1958-02-11")
    p.myeloma(onset="2023-12-01")
    p.statement(b.rx("lenalidomide"), "2024-01-10", "2026-07-01", status="completed")
    p.statement(b.rx("dexamethasone"), "2024-01-10", "2026-07-01", status="completed")
    for day, v in (("2024-06-01", 0.4), ("2025-06-01", 0.2), ("2026-06-01", 0.2), ("2026-08-20", 0.9),
                   ("2026-09-25", 1.1)):
        p.m_protein(day, v)
    return p.cds_request()


@case("r48-less-than-mr-by-mprotein-only", {
    # VRd x4 with M-protein 3.0 -> 2.7 (-10 %, below minimal response) then switch to DKd, no stop reason:
    # "failure to reach at least minimal response on it also counts" (§1) -> refractory
    "state": {"agents": {"bortezomib": "refractory", "lenalidomide": "refractory", "dexamethasone": "refractory",
                         "daratumumab": "exposed", "carfilzomib": "exposed"},
              "doubleRefractory": True},
})
def r48() -> dict[str, Any]:
    p = b.Patient("rt48", birth="1966-06-16", gender="male")
    p.myeloma(onset="2026-01-05")
    for c in range(4):
        s = add_days("2026-01-10", 21 * c)
        for med in (b.rx("bortezomib"), b.rx("lenalidomide"), b.rx("dexamethasone")):
            p.request(med, s, bounds=(s, add_days(s, 13)))
    for day, v in (("2026-01-08", 3.0), ("2026-02-20", 2.8), ("2026-03-30", 2.7)):
        p.m_protein(day, v)
    for c in range(6):
        s = add_days("2026-04-20", 28 * c)
        for med in (b.rx("1721954"), b.rx("carfilzomib"), b.rx("dexamethasone")):
            p.request(med, s, status="active" if c == 5 else "completed", bounds=(s, add_days(s, 27)))
    p.m_protein("2026-08-01", 1.0)
    p.m_protein("2026-10-01", 0.5)
    return p.cds_request()


@case("r49-fish-without-t1114-probe", {
    # FISH tested only TP53 and 1q: t(11;14) was not tested -> t11_14 unknown (null), not false (§1)
    "state": {"cytogenetics": {"tested": True, "findings": [], "t11_14": None}},
})
def r49() -> dict[str, Any]:
    p = _rd_story("rt49")
    p.disease_status("2026-09-03")
    p.fish_report("2023-12-05", "FISH (limited panel): TP53 (17p13.1) deletion not detected. 1q21 (CKS1B) gain "
                                "not detected.")
    return p.cds_request()


order_case("o26-venetoclax-fish-without-t1114-probe", {
    "findings_include": [{"code": "venetoclax-t11-14-unknown", "agents": ["venetoclax"]}],
    "findings_exclude": ["venetoclax-without-t11-14"]},
    patient=lambda pid: _len_refractory(pid, fish="FISH (limited panel): TP53 (17p13.1) deletion not detected. "
                                                  "1q21 (CKS1B) gain not detected."),
    drafts=lambda pid: [D(pid, "d-ven", b.rx("venetoclax"))])


@case("r50-other-cancer-chemo-before-myeloma-not-a-line", {
    # AC (doxorubicin + cyclophosphamide) for breast cancer 2012, 11 years before the myeloma diagnosis,
    # is not a myeloma line: Rd 2023 -> PD on it 2026 = first relapse, 1 prior line (§1)
    "state": {"priorLines": 1},
    "setting": "first-relapse-len-refractory",
})
def r50() -> dict[str, Any]:
    p = b.Patient("rt50", birth="1958-02-11")
    p.add({"resourceType": "Condition", "code": {"text": "Malignant neoplasm of left breast"},
           "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "resolved"}]},
           "onsetDateTime": "2012-02-01", "abatementDateTime": "2013-01-01"})
    for c in range(4):
        s = add_days("2012-03-01", 21 * c)
        p.administration(b.rx("doxorubicin"), when=s, reasonCode=[{"text": "Breast cancer"}])
        p.administration(b.rx("cyclophosphamide"), when=s, reasonCode=[{"text": "Breast cancer"}])
    p.myeloma(onset="2023-12-01")
    p.statement(b.rx("lenalidomide"), "2024-01-10", None, status="active")
    p.statement(b.rx("dexamethasone"), "2024-01-10", None, status="active")
    p.disease_status("2026-09-03")
    return p.cds_request()


# ====================================================== 21. options and notices (§2)
@case("r51-t1114-len-refractory-pi-sensitive-venvd", {
    # §2 modifier: t(11;14) with lenalidomide-refractory, PI-sensitive disease -> VenVd is an option
    "state": {"cytogenetics": {"t11_14": True}},
    "options_include": ["VenVd"],
    "preferred_exclude": ["DRd"],
})
def r51() -> dict[str, Any]:
    p = _len_refractory("rt51", fish="IGH/CCND1 t(11;14) DETECTED in 70% of nuclei. TP53 deletion not detected.")
    return p.cds_request()


@case("r52-no-t1114-never-venvd", {
    # §2: without t(11;14) VenVd is harmful (BELLINI OS HR 3.13) - never suggested
    "options_exclude": ["VenVd"], "preferred_exclude": ["VenVd"],
})
def r52() -> dict[str, Any]:
    return _len_refractory("rt52", fish="IGH/CCND1 t(11;14) not detected. TP53 deletion not detected.").cds_request()


@case("r53-after-dvmp-frail-over-75", {
    # §2 C after D-VMP (daratumumab-refractory, lenalidomide-naive), frail / > 75: Rd, IRd or EloRd (003);
    # no daratumumab regimen preferred
    # VMP x9 ended 2024-03 (> 60 days before PD): bortezomib / melphalan exposed; dara continued -> refractory
    "state": {"agents": {"daratumumab": "refractory", "bortezomib": "exposed", "melphalan": "exposed",
                         "prednisone": "exposed"},
              "classes": {"IMiD": "naive", "PI": "exposed", "anti-CD38": "refractory"}, "frail": True},
    "setting": "first-relapse-after-anti-cd38",
    "options_include": ["IRd"],
    "preferred_exclude": ["DRd", "DKd", "DVd", "DPd", "IsaKd", "IsaPd", "VMP", "Vd", "PVd"],
})
def r53() -> dict[str, Any]:
    p = b.Patient("rt53", birth="1944-04-04")
    p.myeloma(onset="2023-01-01")
    for c in range(9):
        s = add_days("2023-01-15", 42 * c)
        p.administration(b.rx("1721954"), when=s)
        p.administration(b.rx("bortezomib"), when=s)
        p.request(b.rx("melphalan"), s, bounds=(s, add_days(s, 3)))
        p.request(b.rx("prednisone"), s, bounds=(s, add_days(s, 3)))
    d = add_days("2023-01-15", 42 * 9)
    while d < "2026-09-01":
        p.administration(b.rx("1721954"), when=d)
        d = add_days(d, 28)
    p.disease_status("2026-09-10")
    p.ecog("2026-09-10", 2)
    return p.cds_request()


@case("r54-tcr-options-car-t-and-notices", {
    # §2 E: TCR -> BCMA CAR-T preferred (CAR_T_AVAILABLE default true); clinical-trial notice
    "setting": "triple-class-refractory",
    "preferred_include": ["cilta-cel"],
    "notices_include": ["clinical-trial"],
    "preferred_exclude": ["DKd", "IsaKd", "KPd", "DPd", "IsaPd"],
})
def r54() -> dict[str, Any]:
    p = b.Patient("rt54", birth="1960-04-04")
    p.myeloma(onset="2020-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2020-01-15", "2023-01-01", status="stopped", reason_text="progression")
    p.disease_status("2023-01-01")
    for txt in ("1721954", "carfilzomib", "dexamethasone"):
        p.statement(b.rx(txt), "2023-01-15", "2026-09-01", status="stopped", reason_text="progression")
    p.disease_status("2026-09-01")
    return p.cds_request()


@case("r55-short-response-high-risk-notices", {
    # line 2 started 2025-12-01, PD 2026-09-15 = 9.5 months < 18 -> short response (002);
    # del(17p) at relapse -> high-risk notice
    "state": {"cytogenetics": {"highRisk": True, "findings": ["del(17p)"]}},
    "notices_include": ["short-response", "high-risk-cytogenetics"],
})
def r55() -> dict[str, Any]:
    p = b.Patient("rt55", birth="1963-03-03")
    p.myeloma(onset="2020-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2020-01-15", "2020-07-15")
    p.disease_status("2025-11-15")
    for txt in ("1721954", "pomalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2025-12-01", None, status="active")
    p.disease_status("2026-09-15")
    p.fish_report("2026-09-20", "17p13.1 (TP53) deletion detected in 45% of plasma cells.")
    return p.cds_request()


@case("r56-pi-refractory-later-relapse-imid-mab", {
    # §2 D: PI-refractory (not IMiD-refractory) at later relapse -> IMiD-based with a mAb: DRd / DPd listed
    "state": {"classes": {"IMiD": "exposed", "PI": "refractory", "anti-CD38": "naive"}, "priorLines": 2},
    "setting": "later-relapse",
    "options_include": ["DRd", "DPd"],
    "preferred_exclude": ["Kd", "DKd", "DVd", "Vd", "IsaKd", "KPd"],
})
def r56() -> dict[str, Any]:
    p = b.Patient("rt56", birth="1963-03-03")
    p.myeloma(onset="2020-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2020-01-15", "2020-07-15")
    p.disease_status("2023-01-10")
    for txt in ("carfilzomib", "dexamethasone"):
        p.statement(b.rx(txt), "2023-01-20", "2026-09-01", status="stopped", reason_text="progressive disease")
    p.disease_status("2026-09-01")
    return p.cds_request()


@case("r57-pcl-aggressive-vdt-pace", {
    # §2 modifier: PCL -> aggressive cytotoxic approach (VDT-PACE) and restage
    "state": {"plasmaCellLeukemia": True},
    "options_include": ["VDT-PACE"],
    "notices_include": ["plasma-cell-leukemia"],
})
def r57() -> dict[str, Any]:
    p = _len_refractory("rt57")
    p.condition("C90.12", display="Plasma cell leukemia in relapse", onset="2026-09-03")
    return p.cds_request()


# ====================================================== 22. coding-system variants
def _dx_variant(pid: str, cond: dict[str, Any]) -> dict[str, Any]:
    p = b.Patient(pid, birth="1958-02-11")
    p.add({"resourceType": "Condition", **cond,
           "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "active"}]},
           "onsetDateTime": "2023-12-01"})
    p.statement(b.rx("lenalidomide"), "2024-01-10", None, status="active")
    p.statement(b.rx("dexamethasone"), "2024-01-10", None, status="active")
    p.disease_status("2026-09-03")
    return p.cds_request()


for _n, _cond in (
    # ICD-10-CM code without its dot, as many extracts carry it
    ("r58a-icd10cm-no-dot", {"code": {"coding": [{"system": b.ICD10, "code": "C9000"}]}}),
    # WHO ICD-10 (international EHRs): C90.0 Multiple myeloma (terminology.md §2a category C90.0)
    ("r58b-who-icd10-c900", {"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C90.0",
                                                  "display": "Multiple myeloma"}]}}),
    # Epic problem-list display with "(HCC)" and a local code only
    ("r58c-epic-text-hcc", {"code": {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.696871",
                                                 "code": "123456", "display": "Multiple myeloma (HCC)"}],
                                     "text": "Multiple myeloma not having achieved remission (HCC)"}}),
):
    CASES.append(Case(_n, (lambda n=_n, c=_cond: _dx_variant(n.split("-")[0], c)), copy.deepcopy(RD_REFRACTORY)))


_progression_variant("r59-mspike-local-lab-code", lambda p: [p.observation(
    {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.768282", "code": "1558", "display": "M-SPIKE"}],
     "text": "M-Spike"}, day, valueQuantity={"value": v, "unit": "gm/dL"})
    for day, v in (("2024-06-01", 0.4), ("2025-06-01", 0.4), ("2026-08-01", 1.1), ("2026-09-01", 1.3))],
    RD_REFRACTORY)


@case("r60-medication-reference-display-only", {
    # medicationReference that cannot be resolved but carries a display: read the display (issue 3:
    # "an unknown code falls back to its display/text")
    **copy.deepcopy(RD_REFRACTORY),
})
def r60() -> dict[str, Any]:
    p = b.Patient("rt60", birth="1958-02-11")
    p.myeloma(onset="2023-12-01")
    p.add({"resourceType": "MedicationStatement", "status": "active",
           "medicationReference": {"reference": "Medication/not-on-server-1", "display": "lenalidomide 10 mg capsule"},
           "effectivePeriod": {"start": "2024-01-10"}})
    p.add({"resourceType": "MedicationStatement", "status": "active",
           "medicationReference": {"display": "DEXAMETHASONE 4 MG TABLET"}, "effectivePeriod": {"start": "2024-01-10"}})
    p.disease_status("2026-09-03")
    return p.cds_request()


# ====================================================== 23. more line / progression stories
@case("r61-dara-added-to-rd-for-progression", {
    # Rd -> PD 2024-06 -> daratumumab ADDED (DRd): adding an agent for progression is a new line (§1);
    # PD 2026-09 on DRd -> 2 prior lines, daratumumab and lenalidomide refractory
    "state": {"priorLines": 2,
              "agents": {"lenalidomide": "refractory", "daratumumab": "refractory", "dexamethasone": "refractory"},
              "classes": {"IMiD": "refractory", "PI": "naive", "anti-CD38": "refractory"}},
    "setting": "later-relapse",
})
def r61() -> dict[str, Any]:
    p = _rd_story("rt61")
    p.disease_status("2024-06-01")
    d = "2024-06-15"
    while d < "2026-09-01":
        p.administration(b.rx("1721954"), when=d)
        d = add_days(d, 28)
    p.disease_status("2026-09-10")
    return p.cds_request()


@case("r62-c9002-updated-in-place-onset-is-diagnosis", {
    # one problem-list Condition re-coded to C90.02 'in relapse' (recorded 2026-09-03) that kept the
    # diagnosis date as onset: the patient is in relapse now (§1 Condition C90.02); Rd ongoing ->
    # lenalidomide refractory
    **copy.deepcopy(RD_REFRACTORY),
})
def r62() -> dict[str, Any]:
    p = b.Patient("rt62", birth="1958-02-11")
    p.condition("C90.02", display="Multiple myeloma in relapse", onset="2023-12-01", recorded="2026-09-03")
    p.statement(b.rx("lenalidomide"), "2024-01-10", None, status="active")
    p.statement(b.rx("dexamethasone"), "2024-01-10", None, status="active")
    return p.cds_request()


@case("r63-mprotein-nadir-resets-per-line", {
    # line 1 VRd nadir 0.2 g/dL; PD by M-protein 2024 (0.2 -> 1.0 -> 1.2); line 2 DPd from 2024-05: nadir 0.6
    # then 1.2 and 1.3 (+0.6 / +100 %) -> PD on line 2 (§1 IMWG from the nadir)
    "state": {"priorLines": 2,
              "agents": {"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "refractory",
                         "daratumumab": "refractory", "pomalidomide": "refractory"}},
    "setting": "later-relapse",
})
def r63() -> dict[str, Any]:
    p = b.Patient("rt63", birth="1961-01-01")
    p.myeloma(onset="2021-01-01")
    for txt in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2021-01-15", "2021-09-15")
    for day, v in (("2021-01-10", 3.0), ("2021-06-01", 0.4), ("2022-01-01", 0.2), ("2023-06-01", 0.2),
                   ("2024-03-01", 1.0), ("2024-04-15", 1.2), ("2024-09-01", 0.8), ("2025-03-01", 0.6),
                   ("2026-03-01", 0.6), ("2026-08-01", 1.2), ("2026-09-15", 1.3)):
        p.m_protein(day, v)
    for txt in ("1721954", "pomalidomide", "dexamethasone"):
        p.statement(b.rx(txt), "2024-05-01", None, status="active")
    return p.cds_request()


# ====================================================== 24. order-finding boundaries
def _len_stopped(pid: str, days_before_pd: int) -> b.Patient:
    p = b.Patient(pid, birth="1958-02-11")
    p.myeloma(onset="2023-12-01")
    stop = add_days("2026-09-03", -days_before_pd)
    p.statement(b.rx("lenalidomide"), "2024-01-10", stop, status="completed")
    p.statement(b.rx("dexamethasone"), "2024-01-10", stop, status="completed")
    p.disease_status("2026-09-03")
    p.ecog("2026-09-03", 1)
    return p


_LEN_DRAFTS = lambda pid: [D(pid, "d-len", b.rx("1429367")), D(pid, "d-dara", b.rx("1721954")),  # noqa: E731
                           D(pid, "d-dex", DEX), D(pid, "d-asa", b.text_cc("aspirin 81 mg"))]
# §1 / §3.1: 58 days -> refractory -> finding; 200 days (> 60 days and > 003's 6-month window) -> exposed,
# no refractory finding. (62 days - exposed by IMWG but inside 003's window - is not asserted: the service
# warns there, which follows 003's "as for lenalidomide-refractory"; CLINICAL_LOGIC does not settle it.)
order_case("o27-len-stopped-58-days-refractory-order", {
    "findings_include": [{"code": "refractory-agent-ordered", "agents": ["lenalidomide"],
                          "orders": ["MedicationRequest/d-len"]}]},
    hook="order-sign", patient=lambda pid: _len_stopped(pid, 58), drafts=_LEN_DRAFTS)
order_case("o28-len-stopped-200-days-no-refractory-order", {"findings_exclude": ["refractory-agent-ordered"]},
           hook="order-sign", patient=lambda pid: _len_stopped(pid, 200), drafts=_LEN_DRAFTS)

# §3.5 boundaries: Kd + daratumumab drafted together is a triplet; lenalidomide alone has no steroid
order_case("o29-kd-plus-dara-is-triplet", {"findings_exclude": ["doublet-when-triplet-tolerated"]},
           drafts=lambda pid: [D(pid, "d-cfz", b.rx("carfilzomib")), D(pid, "d-dex", DEX),
                               D(pid, "d-dara", b.rx("2375141")), D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])
order_case("o30-single-agent-no-steroid-not-doublet", {"findings_exclude": ["doublet-when-triplet-tolerated"]},
           patient=lambda pid: _vrd_then(pid),
           drafts=lambda pid: [D(pid, "d-len", b.rx("602910")), D(pid, "d-asa", b.text_cc("aspirin 81 mg"))])

# §3.6 FISH panel in a newly diagnosed, not relapsed patient: not "at relapse" -> no finding
order_case("o31-fish-panel-at-diagnosis-no-finding", {"findings_exclude": ["repeat-fish-primary-translocations"]},
           patient=lambda pid: (lambda p: (p.myeloma(onset="2026-10-01"), p)[1])(b.Patient(pid)),
           drafts=lambda pid: [{"resourceType": "ServiceRequest", "id": "d-fish", "status": "draft",
                                "intent": "order", "subject": {"reference": f"Patient/{pid}"},
                                "code": {"text": "FISH myeloma panel: t(4;14), t(14;16), t(11;14), del(17p), 1q"}}])


# §3.2 isatuximab after daratumumab stopped for toxicity (exposed, not refractory): no cross-resistance
def _dara_toxicity(pid: str) -> b.Patient:
    p = _vrd_then(pid)
    p.statement(b.rx("1721954"), "2021-01-15", "2021-02-15", status="stopped",
                reason_code=("407563006", "Treatment not tolerated"), reason_text="infusion reactions")
    return p


order_case("o32-isatuximab-after-dara-toxicity-only", {
    "findings_exclude": ["anti-cd38-cross-resistance", "anti-cd38-retreatment", "refractory-agent-ordered"]},
    patient=_dara_toxicity,
    drafts=lambda pid: [D(pid, "d-isa", b.atc_cc("isatuximab", text="isatuximab-irfc")),
                        D(pid, "d-cfz", b.rx("carfilzomib")), D(pid, "d-dex", DEX),
                        D(pid, "d-acv", b.text_cc("acyclovir 400 mg"))])

# §3.4 neuropathy resolved -> bortezomib IV is no neuropathy finding
order_case("o33-bortezomib-iv-neuropathy-resolved", {"findings_exclude": ["bortezomib-route-neuropathy"]},
           patient=lambda pid: _len_refractory(pid, extra=lambda p: p.add({
               "resourceType": "Condition", "code": {"text": "Peripheral neuropathy"},
               "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "resolved"}]},
               "onsetDateTime": "2022-01-01", "abatementDateTime": "2022-09-01"})),
           drafts=lambda pid: [D(pid, "d-btz", b.rx("1804997"), dosageInstruction=[{"route": {"text": "IV"}}]),
                               D(pid, "d-pom", b.rx("pomalidomide")), D(pid, "d-dex", DEX),
                               D(pid, "d-asa", b.text_cc("aspirin 81 mg")), D(pid, "d-acv", b.text_cc("acyclovir"))])


# ====================================================== 25. reference shapes, unrelated steroids
@case("r64-absolute-medication-reference", {
    **copy.deepcopy(RD_REFRACTORY),
})
def r64() -> dict[str, Any]:
    p = b.Patient("rt64", birth="1958-02-11")
    p.myeloma(onset="2023-12-01")
    rev = p.medication(code=b.rx("1429367"), mid="rev-abs-1")
    p.add({"resourceType": "MedicationStatement", "status": "active",
           "medicationReference": {"reference": "http://localhost/fhir/Medication/rev-abs-1"},
           "effectivePeriod": {"start": "2024-01-10"}})
    p.statement(b.rx("dexamethasone"), "2024-01-10", None, status="active")
    p.disease_status("2026-09-03")
    req = p.cds_request()
    # absolute references are not matched by the builder: include the Medication explicitly
    req["prefetch"]["medicationStatements"]["entry"].append(
        {"fullUrl": "http://localhost/fhir/Medication/rev-abs-1", "resource": rev, "search": {"mode": "include"}})
    return req


@case("r65-prednisone-for-pmr-years-before-not-myeloma-agent", {
    # prednisone for polymyalgia rheumatica 2019-2020 (reasonCode), 3 years before the myeloma: not a
    # myeloma exposure; the state lists only what myeloma therapy the patient received (CONTRACT agents)
    "state": {"priorLines": 1, "agents": {"lenalidomide": "refractory", "dexamethasone": "refractory"}},
    "setting": "first-relapse-len-refractory",
})
def r65() -> dict[str, Any]:
    p = _rd_story("rt65")
    p.statement(b.rx("prednisone", text="prednisone 10 mg tablet"), "2019-03-01", "2020-09-01", status="completed",
                reasonCode=[{"text": "Polymyalgia rheumatica"}])
    p.disease_status("2026-09-03")
    return p.cds_request()


# ====================================================== 26. more progression shapes
def _rd_requests_stopped(pid: str, reason: Any) -> dict[str, Any]:
    """Rd as monthly requests; the last lenalidomide order stopped with a statusReason ARRAY (wrong shape)."""
    p = b.Patient(pid, birth="1958-02-11")
    p.myeloma(onset="2023-12-01")
    s = "2024-01-10"
    while s < "2026-08-20":
        last = add_days(s, 28) >= "2026-08-20"
        p.request(b.rx("1429367"), s, status="stopped" if last else "completed", bounds=(s, add_days(s, 20)),
                  **({"statusReason": reason} if last else {}))
        p.request(b.rx("dexamethasone"), s, status="stopped" if last else "completed", bounds=(s, add_days(s, 20)))
        s = add_days(s, 28)
    return p.cds_request()


CASES.append(Case("r66a-request-statusreason-array", lambda: _rd_requests_stopped(
    "rt66a", [{"text": "Disease progression"}]), copy.deepcopy(RD_REFRACTORY)))


@case("r66b-admin-stopped-statusreason-progression", {
    "state": {"agents": {"carfilzomib": "refractory", "lenalidomide": "exposed", "dexamethasone": "exposed"},
              "priorLines": 1},
})
def r66b() -> dict[str, Any]:
    p = b.Patient("rt66b", birth="1958-02-11")
    p.myeloma(onset="2025-01-01")
    p.statement(b.rx("lenalidomide"), "2025-01-10", "2025-03-10", status="stopped",
                reason_code=("407563006", "Treatment not tolerated"))
    p.statement(b.rx("dexamethasone"), "2025-01-10", "2025-03-10", status="stopped")
    d = "2025-01-10"
    while d < "2026-08-25":
        p.administration(b.rx("1806942"), when=d)
        d = add_days(d, 14)
    p.administration(b.rx("1806942"), when="2026-08-25", status="stopped",
                     statusReason=[{"text": "Held - progressive disease per IMWG"}])
    return p.cds_request()


_progression_variant("r66c-disease-status-progressive-qualifier", lambda p: p.observation(
    # SNOMED 255314001 Progressive (terminology.md §2c, KIP-infrastructure IG qualifiers)
    {"coding": [{"system": b.LOINC, "code": "97509-4"}]}, "2026-09-03",
    valueCodeableConcept={"coding": [{"system": b.SNOMED, "code": "255314001", "display": "Progressive"}]}),
    RD_REFRACTORY)
_progression_variant("r66d-imwg-response-pd-text", lambda p: p.observation(
    {"text": "IMWG response"}, "2026-09-03", valueCodeableConcept={"text": "PD"}), RD_REFRACTORY)


@case("r67-extramedullary-text-only", {"state": {"extramedullary": True},
                                       "notices_include": ["extramedullary-disease"]})
def r67() -> dict[str, Any]:
    p = _len_refractory("rt67")
    p.add({"resourceType": "Condition", "code": {"text": "Extramedullary plasmacytoma of liver"},
           "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "active"}]},
           "onsetDateTime": "2026-09-05"})
    return p.cds_request()


# ====================================================== 27. regimen assembled late
@case("r68-dara-added-7-weeks-late-same-plan", {
    # Rd from 2024-01-10; daratumumab joins 2024-03-01 (insurance approval), no progression, no toxicity:
    # the plan did not change "because of progression, relapse or toxicity" (§1) -> still one line;
    # PD 2026-09 on DRd -> first relapse after anti-CD38-based frontline
    "state": {"priorLines": 1,
              "agents": {"lenalidomide": "refractory", "daratumumab": "refractory", "dexamethasone": "refractory"}},
    "setting": "first-relapse-after-anti-cd38",
})
def r68() -> dict[str, Any]:
    p = _rd_story("rt68")
    d = "2024-03-01"
    while d < "2026-09-01":
        p.administration(b.rx("1721954"), when=d)
        d = add_days(d, 28)
    p.disease_status("2026-09-10")
    return p.cds_request()


# ====================================================== 28. on line 3, responding
@case("r69-line3-ongoing-responding", {
    # VRd (PD on it) -> DKd (PD on it) -> IsaPd ongoing with falling M-protein: line-3 agents exposed
    # (no progression on them), line-1/2 agents refractory (§1). priorLines / setting not asserted:
    # CLINICAL_LOGIC does not say whether the current line counts as "prior".
    "state": {"agents": {"bortezomib": "refractory", "lenalidomide": "refractory", "dexamethasone": "exposed",
                         "daratumumab": "refractory", "carfilzomib": "refractory",
                         "isatuximab": "exposed", "pomalidomide": "exposed"},
              "classes": {"IMiD": "refractory", "PI": "refractory", "anti-CD38": "refractory"},
              "tripleClassRefractory": True},
})
def r69() -> dict[str, Any]:
    p = b.Patient("rt69", birth="1959-09-19")
    p.myeloma(onset="2020-01-01")
    for m in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(m), "2020-01-15", "2022-02-01", status="stopped", reason_text="PD")
    p.disease_status("2022-02-01")
    for m in ("1721954", "carfilzomib", "dexamethasone"):
        p.statement(b.rx(m), "2022-02-15", "2025-11-01", status="stopped", reason_text="PD")
    p.disease_status("2025-11-01")
    for m in (b.atc_cc("isatuximab", text="Sarclisa"), b.rx("pomalidomide"), b.rx("dexamethasone")):
        p.statement(m, "2025-11-15", None, status="active")
    for day, v in (("2025-11-01", 2.5), ("2026-01-01", 1.2), ("2026-04-01", 0.6), ("2026-08-01", 0.3),
                   ("2026-10-01", 0.3)):
        p.m_protein(day, v)
    return p.cds_request()


# ====================================================== 29. draft bundles in transaction shape
def o34() -> dict[str, Any]:
    p = _len_refractory("o34")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7f0d2c4e-1111-4d7e-9c55-0a1b2c3d4e5f",
         "resource": {"resourceType": "MedicationRequest", "status": "draft", "intent": "order",
                      "subject": {"reference": "Patient/o34"},
                      "medicationCodeableConcept": b.rx("1242233")},
         "request": {"method": "POST", "url": "MedicationRequest"}}]}
    return p.cds_request("order-sign", draft_bundle=bundle)


CASES.append(Case("o34-transaction-bundle-draft-without-id", o34, {
    # a draft without an id (transaction entry, urn:uuid fullUrl) is still checked (§3.1)
    "findings_include": [{"code": "refractory-agent-ordered", "agents": ["lenalidomide"]}]}))


# ====================================================== 30. odd medication shapes on the Rd story
def _rd_shape(pid: str, add_len: Callable[[b.Patient], Any]) -> dict[str, Any]:
    p = b.Patient(pid, birth="1958-02-11")
    p.myeloma(onset="2023-12-01")
    add_len(p)
    p.statement(b.rx("dexamethasone"), "2024-01-10", None, status="active")
    p.disease_status("2026-09-03")
    return p.cds_request()


def _timing_events(p: b.Patient) -> None:
    # one order per cycle whose dosing days are listed in timing.event (no boundsPeriod)
    s = "2024-01-10"
    while s < "2026-08-20":
        p.add({"resourceType": "MedicationRequest", "status": "completed", "intent": "order",
               "medicationCodeableConcept": b.rx("1429367"),
               "dosageInstruction": [{"timing": {"event": [add_days(s, i) for i in range(21)]}}]})
        s = add_days(s, 28)


def _admins_year_month(p: b.Patient) -> None:
    for m in range(1, 13):
        for y in (2024, 2025):
            p.administration(b.text_cc("lenalidomide 25 mg"), when=f"{y}-{m:02d}")
    for m in range(1, 9):
        p.administration(b.text_cc("lenalidomide 25 mg"), when=f"2026-{m:02d}")


for _n, _fn, _exp in (
    ("r70a-timing-event-dates", _timing_events, RD_REFRACTORY),
    ("r70b-admin-year-month-dates", _admins_year_month, RD_REFRACTORY),
    ("r70c-coding-display-only", lambda p: p.statement({"coding": [{"display": "LENALIDOMIDE 25 MG CAPSULE"}]},
                                                       "2024-01-10", None, status="active"), RD_REFRACTORY),
    # status unknown: the authoring system does not know the current state; the record still shows use
    ("r70d-status-unknown-with-period", lambda p: p.statement(b.rx("lenalidomide"), "2024-01-10", "2026-08-30",
                                                              status="unknown"), RD_REFRACTORY),
    # a statement known only by its end (taken until 4 days before PD): progression within 60 days of the
    # last dose -> refractory (§1); lines / setting not asserted (the start of that use is unknown)
    ("r70e-period-end-only-completed", lambda p: (
        p.statement(b.rx("lenalidomide"), "2024-01-10", "2024-12-31", status="completed"),
        p.statement(b.rx("lenalidomide"), None, "2026-08-30", status="completed")),
     {"state": {"agents": {"lenalidomide": "refractory", "dexamethasone": "refractory"}}}),
):
    CASES.append(Case(_n, (lambda n=_n, f=_fn: _rd_shape(n.split("-")[0], f)), copy.deepcopy(_exp)))


# ====================================================== 31. more option settings
@case("r71-first-relapse-len-sensitive-frail-80", {
    # §2 A: frail / indolent -> IRd (002); DRd stays the [1A] choice
    "state": {"frail": True},
    "setting": "first-relapse-len-sensitive",
    "options_include": ["IRd", "DRd"],
})
def r71() -> dict[str, Any]:
    p = _vrd_then("rt71", birth="1946-05-05")
    p.ecog("2026-09-20", 2, style="cc-text")
    return p.cds_request()


@case("r72-first-relapse-len-refractory-frail-ipd", {
    # §2 B: IPd (frail) [1C] listed; nothing lenalidomide-based preferred
    "state": {"frail": True},
    "setting": "first-relapse-len-refractory",
    "options_include": ["IPd", "PVd"],
    "avoid_include": ["DRd"],
})
def r72() -> dict[str, Any]:
    p = _len_refractory("rt72", extra=lambda p: p.ecog("2026-09-20", 3))
    return p.cds_request()


@case("r73-later-relapse-clinical-trial", {
    # §2 D: clinical trial first (003); preferred [1A] IsaPd / DKd when not refractory to their agents
    "state": {"priorLines": 2, "classes": {"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"}},
    "setting": "later-relapse",
    "options_include": ["clinical-trial"],
    "preferred_include": ["IsaPd", "DKd"],
    "notices_include": ["clinical-trial"],
})
def r73() -> dict[str, Any]:
    p = b.Patient("rt73", birth="1961-01-01")
    p.myeloma(onset="2018-01-01")
    for m in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(m), "2018-01-15", "2018-07-15")
    p.disease_status("2021-01-10")
    for m in ("ixazomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(m), "2021-01-20", "2022-01-20", status="stopped", reason_code=("407563006", "Treatment not tolerated"))
    p.disease_status("2026-09-10")
    p.ecog("2026-09-10", 1)
    return p.cds_request()


# ====================================================== 32. Epic quarterly prescriptions with refills
def _quarterly_rx(p: b.Patient) -> None:
    # one outpatient prescription every 12 weeks: 28-day supply + 2 refills (covers 84 days);
    # the latest (2026-06-xx) is still active; no boundsPeriod, no validityPeriod
    s = "2024-01-10"
    while s < "2026-09-01":
        nxt = add_days(s, 84)
        p.add({"resourceType": "MedicationRequest", "status": "active" if nxt >= "2026-09-01" else "completed",
               "intent": "order", "authoredOn": s, "medicationCodeableConcept": b.rx("1429367"),
               "courseOfTherapyType": {"coding": [{
                   "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                   "code": "continuous"}]},
               "dosageInstruction": [{"text": "20 mg PO daily days 1-21 of each 28-day cycle"}],
               "dispenseRequest": {"numberOfRepeatsAllowed": 2, "quantity": {"value": 21, "unit": "capsule"},
                                   "expectedSupplyDuration": {"value": 28, "unit": "days",
                                                              "system": "http://unitsofmeasure.org", "code": "d"}}})
        s = nxt


CASES.append(Case("r74-epic-quarterly-rx-with-refills", lambda: _rd_shape("rt74", _quarterly_rx), {
    # continuous Rd by 12-weekly prescriptions with refills is ONE line, and lenalidomide was being
    # taken when PD came (last Rx 2026-06-xx covers 84 days) -> refractory (§1)
    **copy.deepcopy(RD_REFRACTORY)}))


# ====================================================== 33. more quiet patients
def _quiet_other(pid: str, dx: str, meds: list[dict[str, Any]]) -> dict[str, Any]:
    p = b.Patient(pid, birth="1955-05-05")
    p.add({"resourceType": "Condition", "code": {"text": dx},
           "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "active"}]},
           "onsetDateTime": "2024-01-01"})
    for m in meds:
        p.statement(m, "2024-02-01", "2026-08-01", status="stopped", reason_text="progression")
    p.disease_status("2026-08-15")
    p.m_protein("2025-01-01", 0.5)
    p.m_protein("2026-08-01", 2.0)
    p.m_protein("2026-09-01", 2.4)
    return p.cds_request()


# non-myeloma diseases treated with myeloma drugs: no myeloma card (issue 3/4: patients without
# myeloma stay quiet), even with progression and a rising paraprotein
for _n, _dx, _meds in (
    ("r75a-waldenstrom-bortezomib-quiet", "Waldenstrom macroglobulinemia",
     [b.rx("bortezomib"), b.rx("dexamethasone"), b.text_cc("rituximab")]),
    ("r75b-mantle-cell-lymphoma-quiet", "Mantle cell lymphoma", [b.rx("bortezomib"), b.rx("lenalidomide")]),
    ("r75c-poems-lenalidomide-quiet", "POEMS syndrome", [b.rx("lenalidomide"), b.rx("dexamethasone")]),
    ("r75d-no-diagnosis-at-all-quiet", "Essential hypertension", [b.rx("lenalidomide"), b.rx("1721954")]),
):
    CASES.append(Case(_n, (lambda n=_n, d=_dx, m=_meds: _quiet_other(n.split("-")[0], d, m)), {"quiet": True}))


# ====================================================== 34. supportive care by brand names only
order_case("o36-supportive-brands-only-in-chart", {
    # Xarelto (rivaroxaban), Valtrex (valacyclovir), Zofran (ondansetron) active in the chart: IMiD, PI and
    # selinexor drafts need no supportive-care suggestion (§3.4)
    "findings_exclude": ["missing-thromboprophylaxis", "missing-zoster-prophylaxis", "missing-antiemetic"]},
    patient=lambda pid: _len_refractory(pid, extra=lambda p: [
        p.request(b.text_cc(t), "2026-09-20", status="active")
        for t in ("XARELTO 10 MG TABLET", "VALTREX 500 MG TABLET", "ZOFRAN 8 MG TABLET")]),
    drafts=lambda pid: [D(pid, "d-pom", b.rx("pomalidomide")), D(pid, "d-btz", b.rx("bortezomib"),
                                                                 dosageInstruction=[{"text": "1.3 mg/m2 SC"}]),
                        D(pid, "d-sel", b.text_cc("XPOVIO 100 MG weekly")), D(pid, "d-dex", DEX)])

order_case("o37-cipn-abbreviation-bortezomib-iv", {
    "findings_include": [{"code": "bortezomib-route-neuropathy", "agents": ["bortezomib"]}]},
    patient=lambda pid: _len_refractory(pid, extra=lambda p: p.add({
        "resourceType": "Condition", "code": {"text": "CIPN grade 2"},
        "clinicalStatus": {"coding": [{"system": b.COND_CLINICAL, "code": "active"}]},
        "onsetDateTime": "2025-06-01"})),
    drafts=lambda pid: [D(pid, "d-btz", b.rx("1804997"), dosageInstruction=[{"route": {"text": "intravenous"}}]),
                        D(pid, "d-pom", b.rx("pomalidomide")), D(pid, "d-dex", DEX)])


# ====================================================== 35. BCMA / GPRC5D agents
@case("r76-belantamab-elranatamab-talquetamab", {
    # CONTRACT agent vocabulary beyond the three classes: belantamab (ATC L01FX15) stopped for keratopathy
    # -> exposed; elranatamab (text) PD on it -> refractory; talquetamab (RxNorm 2644447, terminology.md §1)
    # ongoing, no PD on it -> exposed
    "state": {"agents": {"bortezomib": "refractory", "lenalidomide": "refractory", "daratumumab": "refractory",
                         "belantamab-mafodotin": "exposed", "elranatamab": "refractory", "talquetamab": "exposed",
                         "dexamethasone": "refractory"},
              "tripleClassRefractory": True},
})
def r76() -> dict[str, Any]:
    p = b.Patient("rt76", birth="1957-03-03")
    p.myeloma(onset="2019-01-01")
    for m in ("bortezomib", "lenalidomide", "1721954", "dexamethasone"):
        p.statement(b.rx(m), "2019-01-15", "2023-06-01", status="stopped", reason_text="PD")
    p.disease_status("2023-06-01")
    p.statement(b.atc_cc("belantamab", text="Blenrep"), "2023-06-15", "2023-12-01", status="stopped",
                reason_text="keratopathy (toxicity)")
    p.statement(b.text_cc("ELREXFIO (elranatamab-bcmm) 76 mg SC"), "2024-09-01", "2026-05-20", status="stopped",
                reason_text="progressive disease")
    p.disease_status("2026-05-20")
    p.statement(b.rx("talquetamab", display="talquetamab"), "2026-06-01", None, status="active")
    return p.cds_request()


# ====================================================== 36. no false nonresponse on maintenance
@case("r77-stable-mprotein-on-maintenance-not-refractory", {
    # VRd (3.0 -> 1.2 g/dL, PR) -> ASCT -> lenalidomide maintenance 2 years with M-protein stable at 1.1-1.2,
    # completed, no progression: maintenance holds a response; nothing refractory (§1), not relapsed
    "state": {"agents": {"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed",
                         "melphalan": "exposed"},
              "classes": {"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"}},
    "setting": "not-relapsed",
})
def r77() -> dict[str, Any]:
    p = b.Patient("rt77", birth="1965-05-05")
    p.myeloma(onset="2023-01-01")
    for m in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(m), "2023-01-15", "2023-05-15")
    p.administration(b.rx("melphalan"), when="2023-06-28")
    p.asct("2023-07-01")
    p.statement(b.rx("lenalidomide"), "2023-09-15", "2025-09-15", status="completed")
    for day, v in (("2023-01-10", 3.0), ("2023-05-10", 1.4), ("2023-08-20", 1.2), ("2024-01-10", 1.2),
                   ("2024-09-10", 1.1), ("2025-06-10", 1.2), ("2026-06-10", 1.2)):
        p.m_protein(day, v)
    return p.cds_request()


# ====================================================== 37. free light chain progression
def _flc_series(values: list[tuple[str, float, float]], unit: str = "mg/L",
                m_spike: float | None = None) -> Callable[[b.Patient], None]:
    def fn(p: b.Patient) -> None:
        for day, kappa, lam in values:
            # LOINC 36916-5 kappa free / 33944-0 lambda free (terminology.md §3a, verified)
            p.observation({"coding": [{"system": b.LOINC, "code": "36916-5"}]}, day,
                          valueQuantity={"value": kappa, "unit": unit, "system": "http://unitsofmeasure.org",
                                         "code": unit})
            p.observation({"coding": [{"system": b.LOINC, "code": "33944-0"}]}, day,
                          valueQuantity={"value": lam, "unit": unit, "system": "http://unitsofmeasure.org",
                                         "code": unit})
            if m_spike is not None:
                p.m_protein(day, m_spike)
    return fn


# light-chain myeloma (no measurable serum M-protein): dFLC 30 -> 390 -> 440 mg/L (> 10 mg/dL and >= 25 %)
# is IMWG progression (§1 "or the FLC / urine equivalents")
_progression_variant("r78a-flc-progression-light-chain", _flc_series(
    [("2024-06-01", 40, 10), ("2025-06-01", 40, 10), ("2026-08-01", 400, 10), ("2026-09-01", 450, 10)]),
    RD_REFRACTORY)
_progression_variant("r78b-flc-progression-mg-dl", _flc_series(
    [("2024-06-01", 4, 1), ("2025-06-01", 4, 1), ("2026-08-01", 40, 1), ("2026-09-01", 45, 1)], unit="mg/dL"),
    RD_REFRACTORY)
# measurable serum M-protein (1.5 g/dL, stable): the FLC criteria do not apply, nothing invented
_progression_variant("r78c-flc-rise-with-measurable-mspike", _flc_series(
    [("2024-06-01", 40, 10), ("2025-06-01", 40, 10), ("2026-08-01", 400, 10), ("2026-09-01", 450, 10)],
    m_spike=1.5), RD_NOT_RELAPSED)
# a single FLC spike that falls back is not confirmed
_progression_variant("r78d-flc-single-spike", _flc_series(
    [("2024-06-01", 40, 10), ("2025-06-01", 40, 10), ("2026-08-01", 400, 10), ("2026-09-01", 45, 10),
     ("2026-10-01", 42, 10)]), RD_NOT_RELAPSED)


# ============================================================================ runner
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from cds_service.app import create_app

    tmp: Path = tmp_path_factory.mktemp("redteam")
    app = create_app({"AUTH_MODE": "none", "AS_OF_DATE": AS_OF, "DATABASE_URL": f"sqlite:///{tmp / 's.sqlite3'}",
                      "DATA_DIR": str(tmp), "FHIR_TIMEOUT_S": 5})
    return app.test_client()


def run_case(client, c: Case, mode: str) -> tuple[str, list[dict[str, Any]]]:
    req = c.build()
    hook = req["hook"]
    service = SERVICE[req["hook"]]
    if mode == "prefetch":
        resp = client.post(f"/cds-services/{service}", json=req)
    else:
        resources = resources_from_prefetch(req.pop("prefetch"))
        with FhirTestServer(resources) as srv:
            req["fhirServer"] = srv.base_url
            resp = client.post(f"/cds-services/{service}", json=req)
            assert srv.request_count > 0
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    body = resp.get_json()
    assert_valid_response(body)
    return hook, body.get("cards", [])


@pytest.mark.parametrize("mode", ("prefetch", "fetch"))
@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_redteam(client, c: Case, mode: str) -> None:
    hook, cards = run_case(client, c, mode)
    ck = Checker()
    if hook == "patient-view":
        check_patient_view(ck, c.expect, cards)
    else:
        if c.expect.get("quiet"):
            ck.check("order findings", "quiet", cards == [], f"expected no cards, got {len(cards)}")
        check_order(ck, c.expect, cards)
        for code, indicator in (c.expect.get("indicators") or {}).items():
            got = [card.get("indicator") for card in cards
                   if (card.get("extension") or {}).get("org.mmcds.card", {}).get("code") == code]
            ck.check("order findings", f"indicator {code}", bool(got) and all(g == indicator for g in got),
                     f"want {indicator}, got {got}")
    assert not ck.failures, f"{c.name} ({mode}) {c.rule}\n  " + "\n  ".join(ck.failures)


def test_relapse_condition_recoded_in_place_is_dated_by_recorded_date() -> None:
    """Clinical core alone (the normaliser part is listed in KNOWN_ISSUES r62): a C90.02 entry whose
    onset is the diagnosis date but recorded after therapy began dates the relapse by recordedDate."""
    from datetime import date

    from cds_service.clinical.state import derive_state
    from cds_service.record.model import ConditionFact, MedicationUse, PatientRecord

    rec = PatientRecord(patient_id="u1", birth_date=date(1958, 2, 11))
    rec.conditions.append(ConditionFact(kind="multiple-myeloma", source="Condition/c1", onset=date(2023, 12, 1),
                                        relapse=True, recorded=date(2026, 9, 3)))
    for agent in ("lenalidomide", "dexamethasone"):
        rec.medications.append(MedicationUse(source=f"MedicationStatement/{agent}", kind="statement", display=agent,
                                             agent=agent, status="active", start=date(2024, 1, 10), ongoing=True))
    st = derive_state(rec, date(2026, 11, 1))
    assert st.relapsed and st.last_progression == date(2026, 9, 3)
    assert st.agents["lenalidomide"].status == "refractory"
    # without a recordedDate the onset (before therapy) cannot date a relapse: nothing is invented
    rec.conditions[0].recorded = None
    st = derive_state(rec, date(2026, 11, 1))
    assert not st.relapsed and st.agents["lenalidomide"].status == "exposed"


def test_state_summary_says_current_line_when_responding(client) -> None:
    """A patient already on the next line (no progression on it) is not 'relapsed after N lines, awaiting'."""
    c = next(c for c in CASES if c.name == "r69-line3-ongoing-responding")
    _hook, cards = run_case(client, c, "prefetch")
    state = [card for card in cards if card["extension"]["org.mmcds.card"]["kind"] == "state"]
    assert state and "on line 3 since 2025-11-15" in state[0]["summary"], state[0]["summary"] if state else cards



@pytest.mark.parametrize("mode", ("prefetch", "fetch"))
def test_institution_without_car_t(tmp_path: Path, mode: str) -> None:
    """CAR_T_AVAILABLE=false moves BCMA CAR-T to the if-unavailable tier (CONTRACT configuration); the
    evidence stays listed and nothing with a refractory agent becomes preferred."""
    from cds_service.app import create_app

    app = create_app({"AUTH_MODE": "none", "AS_OF_DATE": AS_OF, "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
                      "DATA_DIR": str(tmp_path), "CAR_T_AVAILABLE": False})
    c = next(c for c in CASES if c.name == "r54-tcr-options-car-t-and-notices")
    _hook, cards = run_case(app.test_client(), c, mode)
    opt = [card["extension"]["org.mmcds.card"] for card in cards
           if card["extension"]["org.mmcds.card"]["kind"] == "options"][0]
    tiers = {o["regimen"]: o["tier"] for o in opt["options"]}
    assert opt["setting"] == "triple-class-refractory"
    assert tiers.get("cilta-cel") == "if-unavailable" and tiers.get("ide-cel") == "if-unavailable", tiers
    assert "preferred" in tiers.values(), tiers


def test_draft_medication_reference_resolved_from_fhir_server(client) -> None:
    """A draft whose medicationReference points at a Medication only the EHR's FHIR server holds
    (not contained, not in the draft bundle): the service reads it from fhirServer (§3.1)."""
    p = _len_refractory("o35")
    rev = {"resourceType": "Medication", "id": "srv-rev-1", "code": b.rx("1429367")}
    req = p.cds_request("order-select", [D("o35", "d-len-srv", None,
                                          medicationReference={"reference": "Medication/srv-rev-1"})])
    resources = [*resources_from_prefetch(req.pop("prefetch")), rev]
    with FhirTestServer(resources) as srv:
        req["fhirServer"] = srv.base_url
        resp = client.post("/cds-services/mm-order-check", json=req)
    assert resp.status_code == 200
    body = resp.get_json()
    assert_valid_response(body)
    ck = Checker()
    check_order(ck, {"findings_include": [{"code": "refractory-agent-ordered", "agents": ["lenalidomide"],
                                           "orders": ["MedicationRequest/d-len-srv"]}]}, body["cards"])
    assert not ck.failures, ck.failures
