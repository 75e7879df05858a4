"""The current line (CLINICAL_LOGIC §5): a running line without progression since it began is
on-therapy — no next-line menu, the state card names it, order checks still run — in several FHIR
encodings; and fitness / disease-course limits on salvage ASCT."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from tests.redteam import builders as b
from tests.redteam.builders import draft


def add_days(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


def post(client, req: dict[str, Any], service: str = "mm-next-line") -> list[dict[str, Any]]:
    resp = client.post(f"/cds-services/{service}", json=req)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.get_json()["cards"]


def kinds(cards: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in cards if c["extension"]["org.mmcds.card"]["kind"] == kind]


def _two_lines(pid: str, birth: str = "1960-01-01") -> b.Patient:
    """VRd + ASCT + R maintenance to progression 2023-05-01; DPd to progression 2026-08-20."""
    p = b.Patient(pid, birth=birth)
    p.myeloma(onset="2019-01-01")
    for agent in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2019-02-01", "2019-06-30")
    p.asct("2019-08-15")
    p.statement(b.rx("lenalidomide"), "2019-10-01", "2023-05-01", status="stopped", reason_text="Disease progression")
    p.disease_status("2023-05-01")
    for agent in ("daratumumab", "pomalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2023-05-15", "2026-08-20", status="stopped", reason_text="Disease progression")
    p.disease_status("2026-08-20")
    p.ecog("2026-08-20", 1)
    return p


def dkd_statements(p: b.Patient) -> None:
    for agent in ("daratumumab", "carfilzomib", "dexamethasone"):
        p.statement(b.rx(agent), "2026-09-01", None, status="active")


def dkd_cycle_requests(p: b.Patient) -> None:
    for start in ("2026-09-01", "2026-09-29", "2026-10-27"):
        for agent in ("1721954", "carfilzomib", "dexamethasone"):
            p.request(b.rx(agent), start, status="active" if start == "2026-10-27" else "completed")


def dkd_administrations(p: b.Patient) -> None:
    for week in range(0, 9):
        day = add_days("2026-09-01", 7 * week)
        p.administration(b.rx("2375141"), when=day)  # Darzalex Faspro weekly
        p.administration(b.rx("carfilzomib"), when=day)
        p.administration(b.rx("dexamethasone"), when=day)


DKD = {"statements": dkd_statements, "cycle-requests": dkd_cycle_requests, "administrations": dkd_administrations}


@pytest.mark.parametrize("encoding", list(DKD))
def test_two_months_into_dkd_responding_is_on_therapy(client, encoding: str) -> None:
    p = _two_lines(f"cur-dkd-{encoding}")
    DKD[encoding](p)
    p.m_protein("2026-08-25", 2.0)
    p.m_protein("2026-10-20", 0.6)
    cards = post(client, p.cds_request())
    (state,) = kinds(cards, "state")
    st = state["extension"]["org.mmcds.card"]["state"]
    assert st["onTherapy"] is True and st["priorLines"] == 3
    assert not kinds(cards, "options"), "no next-line menu for a patient on a running line"
    assert "on line 3 since 2026-09-01" in state["summary"] and "awaiting" not in state["summary"]
    assert len(state["summary"]) < 140
    assert "On therapy: line 3" in state["detail"]
    codes = {c["extension"]["org.mmcds.card"].get("code") for c in kinds(cards, "notice")}
    assert "restage-at-relapse" not in codes and "clinical-trial" not in codes
    # order checks keep running: lenalidomide drafted for this lenalidomide-refractory patient
    req = p.cds_request("order-select", drafts=[draft(p.pid, "d-len", b.rx("lenalidomide"))])
    findings = kinds(post(client, req, "mm-order-check"), "finding")
    assert any(f["extension"]["org.mmcds.card"]["code"] == "refractory-agent-ordered" for f in findings)


@pytest.mark.parametrize("len_status", ["on-hold", "active"])
def test_drd_restarted_after_planned_holiday_and_responding_is_on_therapy(client, len_status: str) -> None:
    """DRd to a planned two-year holiday, restarted 2026-06-01 (lenalidomide order on hold): on therapy."""
    p = b.Patient(f"cur-drd-{len_status}", birth="1952-03-03")
    p.myeloma(onset="2018-01-01")
    for agent in ("bortezomib", "melphalan", "prednisone"):
        p.statement(b.rx(agent), "2018-02-01", "2018-12-01")
    p.disease_status("2019-09-01")
    for agent in ("daratumumab", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2019-09-15", "2024-05-31", status="completed",
                    reason_text="Planned treatment holiday")
    for m in range(0, 6):
        p.administration(b.rx("2375141"), when=add_days("2026-06-01", 28 * m))
    p.request(b.rx("1429367"), "2026-06-01", status=len_status,
              reason_text="held for neutropenia" if len_status == "on-hold" else None)
    p.request(b.rx("dexamethasone"), "2026-06-01", status="active")
    p.ecog("2026-10-01", 1)
    cards = post(client, p.cds_request())
    (state,) = kinds(cards, "state")
    st = state["extension"]["org.mmcds.card"]["state"]
    assert st["onTherapy"] is True, state["summary"]
    assert st["agents"]["lenalidomide"] == "exposed" and st["agents"]["daratumumab"] == "exposed"
    assert not kinds(cards, "options")
    assert "since 2026-06-01" in state["summary"]


def test_completed_fixed_course_without_progression_since_is_not_relapsed(client) -> None:
    p = _two_lines("cur-fixed")
    for agent in ("carfilzomib", "dexamethasone"):
        p.statement(b.rx(agent), "2026-09-01", "2026-10-15", status="completed")
    cards = post(client, p.cds_request())
    (opt,) = kinds(cards, "options")
    assert opt["extension"]["org.mmcds.card"]["setting"] == "not-relapsed"


def test_progression_on_the_new_line_is_a_relapse_again(client) -> None:
    p = _two_lines("cur-pd")
    dkd_statements(p)
    p.disease_status("2026-10-25")
    cards = post(client, p.cds_request())
    (state,) = kinds(cards, "state")
    assert state["extension"]["org.mmcds.card"]["state"]["onTherapy"] is False
    assert kinds(cards, "options")


# ------------------------------------------------------------------------- fitness

def _asct_relapse(pid: str, birth: str, ecog: int, ecog_style: str) -> b.Patient:
    """VRd + ASCT 2020-03-01 + R maintenance to progression 2024-06-01 (51 months): first relapse."""
    p = b.Patient(pid, birth=birth)
    p.myeloma(onset="2019-06-01")
    for agent in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2019-07-01", "2019-12-15")
    p.asct("2020-03-01")
    p.statement(b.rx("lenalidomide"), "2020-05-01", "2024-06-01", status="stopped", reason_text="Disease progression")
    p.disease_status("2024-06-01")
    p.ecog("2024-06-01", ecog, style=ecog_style)
    return p


def salvage(client, p: b.Patient) -> tuple[str | None, list[dict[str, Any]]]:
    cards = post(client, p.cds_request())
    (state,) = kinds(cards, "state")
    return state["extension"]["org.mmcds.card"]["state"]["transplant"]["salvageASCT"], cards


@pytest.mark.parametrize("style", ["integer", "cc-text"])
@pytest.mark.parametrize(("birth", "ecog", "want"), [
    ("1943-01-01", 3, "not-recommended"),  # 83 years, ECOG 3
    ("1958-01-01", 3, "not-recommended"),  # 68 years, ECOG 3
    ("1948-01-01", 1, "not-recommended"),  # 78 years (> 75), fit
    ("1958-01-01", 1, "candidate"),  # 68 years, fit, 51 months: both thresholds met
])
def test_salvage_asct_fitness(client, birth: str, ecog: int, want: str, style: str) -> None:
    got, cards = salvage(client, _asct_relapse(f"fit-{birth}-{ecog}-{style}", birth, ecog, style))
    assert got == want
    if want == "not-recommended":
        # not a card of its own (it does not change what to do now): a line of the card it belongs to
        holder = [c for c in cards if "salvage-asct-not-recommended" in c["extension"]["org.mmcds.card"].get("notices", [])]
        assert holder and "not fit for high-dose therapy" in holder[0]["detail"]


Builder = Callable[[b.Patient], None]


def _never_transplanted(pid: str, n_lines: int) -> b.Patient:
    p = b.Patient(pid, birth="1966-01-01")
    p.myeloma(onset="2016-01-01")
    regimens = [("bortezomib", "lenalidomide"), ("daratumumab", "pomalidomide"), ("carfilzomib", "cyclophosphamide"),
                ("elotuzumab", "thalidomide")]
    start = date(2016, 2, 1)
    for i in range(n_lines):
        end = start + timedelta(days=600)
        for agent in (*regimens[i], "dexamethasone"):
            p.statement(b.rx(agent), start.isoformat(), end.isoformat(), status="stopped",
                        reason_text="Disease progression")
        p.disease_status(end.isoformat())
        start = end + timedelta(days=20)
    p.ecog("2026-06-01", 0)
    return p


@pytest.mark.parametrize(("n_lines", "want"), [(1, "candidate"), (2, "not-recommended"), (4, "not-recommended")])
def test_never_transplanted_candidate_only_at_first_relapse(client, n_lines: int, want: str) -> None:
    got, _cards = salvage(client, _never_transplanted(f"nt-{n_lines}", n_lines))
    assert got == want
