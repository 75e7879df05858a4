"""Every prefetch template and every fallback query is a search a US Core server must support.

Why: a US Core 6.1/7 server may refuse a search its CapabilityStatement does not require (a bare
`Observation?patient=` is only MAY), and then the service gets no data. The list of required
searches (cds_service/hooks/us_core_searches.yaml, with its source) is the yardstick; resource
types without a US Core profile must use a search the base FHIR specification defines, listed in
the same file.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from cds_service.hooks import registry
from cds_service.knowledge.loader import default_knowledge

SEARCHES = yaml.safe_load((Path(registry.__file__).parent / "us_core_searches.yaml").read_text())
CONTROL = {"_include", "_revinclude", "_count"}


def _queries() -> list[tuple[str, str]]:
    out = [(f"template {key}", q) for key, q in registry.PREFETCH.items()]
    out += [(f"fallback {key}", q) for key, qs in registry.FALLBACK_QUERIES.items() for q in qs]
    return out


def _parse(query: str) -> tuple[str, list[str], dict[str, str], list[str]]:
    rendered = query.replace("{{context.patientId}}", "p1")
    split = urlsplit(rendered)
    parts = split.path.split("/")
    params = parse_qsl(split.query, keep_blank_values=True)
    search = {k: v for k, v in params if k not in CONTROL}
    includes = [v for k, v in params if k == "_include"]
    return parts[0], parts[1:], search, includes


@pytest.mark.parametrize("name,query", _queries(), ids=[n for n, _q in _queries()])
def test_query_is_a_search_the_server_must_support(name: str, query: str) -> None:
    rtype, path_rest, search, includes = _parse(query)
    if path_rest:  # a read: Type/{id}
        assert not search, f"{name}: a read takes no search parameters"
        assert SEARCHES["us_core"].get(rtype, {}).get("read") == "SHALL", f"{name}: read of {rtype} not SHALL"
        return
    combo = sorted(search)
    if rtype in SEARCHES["us_core"]:
        allowed = [sorted(c) for c in SEARCHES["us_core"][rtype]["searches"]]
        assert combo in allowed, f"{name}: {rtype}?{'&'.join(combo)} is not a SHALL search of US Core"
        declared = SEARCHES["us_core"][rtype].get("includes", {})
        for inc in includes:
            assert inc in declared, f"{name}: _include={inc} not in US Core"
        for param, value in search.items():
            if "," in value:
                expectation = SEARCHES["multiple_or"].get(f"{rtype}.{param}", "MAY")
                key = name.split(" ", 1)[1]
                has_fallback = name.startswith("template") and len(registry.FALLBACK_QUERIES.get(key, [])) > 1
                assert expectation == "SHALL" or (expectation == "SHOULD" and has_fallback), \
                    f"{name}: a comma list in {rtype}.{param} is {expectation}, and no per-value fallback"
    else:
        base = SEARCHES["base_fhir"].get(rtype)
        assert base is not None, f"{name}: {rtype} is neither a US Core nor a listed base FHIR search"
        assert combo in [sorted(c) for c in base["searches"]], f"{name}: {rtype}?{'&'.join(combo)} not listed"
        for inc in includes:
            assert inc in base.get("includes", []), f"{name}: _include={inc} not listed"


def test_observation_query_carries_every_code_of_the_mappings() -> None:
    """A code added to mappings/observations.yaml joins the query (and its per-code fallback)."""
    knowledge = default_knowledge()
    codes = [f"{registry.SYSTEM_URLS[c['system']]}|{c['code']}" for c in knowledge.mappings["observations"]["codes"]]
    _rtype, _rest, search, _inc = _parse(registry.PREFETCH["observations"])
    assert search["code"].split(",") == list(dict.fromkeys(codes))
    fallback = {_parse(q)[2]["code"] for q in registry.FALLBACK_QUERIES["observations"]}
    assert fallback == set(codes)


def test_a_new_mapping_code_joins_the_templates() -> None:
    knowledge = default_knowledge()
    extra = {"system": "loinc", "code": "0000-0", "role": "test", "source": "test"}
    grown = type(knowledge)(version=knowledge.version, digest="test", cards=knowledge.cards,
                            mappings={**knowledge.mappings, "observations": {
                                **knowledge.mappings["observations"],
                                "codes": [*knowledge.mappings["observations"]["codes"], extra]}})
    assert "http://loinc.org|0000-0" in registry.prefetch_templates(grown)["observations"]
    assert any(q.endswith("code=http://loinc.org|0000-0") for q in registry.fallback_queries(grown)["observations"])


def test_medication_request_search_asks_for_every_intent() -> None:
    """Filtering by intent must not drop what `MedicationRequest?patient=` returned."""
    _rtype, _rest, search, _inc = _parse(registry.PREFETCH["medicationRequests"])
    assert set(search["intent"].split(",")) == {"proposal", "plan", "order", "original-order", "reflex-order",
                                                "filler-order", "instance-order", "option"}
