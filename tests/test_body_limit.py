"""The body limit: big enough for the largest chart the templates ask for, and a 413 that says how to raise it."""

from __future__ import annotations

import orjson

from bench import charts, patients
from cds_service.config import Settings


def test_413_names_the_limit_and_the_setting_that_raises_it(app_config):
    from cds_service.app import create_app

    app = create_app({**app_config, "MAX_BODY_BYTES": 1000})
    resp = app.test_client().post("/cds-services/mm-next-line", data=b"{" + b" " * 5000 + b"}",
                                  content_type="application/json")
    assert resp.status_code == 413
    detail = resp.get_json()["detail"]
    assert "1000 bytes" in detail and "MMCDS_MAX_BODY_BYTES" in detail


def test_default_limit_fits_fifteen_years_of_treatment_with_margin():
    """15 years of treatment, as the templates ask for it (Observations by code, every dose and
    supportive-care administration), plus four routine analytes per draw in case the mappings grow
    to read them: the default still leaves room."""
    _bare, full = charts.long_chart(years=15)
    kept = charts.filtered(full)
    routine = [r for r in full if r["id"].startswith("nobs") and r["code"]["text"] in
               ("Hemoglobin", "Sodium", "Potassium", "Glucose")]
    body = orjson.dumps(patients.hook_request("bench-long", patients.prefetch_for(kept + routine)))
    assert len(body) * 1.5 < Settings().max_body_bytes
