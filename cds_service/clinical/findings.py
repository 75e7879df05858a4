"""A finding on draft orders (plain data for the renderer) and the supportive-drug lookup the
order checks share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.record.model import DraftOrder, PatientRecord

INACTIVE = frozenset({"completed", "stopped", "entered-in-error", "cancelled", "revoked", "not-taken", "ended"})


@dataclass
class Finding:
    code: str
    agents: list[str]
    orders: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    drafts: list[DraftOrder] = field(default_factory=list)
    replace_with: list[str] = field(default_factory=list)  # regimen codes: delete the draft, create these
    add_from: list[str] = field(default_factory=list)  # regimen codes: add their missing agents (doublet)
    supportive: list[dict[str, str]] = field(default_factory=list)  # {label, text}: create these
    route_change: str | None = None


def active_supportive(category: str, record: PatientRecord | None, drafts: list[DraftOrder]) -> bool:
    if any(d.category == category for d in drafts):
        return True
    if record is None:
        return False
    for m in record.medications:
        if m.category != category:
            continue
        status = (m.status or "").lower()
        if status in INACTIVE:
            continue
        if m.ongoing or m.end is None or m.kind == "draft" or status in ("active", "on-hold", "intended", "draft"):
            return True
    return False
