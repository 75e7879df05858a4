"""The knowledge files in cards/: schema-valid, every source traceable, no invented identifier."""

from __future__ import annotations

import re

import pytest
import yaml
from rules_builders import ROOT, knowledge

from cds_service.knowledge.loader import KnowledgeError, _load_folder, schema_validators
from tests.shared_paths import REFERENCE

SOURCE_DOCUMENTS = REFERENCE / "source-documents.yaml"
SEED_001_REFERENCES = REFERENCE / "seed-001-references.txt"
CONTRACT_REGIMENS = ["Tec-Dara", "BVd", "BPd", "linvoseltamab", "Vend", "DRd", "KRd", "IRd", "EloRd", "Rd", "DVd", "Kd", "DKd", "IsaKd", "PVd", "KPd", "DPd", "IsaPd", "EloPd", "IPd", "PCd", "Pd", "Vd", "VCd", "VTd", "VMP", "EloVd", "SVd", "SDd", "SKd", "Sd", "VenVd", "PanoVd", "VDT-PACE", "ide-cel", "cilta-cel", "belantamab", "teclistamab", "elranatamab", "talquetamab", "clinical-trial", "salvage-ASCT"]
NOTICE_CODES = ["high-risk-cytogenetics", "short-response", "plasma-cell-leukemia", "extramedullary-disease", "salvage-asct-candidate", "salvage-asct-discuss", "salvage-asct-not-recommended", "clinical-trial", "restage-at-relapse", "insufficient-data"]
FINDING_CODES = ["refractory-agent-ordered", "anti-cd38-retreatment", "anti-cd38-cross-resistance", "venetoclax-without-t11-14", "venetoclax-t11-14-unknown", "missing-thromboprophylaxis", "missing-zoster-prophylaxis", "missing-antiemetic", "missing-pjp-prophylaxis", "bortezomib-route-neuropathy", "doublet-when-triplet-tolerated", "repeat-fish-primary-translocations",
                 "same-target-after-failure", "tcr-infection-prophylaxis", "venetoclax-tls-precautions",
                 "alkylator-before-tcr"]
MY_FILES = ("sources", "regimens", "settings", "modifiers", "notices", "order_checks", "texts")


def seed_ids() -> set[str]:
    """The source documents' file ids (docs/reference/source-documents.yaml)."""
    return set(yaml.safe_load(SOURCE_DOCUMENTS.read_text(encoding="utf-8"))["documents"])


def figure_numbers(text: str) -> list[str]:
    """The numbers a figure quotes, without line counts and trial-name digits (EMN011, MM-014)."""
    text = re.sub(r"[A-Za-z]+[-/]?\d+", "", text.replace("(11;14)", ""))
    return [n for n in re.findall(r"\d+(?:\.\d+)?", text) if n not in ("1", "2", "3", "4")]


@pytest.fixture(scope="module")
def cards():
    return knowledge().cards


def test_every_card_file_validates_against_its_schema():
    loaded = _load_folder(ROOT / "cards", schema_validators())
    for stem in MY_FILES:
        assert stem in loaded


def test_a_bad_edit_fails_loudly(tmp_path):
    (tmp_path / "cards").mkdir()
    data = yaml.safe_load((ROOT / "cards" / "regimens.yaml").read_text())
    data["regimens"]["DRd"]["components"].append("not-a-drug")
    (tmp_path / "cards" / "regimens.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(KnowledgeError, match="regimens.yaml"):
        _load_folder(tmp_path / "cards", schema_validators())


def test_catalog_covers_every_contract_regimen(cards):
    assert set(cards["regimens"]["regimens"]) == set(CONTRACT_REGIMENS)


def test_notice_and_finding_codes_are_exactly_contracts(cards):
    assert set(cards["notices"]["notices"]) == set(NOTICE_CODES)
    assert set(cards["order_checks"]["checks"]) == set(FINDING_CODES)


def test_every_source_has_a_seed_or_url_and_every_reference_resolves(cards):
    sources = cards["sources"]["sources"]
    seeds = seed_ids()
    for sid, src in sources.items():
        assert src.get("seed") or src.get("url") or src.get("seen"), sid
        if src.get("seed"):
            assert src["seed"] in seeds, (sid, src["seed"])
    referenced: list[str] = []
    for reg in cards["regimens"]["regimens"].values():
        referenced += reg["sources"]
        for fig in reg["figures"]:
            assert fig.get("seed") in seeds or fig.get("source") in sources, fig
            referenced += [fig["source"]] if fig.get("source") else []
        referenced += [lab["source"] for lab in reg.get("labels", {}).values()]
        referenced += [sup["source"] for sup in reg.get("supersedes", [])]
    for spec in cards["settings"]["settings"].values():
        referenced += spec["sources"]
        for v in spec["variants"]:
            for entries in v["tiers"].values():
                for e in entries:
                    assert e["regimen"] in cards["regimens"]["regimens"], e
                    referenced += e.get("sources", [])
    for c in cards["modifiers"]["conflicts"].values():
        referenced += c["sources"]
    for n in cards["notices"]["notices"].values():
        referenced += n["sources"]
    for c in cards["order_checks"]["checks"].values():
        referenced += c["sources"]
        for reason in c["overrideReasons"]:
            assert reason in cards["order_checks"]["overrideReasons"]
    missing = sorted(set(referenced) - set(sources))
    assert not missing
    # anywhere else a `sources` list appears (modifiers, setting blocks...), its ids must exist too
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "sources" and isinstance(value, list):
                    yield from value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
    for stem in ("regimens", "settings", "modifiers", "notices", "order_checks"):
        unknown = sorted({i for i in walk(cards[stem]) if isinstance(i, str)} - set(sources))
        assert not unknown, (stem, unknown)


def test_every_url_opens_a_work_never_a_search(cards):
    """A DOI, a PubMed record or the journal's own article page (seen, where no DOI was seen), or no link at
    all; never a PubMed/keyword search."""
    for sid, src in cards["sources"]["sources"].items():
        url = src["url"]
        if url is None:
            continue
        assert "?term=" not in url and "search" not in url, sid
        assert re.fullmatch(r"https://(doi\.org/10\.\S+|pubmed\.ncbi\.nlm\.nih\.gov/\d+/?|www\.nature\.com/articles/[\w.-]+)",
                            url), (sid, url)
        if "doi" in src:
            assert url == "https://doi.org/" + src["doi"], sid
    for path in (ROOT / "cards").glob("*.yaml"):
        assert "pubmed.ncbi.nlm.nih.gov/?term=" not in path.read_text(encoding="utf-8"), path.name


def test_every_identifier_says_where_it_was_seen(cards):
    """A DOI or PMID is never from memory: the source names the seed reference list or search result."""
    seeds = SEED_001_REFERENCES.read_text(encoding="utf-8")
    for sid, src in cards["sources"]["sources"].items():
        if "doi" in src or "pmid" in src:
            assert src.get("seen"), sid
            if "seed 001 reference list" in src["seen"]:
                assert src["doi"] in seeds, sid
    wrong = {"10.3389/fonc.2020.624661"}  # seed 001 ref 16 prints a Frontiers DOI for IKEMA: never used
    for path in (ROOT / "cards").glob("*.yaml"):
        assert not wrong & set(re.findall(r"10\.\d{4,9}/[^\s\"',\]}]+", path.read_text(encoding="utf-8")))


def test_machine_written_summaries_are_never_cited(cards):
    """Seeds 000 and 002 stay as provenance of a figure but are never a cited source."""
    sources = cards["sources"]["sources"]
    summaries = {sid for sid, src in sources.items() if src["kind"] == "seed-summary"}
    assert {"seed-000", "seed-002"} <= summaries
    assert all(sources[sid].get("cite") is False for sid in summaries)
    for sid, src in sources.items():
        if src.get("cite", True):
            assert "Dr.Oracle" not in src["citation"] and "Praxis" not in src["citation"], sid


def test_figures_only_quote_numbers_present_in_their_quoted_passage(cards):
    """Every number in a figure taken from a source document appears in the passage quoted with it
    (guards against figures from memory); a figure beyond the documents names where it was seen."""
    seeds = seed_ids()
    for code, reg in cards["regimens"]["regimens"].items():
        for fig in reg["figures"]:
            if "seed" not in fig:  # beyond the seeds: the source names where it was seen
                assert cards["sources"]["sources"][fig["source"]].get("seen"), (code, fig)
                continue
            assert fig["seed"] in seeds, (code, fig["seed"])
            numbers = figure_numbers(fig["text"])
            if not numbers:
                continue
            quote = fig.get("quote", "")
            assert quote, f"{code}: a figure with numbers needs the passage it quotes"
            for num in numbers:
                assert re.search(rf"(?<![\d.]){re.escape(num)}(?![\d]|\.\d)", quote), f"{code}: {num} not in its quote"


def test_grades_follow_seed_003(cards):
    regs = cards["regimens"]["regimens"]
    assert regs["DRd"]["grades"]["first-relapse-len-sensitive"] == "1A"
    assert regs["KRd"]["grades"]["first-relapse-len-sensitive"] == "1A"
    for code in ("PVd", "DKd", "IsaKd"):
        assert regs[code]["grades"]["first-relapse-len-refractory"] == "1A"
    for code in ("DVd", "Kd"):
        assert regs[code]["grades"]["first-relapse-len-refractory"] == "1B"
    for code in ("KPd", "DPd", "IPd"):
        assert regs[code]["grades"]["first-relapse-len-refractory"] == "1C"
    assert regs["IsaPd"]["grades"]["later-relapse"] == "1A"
    assert regs["DKd"]["grades"]["later-relapse"] == "1A"
    for code in ("DPd", "EloPd", "KPd"):
        assert regs[code]["grades"]["later-relapse"] == "1B"


def test_bispecifics_are_marked_beyond_the_seeds(cards):
    regs = cards["regimens"]["regimens"]
    for code in ("teclistamab", "elranatamab", "talquetamab", "linvoseltamab", "Tec-Dara", "BVd", "BPd"):
        assert regs[code].get("beyondSeeds") is True
    assert not regs["ide-cel"].get("beyondSeeds")


def test_knowledge_version_is_set():
    assert re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", knowledge().version)


def test_typed_catalog_is_built_once_and_a_dangling_reference_fails_at_start(tmp_path):
    """The schema cannot see cross-file ids: the typed catalog checks them when the knowledge loads."""
    import shutil

    from cds_service.knowledge.loader import load_knowledge

    k = load_knowledge(ROOT)
    assert k.catalog is k.catalog  # built once, then reused
    assert k.catalog.regimens["Tec-Dara"].labels["EU"].status == "pending"
    assert k.catalog.targets("Tec-Dara") == ("BCMA",) and k.catalog.is_t_cell_redirecting("talquetamab")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    shutil.copytree(ROOT / "cards", tmp_path / "cards")
    data = yaml.safe_load((tmp_path / "cards" / "regimens.yaml").read_text())
    data["regimens"]["BVd"]["sources"].append("no-such-source")
    (tmp_path / "cards" / "regimens.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(KnowledgeError, match="no-such-source"):
        load_knowledge(tmp_path)
