"""End to end (FHIR → record → state → state card / notices): IMS/IMWG 2025 high risk and IMWG
free-light-chain / urine progression, each built in at least two real-world encodings.

Codes (with the source beside the mapping in mappings/observations.yaml): LOINC 36916-5 / 33944-0
free κ / λ, 1952-1 β2-microglobulin, 2160-0 / 14682-9 creatinine, 69548-6 variant, 81258-6 allelic
frequency; SNOMED 426329006 FISH. Local codes carry only a wording, as many lab systems send them.
"""

from __future__ import annotations

from datetime import date

import pytest
from record_helpers import ICD10CM, LOINC, SNOMED, cc, knowledge

from cds_service.clinical.notices import decide_notices
from cds_service.clinical.options import rules_for
from cds_service.clinical.state import derive_state
from cds_service.knowledge.loader import default_knowledge
from cds_service.record.normalise import build_record
from cds_service.render.cards import EXTENSION_KEY
from cds_service.render.patient_view import notice_card
from cds_service.render.state_card import state_card

AS_OF = date(2026, 11, 1)
LOCAL = "urn:oid:1.2.3.4.5.lab"
_n = iter(range(1, 100_000))


def base(first_line_end: str | None = "2025-12-01") -> list[dict]:
    """Myeloma since 2024, one line of VRd (fixed duration), fit, 60 years old."""
    res: list[dict] = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1966-01-01", "gender": "male"},
        {"resourceType": "Condition", "id": "mm", "code": cc("C90.00", ICD10CM, "Multiple myeloma"),
         "clinicalStatus": cc("active", "http://terminology.hl7.org/CodeSystem/condition-clinical"),
         "onsetDateTime": "2024-01-05"},
        {"resourceType": "Observation", "id": "ecog", "status": "final", "code": cc("89247-1", LOINC, "ECOG"),
         "effectiveDateTime": "2026-06-01", "valueInteger": 1},
    ]
    for drug in ("Velcade (bortezomib)", "Revlimid (lenalidomide)", "dexamethasone"):
        res.append({"resourceType": "MedicationStatement", "id": f"m{next(_n)}", "status": "completed",
                    "medicationCodeableConcept": {"text": drug},
                    "effectivePeriod": {"start": "2024-02-01", "end": first_line_end}})
    return res


def obs(code: dict, day: str, **value) -> dict:
    return {"resourceType": "Observation", "id": f"o{next(_n)}", "status": "final", "code": code,
            "effectiveDateTime": day, **value}


def run(resources: list[dict]):
    rec = build_record(resources, AS_OF, knowledge())
    st = derive_state(rec, AS_OF)
    card = state_card(st, knowledge())
    return rec, st, card


# --- FISH encodings ------------------------------------------------------------------------------

def variant(iscn: str, present: bool, fraction: float | None = None) -> dict:
    comps = [{"code": cc("81291-7", LOINC), "valueCodeableConcept": {"text": iscn}}]
    if fraction is not None:
        comps.append({"code": cc("81258-6", LOINC), "valueQuantity": {"value": fraction, "unit": "%", "code": "%"}})
    return obs(cc("69548-6", LOINC, "Genetic variant assessment"), "2024-01-10", method=cc("426329006", SNOMED),
               component=comps, valueCodeableConcept=cc("LA9633-4" if present else "LA9634-2", LOINC))


def narrative(text: str) -> dict:
    return {"resourceType": "DiagnosticReport", "id": f"r{next(_n)}", "status": "final",
            "code": cc(text="Plasma cell FISH panel"), "effectiveDateTime": "2024-01-10", "conclusion": text}


def lab_text(text: str) -> dict:
    return obs(cc("FISH-MM", LOCAL, "Myeloma FISH panel"), "2024-01-10", valueString=text)


FISH_CASES = {
    # name: (coded variants, free text, expected highRisk, words on the card)
    "t(4;14) alone": ([variant("t(4;14)(p16;q32)", True), variant("+1q", False), variant("del(17)(p13.1)", False)],
                      "IGH/FGFR3 t(4;14) detected. 1q21 gain and TP53 deletion not detected.", False,
                      "without 1q gain or del(1p32): not high risk"),
    "1q gain alone": ([variant("+1q", True), variant("del(17)(p13.1)", False), variant("t(4;14)(p16;q32)", False)],
                      "1q21 (CKS1B) gain detected in 40% of nuclei; TP53 deletion, t(4;14) not detected", False,
                      "1q gain alone: not high risk"),
    "t(4;14) with 1q gain": ([variant("t(4;14)(p16;q32)", True), variant("+1q", True)],
                             "Positive for IGH/FGFR3 t(4;14) and 1q21 gain", True, "t(4;14) with 1q gain"),
    "del(17p) 45 %": ([variant("del(17)(p13.1)", True, 45)], "TP53 (17p13.1) deletion detected in 45% of plasma cells",
                      True, "del(17p) in 45 % of plasma cells"),
    "del(17p) 12 %": ([variant("del(17)(p13.1)", True, 12)], "TP53 (17p13.1) deletion detected in 12% of plasma cells",
                      False, "below 20 %, not high risk by itself"),
    "del(17p) size unknown": ([variant("del(17)(p13.1)", True)], "TP53 deletion: DETECTED", True,
                              "clone size not reported"),
    "negated list": ([variant("del(17)(p13.1)", False), variant("t(4;14)(p16;q32)", False), variant("+1q", False)],
                     "TP53 deletion, 1q21 gain, t(4;14), t(14;16) … not detected", False, "Not high risk"),
}


@pytest.mark.parametrize("name", sorted(FISH_CASES))
@pytest.mark.parametrize("encoding", ["coded-variant", "diagnostic-report", "observation-text"])
def test_ims_imwg_2025_high_risk_on_the_card(name, encoding):
    coded, text, high, words = FISH_CASES[name]
    fish = coded if encoding == "coded-variant" else [narrative(text) if encoding == "diagnostic-report" else lab_text(text)]
    _, st, card = run(base() + fish)
    cyto = card["extension"][EXTENSION_KEY]["state"]["cytogenetics"]
    assert cyto["highRisk"] is high and cyto["riskDefinition"] == "IMS-IMWG-2025"
    assert "IMS/IMWG 2025" in card["detail"] and words in card["detail"]
    notices = [n.code for n in decide_notices(st, knowledge_with_cards())]
    assert ("high-risk-cytogenetics" in notices) is high
    if name == "negated list":
        assert cyto["findings"] == []


def test_high_risk_notice_names_what_met_the_definition():
    _, st, _ = run(base() + [variant("del(17)(p13.1)", True, 45), variant("t(14;16)(q32;q23)", True),
                             variant("+1q", True)])
    k = knowledge_with_cards()
    (notice,) = [n for n in decide_notices(st, k) if n.code == "high-risk-cytogenetics"]
    card = notice_card(notice, rules_for(k))
    assert card is not None and len(card["summary"]) < 140
    assert "del(17p) in 45 %" in card["summary"]
    assert "del(17p) in 45 % of plasma cells; t(14;16) with 1q gain" in card["detail"]


# --- beta-2-microglobulin ------------------------------------------------------------------------

B2M_ENCODINGS = {
    "loinc-mg-l": lambda v, c: [obs(cc("1952-1", LOINC, "Beta-2-Microglobulin"), "2026-09-01",
                                    valueQuantity={"value": v, "unit": "mg/L", "code": "mg/L"}),
                                obs(cc("2160-0", LOINC, "Creatinine"), "2026-09-02",
                                    valueQuantity={"value": c, "unit": "mg/dL", "code": "mg/dL"})],
    "local-ug-ml-umol": lambda v, c: [obs(cc("B2MG", LOCAL, "Beta 2 Microglobulin, serum"), "2026-09-01",
                                          valueQuantity={"value": v, "unit": "µg/mL"}),
                                      obs(cc("CREA", LOCAL, "Creatinine, serum"), "2026-09-01",
                                          valueQuantity={"value": round(c * 88.4), "unit": "µmol/L"})],
    "loinc-moles-mg-dl": lambda v, c: [obs(cc("1952-1", LOINC), "2026-09-01",
                                           valueQuantity={"value": v / 10, "unit": "mg/dL"}),
                                       obs(cc("14682-9", LOINC, "Creatinine [Moles/volume] in Serum or Plasma"),
                                           "2026-08-20", valueQuantity={"value": round(c * 88.4), "unit": "umol/L"})],
}


@pytest.mark.parametrize("encoding", sorted(B2M_ENCODINGS))
def test_beta2_microglobulin_with_normal_creatinine_is_high_risk(encoding):
    negative_fish = [variant("del(17)(p13.1)", False), variant("t(4;14)(p16;q32)", False)]
    rec, st, card = run(base() + negative_fish + B2M_ENCODINGS[encoding](6.2, 0.9))
    assert [round(v.value, 1) for v in rec.b2m] == [6.2] and round(rec.creatinine[0].value, 1) == 0.9
    assert st.cytogenetics.high_risk is True
    assert "β2-microglobulin 6.2 mg/L" in card["detail"] and "creatinine 0.9 mg/dL" in card["detail"]
    _, st, card = run(base() + negative_fish + B2M_ENCODINGS[encoding](6.2, 1.8))
    assert st.cytogenetics.high_risk is False and "renal impairment" in card["detail"]


def test_urine_creatinine_and_clearance_are_not_serum_creatinine():
    rec, _, _ = run(base() + [obs(cc("X1", LOCAL, "Creatinine, 24h urine"), "2026-09-01",
                                  valueQuantity={"value": 1.1, "unit": "g/24h"}),
                              obs(cc("X2", LOCAL, "Creatinine clearance"), "2026-09-01",
                                  valueQuantity={"value": 80, "unit": "mL/min"}),
                              obs(cc("X3", LOCAL, "Kappa/Lambda free light chain ratio"), "2026-09-01",
                                  valueQuantity={"value": 12.0})])
    assert rec.creatinine == [] and rec.flc == []


# --- free light chains ------------------------------------------------------------------------

def flc(chain: str, day: str, value: float, encoding: str) -> dict:
    if encoding == "loinc-mg-l":
        code = cc("36916-5" if chain == "kappa" else "33944-0", LOINC)
        return obs(code, day, valueQuantity={"value": value, "unit": "mg/L", "code": "mg/L"})
    text = "Free Kappa Light Chains, serum" if chain == "kappa" else "Free Lambda Light Chains, serum"
    return obs(cc(f"FLC-{chain[0].upper()}", LOCAL, text), day, valueQuantity={"value": value / 10, "unit": "mg/dL"})


KAPPA_SERIES = [("2024-01-10", 900.0), ("2025-03-01", 25.0), ("2026-03-01", 30.0), ("2026-08-03", 450.0),
                ("2026-09-07", 620.0)]


@pytest.mark.parametrize("encoding", ["loinc-mg-l", "local-mg-dl"])
def test_light_chain_myeloma_progressing_by_kappa_with_lambda_is_relapse(encoding):
    labs = [flc("kappa", d, v, encoding) for d, v in KAPPA_SERIES] + [
        flc("lambda", d, 12.0, encoding) for d, _ in KAPPA_SERIES]
    rec, st, card = run(base() + labs)
    assert len(rec.flc) == 10 and all(v.unit == "mg/L" for v in rec.flc)
    assert st.relapsed and st.last_progression == date(2026, 8, 3)
    assert st.agents["lenalidomide"].status == "exposed"  # progression > 60 days after the last dose
    assert any(e.kind == "flc" and "kappa involved" in e.detail for e in st.progression_events)
    assert not card["summary"].startswith("Myeloma after 1 line, not relapsed")
    assert not any("free light chain results without" in m for m in st.missing)


@pytest.mark.parametrize("encoding", ["loinc-mg-l", "local-mg-dl"])
def test_kappa_without_lambda_says_flc_progression_cannot_be_judged(encoding):
    rec, st, card = run(base() + [flc("kappa", d, v, encoding) for d, v in KAPPA_SERIES])
    assert len(rec.flc) == 5
    assert not st.relapsed  # nothing invented ...
    msg = [m for m in st.missing if "κ free light chain" in m]
    assert msg and "no λ result" in msg[0] and "dFLC" in msg[0] and "cannot be judged" in msg[0]
    assert "rose from 25 mg/L (2025-03-01) to 450 mg/L (2026-08-03)" in msg[0]
    assert "no λ result" in card["detail"]  # ... and the card says why progression was not judged


def test_lambda_myeloma_is_judged_on_lambda_even_when_baseline_was_in_remission():
    series = [("2024-06-01", 10.0, 15.0), ("2025-01-01", 11.0, 30.0), ("2025-06-01", 12.0, 14.0),
              ("2026-08-01", 12.0, 380.0), ("2026-09-01", 12.0, 520.0)]
    labs = []
    for d, k, lam in series:
        labs += [flc("kappa", d, k, "loinc-mg-l"), flc("lambda", d, lam, "loinc-mg-l")]
    _, st, _ = run(base() + labs)
    assert st.relapsed and st.last_progression == date(2026, 8, 1)


def test_flc_rise_below_10_mg_dl_is_not_progression():
    labs = []
    for d, k in (("2025-03-01", 40.0), ("2026-06-01", 90.0), ("2026-09-01", 120.0)):
        labs += [flc("kappa", d, k, "local-mg-dl"), flc("lambda", d, 10.0, "local-mg-dl")]
    _, st, _ = run(base() + labs)
    assert not st.relapsed


# --- urine M-protein -----------------------------------------------------------------------------

@pytest.mark.parametrize(("unit", "scale"), [("mg/24h", 1.0), ("g/(24.h)", 0.001)])
def test_urine_m_protein_progression(unit, scale):
    series = [("2024-01-10", 1800.0), ("2025-03-01", 80.0), ("2026-08-01", 420.0), ("2026-09-01", 500.0)]
    labs = [obs(cc("UPEP-M", LOCAL, "M-protein, 24h urine"), d, valueQuantity={"value": v * scale, "unit": unit})
            for d, v in series]
    rec, st, _ = run(base() + labs)
    assert [round(v.value) for v in rec.urine_m_protein] == [1800, 80, 420, 500]
    assert st.relapsed and st.last_progression == date(2026, 8, 1)
    # +150 mg/24 h is below the IMWG 200 mg/24 h: no progression
    small = [obs(cc("UPEP-M", LOCAL, "Urine monoclonal protein (24 hour)"), d, valueQuantity={"value": v, "unit": "mg/24h"})
             for d, v in (("2025-03-01", 80.0), ("2026-08-01", 230.0), ("2026-09-01", 235.0))]
    _, st, _ = run(base() + small)
    assert not st.relapsed


def knowledge_with_cards():
    return default_knowledge()
