"""The CONTRACT commands of the store, run as a user would: `python -m cds_service feedback-report [--json]`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cds_service.store.db import Store

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, env_db: str | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MMCDS_")}
    if env_db:
        env["MMCDS_DATABASE_URL"] = env_db
    return subprocess.run([sys.executable, "-m", "cds_service", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_migrate_then_feedback_report_commands(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'mmcds.sqlite3'}"
    assert _run("migrate", "--database-url", url).returncode == 0
    store = Store(url)
    store.record_audit(hook_instance="h", service_id="mm-next-line", hook="patient-view",
                       cards=[{"uuid": "c1", "extension": {"org.mmcds.card": {"ruleId": "rule.x", "kind": "state"}}}],
                       input_hash="0" * 64, timings_ms={}, knowledge_version="kv")
    store.record_feedback("mm-next-line", [{"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2026-11-21T05:00Z"},
                                           {"card": "zz", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T05:00Z"}])
    expected = {"total": 2, "byRule": {"rule.x": {"accepted": 1, "overridden": 0}}, "unknownCards": 1}
    contract = ("total", "byRule", "unknownCards")  # the report adds breakdowns beside CONTRACT's keys
    for args in (("feedback-report", "--json"), ("feedback-report", "--json", "--database-url", url)):
        out = _run(*args, env_db=url)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        report["byRule"] = {r: {k: c[k] for k in ("accepted", "overridden")} for r, c in report["byRule"].items()}
        assert {k: report[k] for k in contract} == expected
    table = _run("feedback-report", env_db=url)
    assert table.returncode == 0 and "rule.x" in table.stdout
