"""`validate-knowledge DIR` and `knowledge-diff OLD NEW`: review a knowledge change before serving it.

A hospital reviews its knowledge (`mappings/`, `cards/`) as data; before it serves a new folder
(`KNOWLEDGE_DIR`) it wants two answers: does the folder pass the schemas the service checks at
start, and which of the shipped patients would see different cards. `knowledge_diff` runs every
shipped fixture patient through the same pipeline with the old and the new knowledge (fixed date,
prefetch only, no network) and compares the cards by what a clinician sees — rule, kind,
indicator, summary, options and their tiers, suggestions — never by uuid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

FIXTURE_DATE = date(2026, 11, 1)  # the shipped fixtures are written for this day (README)


@dataclass
class PatientChange:
    fixture: str
    service: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"fixture": self.fixture, "service": self.service, "added": self.added, "removed": self.removed,
                "changed": self.changed}


def _fingerprint(card: dict[str, Any]) -> tuple[str, str]:
    """(key, comparable view) of a card: the key names it in the report, the view decides 'changed'."""
    ext = (card.get("extension") or {}).get("org.mmcds.card") or {}
    key = "/".join(str(x) for x in (ext.get("kind"), ext.get("ruleId"), ext.get("code")) if x)
    view = {
        "indicator": card.get("indicator"), "summary": card.get("summary"), "detail": card.get("detail"),
        "setting": ext.get("setting"), "state": ext.get("state"),
        "options": [(o.get("regimen"), o.get("tier"), o.get("rank"), o.get("grade")) for o in ext.get("options") or []],
        "avoid": ext.get("avoid"),
        "suggestions": [s.get("label") for s in card.get("suggestions") or []],
        "source": (card.get("source") or {}).get("url") if isinstance(card.get("source"), dict) else None,
    }
    return key or "card", orjson.dumps(view, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _cards_by_key(cards: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for card in cards:
        key, view = _fingerprint(card)
        n, base = 2, key
        while key in out:  # two cards of one rule: keep both
            key, n = f"{base}#{n}", n + 1
        out[key] = view
    return out


def _answers(knowledge: Any, fixtures: list[Any]) -> dict[tuple[str, str], dict[str, str] | str]:
    from cds_service.config import load_settings
    from cds_service.hooks.registry import SERVICES
    from cds_service.pipeline import HookError, run

    settings = load_settings({"AS_OF_DATE": FIXTURE_DATE.isoformat()}, environ={})
    out: dict[tuple[str, str], dict[str, str] | str] = {}
    for fx in fixtures:
        request = {k: v for k, v in fx.request.items() if k not in ("fhirServer", "fhirAuthorization")}
        for service in (s for s in SERVICES.values() if s.hook == request.get("hook")):
            try:
                result = run(service.id, request, settings, knowledge)
                out[(fx.path, service.id)] = _cards_by_key(result.response["cards"])
            except HookError as exc:
                out[(fx.path, service.id)] = f"{exc.status} {exc.error}"
    return out


def knowledge_diff(old: Path, new: Path) -> dict[str, Any]:
    """Which shipped patients' cards change between two knowledge folders (KnowledgeError if one is bad)."""
    from cds_service.conformance import load_fixtures
    from cds_service.knowledge.loader import load_knowledge

    k_old, k_new = load_knowledge(old), load_knowledge(new)
    fixtures = [fx for fx in load_fixtures() if fx.path.startswith("patients/")]
    before, after = _answers(k_old, fixtures), _answers(k_new, fixtures)
    changes: list[PatientChange] = []
    for key in sorted(before):
        a, b = before[key], after.get(key)
        if a == b:
            continue
        change = PatientChange(*key)
        if isinstance(a, str) or isinstance(b, str):
            change.changed.append(f"answer: {a if isinstance(a, str) else '200'} -> {b if isinstance(b, str) else '200'}")
        else:
            assert isinstance(b, dict)
            change.added = sorted(set(b) - set(a))
            change.removed = sorted(set(a) - set(b))
            change.changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        changes.append(change)
    return {
        "old": {"folder": str(old), "knowledgeVersion": k_old.version, "digest": k_old.digest},
        "new": {"folder": str(new), "knowledgeVersion": k_new.version, "digest": k_new.digest},
        "patients": len(fixtures),
        "changed": [c.as_dict() for c in changes],
    }


def render_diff(report: dict[str, Any]) -> str:
    lines = [f"old: {report['old']['folder']} (knowledge {report['old']['knowledgeVersion']}, "
             f"{report['old']['digest']})",
             f"new: {report['new']['folder']} (knowledge {report['new']['knowledgeVersion']}, "
             f"{report['new']['digest']})"]
    for c in report["changed"]:
        lines.append(f"{c['fixture']} [{c['service']}]")
        lines += [f"  + {k}" for k in c["added"]] + [f"  - {k}" for k in c["removed"]]
        lines += [f"  ~ {k}" for k in c["changed"]]
    lines.append(f"{len(report['changed'])} of {report['patients']} shipped patients' cards change")
    return "\n".join(lines)


def validate_folder(folder: Path) -> Any:
    """Load a knowledge folder as the service would at start (KnowledgeError naming the file)."""
    from cds_service.knowledge.loader import load_knowledge

    return load_knowledge(folder)
