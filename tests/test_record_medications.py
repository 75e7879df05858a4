"""Medicines in every shape an EHR sends them → MedicationUse (agent, dates, status, stop reason, route)."""

from __future__ import annotations

from datetime import date

import pytest
from record_helpers import ATC, RXNORM, SNOMED, cc, knowledge

from cds_service.record.drugs import resolve_drug
from cds_service.record.normalise import build_record

AS_OF = date(2026, 11, 1)


def record(*resources):
    return build_record(list(resources), AS_OF, knowledge())


def only(rec, agent=None):
    uses = [m for m in rec.medications if agent is None or m.agent == agent]
    assert len(uses) == 1, rec.medications
    return uses[0]


# ------------------------------------------------------------------ drug identification


@pytest.mark.parametrize(
    ("concept", "agents"),
    [
        (cc("342369", RXNORM, "lenalidomide"), ["lenalidomide"]),
        (cc("616114", RXNORM, "lenalidomide 10 MG Oral Capsule [Revlimid]"), ["lenalidomide"]),
        (cc("616114", RXNORM), ["lenalidomide"]),  # product code without display
        (cc("337535", RXNORM), ["lenalidomide"]),  # BN Revlimid
        (cc("1723735", RXNORM), ["ixazomib"]),  # the pitfall: not daratumumab
        (cc("1721947", RXNORM), ["daratumumab"]),
        (cc("2375141", RXNORM), ["daratumumab"]),  # Darzalex Faspro SBD
        (cc("2372199", RXNORM), ["daratumumab"]),
        (cc("402244", RXNORM), ["bortezomib"]),
        (cc("2619438", RXNORM), ["teclistamab"]),
        (cc("2644447", RXNORM), ["talquetamab"]),
        (cc("10432", RXNORM), ["thalidomide"]),
        (cc("10324", RXNORM), []),  # tamoxifen
        (cc("1601374", RXNORM), []),  # palbociclib
        (cc("L01XC24", ATC), ["daratumumab"]),  # pre-2022 ATC
        (cc("L01FC01", ATC), ["daratumumab"]),
        (cc("L01FC02", ATC), ["isatuximab"]),
        (cc("L01XC38", ATC), ["isatuximab"]),
        (cc("L01XL05", ATC), ["ciltacabtagene-autoleucel"]),
        (cc("L01XG02", None), ["carfilzomib"]),  # ATC without a system
        (cc("H02AB02", ATC, "dexamethasone"), ["dexamethasone"]),
        (cc("99999", "http://hospital.example/formulary", "REVLIMID 25MG CAP"), ["lenalidomide"]),
        (cc("X1", "urn:oid:1.2.3", None, "Pomalyst 4 mg"), ["pomalidomide"]),
        (cc("999999999", RXNORM, "Kyprolis 60 mg vial"), ["carfilzomib"]),  # unknown code → display
        (cc(text="Revlimid 10 mg capsule"), ["lenalidomide"]),
        (cc(text="DARZALEX 16 mg/kg IV"), ["daratumumab"]),
        (cc(text="Darzalex Faspro 1800 mg/30,000 units"), ["daratumumab"]),
        (cc(text="dara-hyaluronidase"), ["daratumumab"]),
        (cc(text="daratumumab and hyaluronidase-fihj"), ["daratumumab"]),
        (cc(text="Velcade SC"), ["bortezomib"]),
        (cc(text="SARCLISA 10 mg/kg"), ["isatuximab"]),
        (cc(text="Xpovio 100 mg weekly"), ["selinexor"]),
        (cc(text="Blenrep"), ["belantamab-mafodotin"]),
        (cc(text="Abecma infusion"), ["idecabtagene-vicleucel"]),
        (cc(text="CARVYKTI"), ["ciltacabtagene-autoleucel"]),
        (cc(text="Tecvayli step-up dose"), ["teclistamab"]),
        (cc(text="ELREXFIO"), ["elranatamab"]),
        (cc(text="Lynozyfic"), ["linvoseltamab"]),
        (cc(text="Venclexta 400 mg"), ["venetoclax"]),
        (cc(text="melphalan flufenamide"), ["melphalan-flufenamide"]),
        (cc(text="Melphalan 200 mg/m2 (high dose)"), ["melphalan"]),
        (cc(text="Cytoxan"), ["cyclophosphamide"]),
        (cc(text="Doxil"), ["doxorubicin"]),
        (cc(text="bortezomib + dexamethasone"), ["bortezomib", "dexamethasone"]),
        (cc(text="VRd"), []),  # regimen abbreviations are not guessed
        (cc(text="KRd cycle 3"), []),
        (cc(text="PACLitaxel 100 MG Injection"), []),
        (cc(text="Epoetin Alfa 4000 UNT/ML Injection [Epogen]"), []),
        (cc(text="dexamethasone 0.1% ophthalmic drops"), []),  # local steroid, not systemic
        (cc(text="budesonide inhalation"), []),
        (cc(text="revlimidx"), []),  # word boundaries
    ],
)
def test_resolve_drug(concept, agents):
    assert resolve_drug(concept, knowledge()).agents == agents


def test_resolve_drug_on_medication_resource_with_ingredients():
    med = {"resourceType": "Medication", "id": "m1", "code": {"text": "Study drug kit"},
           "ingredient": [{"itemCodeableConcept": cc("1302966", RXNORM, "carfilzomib")},
                          {"item": {"concept": cc(text="dexamethasone")}}]}
    assert resolve_drug(med, knowledge()).agents == ["carfilzomib", "dexamethasone"]


@pytest.mark.parametrize("bad", [None, 1, "x", [], {"coding": "nope"}, {"coding": [1, None, {"code": 5}]},
                                 {"text": ["a"]}, {"coding": [{"system": {}, "code": []}]}])
def test_resolve_drug_never_raises(bad):
    m = resolve_drug(bad, knowledge())
    assert m.agents == []


@pytest.mark.parametrize(
    ("text", "category"),
    [("Aspirin 81 MG Oral Tablet", "antithrombotic"), ("apixaban 2.5 mg", "antithrombotic"),
     ("Lovenox 40 mg SC", "antithrombotic"), ("valaciclovir 500 mg", "zoster-prophylaxis"),
     ("Acyclovir 400 mg BID", "zoster-prophylaxis"), ("ondansetron 8 mg", "antiemetic"),
     ("Akynzeo", "antiemetic"), ("Bactrim DS", "pjp-prophylaxis"),
     ("sulfamethoxazole-trimethoprim 800-160 mg", "pjp-prophylaxis"), ("co-trimoxazole", "pjp-prophylaxis"),
     ("atovaquone suspension", "pjp-prophylaxis"), ("lisinopril 10 MG", None),
     ("Heparin lock flush 100 units/mL", None), ("acyclovir 5% cream", None), ("enoxaparin 40 mg SC daily", "antithrombotic")],
)
def test_supportive_categories(text, category):
    m = resolve_drug(cc(text=text), knowledge())
    assert m.category == category
    assert m.agents == []


# ------------------------------------------------------------------ resource shapes


def test_medication_statement_period_and_status_reason_progression():
    rec = record({
        "resourceType": "MedicationStatement", "id": "s1", "status": "stopped",
        "medicationCodeableConcept": cc("342369", RXNORM, "lenalidomide"),
        "effectivePeriod": {"start": "2021-03-01", "end": "2023-04-15T10:00:00+02:00"},
        "statusReason": [cc("266721009", SNOMED, "No response to treatment (situation)")],
    })
    u = only(rec)
    assert (u.agent, u.kind, u.start, u.end, u.ongoing) == ("lenalidomide", "statement", date(2021, 3, 1),
                                                          date(2023, 4, 15), False)
    assert u.stop_reason == "progression" and "No response" in u.stop_reason_text
    assert u.source == "MedicationStatement/s1"
    assert [(p.kind, p.date, p.source) for p in rec.progressions] == [
        ("medication-status-reason", date(2023, 4, 15), "MedicationStatement/s1")]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [(cc("407563006", SNOMED), "toxicity"), (cc("281647001", SNOMED), "toxicity"),
     (cc("58848006", SNOMED), "progression"), (cc("182841002", SNOMED), "progression"),
     (cc("105480006", SNOMED, "Refusal of treatment by patient"), "other"),
     (cc(text="progressive disease"), "progression"), (cc(text="PD"), "progression"),
     (cc(text="relapse"), "progression"), (cc(text="lack of efficacy"), "progression"),
     (cc(text="grade 3 neuropathy"), "toxicity"), (cc(text="not tolerated"), "toxicity"),
     (cc(text="end of planned therapy"), "completed"), (cc(text="insurance denied"), "other"),
     (cc(text="something unusual"), "other")],
)
def test_stop_reasons(reason, expected):
    rec = record({"resourceType": "MedicationStatement", "id": "s", "status": "stopped",
                  "medicationCodeableConcept": cc(text="pomalidomide"),
                  "effectivePeriod": {"start": "2022-01-01", "end": "2022-06-01"}, "statusReason": reason})
    u = only(rec)
    assert u.stop_reason == expected
    assert bool(rec.progressions) == (expected == "progression")


def test_toxicity_is_not_progression_and_reason_code_naming_the_disease_is_no_stop_reason():
    rec = record(
        {"resourceType": "MedicationStatement", "id": "a", "status": "stopped",
         "medicationCodeableConcept": cc(text="bortezomib"), "effectivePeriod": {"start": "2022-01", "end": "2022-03"},
         "statusReason": [cc("407563006", SNOMED, "Treatment not tolerated")]},
        {"resourceType": "MedicationStatement", "id": "b", "status": "stopped",
         "medicationCodeableConcept": cc(text="lenalidomide"), "effectivePeriod": {"start": "2022-01-01", "end": "2022-03-01"},
         "reasonCode": [cc("109989006", SNOMED, "Multiple myeloma")]},
    )
    a = only(rec, "bortezomib")
    b = only(rec, "lenalidomide")
    assert a.stop_reason == "toxicity" and a.start == date(2022, 1, 1) and a.end == date(2022, 3, 31)
    assert b.stop_reason == "unknown"
    assert rec.progressions == []


def test_statement_active_is_ongoing_and_completed_is_completed():
    rec = record(
        {"resourceType": "MedicationStatement", "id": "a", "status": "active",
         "medicationCodeableConcept": cc(text="lenalidomide 10 mg"), "effectiveDateTime": "2024-05-02"},
        {"resourceType": "MedicationStatement", "id": "b", "status": "completed",
         "medicationCodeableConcept": cc(text="melphalan"), "effectiveDateTime": "2019-02-03T08:00:00"},
        {"resourceType": "MedicationStatement", "id": "c", "status": "entered-in-error",
         "medicationCodeableConcept": cc(text="carfilzomib")},
        {"resourceType": "MedicationStatement", "id": "d", "status": "on-hold",
         "medicationCodeableConcept": cc(text="ixazomib"), "effectivePeriod": {"start": "2025-01-01"}},
    )
    a, b, d = only(rec, "lenalidomide"), only(rec, "melphalan"), only(rec, "ixazomib")
    assert a.ongoing and a.end is None and a.start == date(2024, 5, 2)
    assert not b.ongoing and b.start == b.end == date(2019, 2, 3) and b.stop_reason == "completed"
    assert d.ongoing
    assert not [m for m in rec.medications if m.agent == "carfilzomib"]


def test_medication_request_per_cycle_bounds_period():
    cycles = [{
        "resourceType": "MedicationRequest", "id": f"c{i}", "status": "completed", "intent": "order",
        "medicationCodeableConcept": cc("1302966", RXNORM, "carfilzomib"),
        "authoredOn": f"2023-0{i}-01T09:00:00Z",
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": f"2023-0{i}-02", "end": f"2023-0{i}-16"}}},
                               "route": cc(display="Intravenous route")}],
    } for i in range(1, 4)]
    rec = record(*cycles)
    assert [(m.start, m.end, m.route, m.kind) for m in rec.medications] == [
        (date(2023, i, 2), date(2023, i, 16), "iv", "request") for i in range(1, 4)]
    assert all(m.stop_reason == "completed" for m in rec.medications)


def test_medication_request_statuses():
    def req(i, status, **extra):
        return {"resourceType": "MedicationRequest", "id": i, "status": status, "intent": "order",
                "medicationCodeableConcept": cc(text="daratumumab"), "authoredOn": "2024-01-10", **extra}

    rec = record(req("a", "active"), req("b", "stopped", statusReason=cc(text="disease progression")),
                 req("c", "cancelled"), req("d", "entered-in-error"), req("e", "draft"), req("f", "on-hold"),
                 req("g", "active", dosageInstruction=[{"timing": {"repeat": {"boundsPeriod": {
                     "start": "2024-01-10", "end": "2024-02-10"}}}}]))
    got = {m.source.split("/")[1]: m for m in rec.medications}
    assert set(got) == {"a", "b", "f", "g"}
    assert got["a"].ongoing and got["f"].ongoing
    assert not got["g"].ongoing and got["g"].end == date(2024, 2, 10)
    assert got["b"].stop_reason == "progression" and got["b"].end == date(2024, 1, 10)
    assert [p.source for p in rec.progressions] == ["MedicationRequest/b"]


def test_medication_administration_one_per_dose():
    doses = [{"resourceType": "MedicationAdministration", "id": f"d{i}", "status": "completed",
              "medicationCodeableConcept": cc(text="Velcade 1.3 mg/m2"),
              "effectiveDateTime": f"2022-05-{i:02d}T23:30:00-05:00",
              "dosage": {"route": {"text": "SUBQ"}, "dose": {"value": 2.1, "unit": "mg"}}} for i in (1, 4, 8, 11)]
    doses.append({"resourceType": "MedicationAdministration", "id": "x", "status": "not-done",
                  "medicationCodeableConcept": cc(text="Velcade"), "effectiveDateTime": "2022-05-15"})
    doses.append({"resourceType": "MedicationAdministration", "id": "p", "status": "completed",
                  "medicationCodeableConcept": cc(text="Darzalex"),
                  "effectivePeriod": {"start": "2022-05-01T09:00:00Z", "end": "2022-05-01T16:00:00Z"}})
    rec = record(*doses)
    vel = [m for m in rec.medications if m.agent == "bortezomib"]
    assert [m.start for m in vel] == [date(2022, 5, d) for d in (1, 4, 8, 11)]
    assert all(m.kind == "administration" and m.route == "sc" and m.end == m.start for m in vel)
    dara = only(rec, "daratumumab")
    assert dara.start == dara.end == date(2022, 5, 1)


def test_dstu2_medication_order():
    rec = record({"resourceType": "MedicationOrder", "id": "o1", "status": "stopped", "dateWritten": "2020-02-01",
                  "dateEnded": "2020-08-30", "reasonEnded": {"text": "Progressive disease"},
                  "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "358258"}]}})
    u = only(rec)
    assert (u.agent, u.start, u.end, u.stop_reason) == ("bortezomib", date(2020, 2, 1), date(2020, 8, 30), "progression")
    assert rec.progressions[0].date == date(2020, 8, 30)


def test_medication_references_contained_included_and_display():
    contained = {"resourceType": "MedicationRequest", "id": "r1", "status": "completed",
                 "contained": [{"resourceType": "Medication", "id": "med1", "code": cc("1369713", RXNORM)}],
                 "medicationReference": {"reference": "#med1"}, "authoredOn": "2023-01-01"}
    included = {"resourceType": "MedicationStatement", "id": "s1", "status": "completed",
                "medicationReference": {"reference": "Medication/abc"}, "effectiveDateTime": "2023-02-01"}
    full_url = {"resourceType": "MedicationStatement", "id": "s2", "status": "completed",
                "medicationReference": {"reference": "https://ehr.example/fhir/Medication/xyz/_history/2"},
                "effectiveDateTime": "2023-03-01"}
    urn = {"resourceType": "MedicationAdministration", "id": "a1", "status": "completed",
           "medicationReference": {"reference": "urn:uuid:6f1c"}, "effectiveDateTime": "2023-04-01"}
    dangling = {"resourceType": "MedicationStatement", "id": "s3", "status": "completed",
                "medicationReference": {"reference": "Medication/missing", "display": "Kyprolis 56 mg/m2"},
                "effectiveDateTime": "2023-05-01"}
    meds = [{"resourceType": "Medication", "id": "abc", "code": cc(text="Ninlaro 4 mg capsule")},
            {"resourceType": "Medication", "id": "xyz", "code": cc("L01FC02", ATC)},
            {"resourceType": "Medication", "id": "6f1c", "code": cc(text="elotuzumab")}]
    rec = record(contained, included, full_url, urn, dangling, *meds)
    got = {m.source: m.agent for m in rec.medications}
    assert got == {"MedicationRequest/r1": "pomalidomide", "MedicationStatement/s1": "ixazomib",
                   "MedicationStatement/s2": "isatuximab", "MedicationAdministration/a1": "elotuzumab",
                   "MedicationStatement/s3": "carfilzomib"}


def test_r5_codeable_reference():
    rec = record(
        {"resourceType": "MedicationStatement", "id": "a", "status": "recorded",
         "medication": {"concept": cc("342369", RXNORM)}, "effectivePeriod": {"start": "2023-01-01", "end": "2023-06-01"}},
        {"resourceType": "MedicationRequest", "id": "b", "status": "completed", "intent": "order",
         "medication": {"reference": {"reference": "Medication/m"}}, "authoredOn": "2023-07-01"},
        {"resourceType": "Medication", "id": "m", "code": cc(text="Darzalex")},
    )
    assert {m.source: m.agent for m in rec.medications} == {"MedicationStatement/a": "lenalidomide",
                                                            "MedicationRequest/b": "daratumumab"}


def test_duplicates_across_prefetch_keys_are_read_once():
    s = {"resourceType": "MedicationStatement", "id": "dup", "status": "completed",
         "medicationCodeableConcept": cc(text="thalidomide"), "effectiveDateTime": "2015-01-01"}
    rec = record(s, dict(s), {"resourceType": "Bundle", "entry": [{"resource": dict(s)}]})
    assert len(rec.medications) == 1


@pytest.mark.parametrize(
    ("dosage", "text", "route"),
    [({"route": {"coding": [{"display": "Subcutaneous route"}]}}, "bortezomib", "sc"),
     ({"route": {"text": "IV"}}, "bortezomib", "iv"), ({"route": {"text": "PO"}}, "dexamethasone", "oral"),
     ({"text": "1.3 mg/m2 subcut days 1,4,8,11"}, "bortezomib", "sc"), ({}, "Velcade SC", "sc"),
     ({}, "Darzalex Faspro", "sc"), ({}, "lenalidomide 10 mg capsule", "oral"), ({}, "bortezomib", None)],
)
def test_route(dosage, text, route):
    rec = record({"resourceType": "MedicationRequest", "id": "r", "status": "active", "intent": "order",
                  "medicationCodeableConcept": cc(text=text), "authoredOn": "2025-01-01", "dosageInstruction": [dosage]})
    assert rec.medications[0].route == route


@pytest.mark.parametrize(
    ("drug", "dosage", "high"),
    # dexamethasone: high-dose = >= 80 mg a week by its schedule (pulsed 40 mg days 1-4...), or written
    # as high-dose/pulse; the myeloma low-dose backbone, 40 mg once weekly, is not (supportive.yaml)
    [("dexamethasone", {"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg"}}]}, False),  # no schedule
     ("dexamethasone", {"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg"}}],
                        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}, True),  # 280 mg/wk
     ("dexamethasone", {"doseAndRate": [{"doseQuantity": {"value": 4, "unit": "mg"}}]}, False),
     ("dexamethasone", {"doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mg"}}],
                        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}, True),  # 140 mg/wk
     ("dexamethasone", {"doseAndRate": [{"doseQuantity": {"value": 8, "unit": "mg"}}],
                        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}, False),  # 56 mg/wk
     ("dexamethasone", {"text": "40 mg PO weekly"}, False),
     ("dexamethasone", {"text": "40 mg PO days 1-4, 9-12, 17-20"}, True),  # 120 mg/wk
     ("dexamethasone", {"text": "20 mg days 1, 2, 8, 9, 15, 16"}, False),  # Kd backbone, 30 mg/wk
     ("dexamethasone", {"text": "high-dose dexamethasone pulse"}, True),
     ("dexamethasone", {"text": "4 mg daily"}, False),
     ("prednisone", {"doseAndRate": [{"doseQuantity": {"value": 60, "unit": "mg"}}]}, True),
     ("prednisone", {"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]}, False),
     ("lenalidomide", {"doseAndRate": [{"doseQuantity": {"value": 25, "unit": "mg"}}]}, False)],
)
def test_high_dose_steroid(drug, dosage, high):
    rec = record({"resourceType": "MedicationRequest", "id": "r", "status": "active", "intent": "order",
                  "medicationCodeableConcept": cc(text=drug), "authoredOn": "2025-01-01", "dosageInstruction": [dosage]})
    assert rec.medications[0].high_dose_steroid is high


def test_unrelated_drugs_are_kept_without_agent_and_supportive_keep_category():
    rec = record(
        {"resourceType": "MedicationRequest", "id": "x", "status": "active", "intent": "order",
         "medicationCodeableConcept": cc("314076", RXNORM, "lisinopril 10 MG Oral Tablet"), "authoredOn": "2025-01-01"},
        {"resourceType": "MedicationStatement", "id": "y", "status": "active",
         "medicationCodeableConcept": cc(text="Aspirin 81 mg"), "effectivePeriod": {"start": "2025-01-01"}},
    )
    got = {m.source: (m.agent, m.category, m.ongoing) for m in rec.medications}
    assert got == {"MedicationRequest/x": (None, None, True), "MedicationStatement/y": (None, "antithrombotic", True)}


@pytest.mark.parametrize(("value", "expected"), [
    ("2023", date(2023, 1, 1)), ("2023-04", date(2023, 4, 1)), ("2023-04-05", date(2023, 4, 5)),
    ("2023-04-05T23:59:00-08:00", date(2023, 4, 5)), ("2023-04-05T01:00:00Z", date(2023, 4, 5)),
    ("2023-04-05T01:00:00", date(2023, 4, 5)), ("garbage", None), (20230405, None), ("2023-13-01", None)])
def test_dates(value, expected):
    rec = record({"resourceType": "MedicationStatement", "id": "s", "status": "active",
                  "medicationCodeableConcept": cc(text="selinexor"), "effectivePeriod": {"start": value}})
    assert rec.medications[0].start == expected


def test_dispense_procedure_r5_recorded_and_not_taken():
    rec = record(
        {"resourceType": "MedicationDispense", "id": "d", "status": "completed", "whenHandedOver": "2024-03-01",
         "daysSupply": {"value": 21}, "medicationCodeableConcept": cc(text="Revlimid 25 mg")},
        {"resourceType": "MedicationDispense", "id": "x", "status": "cancelled", "whenHandedOver": "2024-04-01",
         "medicationCodeableConcept": cc(text="Revlimid 25 mg")},
        {"resourceType": "Procedure", "id": "p", "status": "completed", "code": cc(text="CARVYKTI infusion"),
         "performedDateTime": "2025-06-01"},
        {"resourceType": "MedicationStatement", "id": "r5", "status": "recorded",
         "medication": {"concept": cc(text="pomalidomide")}, "effectivePeriod": {"start": "2026-01-01"}},
        {"resourceType": "MedicationStatement", "id": "n", "status": "completed", "taken": "n",
         "medicationCodeableConcept": cc(text="thalidomide"), "effectiveDateTime": "2010-01-01"},
    )
    got = {m.source: (m.agent, m.start, m.end, m.ongoing) for m in rec.medications}
    assert got == {
        "MedicationDispense/d": ("lenalidomide", date(2024, 3, 1), date(2024, 3, 21), False),
        "Procedure/p": ("ciltacabtagene-autoleucel", date(2025, 6, 1), date(2025, 6, 1), False),
        "MedicationStatement/r5": ("pomalidomide", date(2026, 1, 1), None, True),
    }


def test_a_completed_dose_is_not_a_completed_course():
    rec = record({"resourceType": "MedicationAdministration", "id": "a", "status": "completed",
                  "medicationCodeableConcept": cc(text="carfilzomib"), "effectiveDateTime": "2024-01-01"},
                 {"resourceType": "MedicationStatement", "id": "s", "status": "completed",
                  "medicationCodeableConcept": cc(text="carfilzomib"), "effectivePeriod": {"start": "2023-01-01", "end": "2023-06-01"}})
    assert {m.source: m.stop_reason for m in rec.medications} == {"MedicationAdministration/a": "unknown",
                                                                 "MedicationStatement/s": "completed"}


def test_stop_reason_in_note_of_a_stopped_statement():
    rec = record({"resourceType": "MedicationStatement", "id": "s", "status": "stopped",
                  "medicationCodeableConcept": cc(text="lenalidomide"), "effectivePeriod": {"start": "2020-01-01", "end": "2022-05-01"},
                  "note": [{"text": "Stopped for biochemical progression on maintenance"}]},
                 {"resourceType": "MedicationStatement", "id": "t", "status": "active",
                  "medicationCodeableConcept": cc(text="acyclovir"), "effectivePeriod": {"start": "2020-01-01"},
                  "note": [{"text": "prophylaxis against zoster infection"}]})
    got = {m.source: m.stop_reason for m in rec.medications}
    assert got == {"MedicationStatement/s": "progression", "MedicationStatement/t": "unknown"}


def test_oid_systems_route_codes_and_bounds_duration():
    rec = record({"resourceType": "MedicationRequest", "id": "r", "status": "completed", "intent": "order",
                  "medicationCodeableConcept": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.88", "code": "358258"}]},
                  "dosageInstruction": [{"route": {"coding": [{"system": SNOMED, "code": "34206005"}]},
                                         "timing": {"repeat": {"boundsPeriod": {"start": "2024-01-01"},
                                                               "boundsDuration": {"value": 3, "code": "wk"}}}}]},
                 {"resourceType": "MedicationRequest", "id": "s", "status": "active", "intent": "order",
                  "medicationCodeableConcept": cc(text="carfilzomib"), "authoredOn": "2026-10-01",
                  "dosageInstruction": [{"route": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
                                                               "code": "IV"}]}}]})
    got = {m.source: (m.agent, m.route, m.start, m.end) for m in rec.medications}
    assert got == {"MedicationRequest/r": ("bortezomib", "sc", date(2024, 1, 1), date(2024, 1, 21)),
                   "MedicationRequest/s": ("carfilzomib", "iv", date(2026, 10, 1), None)}


def test_reason_code_naming_the_relapse_treated_is_not_a_stop_for_progression():
    rec = record({"resourceType": "MedicationRequest", "id": "k", "status": "completed", "intent": "order",
                  "medicationCodeableConcept": cc(text="carfilzomib"), "authoredOn": "2024-01-01",
                  "reasonCode": [cc("C90.02", "http://hl7.org/fhir/sid/icd-10-cm", "Multiple myeloma in relapse")]},
                 {"resourceType": "MedicationRequest", "id": "p", "status": "active", "intent": "order",
                  "medicationCodeableConcept": cc(text="pomalidomide"), "authoredOn": "2026-10-01",
                  "reasonCode": [cc(text="progressive disease on lenalidomide")]},
                 {"resourceType": "MedicationStatement", "id": "s", "status": "stopped",
                  "medicationCodeableConcept": cc(text="ixazomib"), "effectivePeriod": {"start": "2023-01-01", "end": "2023-09-01"},
                  "reasonCode": [cc(text="disease progression")]})
    got = {m.source: m.stop_reason for m in rec.medications}
    assert got == {"MedicationRequest/k": "completed", "MedicationRequest/p": "unknown", "MedicationStatement/s": "progression"}
    assert [p.source for p in rec.progressions] == ["MedicationStatement/s"]


def test_termination_reason_extension():
    rec = record({"resourceType": "MedicationStatement", "id": "s", "status": "stopped",
                  "medicationCodeableConcept": cc(text="daratumumab"), "effectivePeriod": {"start": "2022-01-01", "end": "2023-01-01"},
                  "extension": [{"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-treatment-termination-reason",
                                 "valueCodeableConcept": cc("266721009", SNOMED)}]})
    assert rec.medications[0].stop_reason == "progression"
