"""`python -m cds_service evaluate`: same pipeline, no server; exit 2 with one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from cds_service.hooks import schemas
from tests.builders import hook_request, len_refractory_patient
from tests.conftest import ROOT, SPEC_FIXTURES


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cds_service", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120, env={"PATH": "/usr/bin:/bin", "MMCDS_LOG_LEVEL": "ERROR"})


def test_evaluate_prints_a_schema_valid_response(tmp_path):
    request = tmp_path / "req.json"
    request.write_text(json.dumps(hook_request("patient-view", len_refractory_patient())))
    out = run_cli("evaluate", str(request), "--as-of", "2026-11-01", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert schemas.check_response(body) == []
    assert any(c["extension"]["org.mmcds.card"]["kind"] == "state" for c in body["cards"])


def test_evaluate_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (["evaluate", str(bad)], ["evaluate", str(tmp_path / "missing.json")],
                 ["evaluate", str(SPEC_FIXTURES / "order-select-request.json")]):
        out = run_cli(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error:")
