"""The deployment files say what the README promises: parsed and checked, not just present."""

from __future__ import annotations

import json
import os
import runpy
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.config import KEYS, load_settings
from cds_service.server import gunicorn_options

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                doc["__file__"] = path.name
                docs.append(doc)
    return docs


def _one(kind: str) -> dict[str, Any]:
    found = [d for d in _docs() if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _env_sources(container: dict[str, Any]) -> set[tuple[str, str]]:
    out = set()
    for src in container.get("envFrom", []):
        for kind in ("configMapRef", "secretRef"):
            if kind in src:
                out.add((kind, src[kind]["name"]))
    return out


def test_every_manifest_has_api_version_kind_and_name() -> None:
    docs = _docs()
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc["__file__"]
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], doc["__file__"]


def test_kustomization_lists_every_manifest() -> None:
    kust = _one("Kustomization")
    others = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == others


def test_deployment_replicas_probes_resources_and_auth() -> None:
    dep = _one("Deployment")
    assert dep["apiVersion"] == "apps/v1"
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    pod = spec["template"]["spec"]
    (main,) = pod["containers"]
    port_names = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        port = main[probe]["httpGet"]["port"]
        assert port in port_names or port in port_names.values()
    for kind in ("requests", "limits"):
        assert main["resources"][kind]["cpu"] and main["resources"][kind]["memory"]
    assert _env(main)["MMCDS_AUTH_MODE"] == "jwt"
    assert load_settings(environ={"MMCDS_AUTH_MODE": _env(main)["MMCDS_AUTH_MODE"]}).auth_mode == "jwt"
    sources = _env_sources(main)
    assert ("configMapRef", _one("ConfigMap")["metadata"]["name"]) in sources
    assert ("secretRef", _one("Secret")["metadata"]["name"]) in sources
    # The served command is `serve` on all interfaces at the port the probes use.
    cmd = main.get("command", []) + main.get("args", [])
    assert cmd[:4] == ["python", "-m", "cds_service", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert int(cmd[cmd.index("--port") + 1]) == port_names["http"]


def test_deployment_runs_as_non_root_and_migrates_first() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, container["name"]
        assert sc.get("readOnlyRootFilesystem") is True, container["name"]
    inits = pod.get("initContainers", [])
    migrate = [c for c in inits if c.get("command", []) + c.get("args", []) == ["python", "-m", "cds_service", "migrate"]]
    assert migrate, "an initContainer must run `python -m cds_service migrate`"
    assert _env_sources(migrate[0]) == _env_sources(pod["containers"][0])
    assert migrate[0]["image"] == pod["containers"][0]["image"]
    # Writable places for a read-only root filesystem: the data folder and /tmp.
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/var/lib/mmcds", "/tmp"} <= mounts
    assert _env(pod["containers"][0])["MMCDS_DATA_DIR"] == "/var/lib/mmcds"


def test_service_targets_the_deployment_port() -> None:
    svc, dep = _one("Service"), _one("Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert all(p["targetPort"] in ports for p in svc["spec"]["ports"])


def test_hpa_scales_the_deployment_from_two() -> None:
    hpa, dep = _one("HorizontalPodAutoscaler"), _one("Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", dep["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_configmap_and_secret_hold_valid_settings() -> None:
    cm, secret = _one("ConfigMap"), _one("Secret")
    data = {**cm["data"], **secret.get("stringData", {})}
    for key in data:
        assert key.startswith("MMCDS_") and key.removeprefix("MMCDS_") in KEYS, f"unknown setting {key}"
    assert {"MMCDS_TRUSTED_ISSUERS", "MMCDS_PUBLIC_BASE_URL", "MMCDS_CAR_T_AVAILABLE"} <= cm["data"].keys()
    issuers = json.loads(cm["data"]["MMCDS_TRUSTED_ISSUERS"])
    assert issuers and all(u.startswith("https://") for u in issuers.values())
    assert secret["stringData"]["MMCDS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "MMCDS_DATABASE_URL" not in cm["data"], "credentials belong in the Secret"
    # The whole environment a pod gets parses (a typo would fail at start).
    settings = load_settings(environ={**{k: str(v) for k, v in data.items()}, "MMCDS_AUTH_MODE": "jwt"})
    assert settings.auth_mode == "jwt" and settings.public_base_url.startswith("https://")
    assert settings.database_url.startswith("postgresql+psycopg://")


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final stage, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    instructions = [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    assert instructions[last_from][1].startswith("python:3.11-slim")
    return instructions[last_from:]


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    final = _dockerfile()
    users = [arg for ins, arg in final if ins == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    user_index = max(i for i, (ins, _) in enumerate(final) if ins == "USER")
    cmd_index = max(i for i, (ins, _) in enumerate(final) if ins == "CMD")
    assert user_index < cmd_index
    health = [arg for ins, arg in final if ins == "HEALTHCHECK"]
    assert health and "/healthz" in health[-1]
    cmd = json.loads(final[cmd_index][1])
    assert cmd[:4] == ["python", "-m", "cds_service", "serve"] and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    # The final stage takes the packages `pip install .` put in the build stage's prefix.
    assert ("COPY", "--from=build /install /usr/local") in final
    assert 'RUN pip install --prefix=/install ".[postgres]"' in (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_copies_what_the_wheel_needs() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "cds_service", "mappings", "cards", "fixtures"):
        assert f"COPY {needed}" in text
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for needed in ("cds_service", "mappings", "cards", "fixtures", "pyproject.toml"):
        assert f"!{needed}" in ignore


def test_gunicorn_conf_matches_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("MMCDS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MMCDS_BIND", "127.0.0.1:9999")
    monkeypatch.setenv("MMCDS_WORKERS", "3")
    conf = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    expected = gunicorn_options("127.0.0.1", 9999, workers=3)
    for key, value in expected.items():
        assert conf[key] == value, key
    prom = Path(conf["os"].environ["PROMETHEUS_MULTIPROC_DIR"])
    # an instance's own folder (port-pid), so a second instance never clears a running one's samples
    assert prom.parent == (tmp_path / "prometheus").resolve() and prom.is_dir()
    assert prom.name == f"9999-{os.getpid()}"


def test_gunicorn_conf_is_valid_for_gunicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn itself loads the file (as `gunicorn -c` would) and accepts every setting."""
    from gunicorn.config import Config

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("MMCDS_BIND", raising=False)
    monkeypatch.setenv("MMCDS_DATA_DIR", str(tmp_path))
    conf = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    cfg = Config()
    for key, value in conf.items():
        if key in cfg.settings:
            cfg.set(key, value)
    assert cfg.worker_class_str == "gthread" and cfg.preload_app
    assert cfg.bind == ["0.0.0.0:8080"]
    assert callable(cfg.child_exit)


def test_docs_document_the_deploy_commands() -> None:
    readme = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert "docker build -f deploy/Dockerfile" in readme
    assert "kubectl apply -k deploy/k8s" in readme
    assert "gunicorn -c deploy/gunicorn.conf.py" in readme
    assert shlex.split("gunicorn -c deploy/gunicorn.conf.py 'cds_service.app:create_app()'")[-1] in readme


@pytest.mark.slow
def test_gunicorn_with_the_conf_file_serves(tmp_path: Path) -> None:
    """`gunicorn -c deploy/gunicorn.conf.py 'cds_service.app:create_app()'` as docs/deployment.md says."""
    import subprocess
    import sys
    import time

    import requests

    from tests.servers import base_env, free_port

    port = free_port()
    env = base_env(tmp_path, {"MMCDS_BIND": f"127.0.0.1:{port}", "MMCDS_WORKERS": "2"})
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"), "cds_service.app:create_app()"]
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail(f"gunicorn did not start: {log.read_text()[-2000:]}")
        for _ in range(6):
            resp = requests.post(f"http://127.0.0.1:{port}/cds-services/nope", json={},
                                 headers={"Connection": "close"}, timeout=5)
            assert resp.status_code == 404
        metrics_text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'mmcds_hook_requests_total{service="unknown",status="404"} 6.0' in metrics_text
        # multiprocess mode, in this instance's own folder under MMCDS_DATA_DIR
        assert list((tmp_path / "prometheus").glob("*/counter_*.db"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.slow
def test_docker_build_stage_installs_from_what_it_copies(tmp_path: Path) -> None:
    """No Docker daemon here: replay the build stage's COPY lines and its `pip install` on a bare
    context, so a file the wheel needs but the Dockerfile forgets to copy fails this test."""
    import os
    import shutil
    import subprocess
    import sys

    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    build_stage = text.split("\nFROM ", 2)[1] if text.lstrip().startswith("#") else text.split("\nFROM ", 1)[0]
    ctx = tmp_path / "src"
    ctx.mkdir()
    copies = [line.split()[1:] for line in build_stage.splitlines() if line.startswith("COPY ")]
    assert copies
    for *sources, _dest in copies:
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, ctx / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, ctx / source)
    (run,) = [line for line in build_stage.splitlines() if line.startswith("RUN ")]
    assert 'pip install --prefix=/install ".[postgres]"' in run
    prefix = tmp_path / "install"
    # --ignore-installed: with --prefix, pip would otherwise uninstall this environment's own
    # (editable) install of the project first, breaking every later test that imports it.
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed",
                           f"--prefix={prefix}", "."],
                          cwd=ctx, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (site,) = list(prefix.glob("lib/python3*/site-packages"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMCDS_")}
    env["PYTHONPATH"] = str(site)
    probe = subprocess.run(
        [sys.executable, "-c", "import cds_service, cds_service.knowledge.loader as l, cds_service.conformance as c; "
         "k = l.default_knowledge(); print(cds_service.__file__); print(l.data_root()); print(len(c.load_fixtures()))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    module_file, data_root, n_fixtures = probe.stdout.split()
    assert module_file.startswith(str(site)) and data_root.startswith(str(site))
    from cds_service.conformance import load_fixtures

    assert int(n_fixtures) == len(load_fixtures([ctx / "fixtures" / "patients", ctx / "fixtures" / "spec"])) > 2


def test_secret_holds_a_secret_key_placeholder_that_start_up_refuses() -> None:
    from cds_service.startup import StartupError, check_settings

    secret = _one("Secret")["stringData"]
    assert "MMCDS_SECRET_KEY" in secret
    settings = load_settings(environ=dict(secret))
    with pytest.raises(StartupError) as info:
        check_settings(settings)  # the shipped value must be replaced before the pods start
    assert info.value.code == 3 and "placeholder" in info.value.message
    without = {k: v for k, v in secret.items() if k != "MMCDS_SECRET_KEY"}
    with pytest.raises(StartupError, match="SECRET_KEY is required"):
        check_settings(load_settings(environ=without))  # PostgreSQL store: replicas must share a key
    check_settings(load_settings(environ={**secret, "MMCDS_SECRET_KEY": "x1" * 32}))


def test_retention_cronjob_purges_with_the_service_settings() -> None:
    job = _one("CronJob")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["python", "-m", "cds_service", "purge"]
    assert "--older-than" in container["command"]
    assert _env_sources(container) == {("configMapRef", "mmcds-config"), ("secretRef", "mmcds-secrets")}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
