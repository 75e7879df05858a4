"""The operator's commands: --version, evaluate --offline, jwks, validate-knowledge, knowledge-diff,
KNOWLEDGE_DIR; and the HTTP answers an integrator meets first (GET on a service path, a prefetch of
another patient)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cds_service import __version__
from cds_service.app import create_app
from cds_service.cli import main
from cds_service.conformance import Signer
from cds_service.security.jwk import jwk_thumbprint
from cds_service.security.jwt_auth import JwtVerifier
from tests.builders import hook_request, len_refractory_patient
from tests.jwt_helpers import TestKey

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "fixtures" / "spec" / "patient-view-request.json"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cds_service", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "MMCDS_LOG_LEVEL": "ERROR", **(env or {})})


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"mmcds {__version__}"


def test_evaluate_spec_example_never_reaches_the_network():
    started = time.monotonic()
    offline = run_cli("evaluate", "--offline", str(SPEC))
    assert offline.returncode == 2 and offline.stderr.startswith("error: 412")
    assert "no fhirServer" in offline.stderr
    # without --offline the example's token is not sent to its internet server: refused, no fetch
    online = run_cli("evaluate", str(SPEC), env={"MMCDS_FHIR_TIMEOUT_S": "30"})
    assert online.returncode == 2 and "403" in online.stderr and "--offline" in online.stderr
    assert time.monotonic() - started < 20  # a network attempt would wait on the 30 s timeout


def _pem(key: TestKey, tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / f"{key.kid}.pem"
    path.write_bytes(key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return path


@pytest.mark.parametrize("kind", ["ec384", "ec256", "rsa"])
def test_jwks_command_writes_a_key_set_the_verifier_and_check_agree_on(tmp_path, kind, capsys):
    key = TestKey(kind, "k")
    pem = _pem(key, tmp_path)
    out = tmp_path / "jwks.json"
    assert main(["jwks", str(pem), "--out", str(out)]) == 0
    assert "kid" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    (jwk,) = doc["keys"]
    assert jwk["kid"] == jwk_thumbprint(key.public) and "d" not in jwk and jwk["use"] == "sig"
    # the conformance harness signs with the same kid by default; the verifier finds the key by it
    signer = Signer(pem.read_bytes(), "https://ehr.example.org")
    assert signer.kid == jwk["kid"]
    settings = type("S", (), {"trusted_issuers": {"https://ehr.example.org": str(out)}, "jwt_leeway_s": 30})()

    class Jti:
        def claim_jti(self, *_a):
            return True

    aud = "https://cds.example.org/cds-services/mm-next-line"
    claims = JwtVerifier(settings, Jti()).verify(f"Bearer {signer.token(aud)}", [aud])
    assert claims["iss"] == "https://ehr.example.org"
    assert main(["jwks", str(pem)]) == 0 and json.loads(capsys.readouterr().out)["keys"][0]["kid"] == jwk["kid"]


def test_jwks_command_refuses_what_is_not_a_key(tmp_path):
    bad = tmp_path / "x.pem"
    bad.write_text("not a key")
    out = run_cli("jwks", str(bad))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stderr.startswith("error:")


def _knowledge_copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    for part in ("mappings", "cards"):
        shutil.copytree(ROOT / part, folder / part)
    return folder


def test_validate_knowledge(tmp_path):
    good = _knowledge_copy(tmp_path, "good")
    assert main(["validate-knowledge", str(good)]) == 0
    (good / "cards" / "settings.yaml").write_text("settings: 5\n")
    out = run_cli("validate-knowledge", str(good))
    assert out.returncode == 4 and "settings.yaml" in out.stderr and out.stderr.count("\n") == 1


def test_knowledge_diff_names_the_patients_whose_cards_change(tmp_path, capsys):
    old, new = _knowledge_copy(tmp_path, "old"), _knowledge_copy(tmp_path, "new")
    assert main(["knowledge-diff", str(old), str(new), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["changed"] == [] and same["patients"] > 5
    # a reviewed change: every grade of one regimen moved (a data edit, as a clinician would make it)
    regimens = new / "cards" / "regimens.yaml"
    data = yaml.safe_load(regimens.read_text())
    assert data["regimens"]["DRd"]["grades"]["first-relapse-len-sensitive"] == "1A"
    data["regimens"]["DRd"]["grades"]["first-relapse-len-sensitive"] = "2B"
    regimens.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert main(["knowledge-diff", str(old), str(new), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"], "a grade change must show on the options card of a first-relapse patient"
    assert all(c["changed"] and all(k.startswith("options") for k in c["changed"]) for c in report["changed"])
    assert main(["knowledge-diff", str(old), str(new)]) == 0
    assert "shipped patients' cards change" in capsys.readouterr().out


def test_knowledge_dir_serves_a_hospitals_reviewed_knowledge(tmp_path):
    folder = _knowledge_copy(tmp_path, "hospital")
    meta = folder / "cards" / "knowledge.yaml"
    meta.write_text(meta.read_text().replace('knowledgeVersion: "', 'knowledgeVersion: "2099.1.0" #', 1))
    app = create_app({"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{tmp_path / 'k.sqlite3'}",
                      "DATA_DIR": str(tmp_path), "KNOWLEDGE_DIR": str(folder), "WARMUP": "false",
                      "AS_OF_DATE": "2026-11-01"})
    client = app.test_client()
    version = client.get("/readyz").get_json()["knowledgeVersion"]
    assert version == "2099.1.0"
    cards = client.post("/cds-services/mm-next-line",
                        json=hook_request("patient-view", len_refractory_patient())).get_json()["cards"]
    assert {c["extension"]["org.mmcds.card"]["knowledgeVersion"] for c in cards} == {version}


@pytest.fixture
def client(tmp_path):
    return create_app({"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{tmp_path / 'h.sqlite3'}",
                       "DATA_DIR": str(tmp_path), "WARMUP": "false", "AS_OF_DATE": "2026-11-01"}).test_client()


def test_get_on_a_service_path(client):
    for path in ("/cds-services/unknown", "/cds-services/unknown/feedback"):
        resp = client.get(path)
        assert resp.status_code == 404 and resp.get_json()["error"] == "unknown service"
    resp = client.get("/cds-services/mm-next-line")
    assert resp.status_code == 405 and set(resp.get_json()) == {"error", "detail"}


def test_prefetch_of_another_patient_is_400_and_logged(client, caplog):
    body = hook_request("patient-view", len_refractory_patient("p1"), pid="someone-else")
    with caplog.at_level(logging.WARNING):
        resp = client.post("/cds-services/mm-next-line", json=body)
    assert resp.status_code == 400, resp.data
    assert resp.get_json()["error"] == "patient mismatch"
    logged = [r for r in caplog.records if r.getMessage() == "resources of another patient dropped"]
    assert logged and "someone-else" not in caplog.text and "p1" not in resp.get_json()["detail"]
