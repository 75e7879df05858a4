"""Clinician wording helpers: internal source ids named as clinicians name them, chart ids removed,
sources named by trial, author, journal and year, markdown that renders as meant, details that fit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cds_service.render.text import (
    MAX_DETAIL,
    card_source,
    clinician_text,
    fit,
    opens_work,
    paragraphs,
    similar,
    source_name,
    strip_chart_refs,
    unique,
)


def test_seed_ids_become_names_or_disappear():
    assert clinician_text("PVd — 003 [1A]") == "PVd — IMWG 2021 grade 1A"
    assert clinician_text("003: panobinostat may revert resistance") == "IMWG 2021: panobinostat may revert resistance"
    assert clinician_text("at least two drugs (002).") == "at least two drugs."
    assert clinician_text("Median OS 5.6 months (003); CAR-T (000).") == "Median OS 5.6 months (IMWG 2021); CAR-T."
    assert "001_" not in clinician_text("see [001_5505241550038fcf.txt] here")
    assert clinician_text("Lancet. 2021 (seed 001 ref 15)") == "Lancet. 2021"
    assert clinician_text("Seed 002: ≥ 18 months") == "≥ 18 months"
    # names that merely contain the digits are left alone
    assert clinician_text("MM-003 trial, 2003-01-01") == "MM-003 trial, 2003-01-01"


def test_chart_references_are_removed_with_their_brackets():
    assert strip_chart_refs("last dose 2024-01-01 (chart: MedicationRequest/a1, Observation/b-2)") == "last dose 2024-01-01"
    assert strip_chart_refs("progression (Observation/p1) on 2024") == "progression on 2024"


def test_source_names_are_what_clinicians_say():
    ikema = {"seed": "001_5505241550038fcf.txt", "url": "https://doi.org/10.1016/S0140-6736(21)00592-4",
             "citation": "Moreau P, Dimopoulos M-A, Mikhael J, et al; IKEMA study group. Isatuximab, carfilzomib, and "
                         "dexamethasone in relapsed multiple myeloma (IKEMA): a multicentre, open-label, randomised "
                         "phase 3 trial. Lancet. 2021;397(10292):2361-2371 (seed 001 ref 15)"}
    assert source_name(ikema) == "IKEMA — Moreau et al., Lancet 2021"
    summary = {"seed": "002_49145e8a5446c5dd.txt", "citation": "Dr.Oracle practical summary: treatment of RRMM",
               "url": "https://pubmed.ncbi.nlm.nih.gov/?term=rrmm"}
    assert source_name(summary) is None  # never cited to clinicians
    assert card_source([summary], "fallback") == {"label": "fallback"}
    assert card_source([summary, ikema], "x") == {"label": "IKEMA — Moreau et al., Lancet 2021", "url": ikema["url"]}
    assert not opens_work(summary["url"]) and opens_work(ikema["url"])


def test_markdown_paragraphs_before_bold_lead_ins_and_lists():
    text = paragraphs("Sentence one.\n**Named pitfall:** do not.\nNext sentence.\n- a\n- b")
    assert text == "Sentence one.\n\n**Named pitfall:** do not.\n\nNext sentence.\n\n- a\n- b"


def test_each_fact_once():
    assert unique(["a b c", "A, B, C!", "a b c d"]) == ["a b c d"]
    assert similar("Plasma cell leukaemia: aggressive cytotoxic approach (VDT-PACE)",
                   "**Plasma cell leukaemia** — needs an aggressive cytotoxic approach (e.g. VDT-PACE)")


@given(st.lists(st.tuples(st.integers(0, 3), st.text(min_size=1, max_size=900)), min_size=1, max_size=8))
def test_fit_never_exceeds_the_limit(blocks):
    assert len(fit(blocks)) <= MAX_DETAIL


def test_finding_and_options_cards_write_drug_names_not_agent_ids():
    """A clinician reads "ciltacabtagene autoleucel", not the id "ciltacabtagene-autoleucel"; the
    machine-readable extension keeps the ids."""
    import json
    from pathlib import Path

    from cds_service.app import create_app

    root = Path(__file__).resolve().parent.parent / "fixtures" / "patients"
    app = create_app({"AUTH_MODE": "none", "DATABASE_URL": "sqlite://", "AS_OF_DATE": "2026-11-01", "WARMUP": "false"})
    client = app.test_client()
    for name, service in (("p50-e-relapse-20mo-after-cilta-cel-procedure.json", "mm-next-line"),
                          ("p50-e-relapse-20mo-after-cilta-cel-procedure.o1-teclistamab-after-cilta-cel.order-select.json",
                           "mm-order-check")):
        cards = client.post(f"/cds-services/{service}", json=json.loads((root / name).read_text())).get_json()["cards"]
        text = " ".join(c["summary"] + " " + c.get("detail", "") for c in cards)
        assert "ciltacabtagene autoleucel" in text and "ciltacabtagene-autoleucel" not in text, name
        if service == "mm-next-line":  # the state extension keeps the agent id
            assert "ciltacabtagene-autoleucel" in json.dumps([c["extension"] for c in cards])
