"""Build CDS Hooks cards with the project's extension; the one place a card dict is shaped.

Clinical modules decide; this module only shapes what they decided into CDS Hooks 2.0.1 cards
(uuid on every card and suggestion, summary < 140 characters, `extension["org.mmcds.card"]`).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from cds_service.render.text import opens_work

EXTENSION_KEY = "org.mmcds.card"
SOURCE_LABEL = "Relapsed myeloma guidance"
MAX_SUMMARY = 139


_RANDOM = threading.local()
_UUIDS_PER_READ = 256


def _forget_random_bytes() -> None:
    """In a forked child: never hand out bytes the parent (or a sibling worker) may also use."""
    global _RANDOM
    _RANDOM = threading.local()


os.register_at_fork(after_in_child=_forget_random_bytes)


def new_uuid() -> str:
    """A random (version 4) UUID, from a per-thread buffer of `os.urandom` bytes.

    Why not `uuid.uuid4()` per call: each is an `os.urandom` system call that releases the GIL,
    and in a gthread worker whose other threads are computing, getting it back can take a whole
    switch interval — measured (bench/, issue 6) up to 46 ms for one call, ~1.2 ms on average,
    with ~10 UUIDs per response. One read per 256 UUIDs keeps the same randomness source.
    """
    local = _RANDOM
    buf: bytes = getattr(local, "buf", b"")
    pos: int = getattr(local, "pos", 0)
    if pos + 16 > len(buf):
        buf, pos = os.urandom(16 * _UUIDS_PER_READ), 0
        local.buf = buf
    local.pos = pos + 16
    b = bytearray(buf[pos:pos + 16])
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    # a search-results page is never the card's source link: only a URL that opens the work
    # (a label given without a URL stays unlinked: never a label over another work's link)
    first_url = source_url if source_label else next((s.get("url") for s in sources if opens_work(s.get("url"))), None)
    source: dict[str, Any] = {"label": source_label or SOURCE_LABEL}
    if first_url and opens_work(first_url):
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
