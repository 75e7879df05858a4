"""The ten Synthea patients (no myeloma): quiet, correct and fast records."""

from __future__ import annotations

from datetime import date

import pytest
from record_helpers import knowledge, synthea_patients

from cds_service.record.normalise import build_record

AS_OF = date(2026, 11, 21)


@pytest.fixture(scope="module")
def patients():
    groups = synthea_patients()
    assert len([k for k in groups if k.startswith("Patient/")]) >= 10
    return groups


def test_no_synthea_patient_has_myeloma_or_a_misread_agent(patients):
    seen_agents: set[str] = set()
    for resources in patients.values():
        rec = build_record(resources, AS_OF, knowledge())
        assert rec.has_myeloma is False
        assert rec.progressions == [] and rec.cytogenetics == [] and rec.m_protein == []
        assert not [c for c in rec.conditions if c.kind in ("smoldering", "mgus", "plasma-cell-leukemia")]
        for m in rec.medications:
            if m.agent:
                seen_agents.add(m.agent)
                # the only catalog agent Synthea prescribes is cisplatin (lung cancer module), by its own name
                assert m.agent == "cisplatin" and "cisplatin" in m.display.lower(), m
        assert not [n for n in rec.notes if "could not be read" in n]
    assert seen_agents <= {"cisplatin"}


def test_synthea_chemo_and_common_drugs_are_not_mis_mapped(patients):
    everything = [r for rs in patients.values() for r in rs]
    rec = build_record(everything, AS_OF, knowledge())
    by_display = {m.display: (m.agent, m.category) for m in rec.medications}
    assert by_display["PACLitaxel 100 MG Injection"] == (None, None)
    assert by_display["1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]"] == (None, None)
    assert by_display["budesonide 0.25 MG/ML Inhalation Suspension"] == (None, None)
    assert by_display["Cisplatin 50 MG Injection"] == ("cisplatin", None)
    assert by_display["Aspirin 81 MG Oral Tablet"] == (None, "antithrombotic")
    assert not rec.transplants  # no hematocrit "HCT" or kidney transplant read as a stem-cell transplant


def test_doubled_record_reads_twice_the_resources(patients):
    """Speed and linear growth are measured in bench/ (growth by record size); here only that a record
    twice as long is read completely, with nothing dropped or merged away."""
    biggest = max(patients.values(), key=len)
    single = build_record(biggest, AS_OF, knowledge())
    doubled = [dict(r, id=f"{r.get('id')}-copy") for r in biggest] + biggest
    twice = build_record(doubled, AS_OF, knowledge())
    assert len(twice.medications) == 2 * len(single.medications)
    assert len(twice.conditions) == 2 * len(single.conditions)
