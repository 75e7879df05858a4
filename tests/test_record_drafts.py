"""context.draftOrders → DraftOrder, whatever shape the EHR sends."""

from __future__ import annotations

from record_helpers import RXNORM, cc, knowledge

from cds_service.record.drafts import read_draft_orders


def bundle(*resources):
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def mr(rid, concept=None, **extra):
    r = {"resourceType": "MedicationRequest", "status": "draft", "intent": "order", **extra}
    if rid is not None:
        r["id"] = rid
    if concept is not None:
        r["medicationCodeableConcept"] = concept
    return r


def test_order_select_selections_and_refs():
    ctx = {"draftOrders": bundle(mr("1", cc("342369", RXNORM)), mr("2", cc(text="Aspirin 81 mg")), mr(None, cc(text="Xpovio"))),
           "selections": ["MedicationRequest/1"]}
    got = read_draft_orders(ctx, knowledge(), "order-select")
    assert [(o.ref, o.agents, o.category, o.selected) for o in got] == [
        ("MedicationRequest/1", ["lenalidomide"], None, True),
        ("MedicationRequest/2", [], "antithrombotic", False),
        ("MedicationRequest/#2", ["selinexor"], None, False)]


def test_no_selections_means_all_selected_and_order_sign_always_selected():
    ctx = {"draftOrders": bundle(mr("1", cc(text="Kyprolis")), mr("2", cc(text="dexamethasone")))}
    assert all(o.selected for o in read_draft_orders(ctx, knowledge(), "order-select"))
    ctx["selections"] = ["MedicationRequest/1"]
    assert all(o.selected for o in read_draft_orders(ctx, knowledge(), "order-sign"))


def test_tolerated_shapes():
    ctx = {"draftOrders": {"resourceType": "Bundle", "entry": {"resource": mr("9", cc(text="Darzalex Faspro"))}}}
    (o,) = read_draft_orders(ctx, knowledge(), "order-sign")
    assert o.agents == ["daratumumab"] and o.route == "sc"
    ctx = {"draftOrders": [mr("a", cc(text="Velcade"), dosageInstruction={"route": {"text": "IV"}})]}
    (o,) = read_draft_orders(ctx, knowledge(), "order-sign")
    assert o.agents == ["bortezomib"] and o.route == "iv"
    ctx = {"draftOrders": mr("b")}  # single resource, no medication yet
    (o,) = read_draft_orders(ctx, knowledge(), "order-sign")
    assert o.ref == "MedicationRequest/b" and o.agents == []
    ctx = {"draftOrders": bundle({"resourceType": "MedicationOrder", "id": "d2",
                                  "medicationCodeableConcept": cc("1369713", RXNORM)})}
    (o,) = read_draft_orders(ctx, knowledge(), "order-sign")
    assert o.resource_type == "MedicationOrder" and o.agents == ["pomalidomide"]


def test_contained_and_bundled_medication_references():
    ctx = {"draftOrders": bundle(
        {"resourceType": "MedicationRequest", "id": "x", "medicationReference": {"reference": "Medication/m1"}},
        {"resourceType": "Medication", "id": "m1", "code": cc(text="venetoclax 100 mg tablet")},
        {"resourceType": "MedicationRequest", "id": "y", "medicationReference": {"reference": "#c"},
         "contained": [{"resourceType": "Medication", "id": "c", "code": cc("1747556", RXNORM)}]})}
    got = read_draft_orders(ctx, knowledge(), "order-sign")
    assert [(o.ref, o.agents) for o in got] == [("MedicationRequest/x", ["venetoclax"]), ("MedicationRequest/y", ["venetoclax"])]


def test_fish_panel_service_request_and_other_resources():
    ctx = {"draftOrders": bundle(
        {"resourceType": "ServiceRequest", "id": "s1", "code": cc(text="Plasma cell myeloma FISH panel")},
        {"resourceType": "ServiceRequest", "id": "s2", "code": cc("X", "urn:lab", "Fluorescence in situ hybridization, bone marrow")},
        {"resourceType": "ServiceRequest", "id": "s3", "code": cc(text="Cytogenetic analysis, bone marrow")},
        {"resourceType": "ServiceRequest", "id": "s4", "code": cc(text="CBC with differential")},
        {"resourceType": "NutritionOrder", "id": "n1", "status": "draft"},
        {"resourceType": "ServiceRequest", "id": "s5", "code": cc(text="Daratumumab SC administration")})}
    got = {o.ref: (o.is_fish_panel, o.agents) for o in read_draft_orders(ctx, knowledge(), "order-sign")}
    assert got == {"ServiceRequest/s1": (True, []), "ServiceRequest/s2": (True, []), "ServiceRequest/s3": (True, []),
                   "ServiceRequest/s4": (False, []), "NutritionOrder/n1": (False, []),
                   "ServiceRequest/s5": (False, ["daratumumab"])}


def test_high_dose_steroid_draft():
    ctx = {"draftOrders": bundle(
        mr("1", cc(text="dexamethasone 4 mg tablet"), dosageInstruction=[{"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg"}}],
                                                                           "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]),
        mr("2", cc(text="dexamethasone"), dosageInstruction=[{"text": "4 mg PO once"}]))}
    got = {o.ref: o.high_dose_steroid for o in read_draft_orders(ctx, knowledge(), "order-select")}
    assert got == {"MedicationRequest/1": True, "MedicationRequest/2": False}


def test_garbage_context():
    for ctx in [None, {}, {"draftOrders": "x"}, {"draftOrders": {"entry": [None, 1, {"resource": "x"}]}},
                {"draftOrders": bundle({"resourceType": "MedicationRequest", "id": 5, "medicationCodeableConcept": []})},
                {"draftOrders": bundle(mr("1", cc(text="Revlimid"))), "selections": "MedicationRequest/1"}]:
        out = read_draft_orders(ctx, knowledge(), "order-select")  # type: ignore[arg-type]
        assert isinstance(out, list)
    out = read_draft_orders({"draftOrders": bundle(mr("1", cc(text="Revlimid"))), "selections": "MedicationRequest/1"},
                            knowledge(), "order-select")
    assert out[0].selected and out[0].agents == ["lenalidomide"]


def test_medication_by_full_url_in_the_draft_bundle():
    ctx = {"draftOrders": {"resourceType": "Bundle", "entry": [
        {"fullUrl": "urn:uuid:11111111-2222", "resource": {"resourceType": "Medication", "code": cc(text="Pomalyst 4 mg")}},
        {"fullUrl": "urn:uuid:3333", "resource": {"resourceType": "MedicationRequest", "status": "draft",
                                                   "medicationReference": {"reference": "urn:uuid:11111111-2222"}}}]}}
    (o,) = read_draft_orders(ctx, knowledge(), "order-sign")
    assert (o.ref, o.agents) == ("MedicationRequest/#0", ["pomalidomide"])
