"""End to end: FHIR dicts → build_record → derive_state (→ state card).

Codes used here come from the issue text and mappings/ (each with its source there): SNOMED
109989006 multiple myeloma, ICD-10-CM C90.00/C90.02, LOINC 97509-4 disease status with SNOMED
271299001 "Patient's condition worsened", LOINC 33358-3 M-protein, LOINC 89247-1 ECOG, SNOMED
58776007 autologous transplant, SNOMED 266721009 no response / 407563006 not tolerated.
Drugs are given as text with brand names only, so no drug code is assumed here.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.clinical.state import derive_state
from cds_service.record.normalise import build_record
from cds_service.render.cards import EXTENSION_KEY
from cds_service.render.state_card import state_card
from tests.record_helpers import ICD10CM, LOINC, SNOMED, cc, knowledge

AS_OF = date(2026, 11, 1)
_n = iter(range(1, 10_000))


def patient(birth: str = "1958-03-02") -> dict:
    return {"resourceType": "Patient", "id": "p1", "birthDate": birth, "gender": "female"}


def myeloma(code: str = "C90.00", onset: str = "2019-12-01", status: str = "active") -> dict:
    return {
        "resourceType": "Condition",
        "id": f"c{next(_n)}",
        "clinicalStatus": cc(status, "http://terminology.hl7.org/CodeSystem/condition-clinical"),
        "code": cc(code, ICD10CM, "Multiple myeloma"),
        "onsetDateTime": onset,
    }


def request_cycles(
    text: str,
    start: str,
    n: int,
    every: int = 28,
    length: int = 21,
    last_status: str = "completed",
    reason: dict | None = None,
) -> list[dict]:
    """One MedicationRequest per cycle with a boundsPeriod, the way many EHRs store chemotherapy."""
    s = date.fromisoformat(start)
    out = []
    for i in range(n):
        cs = s + timedelta(days=i * every)
        res = {
            "resourceType": "MedicationRequest",
            "id": f"r{next(_n)}",
            "status": "completed" if i < n - 1 else last_status,
            "intent": "order",
            "medicationCodeableConcept": {"text": text},
            "authoredOn": cs.isoformat(),
            "dosageInstruction": [
                {
                    "timing": {
                        "repeat": {
                            "boundsPeriod": {
                                "start": cs.isoformat(),
                                "end": (cs + timedelta(days=length - 1)).isoformat(),
                            }
                        }
                    }
                }
            ],
        }
        if i == n - 1 and reason:
            res["statusReason"] = reason
        out.append(res)
    return out


def statement(
    text: str, start: str, end: str | None = None, status: str = "completed", reason: dict | None = None
) -> dict:
    res: dict = {
        "resourceType": "MedicationStatement",
        "id": f"s{next(_n)}",
        "status": status,
        "medicationCodeableConcept": {"text": text},
        "effectivePeriod": {"start": start, **({"end": end} if end else {})},
    }
    if reason:
        res["statusReason"] = [reason]
    return res


def worsened(day: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{next(_n)}",
        "status": "final",
        "code": cc("97509-4", LOINC, "Cancer disease status"),
        "effectiveDateTime": day,
        "valueCodeableConcept": cc("271299001", SNOMED, "Patient's condition worsened"),
    }


def m_protein(day: str, value: float) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{next(_n)}",
        "status": "final",
        "code": cc("33358-3", LOINC, "Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis"),
        "effectiveDateTime": day,
        "valueQuantity": {"value": value, "unit": "g/dL"},
    }


def ecog(day: str, value: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{next(_n)}",
        "status": "final",
        "code": cc("89247-1", LOINC, "ECOG Performance Status score"),
        "effectiveDateTime": day,
        "valueInteger": value,
    }


def asct(day: str) -> dict:
    return {
        "resourceType": "Procedure",
        "id": f"pr{next(_n)}",
        "status": "completed",
        "code": cc("58776007", SNOMED, "Autologous bone marrow transplant"),
        "performedDateTime": day,
    }


def fish_report(day: str, conclusion: str) -> dict:
    return {
        "resourceType": "DiagnosticReport",
        "id": f"dr{next(_n)}",
        "status": "final",
        "code": {"text": "Plasma cell myeloma FISH panel"},
        "effectiveDateTime": day,
        "conclusion": conclusion,
    }


NO_RESPONSE = cc("266721009", SNOMED, "No response to treatment")
NOT_TOLERATED = cc("407563006", SNOMED, "Treatment not tolerated")


def _state(resources: list[dict]):
    rec = build_record(resources, AS_OF, knowledge())
    return rec, derive_state(rec, AS_OF)


def test_drd_per_cycle_requests_then_progression_then_pvd():
    res = [patient(), myeloma(), ecog("2023-05-01", 1)]
    res += request_cycles("Revlimid 25 mg capsule", "2020-01-06", 40)
    res += request_cycles("DARZALEX 16 mg/kg IV", "2020-01-06", 40, length=1)
    res += request_cycles("dexamethasone 40 mg tablet", "2020-01-06", 40, length=1)
    end = date(2020, 1, 6) + timedelta(days=39 * 28)
    res.append(worsened((end + timedelta(days=10)).isoformat()))
    pvd_start = (end + timedelta(days=20)).isoformat()
    res += [
        statement("Pomalyst 4 mg capsule", pvd_start, status="active"),
        statement("Velcade 1.3 mg/m2 subcutaneous", pvd_start, status="active"),
    ]
    rec, st = _state(res)
    assert rec.has_myeloma
    assert st.prior_lines == 2, [ln.label for ln in st.lines]
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["daratumumab"].status == "refractory"
    assert st.agents["pomalidomide"].status == "exposed"
    assert st.frontline_anti_cd38 == "with-lenalidomide"
    assert st.classes == {"IMiD": "refractory", "PI": "exposed", "anti-CD38": "refractory"}
    assert st.frail is False and st.age == 68
    card = state_card(st, knowledge())
    assert card["extension"][EXTENSION_KEY]["state"]["priorLines"] == 2
    assert len(card["summary"]) < 140


def test_vrd_asct_len_maintenance_no_response_stop_and_fish_report():
    res = [patient("1962-07-01"), myeloma(onset="2018-02-01")]
    res += request_cycles("Velcade (bortezomib) 1.3 mg/m2 SC", "2018-03-01", 4, every=21, length=11)
    res += request_cycles("Revlimid 25 mg capsule", "2018-03-01", 4, every=21, length=14)
    res.append(asct("2018-07-20"))
    res.append(statement("Revlimid 10 mg capsule", "2018-10-01", "2021-06-15", status="stopped", reason=NO_RESPONSE))
    res += [
        statement("Kyprolis 56 mg/m2 IV", "2021-06-25", status="active"),
        statement("Pomalyst 4 mg capsule", "2021-06-25", status="active"),
    ]
    res.append(
        fish_report("2018-02-10", "TP53 (17p13.1) deletion DETECTED in 47% of nuclei; CCND1/IGH t(11;14) not detected")
    )
    rec, st = _state(res)
    assert st.prior_lines == 2, [ln.label for ln in st.lines]
    assert st.lines[0].includes_asct
    assert st.progressed_on_len_maintenance is True
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["bortezomib"].status == "exposed"
    assert st.transplant.prior_asct and st.transplant.months_asct_to_progression == 34
    assert st.transplant.salvage_asct == "discuss"
    assert st.cytogenetics.findings == ["del(17p)"] and st.cytogenetics.t11_14 is False
    assert st.cytogenetics.high_risk is True


def test_toxicity_stop_and_m_protein_progression():
    res = [patient(), myeloma()]
    res.append(statement("Velcade 1.3 mg/m2", "2021-01-10", "2021-04-01", status="stopped", reason=NOT_TOLERATED))
    res.append(statement("Revlimid 25 mg", "2021-01-10", "2022-08-01", status="stopped"))
    res.append(statement("Kyprolis 27 mg/m2", "2021-04-12", "2022-08-01", status="stopped"))
    res += [
        m_protein("2021-01-05", 3.2),
        m_protein("2021-09-01", 0.3),
        m_protein("2022-06-01", 0.9),
        m_protein("2022-07-01", 1.3),
    ]
    res.append(statement("Sarclisa 10 mg/kg IV", "2022-08-10", status="active"))
    res.append(statement("Pomalyst 4 mg", "2022-08-10", status="active"))
    rec, st = _state(res)
    assert st.prior_lines == 3, [ln.label for ln in st.lines]
    assert st.agents["bortezomib"].status == "exposed"
    assert st.agents["carfilzomib"].status == "refractory"
    assert st.agents["carfilzomib"].progression_date == date(2022, 6, 1)
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.double_refractory and not st.triple_class_refractory
    assert st.lines[0].ended_by == "toxicity"


def test_myeloma_in_remission_without_therapy_is_insufficient_data():
    rec, st = _state([patient(), myeloma("C90.01")])
    assert st.multiple_myeloma and st.insufficient_data and st.prior_lines == 0


def test_non_myeloma_patient_gets_no_myeloma_state():
    res = [
        patient(),
        {"resourceType": "Condition", "id": "x", "code": cc("C50.911", ICD10CM, "Breast cancer")},
        statement("Revlimid 10 mg", "2021-01-01", status="active"),
    ]
    rec, st = _state(res)
    assert st.multiple_myeloma is False


def test_synthea_patients_have_no_myeloma_state():
    from tests.record_helpers import synthea_patients

    groups = synthea_patients()
    assert groups
    for resources in groups.values():
        st = derive_state(build_record(resources, AS_OF, knowledge()), AS_OF)
        assert st.multiple_myeloma is False
        assert state_card(st, knowledge())["extension"][EXTENSION_KEY]["state"]["multipleMyeloma"] is False


def administrations(med_ref_text: str, days: list[date], contained: bool = False) -> list[dict]:
    """One MedicationAdministration per dose; optionally the drug as a contained Medication."""
    out = []
    for dd in days:
        res: dict = {
            "resourceType": "MedicationAdministration",
            "id": f"a{next(_n)}",
            "status": "completed",
            "effectiveDateTime": f"{dd.isoformat()}T10:00:00Z",
        }
        if contained:
            res["contained"] = [{"resourceType": "Medication", "id": "med1", "code": {"text": med_ref_text}}]
            res["medicationReference"] = {"reference": "#med1"}
        else:
            res["medicationCodeableConcept"] = {"text": med_ref_text}
        out.append(res)
    return out


def test_dara_administrations_dvmp_frontline_progression_by_relapse_condition():
    start = date(2019, 3, 4)
    dara_days = [start + timedelta(days=7 * i) for i in range(6)]
    dara_days += [dara_days[-1] + timedelta(days=21 * i) for i in range(1, 17)]
    dara_days += [dara_days[-1] + timedelta(days=28 * i) for i in range(1, 30)]
    bort_days = [start + timedelta(days=42 * c + d) for c in range(9) for d in (0, 7, 14, 21)]
    res = [patient("1946-05-05"), myeloma(onset="2019-02-15"), ecog("2019-03-01", 2)]
    res += administrations("Darzalex (daratumumab) 1800 mg SC", dara_days, contained=True)
    res += administrations("Velcade 1.3 mg/m2", bort_days)
    res.append(statement("Alkeran (melphalan) 9 mg/m2 tablets", "2019-03-04", "2020-01-10"))
    res.append(statement("prednisone 60 mg/m2", "2019-03-04", "2020-01-10"))
    relapse_day = dara_days[-1] + timedelta(days=10)
    res.append(myeloma("C90.02", onset=relapse_day.isoformat()))
    rec, st = _state(res)
    assert st.prior_lines == 1, [ln.label for ln in st.lines]
    assert st.frontline_anti_cd38 == "with-bortezomib-alkylator"
    assert st.agents["daratumumab"].status == "refractory"
    assert st.agents["bortezomib"].status == "exposed"
    assert st.agents["melphalan"].status == "exposed"
    assert "lenalidomide" not in st.agents
    assert st.relapsed and st.last_progression == relapse_day
    assert st.frail is True and st.over_75 is True
    assert st.transplant.prior_asct is False and st.transplant.salvage_asct == "not-recommended"
    assert st.progressed_on_len_maintenance is False
