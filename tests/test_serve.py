"""`python -m cds_service serve` over real HTTP (gunicorn, several workers), `check` against it, and
the service as `pip install .` gives it, run from another directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import requests

from cds_service.conformance import expected_statuses, load_fixtures
from cds_service.hooks import schemas
from cds_service.hooks.registry import SERVICES
from tests.jwt_helpers import TestKey
from tests.servers import ROOT, ServedApp

pytestmark = pytest.mark.slow

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")


def _patient_fixture() -> Path:
    """A shipped patient-view fixture with complete prefetch (→ 200 with cards)."""
    keys = SERVICES["mm-next-line"].prefetch
    for fx in load_fixtures():
        if fx.path.startswith("patients/") and fx.request["hook"] == "patient-view" \
                and expected_statuses(fx.request, keys) == (200,):
            return ROOT / "fixtures" / fx.path
    raise AssertionError("no complete patient-view fixture shipped")


def _run_check(python: str, base_url: str, *extra: str, cwd: Path = ROOT,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "cds_service", "check", "--base-url", base_url, "--timeout", "30", *extra],
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def _assert_check_passed(proc: subprocess.CompletedProcess[str]) -> int:
    lines = proc.stdout.rstrip("\n").splitlines()
    failures = "\n".join(line for line in lines if line.startswith("FAIL"))
    assert proc.returncode == 0, f"{failures}\n{proc.stderr[-2000:]}"
    m = SUMMARY.match(lines[-1])
    assert m and m.group(2) == "0", lines[-1]
    return int(m.group(1))


def test_serve_answers_over_http(tmp_path: Path) -> None:
    env = {"MMCDS_FHIR_TIMEOUT_S": "2", "MMCDS_FHIR_DEADLINE_S": "4"}
    with ServedApp(tmp_path, env=env, workers=2) as srv:
        health = requests.get(srv.url("/healthz"), timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        ready = requests.get(srv.url("/readyz"), timeout=5)
        assert ready.status_code == 200 and ready.json()["store"] == "ok"

        disc = requests.get(srv.url("/cds-services"), timeout=5)
        assert disc.status_code == 200 and disc.headers["Content-Type"].startswith("application/json")
        assert not schemas.errors("discovery", disc.json())
        assert {s["id"]: s["hook"] for s in disc.json()["services"]} == {
            "mm-next-line": "patient-view", "mm-order-check": "order-select", "mm-order-sign": "order-sign"}

        # The spec's example names a FHIR server on the internet and hands over its token: the token
        # goes only to allowed servers (loopback in development), so a JSON 403, at once, no fetch.
        spec = json.loads((ROOT / "fixtures" / "spec" / "patient-view-request.json").read_text())
        started = time.monotonic()
        resp = requests.post(srv.url("/cds-services/mm-next-line"), json=spec, timeout=30)
        elapsed = time.monotonic() - started
        assert resp.status_code == 403, resp.text[:300]
        body = resp.json()
        assert isinstance(body["error"], str) and isinstance(body["detail"], str)
        assert elapsed < 2 * 4, f"took {elapsed:.1f}s"

        patient = json.loads(_patient_fixture().read_text())
        resp = requests.post(srv.url("/cds-services/mm-next-line"), json=patient, timeout=30)
        assert resp.status_code == 200
        assert not schemas.check_response(resp.json())
        kinds = {c["extension"]["org.mmcds.card"]["kind"] for c in resp.json()["cards"]}
        assert "state" in kinds

        assert requests.get(srv.url("/openapi.json"), timeout=5).json()["openapi"].startswith("3.1")
        assert "mmcds_hook_requests_total" in requests.get(srv.url("/metrics"), timeout=5).text
    logs = srv.logs()
    assert "Traceback" not in logs
    assert patient["context"]["patientId"] not in logs  # no patient identifiers in the logs


def test_serve_and_check_pass_against_each_other(tmp_path: Path) -> None:
    fixtures = load_fixtures()  # before the run: the check reads the folder when it starts
    with ServedApp(tmp_path, workers=2) as srv:
        proc = _run_check(sys.executable, srv.base_url)
    passed = _assert_check_passed(proc)
    assert passed > len(fixtures)
    for fx in fixtures:
        assert f"fixture {fx.path}" in proc.stdout


def test_serve_and_check_in_jwt_mode(tmp_path: Path) -> None:
    """Signed calls through 2 workers (the jti store is shared), unsigned ones refused."""
    from cryptography.hazmat.primitives import serialization

    key = TestKey("ec384", "hospital-test-key")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.jwk()]}))
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    env = {"MMCDS_AUTH_MODE": "jwt",
           "MMCDS_TRUSTED_ISSUERS": json.dumps({"https://ehr.test": str(tmp_path / "jwks.json")})}
    with ServedApp(tmp_path / "data", env=env, workers=2) as srv:
        proc = _run_check(sys.executable, srv.base_url, "--jwt-key", str(pem), "--issuer", "https://ehr.test",
                          "--kid", key.kid)
        unsigned = requests.post(srv.url("/cds-services/mm-next-line"), json={}, timeout=5)
    _assert_check_passed(proc)
    assert "unsigned call → 401" in proc.stdout and "signed ES384" in proc.stdout
    assert unsigned.status_code == 401


def _fresh_venv(tmp_path: Path) -> Path:
    """A venv that sees this environment's dependencies but not the checkout, with `pip install .` in it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_dir = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    # A venv made from a venv inherits the base interpreter's site-packages, not ours: add ours as a
    # plain path (its .pth files, e.g. an editable install of this checkout, are not processed).
    (site_dir / "_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    src = tmp_path / "src"  # a clean copy: no build leftovers or caches from the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", ".ci-venv", "data", "__pycache__",
                                                             "*.egg-info", "build", "dist", ".pytest_cache",
                                                             "node_modules", ".ruff_cache"))
    # --ignore-installed: pip must not "upgrade" (uninstall) the checkout's editable install, which it
    # sees through the .pth above — that would break every later test that imports cds_service.
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(src)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert pip.returncode == 0, pip.stderr[-3000:]
    shutil.rmtree(src)
    return python


def test_pip_install_gives_a_working_service(tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMCDS_", "PYTHONPATH"))}

    where = subprocess.run([str(python), "-c", "import cds_service, cds_service.knowledge.loader as l; "
                            "print(cds_service.__file__); print(l.data_root())"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    module_file, data_root = where.stdout.split()
    assert str(tmp_path / "venv") in module_file and str(ROOT) not in module_file
    assert data_root.endswith("cds_service/_data")

    fixture = elsewhere / "request.json"
    shutil.copy(_patient_fixture(), fixture)
    proc = subprocess.run([str(python), "-m", "cds_service", "evaluate", "request.json"],
                          capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    response = json.loads(proc.stdout)
    assert not schemas.check_response(response)
    assert response["cards"]

    # The installed package serves, and its own `check` (fixtures read from the wheel) passes.
    with ServedApp(tmp_path / "data", python=str(python), cwd=elsewhere, workers=2, source_on_path=False) as srv:
        check = _run_check(str(python), srv.base_url, cwd=elsewhere, env=env)
    passed = _assert_check_passed(check)
    assert passed > len(load_fixtures())
