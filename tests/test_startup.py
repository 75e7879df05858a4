"""Starting the service: nothing of a running instance is touched before the port is bound; start-up
failures are one line with a distinct exit code (startup.py); gunicorn's lines are JSON and a
`listening on` line says where the service is; JWT mode without a usable issuer does not start
(and an app in that state is not ready); SECRET_KEY is required, real and shared where replicas
share a store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cds_service.app import create_app
from cds_service.startup import StartupError
from tests.jwt_helpers import TestKey, jwks
from tests.servers import ROOT, ServedApp, base_env, free_port

pytestmark = pytest.mark.slow
GOOD_SECRET = "0123456789abcdef" * 4


def serve(tmp_path: Path, env: dict[str, str], *args: str, port: int | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cds_service", "serve", "--port", str(port or free_port()), "--workers", "1", *args]
    return subprocess.run(cmd, cwd=ROOT, env=base_env(tmp_path, {"MMCDS_WARMUP": "false", **env}),
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-1500:])
    # log lines before it are JSON objects; the error itself is the one plain line, no traceback
    plain = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(plain) == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    err = plain[0]
    assert "error:" in err
    for word in words:
        assert word in err, err
    return err


def test_second_serve_on_a_busy_port_leaves_the_running_instance_alone(tmp_path):
    with ServedApp(tmp_path, workers=1) as srv:
        assert requests.post(srv.url("/cds-services/unknown-service"), json={}, timeout=10).status_code == 404
        before = requests.get(srv.url("/metrics"), timeout=10).text
        assert "mmcds_hook_requests_total" in before
        files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "prometheus").rglob("*.db"))
        assert files
        second = serve(tmp_path, {}, port=srv.port)  # same data folder, same port
        one_line_error(second, 6, "already in use")
        assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "prometheus").rglob("*.db")) == files
        after = requests.get(srv.url("/metrics"), timeout=10).text
        line = next(ln for ln in after.splitlines() if ln.startswith('mmcds_hook_requests_total{service="unknown"'))
        assert line in before.splitlines() or line.endswith(" 1.0")
        # a second instance on another port, same data folder: its own metrics folder, the first's intact
        with ServedApp(tmp_path, workers=1) as other:
            assert requests.get(other.url("/healthz"), timeout=10).status_code == 200
            assert len([d for d in (tmp_path / "prometheus").iterdir() if d.is_dir()]) == 2
        assert "mmcds_hook_requests_total" in requests.get(srv.url("/metrics"), timeout=10).text


def test_log_lines_are_json_with_a_listening_line(tmp_path):
    with ServedApp(tmp_path, workers=1) as srv:
        assert requests.get(srv.url("/healthz"), timeout=10).status_code == 200
        port = srv.port
    lines = [ln for ln in (tmp_path / "serve.stderr.log").read_text().splitlines() if ln.strip()]
    parsed = [json.loads(ln) for ln in lines]  # every line, gunicorn's included, is one JSON object
    assert any(p["logger"].startswith("gunicorn") for p in parsed)
    assert any(p["msg"] == f"listening on http://127.0.0.1:{port}" for p in parsed)


@pytest.mark.parametrize(("env", "code", "words"), [
    pytest.param({"MMCDS_TRUSTED_ISSUERS": "{not json", "MMCDS_AUTH_MODE": "jwt"}, 3, ["TRUSTED_ISSUERS"],
                 id="bad-trusted-issuers-json"),
    pytest.param({"MMCDS_AUTH_MODE": "jwt"}, 3, ["TRUSTED_ISSUERS is empty"], id="jwt-without-issuer"),
    pytest.param({"MMCDS_DATABASE_URL": "postgresql+psycopg://nobody:pw-not-shown@127.0.0.1:1/none",
                  "MMCDS_SECRET_KEY": GOOD_SECRET}, 5, ["unreachable", "127.0.0.1:1"], id="database-unreachable"),
    pytest.param({"MMCDS_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"}, 3, ["SECRET_KEY is required"],
                 id="postgres-without-secret-key"),
    pytest.param({"MMCDS_SECRET_KEY": "REPLACE-ME-with-64-random-hex-characters"}, 3, ["placeholder"],
                 id="placeholder-secret-key"),
])
def test_start_up_failures_are_one_line_with_distinct_exit_codes(tmp_path, env, code, words):
    err = one_line_error(serve(tmp_path, env), code, *words)
    assert "pw-not-shown" not in err


def test_jwt_with_an_unreadable_jwks_does_not_start(tmp_path):
    env = {"MMCDS_AUTH_MODE": "jwt", "MMCDS_TRUSTED_ISSUERS": json.dumps({"https://ehr.example.org":
                                                                        str(tmp_path / "missing.json")})}
    one_line_error(serve(tmp_path, env), 3, "no trusted issuer's key set could be read", "ehr.example.org")


def test_broken_knowledge_under_evaluate_and_serve(tmp_path):
    folder = tmp_path / "knowledge"
    for part in ("mappings", "cards"):
        (folder / part).mkdir(parents=True)
        for src in (ROOT / part).iterdir():
            (folder / part / src.name).write_bytes(src.read_bytes())
    (folder / "cards" / "regimens.yaml").write_text("regimens: [not: {a: valid: file\n")
    request = ROOT / "fixtures" / "patients" / sorted(p.name for p in (ROOT / "fixtures" / "patients").glob("*.json"))[0]
    env = base_env(tmp_path, {"MMCDS_KNOWLEDGE_DIR": str(folder)})
    proc = subprocess.run([sys.executable, "-m", "cds_service", "evaluate", str(request)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    one_line_error(proc, 4, "regimens.yaml")
    one_line_error(serve(tmp_path, {"MMCDS_KNOWLEDGE_DIR": str(folder)}), 4, "regimens.yaml")


def _app(tmp_path: Path, **config):
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}", "DATA_DIR": str(tmp_path),
                       "WARMUP": "false", **config})


def test_replicas_with_different_secret_keys_refuse_to_start(tmp_path):
    _app(tmp_path, SECRET_KEY=GOOD_SECRET)
    _app(tmp_path, SECRET_KEY=GOOD_SECRET)  # the same key again: fine
    with pytest.raises(StartupError) as info:
        _app(tmp_path, SECRET_KEY="f" * 64)
    assert info.value.code == 3 and "differs" in info.value.message
    from cds_service.store.db import migrate  # a rotation: migrate with the new key records it

    migrate(f"sqlite:///{tmp_path / 'shared.sqlite3'}", secret_key="f" * 64)
    _app(tmp_path, SECRET_KEY="f" * 64)


def test_readyz_is_503_without_a_usable_issuer(tmp_path):
    key = TestKey("ec384", "k")
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(key)))
    for issuers, status in (({}, 503), ({"https://ehr.example.org": str(tmp_path / "missing.json")}, 503),
                            ({"https://ehr.example.org": str(tmp_path / "jwks.json")}, 200)):
        client = _app(tmp_path, AUTH_MODE="jwt", TRUSTED_ISSUERS=issuers).test_client()
        resp = client.get("/readyz")
        assert resp.status_code == status, resp.data
        assert (resp.get_json()["auth"] == "jwt") == (status == 200)


def test_gunicorn_with_the_conf_file_fails_in_one_line_too(tmp_path):
    env = base_env(tmp_path, {"MMCDS_BIND": f"127.0.0.1:{free_port()}", "MMCDS_SECRET_KEY": GOOD_SECRET,
                              "MMCDS_DATABASE_URL": "postgresql+psycopg://u:pw-not-shown@127.0.0.1:1/x"})
    proc = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                           "cds_service.app:create_app()"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    err = one_line_error(proc, 5, "unreachable")
    assert "pw-not-shown" not in err
    assert not [d for d in (tmp_path / "prometheus").iterdir()]  # its metrics folder went with it
