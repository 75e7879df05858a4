"""Read what the EHR put in `prefetch`: every outcome the spec and real clients produce.

A key may be absent, `null`, an empty Bundle, an OperationOutcome (the client's fetch failed),
a single resource, or a searchset Bundle with a `next` link (paged). Each outcome becomes a
`KeyOutcome` that says whether the key is satisfied or has to be fetched from the FHIR server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z0-9_]+)\s*\}\}")


@dataclass
class KeyOutcome:
    key: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    satisfied: bool = False
    next_url: str | None = None  # a paged Bundle: the rest is fetched from the server
    problem: str | None = None


def render_template(template: str, context: dict[str, Any]) -> str | None:
    """Fill `{{context.x}}` tokens; None when a token has no primitive value in the context."""
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = context.get(match.group(1))
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
        missing = True
        return ""

    rendered = TOKEN.sub(sub, template)
    return None if missing else rendered


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries, skipping anything that is not a resource dict."""
    entries = bundle.get("entry")
    if isinstance(entries, dict):  # a single object where an array belongs
        entries = [entries]
    if not isinstance(entries, list):
        return []
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        res = entry.get("resource")
        if isinstance(res, dict) and isinstance(res.get("resourceType"), str):
            if res.get("resourceType") == "OperationOutcome":
                continue  # search warnings, not data
            out.append(res)
    return out


def next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    if isinstance(links, dict):
        links = [links]
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def read_prefetch_value(key: str, value: Any) -> KeyOutcome:
    if value is None:
        return KeyOutcome(key, problem="null")
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return KeyOutcome(key, problem="not a FHIR resource")
    rtype = value["resourceType"]
    if rtype == "OperationOutcome":
        return KeyOutcome(key, problem="OperationOutcome")
    if rtype == "Bundle":
        return KeyOutcome(key, resources=bundle_resources(value), satisfied=True, next_url=next_link(value))
    return KeyOutcome(key, resources=[value], satisfied=True)


def read_prefetch(prefetch: Any, templates: dict[str, str]) -> tuple[dict[str, KeyOutcome], list[dict[str, Any]]]:
    """Outcomes per template key, and resources found under keys that are not ours."""
    outcomes: dict[str, KeyOutcome] = {}
    extra: list[dict[str, Any]] = []
    prefetch = prefetch if isinstance(prefetch, dict) else {}
    for key in templates:
        if key in prefetch:
            outcomes[key] = read_prefetch_value(key, prefetch[key])
        else:
            outcomes[key] = KeyOutcome(key, problem="absent")
    for key, value in prefetch.items():
        if key not in templates:
            other = read_prefetch_value(key, value)
            extra.extend(other.resources)
    return outcomes, extra
