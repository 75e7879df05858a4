"""Build CDS Hooks cards with the project's extension; the one place a card dict is shaped.

Clinical modules decide; this module only shapes what they decided into CDS Hooks 2.0.1 cards
(uuid on every card and suggestion, summary < 140 characters, `extension["org.mmcds.card"]`).
"""

from __future__ import annotations

import uuid
from typing import Any

EXTENSION_KEY = "org.mmcds.card"
SOURCE_LABEL = "MM-CDS (RRMM next-line knowledge base)"
MAX_SUMMARY = 139


def new_uuid() -> str:
    return str(uuid.uuid4())


def clip_summary(text: str) -> str:
    """CDS Hooks asks for a summary under 140 characters; cut on a word, never mid-word."""
    text = " ".join(text.split())
    if len(text) <= MAX_SUMMARY:
        return text
    cut = text[: MAX_SUMMARY - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def source_entry(seed: str | None, citation: str, url: str | None) -> dict[str, Any]:
    return {"seed": seed, "citation": citation, "url": url}


def make_card(
    *,
    kind: str,
    rule_id: str,
    knowledge_version: str,
    summary: str,
    indicator: str = "info",
    detail: str | None = None,
    sources: list[dict[str, Any]] | None = None,
    source_label: str | None = None,
    source_url: str | None = None,
    suggestions: list[dict[str, Any]] | None = None,
    selection_behavior: str | None = None,
    override_reasons: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return one card; `extra` goes into the extension (state/options/code/agents/orders)."""
    sources = sources or []
    ext: dict[str, Any] = {
        "kind": kind,
        "ruleId": rule_id,
        "knowledgeVersion": knowledge_version,
        "sources": sources,
    }
    if extra:
        ext.update(extra)
    first_url = source_url or next((s.get("url") for s in sources if s.get("url")), None)
    source: dict[str, Any] = {"label": source_label or SOURCE_LABEL}
    if first_url:
        source["url"] = first_url
    card: dict[str, Any] = {
        "uuid": new_uuid(),
        "summary": clip_summary(summary),
        "indicator": indicator,
        "source": source,
    }
    if detail:
        card["detail"] = detail
    if suggestions:
        for s in suggestions:
            s.setdefault("uuid", new_uuid())
        card["suggestions"] = suggestions
        card["selectionBehavior"] = selection_behavior or "at-most-one"
    if override_reasons:
        card["overrideReasons"] = override_reasons
    if links:
        card["links"] = links
    card["extension"] = {EXTENSION_KEY: ext}
    return card
