"""The code catalog of the vignette builder (catalog.yaml) and the drug encodings real EHRs send.

Why a catalog file: every code a fixture carries must come from a named source, so codes live in one
reviewed data file; the encoders only choose among them. `concept` renders one drug as the
CodeableConcept of one encoding (RxNorm ingredient or product, ATC new or old, local formulary code,
brand text), which is what lets one clinical story be sent in many EHR dialects.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CATALOG_FILE = HERE / "catalog.yaml"
ENCODINGS = ("rx-in", "rx-product", "atc", "atc-old", "local", "text")


class DataLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay the strings written ('2021-05', '...T08:00:00-05:00'),
    because FHIR dates are strings and partial or zoned dates must reach the fixture unchanged."""


DataLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=DataLoader)  # noqa: S506 - a SafeLoader subclass


@cache
def catalog() -> dict[str, Any]:
    return load_yaml(CATALOG_FILE)


def system(short: str) -> str:
    """The URL of a code system named by its short name in catalog.yaml (`snomed`, `loinc`, ...)."""
    systems = catalog()["systems"]
    if short not in systems:
        raise ValueError(f"unknown code system {short!r}; known: {sorted(systems)}")
    return systems[short]


def coding(short: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system(short), "code": str(code), **({"display": display} if display is not None else {})}


def codings(rows: list[list[str]]) -> list[dict[str, str]]:
    """[[system, code, display], ...] -> FHIR codings."""
    return [coding(*row) for row in rows]


def _with_systems(cc: dict[str, Any]) -> dict[str, Any]:
    out = dict(cc)
    if "coding" in cc:
        out["coding"] = [{**c, "system": system(c["system"])} for c in cc["coding"]]
    return out


def is_fixed(agent: str) -> bool:
    return agent in catalog()["fixed_drugs"]


def drug(agent: str) -> dict[str, Any]:
    drugs = catalog()["drugs"]
    if agent not in drugs:
        raise ValueError(f"unknown drug {agent!r}; add it to {CATALOG_FILE.name} (with the code's source)")
    return drugs[agent]


def concept(agent: str, enc: str = "rx-in", product: str | None = None, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept for `agent` in one of the encodings real EHRs send."""
    if is_fixed(agent):
        return _with_systems(catalog()["fixed_drugs"][agent])
    info = drug(agent)
    name = info.get("name", agent)
    if enc == "rx-in":
        if not info.get("in"):
            raise ValueError(f"{agent}: no sourced RxNorm ingredient code; use another encoding")
        return {"coding": [coding("rxnorm", info["in"], info.get("in_display", name))], "text": text or name}
    if enc == "rx-product":
        products = info.get("products") or {}
        if not products:
            raise ValueError(f"{agent}: no sourced RxNorm product code")
        code, disp = products[str(product) if product is not None else next(iter(products))]
        return {"coding": [coding("rxnorm", code, disp)], "text": text or disp or info["text"]}
    if enc in ("atc", "atc-old"):
        atc = info.get("atc" if enc == "atc" else "atc_old")
        if not atc:
            raise ValueError(f"{agent}: no sourced {enc} code")
        return {"coding": [coding("atc", atc, name)], "text": text or name}
    if enc == "local":
        # a local formulary code that only carries a display (what many EHR exports send)
        local_code = f"FRM-{agent[:4].upper()}-{len(text or info['text'])}"
        return {"coding": [coding("local-formulary", local_code, text or info["text"].upper())]}
    if enc == "text":
        return {"text": text or info["text"]}
    raise ValueError(f"unknown drug encoding {enc!r}; known: {ENCODINGS} (or ingredient with medication: reference)")
