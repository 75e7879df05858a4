"""The knowledge files in mappings/ that the record reads: valid, sourced, no known-wrong codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from cds_service.knowledge.loader import data_root
from tests.shared_paths import REFERENCE

MAPPINGS = data_root() / "mappings"
SCHEMAS = Path(__file__).resolve().parent.parent / "cds_service" / "knowledge" / "schemas"
MINE = ["agents", "conditions", "observations", "procedures", "status_reasons", "supportive", "fish"]

CONTRACT_AGENTS = {
    "lenalidomide", "pomalidomide", "thalidomide", "bortezomib", "carfilzomib", "ixazomib", "daratumumab",
    "isatuximab", "elotuzumab", "selinexor", "belantamab-mafodotin", "idecabtagene-vicleucel",
    "ciltacabtagene-autoleucel", "teclistamab", "elranatamab", "talquetamab", "linvoseltamab", "venetoclax",
    "panobinostat", "melphalan", "melphalan-flufenamide", "cyclophosphamide", "bendamustine", "doxorubicin",
    "cisplatin", "etoposide", "dexamethasone", "prednisone",
}
CONTRACT_CLASSES = {
    "IMiD", "PI", "anti-CD38", "anti-SLAMF7", "XPO1", "BCMA-ADC", "BCMA-CAR-T", "BCMA-bispecific",
    "GPRC5D-bispecific", "BCL2", "HDAC", "alkylator", "anthracycline", "steroid",
}
# terminology.md §1 pitfalls: codes that look right and are wrong (code -> agents it must NOT be under).
PITFALLS = {
    "1723735": {"daratumumab"},  # ixazomib
    "1601374": CONTRACT_AGENTS,  # palbociclib, never panobinostat
    "10324": CONTRACT_AGENTS,  # tamoxifen, never thalidomide
    "1597258": CONTRACT_AGENTS,  # blinatumomab (MITRE "belantamab" key)
    "19015523": CONTRACT_AGENTS,  # OMOP concept id, not an RXCUI
    "37002419": CONTRACT_AGENTS,  # OMOP concept id, not an RXCUI
}
# terminology.md §6 / table: UNVERIFIED code families (MITRE ranges) that must not be in the catalog.
UNVERIFIED_RANGES = [(2282018, 2282032), (2178390, 2178409), (2382989, 2382993), (2548731, 2548769),
                     (2387833, 2387843), (2536430, 2536451), (1603349, 1603369)]
UNVERIFIED_OTHER = {"51435-6", "62379-9", "80515-0", "80516-8", "80517-6", "104546-7", "11118-7", "38231",
                    "32730-5", "40661-1", "42482-0", "35560-2", "34366-5", "81291-9", "62374-0"}


def load(stem: str) -> dict:
    return yaml.safe_load((MAPPINGS / f"{stem}.yaml").read_text(encoding="utf-8"))


def all_code_entries(node, path=""):
    """Every dict with a `code` key anywhere in a document, with its path."""
    if isinstance(node, dict):
        if "code" in node and isinstance(node["code"], str | int):
            yield path, node
        for k, v in node.items():
            yield from all_code_entries(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_code_entries(v, f"{path}/{i}")


@pytest.mark.parametrize("stem", MINE)
def test_file_validates_against_its_schema(stem):
    schema = json.loads((SCHEMAS / f"{stem}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    errors = list(Draft202012Validator(schema).iter_errors(load(stem)))
    assert errors == []


@pytest.mark.parametrize("stem", MINE)
def test_file_has_version_and_every_code_a_source(stem):
    doc = load(stem)
    assert isinstance(doc.get("version"), str) and doc["version"]
    entries = list(all_code_entries(doc))
    for path, entry in entries:
        assert isinstance(entry.get("source"), str) and len(entry["source"]) > 3, path


def test_schema_rejects_a_code_without_source():
    schema = json.loads((SCHEMAS / "conditions.schema.json").read_text(encoding="utf-8"))
    doc = load("conditions")
    del doc["kinds"]["multiple-myeloma"]["codes"][0]["source"]
    assert list(Draft202012Validator(schema).iter_errors(doc))


def test_schema_rejects_an_agent_outside_the_contract_vocabulary():
    schema = json.loads((SCHEMAS / "agents.schema.json").read_text(encoding="utf-8"))
    doc = load("agents")
    doc["agents"][0]["name"] = "Lenalidomide"
    assert list(Draft202012Validator(schema).iter_errors(doc))


def test_agent_names_and_classes_are_contract_vocabulary():
    agents = load("agents")["agents"]
    names = [a["name"] for a in agents]
    assert len(names) == len(set(names))
    assert set(names) == CONTRACT_AGENTS
    for a in agents:
        assert a["class"] is None or a["class"] in CONTRACT_CLASSES
    cls = {a["name"]: a["class"] for a in agents}
    assert cls["lenalidomide"] == cls["pomalidomide"] == cls["thalidomide"] == "IMiD"
    assert cls["bortezomib"] == cls["carfilzomib"] == cls["ixazomib"] == "PI"
    assert cls["daratumumab"] == cls["isatuximab"] == "anti-CD38"
    assert cls["dexamethasone"] == cls["prednisone"] == "steroid"


def test_no_code_is_under_two_agents_and_no_pitfall_is_misfiled():
    owner: dict[str, str] = {}
    for a in load("agents")["agents"]:
        for c in a["rxnorm"]:
            assert c["code"] not in owner, f"{c['code']} under {owner.get(c['code'])} and {a['name']}"
            owner[c["code"]] = a["name"]
    for code, forbidden in PITFALLS.items():
        assert owner.get(code) not in forbidden, f"pitfall code {code} filed under {owner.get(code)}"
    assert owner["1723735"] == "ixazomib"
    assert owner["10432"] == "thalidomide"
    assert owner["1721947"] == owner["2372199"] == owner["2375130"] == "daratumumab"


def test_no_unverified_codes_anywhere():
    for stem in MINE:
        for path, entry in all_code_entries(load(stem)):
            code = str(entry["code"])
            assert code not in UNVERIFIED_OTHER, f"{stem}{path}: {code}"
            if code.isdigit():
                n = int(code)
                assert not any(lo <= n <= hi for lo, hi in UNVERIFIED_RANGES), f"{stem}{path}: {code}"


def test_agents_with_unverified_ingredient_have_no_rxnorm_codes():
    """terminology.md §6: no verified RXCUI for these; they are matched by name, brand and ATC."""
    by = {a["name"]: a for a in load("agents")["agents"]}
    for name in ["isatuximab", "selinexor", "belantamab-mafodotin", "idecabtagene-vicleucel",
                 "ciltacabtagene-autoleucel", "elranatamab", "linvoseltamab", "panobinostat"]:
        assert by[name]["rxnorm"] == [], name
        assert by[name]["brands"] and by[name]["atc"], name
    # teclistamab: product codes verified (openFDA), ingredient not
    assert {c["code"] for c in by["teclistamab"]["rxnorm"]} == {"2619432", "2619438", "2619441", "2619444"}


def test_atc_old_and_new_codes_for_moved_antibodies():
    by = {a["name"]: {c["period"]: c["code"] for c in a["atc"]} for a in load("agents")["agents"]}
    assert by["daratumumab"] == {"current": "L01FC01", "previous": "L01XC24"}
    assert by["isatuximab"] == {"current": "L01FC02", "previous": "L01XC38"}
    assert by["elotuzumab"] == {"current": "L01FX08", "previous": "L01XC23"}
    assert by["belantamab-mafodotin"] == {"current": "L01FX15", "previous": "L01XC39"}
    assert by["idecabtagene-vicleucel"]["current"] == "L01XL07"
    assert by["ciltacabtagene-autoleucel"]["current"] == "L01XL05"


def test_cibmtr_product_codes_come_from_the_value_set_file():
    """Every code sourced to the CIBMTR file is in that file with the same display."""
    fsh = REFERENCE / "cibmtr_rxnorm_valuesets.fsh"
    if not fsh.exists():
        pytest.fail("reference file missing")
    table = dict(re.findall(r'\$RXN#(\d+)\s+"([^"]*)"', fsh.read_text(encoding="utf-8")))
    n = 0
    for a in load("agents")["agents"]:
        for c in a["rxnorm"]:
            if "cibmtr_rxnorm_valuesets.fsh" in c["source"]:
                assert table.get(c["code"]) == c["display"], c
                n += 1
    assert n > 150


def test_smoldering_and_mgus_are_not_myeloma():
    kinds = load("conditions")["kinds"]
    assert kinds["smoldering"]["myeloma"] is False and kinds["mgus"]["myeloma"] is False
    assert kinds["multiple-myeloma"]["myeloma"] is True
    order = load("conditions")["order"]
    assert order.index("smoldering") < order.index("multiple-myeloma")


def test_fish_patterns_compile():
    doc = load("fish")
    for body in doc["abnormalities"].values():
        for p in body["patterns"]:
            re.compile(p)
    for key in ("negative", "negative_prefix", "positive_strong", "no_result_context", "no_result", "clause_negative", "test_text",
                "translocation_partner"):
        for p in doc[key]:
            re.compile(p)
