"""The specialist's builders write what they mean: each request passes the service's request
validation, and the record reader sees the drugs, CAR-T infusions, FISH results and light chains
the story describes. These pass on any version of the service: when a specialist case fails, the
reason is the clinical rule, not a malformed patient."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cds_service.pipeline import validate_request
from cds_service.record.normalise import build_record
from tests.record_helpers import knowledge
from tests.specialist import builders as sb
from tests.specialist import stories

AS_OF = date(2026, 11, 1)
K = knowledge()


def read(p: sb.Patient) -> Any:
    return build_record(p.all_resources(), AS_OF, K)


def agents_of(p: sb.Patient) -> set[str]:
    return {m.agent for m in read(p).medications if m.agent}


STORIES = {
    "len-maintenance": (stories.len_maintenance_relapse, {"bortezomib", "lenalidomide", "dexamethasone", "melphalan"}),
    "tcr-non-penta": (stories.tcr_non_penta, {"bortezomib", "lenalidomide", "dexamethasone", "melphalan", "daratumumab",
                                              "pomalidomide", "cyclophosphamide", "ixazomib"}),
    "elranatamab": (lambda enc: stories.elranatamab_failure(enc, brand=False),
                    {"daratumumab", "carfilzomib", "pomalidomide", "ixazomib", "elranatamab", "lenalidomide"}),
    "elranatamab-brand": (lambda enc: stories.elranatamab_failure(enc, brand=True), {"elranatamab"}),
}


@pytest.mark.parametrize("enc", ["statement", "request", "mar"])
@pytest.mark.parametrize("story", list(STORIES))
def test_story_reads_as_written(story: str, enc: str) -> None:
    build, expected = STORIES[story]
    p = build(enc)
    for hook, service in (("patient-view", "mm-next-line"), ("order-select", "mm-order-check")):
        validate_request(service, p.cds_request(hook, drafts=[sb.draft(p.pid, "d1", sb.rx("dexamethasone"))]))
    got = agents_of(p)
    assert expected <= got, f"{story}/{enc}: missing {expected - got}"
    record = read(p)
    assert record.progressions, "the story's progression events are read"
    assert record.transplants and record.transplants[0].kind == "autologous"


@pytest.mark.parametrize("enc", ["procedure", "administration", "statement"])
@pytest.mark.parametrize("product", ["ciltacabtagene-autoleucel", "idecabtagene-vicleucel"])
def test_car_t_encodings_read_as_the_product(product: str, enc: str) -> None:
    p = sb.Patient("b-cart")
    sb.car_t(p, product, "2025-01-15", enc)
    uses = [m for m in read(p).medications if m.agent == product]
    assert uses and uses[0].start == date(2025, 1, 15), [(m.agent, m.start) for m in read(p).medications]


def test_draft_codes_read_as_the_agents() -> None:
    assert sb.agents_in_order(sb.draft("x", "d", sb.rx(sb.TECLISTAMAB_PRODUCT, display="teclistamab-cqyv [Tecvayli]"))) \
        == {"teclistamab"}
    assert sb.agents_in_order(sb.draft("x", "d", sb.rx("1806937"))) == {"carfilzomib"}
    assert sb.agents_in_order(sb.draft("x", "d", sb.rx("1429367"))) == {"lenalidomide"}
    assert sb.regimen_agents("PVd") == {"pomalidomide", "bortezomib", "dexamethasone"}
    assert sb.regimen_agents("IsaKd") == {"isatuximab", "carfilzomib", "dexamethasone"}


def test_coded_fish_is_read_with_clonal_fraction() -> None:
    p = sb.Patient("b-fish")
    sb.fish_coded(p, "2021-01-12", {"del(17p)": (True, 60.0), "t(4;14)": (False, None)})
    cyto = {(c.abnormality, c.present) for c in read(p).cytogenetics}
    assert ("del(17p)", True) in cyto and ("t(4;14)", False) in cyto, cyto


@pytest.mark.parametrize("unit", ["mg/L", "mg/dL"])
def test_flc_values_are_read(unit: str) -> None:
    p = sb.Patient("b-flc")
    sb.flc(p, "2026-08-03", "kappa", 130.0, unit)
    sb.flc(p, "2026-08-03", "lambda", 10.0, unit)
    assert len(read(p).flc) == 2, read(p).flc


def test_undated_statement_has_only_date_asserted() -> None:
    p = sb.Patient("b-undated")
    p.statement(sb.concept("bortezomib"), None, status="completed", dateAsserted="2022-03-01")
    res = p.resources[-1]
    assert "effectivePeriod" not in res and "effectiveDateTime" not in res and res["dateAsserted"] == "2022-03-01"
    assert agents_of(p) == {"bortezomib"}


DRAFTS = {
    "teclistamab": sb.rx(sb.TECLISTAMAB_PRODUCT, display="teclistamab-cqyv [Tecvayli]"),
    "teclistamab ": sb.text_cc("Tecvayli (teclistamab-cqyv) 0.06 mg/kg SC step-up day 1"),
    "talquetamab": sb.rx("talquetamab", text="talquetamab-tgvs 0.01 mg/kg SC step-up"),
    "carfilzomib": sb.rx("1806937"),
    "lenalidomide": sb.rx("1429367"),
    "daratumumab": sb.rx("2375141"),
    "bortezomib": sb.rx("1804997"),
    "venetoclax": sb.rx("venetoclax", text="venetoclax 800 mg"),
    "venetoclax ": sb.text_cc("Venclexta 100 mg tablet x8"),
    "bendamustine": sb.rx("bendamustine", text="bendamustine 90 mg/m2 IV"),
    "bendamustine ": sb.text_cc("Bendeka (bendamustine HCl) 90 mg/m2 IV days 1-2"),
    "dexamethasone": sb.rx("dexamethasone"),
}


@pytest.mark.parametrize("agent", list(DRAFTS))
def test_draft_orders_read_as_the_agent_by_the_service(agent: str) -> None:
    """The service's own draft reader sees the agent each specialist draft names."""
    from cds_service.record.drafts import read_draft_orders

    ctx = {"draftOrders": {"resourceType": "Bundle", "type": "collection",
                           "entry": [{"resource": sb.draft("p", "d1", DRAFTS[agent])}]}}
    orders = read_draft_orders(ctx, K, "order-sign")
    assert orders and agent.strip() in orders[0].agents, [(o.display, o.agents) for o in orders]
