"""Card economy and clinician text, read from the rendered cards.

On chart open: the treatment-history card, one options card, and a notice card only when it changes
what to do now (salvage ASCT at a first relapse before the next line starts; restaging while no
relapse FISH is on file and no line has started). Median ≤ 3 cards per chart, never more than 4,
on the shipped fixtures and on the patients written here. Every card's text: summary < 140
characters, detail ≤ 2 500, no internal source ids or chart references, each line once, sources
that open the work (never a search page), markdown with blank lines before bold lead-ins.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest

from cds_service.app import create_app
from cds_service.clinical.state import derive_state
from cds_service.config import Settings
from cds_service.knowledge.loader import load_knowledge
from cds_service.render.patient_view import patient_view_cards
from cds_service.render.state_card import state_card
from tests.clinical_builders import AS_OF, asct, ecog, fish, flatten, med, prog, record, regimen

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "fixtures" / "patients").glob("*.json"))
SERVICES = {"patient-view": "mm-next-line", "order-select": "mm-order-check", "order-sign": "mm-order-sign"}

INTERNAL = re.compile(
    r"\b\d{3}_[0-9a-f]{16}\.txt|(?<![\w-])00[0-4](?![\w-])|\bseeds?\b|Dr\.?\s?Oracle|MM-CDS knowledge base"
    r"|\b(?:MedicationRequest|MedicationStatement|MedicationAdministration|Observation|Procedure|Condition|"
    r"DiagnosticReport)/[A-Za-z0-9]",
    re.I)
SEARCH = re.compile(r"pubmed\.ncbi\.nlm\.nih\.gov/\?|[?&]term=")


def clinician_text(card: dict) -> str:
    parts = [card["summary"], card.get("detail", ""), card["source"].get("label", "")]
    parts += [s["label"] for s in card.get("suggestions", [])]
    parts += [link["label"] for link in card.get("links", [])]
    return "\n".join(parts)


def text_problems(card: dict) -> list[str]:
    """What a clinician would object to in one rendered card (empty = fine)."""
    problems = []
    text = clinician_text(card)
    if len(card["summary"]) >= 140:
        problems.append(f"summary {len(card['summary'])} chars")
    if len(card.get("detail", "")) > 2500:
        problems.append(f"detail {len(card['detail'])} chars")
    for m in INTERNAL.finditer(text):
        problems.append(f"internal id or chart reference: {m.group(0)!r}")
    for url in [card["source"].get("url", "")] + [link["url"] for link in card.get("links", [])]:
        if url and SEARCH.search(url):
            problems.append(f"search page as a source: {url}")
    lines = [re.sub(r"\W+", " ", x).strip().lower() for x in card.get("detail", "").split("\n")]
    seen = set()
    for x in lines:
        if len(x) > 25 and x in seen:
            problems.append(f"line repeated: {x[:60]!r}")
        seen.add(x)
    detail = card.get("detail", "").split("\n")
    for prev, line in zip(detail, detail[1:], strict=False):
        if line.startswith("**") and prev.strip() and not prev.startswith(("- ", "|")) and not prev.endswith("  "):
            problems.append(f"bold lead-in runs into the line before: {line[:40]!r}")
    for s in card.get("suggestions", []):
        for a in s["actions"]:
            res = a.get("resource") or {}
            if a["type"] == "create" and res.get("resourceType") == "MedicationRequest":
                concept = res.get("medicationCodeableConcept") or {}
                if not (concept.get("text") and (concept.get("coding") or [{}])[0].get("code")):
                    problems.append(f"created order without code and text: {s['label']}")
    return problems


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = tmp_path_factory.mktemp("economy") / "store.db"
    return create_app({"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{db}"}).test_client()


def run_fixture(client, path: Path) -> tuple[str, list[dict]]:
    body = json.loads(path.read_text())
    resp = client.post(f"/cds-services/{SERVICES[body['hook']]}", json=body)
    assert resp.status_code == 200, path.name
    return body["hook"], resp.get_json()["cards"]


def test_shipped_fixtures_card_economy_and_text(client):
    counts = []
    problems = []
    for path in FIXTURES:
        hook, cards = run_fixture(client, path)
        if hook == "patient-view" and cards:
            counts.append(len(cards))
            assert len(cards) <= 4, (path.name, [c["summary"] for c in cards])
            kinds = [c["extension"]["org.mmcds.card"]["kind"] for c in cards]
            assert kinds.count("state") == 1 and kinds.count("options") <= 1, path.name
        for c in cards:
            problems += [f"{path.name}: {p}" for p in text_problems(c)]
    assert counts and statistics.median(counts) <= 3, sorted(counts)
    assert not problems, "\n".join(problems[:20])


# ----------------------------------------------------------------- patients written for these rules

def _view(rec) -> list[dict]:
    k = load_knowledge()
    st = derive_state(rec, AS_OF)
    return [state_card(st, k), *patient_view_cards(st, k, Settings())]


def _notices(cards) -> list[str]:
    return [c["extension"]["org.mmcds.card"]["code"] for c in cards if c["extension"]["org.mmcds.card"]["kind"] == "notice"]


def _first_relapse_on_maintenance(extra_meds=(), cyto=()):
    """VRd, ASCT, lenalidomide maintenance; progression on maintenance 40 months after ASCT."""
    meds = flatten(regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2021-01-04", "2021-05-03"),
                   med("lenalidomide", "2021-08-02", "2026-09-20", stop="progression"), *extra_meds)
    return record(meds, progressions=[prog("2026-09-14")], transplants=[asct("2021-06-01")],
                  ecogs=[ecog("2026-09-01", 1)], cyto=list(cyto), birth="1962-03-03")


NEW_PATIENTS = {
    # first relapse, decision open, no FISH since: salvage ASCT and restage are their own cards
    "first-relapse-open": (_first_relapse_on_maintenance(), {"salvage-asct-candidate", "restage-at-relapse"}),
    # relapse FISH on file (a week after progression): restaging is done
    "first-relapse-fish-done": (_first_relapse_on_maintenance(cyto=[fish("del(17p)", False, "2026-09-21"),
                                                                   fish("1q-gain", True, "2026-09-21")]),
                                {"salvage-asct-candidate"}),
    # the next line began after the progression: neither notice is a card any more
    "next-line-started": (_first_relapse_on_maintenance(
        extra_meds=[regimen(["pomalidomide", "bortezomib", "dexamethasone"], "2026-10-05", None, ongoing=True)]), set()),
    # third relapse: salvage ASCT is a line of the history card, not a card
    "third-relapse": (record(flatten(
        regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2019-01-07", "2019-05-06"),
        med("lenalidomide", "2019-08-05", "2021-06-01", stop="progression"),
        regimen(["daratumumab", "pomalidomide", "dexamethasone"], "2021-06-14", "2023-09-01", stop="progression"),
        regimen(["carfilzomib", "cyclophosphamide", "dexamethasone"], "2023-09-18", "2026-08-30", stop="progression")),
        progressions=[prog("2021-05-20"), prog("2023-08-20"), prog("2026-08-25")], transplants=[asct("2019-06-10")],
        cyto=[fish("t(4;14)", True, "2019-01-02"), fish("del(17p)", False, "2026-09-02")], birth="1958-01-01"),
        set()),
    # fifth line, penta-refractory, never restaged: at most the restage card
    "fifth-line-penta": (record(flatten(
        regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2017-01-02", "2017-12-01", stop="progression"),
        regimen(["daratumumab", "pomalidomide", "dexamethasone"], "2018-01-08", "2019-06-01", stop="progression"),
        regimen(["carfilzomib", "dexamethasone"], "2019-06-17", "2020-11-01", stop="progression"),
        regimen(["isatuximab", "carfilzomib", "dexamethasone"], "2020-11-16", "2022-01-03", stop="progression"),
        regimen(["selinexor", "bortezomib", "dexamethasone"], "2022-01-17", "2026-09-01", stop="progression")),
        progressions=[prog("2017-11-20"), prog("2019-05-20"), prog("2020-10-20"), prog("2021-12-20"),
                      prog("2026-08-28")], birth="1955-02-02"), {"restage-at-relapse"}),
    # not relapsed, on first line
    "first-line-ongoing": (record(flatten(regimen(["daratumumab", "bortezomib", "lenalidomide", "dexamethasone"],
                                                  "2026-06-01", None, ongoing=True))), set()),
}


@pytest.mark.parametrize("name", list(NEW_PATIENTS))
def test_new_patients_card_economy_and_text(name):
    rec, expected_notice_cards = NEW_PATIENTS[name]
    cards = _view(rec)
    assert len(cards) <= 4, [c["summary"] for c in cards]
    assert set(_notices(cards)) == expected_notice_cards, [c["summary"] for c in cards]
    for c in cards:
        assert not text_problems(c), (name, text_problems(c))


def test_new_patients_median_cards():
    counts = [len(_view(rec)) for rec, _ in NEW_PATIENTS.values()]
    assert statistics.median(counts) <= 3 and max(counts) <= 4, counts


def test_folded_notices_are_lines_of_their_card():
    """High-risk FISH and a short response change the plan but not today's order: lines, not cards."""
    rec = _first_relapse_on_maintenance(cyto=[fish("del(17p)", True, "2026-09-21")])
    cards = _view(rec)
    assert "high-risk-cytogenetics" not in _notices(cards)
    options = next(c for c in cards if c["extension"]["org.mmcds.card"]["kind"] == "options")
    assert "continuous therapy" in options["detail"]
    assert "high-risk-cytogenetics" in options["extension"]["org.mmcds.card"]["notices"]


@pytest.mark.parametrize("refractory,expect,refuse", [
    # lenalidomide only: switch to a PI with an anti-CD38 antibody
    (("lenalidomide",), ["proteasome inhibitor", "bortezomib", "anti-CD38 antibody"], []),
    # PIs and daratumumab failed too: neither a PI nor an anti-CD38 antibody is advised
    (("lenalidomide", "bortezomib", "carfilzomib", "ixazomib", "daratumumab"),
     ["new classes"], ["switch to a proteasome inhibitor", "with an anti-CD38 antibody",
                       "proteasome inhibitor with a monoclonal antibody"]),
    # daratumumab failed, PIs open: a PI, but not with an anti-CD38 antibody
    (("lenalidomide", "daratumumab"), ["proteasome inhibitor", "no anti-CD38 antibody"],
     ["with an anti-CD38 antibody (", "IsaPd"]),
])
def test_len_maintenance_pitfall_fits_what_the_patient_is_not_refractory_to(refractory, expect, refuse):
    from rules_builders import draft, knowledge
    from rules_builders import record as rec_
    from rules_builders import settings as settings_
    from rules_builders import state as state_

    from cds_service.render.orders import order_cards
    s = state_(lines=2, refractory=refractory, progressed_on_len_maintenance=True)
    cards = order_cards(s, [draft("MedicationRequest/l", ["lenalidomide"])], knowledge(), settings_(),
                        "order-select", record=rec_())
    card = next(c for c in cards if c["extension"]["org.mmcds.card"]["code"] == "refractory-agent-ordered")
    assert "pitfall" in card["detail"].lower()
    for phrase in expect:
        assert phrase in card["detail"], (phrase, card["detail"])
    for phrase in refuse:
        assert phrase not in card["detail"], (phrase, card["detail"])
    assert not text_problems(card), text_problems(card)
