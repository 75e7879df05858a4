"""The Flask application factory: wires settings, knowledge, store and the HTTP blueprints.

Start-up refuses what would fail later at a patient (cds_service/startup.py): a SECRET_KEY that is
the shipped placeholder, missing with a shared (PostgreSQL) store, or different from the key the
other replicas recorded in it. `KNOWLEDGE_DIR` serves a hospital's reviewed knowledge folder
(`mappings/` and `cards/`, checked like the packaged one) instead of the packaged knowledge.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from cds_service.config import Settings, load_settings
from cds_service.knowledge.loader import Knowledge, default_knowledge, load_knowledge
from cds_service.pipeline import HookResult
from cds_service.statecache import StateCache
from cds_service.store.db import Store

log = logging.getLogger("cds_service.app")


@dataclass
class Runtime:
    """What every request needs, built once per process."""

    settings: Settings
    knowledge: Knowledge
    store: Store | None
    cache: StateCache | None = None
    _verifier: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def verifier(self) -> Any:
        """The JWT verifier (built once: it caches the issuers' key sets)."""
        with self._lock:
            if self._verifier is None:
                from cds_service.security.jwt_auth import JwtVerifier

                self._verifier = JwtVerifier(self.settings, self.store)
            return self._verifier

    def issuer_status(self) -> dict[str, str]:
        """Per trusted issuer: `ok`, or why its key set cannot be used (JWT mode only)."""
        from cds_service.startup import issuer_status

        return issuer_status(self.verifier()) if self.settings.auth_mode == "jwt" else {}

    def audit(self, result: HookResult) -> None:
        """Keep a durable record of what was said; an audit failure must not lose the answer."""
        if self.store is None:
            return
        from flask import has_request_context

        origin = "ehr"
        if has_request_context():  # the conformance harness marks its calls (http/feedback.py)
            from cds_service.http.feedback import request_origin

            origin = request_origin()
        try:
            self.store.record_audit(
                hook_instance=result.hook_instance,
                service_id=result.service.id,
                hook=result.service.hook,
                cards=result.response["cards"],
                input_hash=result.input_hash,
                timings_ms=result.timings_ms,
                knowledge_version=self.knowledge.version,
                origin=origin,
            )
        except Exception as exc:  # the EHR still gets its cards; ops see the error
            log.error("audit write failed", extra={"error_type": type(exc).__name__})


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    settings = load_settings(config)
    from cds_service.logs import configure_logging

    configure_logging(settings.log_level)
    from cds_service.startup import check_secret_shared, check_settings

    check_settings(settings)
    knowledge = knowledge_for(settings)
    store = Store(settings.database_url, background_audit=True)
    store.create_schema()
    check_secret_shared(store, settings)
    if settings.auth_mode == "jwt" and not settings.trusted_issuers:
        log.error("AUTH_MODE=jwt without TRUSTED_ISSUERS: every call will be refused; /readyz answers 503",
                  extra={"auth_mode": "jwt"})
    runtime = Runtime(settings=settings, knowledge=knowledge, store=store,
                      cache=StateCache(settings.state_cache_size))

    if str(settings.raw.get("WARMUP", "true")).lower() not in ("0", "false", "no", "off"):
        warm_up(settings, knowledge)

    app = Flask("cds_service")
    app.url_map.strict_slashes = False  # EHRs configured with a trailing slash still reach the service
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["mmcds"] = runtime

    from cds_service.http import auth, cors, discovery, errors, feedback, hooks, openapi, ops, sandbox, smart

    errors.install(app)
    cors.install(app, settings)
    auth.install(app, lambda: runtime)
    app.register_blueprint(discovery.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(feedback.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(sandbox.bp)
    app.register_blueprint(smart.bp)
    app.register_blueprint(openapi.bp)
    return app


_KNOWLEDGE: dict[Path, Knowledge] = {}
_KNOWLEDGE_LOCK = threading.Lock()


def knowledge_for(settings: Settings) -> Knowledge:
    """The packaged knowledge, or `KNOWLEDGE_DIR`'s (loaded once per process and folder)."""
    if settings.knowledge_dir is None:
        return default_knowledge()
    folder = settings.knowledge_dir.resolve()
    with _KNOWLEDGE_LOCK:
        if folder not in _KNOWLEDGE:
            _KNOWLEDGE[folder] = load_knowledge(folder)
            log.info("knowledge loaded from KNOWLEDGE_DIR", extra={"knowledgeVersion": _KNOWLEDGE[folder].version})
        return _KNOWLEDGE[folder]


def warm_up(settings: Settings, knowledge: Knowledge) -> None:
    """Run the shipped fixtures once so lookup indexes and validators exist before the first patient.

    Under gunicorn's preload this happens in the master, so every worker starts warm (the first
    call per worker otherwise costs ~300 ms). Nothing is audited; a failure only logs.
    """
    import orjson

    from cds_service.hooks.registry import SERVICES
    from cds_service.knowledge.loader import data_root
    from cds_service.pipeline import HookError, run

    by_hook = {s.hook: s.id for s in SERVICES.values()}
    seen: set[str] = set()
    for path in sorted((data_root() / "fixtures" / "patients").glob("*.json")):
        try:
            request = orjson.loads(path.read_bytes())
            hook = request.get("hook")
            if hook in seen or hook not in by_hook:
                continue
            run(by_hook[hook], request, settings, knowledge)
            seen.add(hook)
        except (HookError, OSError, ValueError):
            continue
        except Exception as exc:  # warm-up must never stop the service from starting
            log.warning("warm-up request failed", extra={"error_type": type(exc).__name__})
        if len(seen) == len(by_hook):
            break
