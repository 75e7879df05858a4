"""Start-up checks with one-line errors and distinct exit codes (`serve`, `evaluate`, gunicorn).

A service that starts half-configured fails later, at a patient: every EHR call 401 because no
issuer's keys can be read, SMART launches that fail on the other replica. These checks run before
the service takes traffic and end the process with one line on stderr and an exit code an
operator (or an orchestrator's restart policy) can tell apart:

| code | meaning |
|---:|---|
| 2 | bad usage or input (arguments, a request file) |
| 3 | configuration (a bad value, JWT mode without a usable issuer, SECRET_KEY missing or not shared) |
| 4 | knowledge (a knowledge file missing or failing its schema) |
| 5 | database (unreachable, refused, schema newer than this code) |
| 6 | the port cannot be bound (in use, not permitted) |
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

EXIT_USAGE, EXIT_CONFIG, EXIT_KNOWLEDGE, EXIT_DATABASE, EXIT_PORT = 2, 3, 4, 5, 6
SECRET_PLACEHOLDER = "REPLACE-ME"  # deploy/k8s/secret.yaml ships this; start-up refuses it
MIN_SECRET_CHARS = 32
FINGERPRINT_KEY = "secret_key_fingerprint"

log = logging.getLogger("cds_service.startup")
T = TypeVar("T")


class StartupError(Exception):
    """Start-up cannot go on; `message` is one line, safe to print (no secrets, no passwords)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, " ".join(str(message).split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:240] if text else type(exc).__name__


def safe_url(url: str) -> str:
    """A database URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: say nothing of it
        return "(unparsable URL)"


def classify(exc: BaseException, database_url: str = "") -> StartupError:
    """The StartupError for an exception met while loading settings, knowledge or the store."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from cds_service.config import ConfigError
    from cds_service.knowledge.loader import KnowledgeError

    if isinstance(exc, StartupError):
        return exc
    if isinstance(exc, ConfigError):
        return StartupError(EXIT_CONFIG, f"configuration: {exc}")
    if isinstance(exc, KnowledgeError):
        return StartupError(EXIT_KNOWLEDGE, f"knowledge: {exc}")
    if isinstance(exc, ArgumentError):
        return StartupError(EXIT_CONFIG, f"configuration: DATABASE_URL is not a database URL ({_first_line(exc)})")
    if isinstance(exc, SQLAlchemyError):
        detail = _first_line(getattr(exc, "orig", None) or exc)
        return StartupError(EXIT_DATABASE, f"database {safe_url(database_url)} unreachable: {detail}")
    if isinstance(exc, RuntimeError) and "store schema version" in str(exc):
        return StartupError(EXIT_DATABASE, f"database: {exc}")
    if isinstance(exc, ModuleNotFoundError) and exc.name in ("psycopg", "psycopg2"):
        return StartupError(EXIT_CONFIG, "configuration: a PostgreSQL DATABASE_URL needs the driver: "
                                         "pip install 'mmcds[postgres]'")
    return StartupError(EXIT_CONFIG, f"start-up failed: {type(exc).__name__}: {_first_line(exc)}")


def guarded(fn: Callable[[], T], database_url: str = "") -> T:
    """Run a start-up step, turning what it raises into a StartupError."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - every start-up failure becomes one classified line
        raise classify(exc, database_url) from exc


def exit_with(err: StartupError, prog: str = "mmcds") -> NoReturn:
    import sys

    print(f"{prog}: error: {err.message}", file=sys.stderr, flush=True)
    raise SystemExit(err.code)


# ------------------------------------------------------------------------------------ checks


def shared_store(settings: Any) -> bool:
    """A PostgreSQL store means several replicas (the manifests' 2+ pods share it)."""
    return not str(settings.database_url).startswith("sqlite")


def check_settings(settings: Any) -> None:
    """Configuration that is wrong whatever the environment does (no network needed)."""
    key = settings.secret_key
    if key is not None and (SECRET_PLACEHOLDER.lower() in key.lower() or len(key) < MIN_SECRET_CHARS):
        raise StartupError(EXIT_CONFIG, f"configuration: SECRET_KEY is the shipped placeholder or shorter than "
                                        f"{MIN_SECRET_CHARS} characters; set a random value, the same on every "
                                        "replica (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    if key is None and shared_store(settings):
        raise StartupError(EXIT_CONFIG, "configuration: SECRET_KEY is required with a PostgreSQL store: the "
                                        "replicas sharing it must sign SMART launches with the same key "
                                        "(set MMCDS_SECRET_KEY in the Secret)")


def check_auth_configured(settings: Any) -> None:
    """JWT mode needs at least one trusted issuer (`serve`; the app factory logs it and /readyz
    answers 503, so tests may still build an app that refuses every token)."""
    if settings.auth_mode == "jwt" and not settings.trusted_issuers:
        raise StartupError(EXIT_CONFIG, "configuration: AUTH_MODE=jwt but TRUSTED_ISSUERS is empty: no EHR could "
                                        "call (set MMCDS_TRUSTED_ISSUERS to {\"issuer\": \"jwks-url\"})")


def secret_fingerprint(key: str) -> str:
    """What the store keeps to compare replicas' keys: an HMAC of a constant, not the key."""
    return hmac.new(key.encode(), b"mmcds secret fingerprint v1", hashlib.sha256).hexdigest()[:32]


def check_secret_shared(store: Any, settings: Any) -> None:
    """Every replica of a shared store must hold the key the first one recorded (rotation:
    `migrate` with the new key records it, as the Kubernetes initContainer does on a rollout)."""
    if settings.secret_key is None or store is None:
        return
    mine = secret_fingerprint(settings.secret_key)
    theirs = store.meta_value(FINGERPRINT_KEY)
    if theirs is None:
        store.set_meta_value(FINGERPRINT_KEY, mine, replace=False)
        theirs = store.meta_value(FINGERPRINT_KEY)
    if theirs != mine:
        raise StartupError(EXIT_CONFIG, "configuration: SECRET_KEY differs from the key the other replicas of "
                                        "this store use: SMART launches would fail across replicas. Give every "
                                        "replica the same MMCDS_SECRET_KEY (to rotate it, run `python -m "
                                        "cds_service migrate` with the new key)")


def issuer_status(verifier: Any) -> dict[str, str]:
    """`ok` or why not, per trusted issuer (reads key sets not read yet; rate-limited)."""
    out: dict[str, str] = {}
    for issuer, source in verifier.issuer_sources.items():
        if source is None:
            out[issuer] = "no key set configured"
        elif source.usable():
            out[issuer] = "ok"
        else:
            out[issuer] = source.last_error or "no usable signing key"
    return out


def check_issuers(verifier: Any) -> dict[str, str]:
    """JWT mode: at least one trusted issuer's key set must be readable now."""
    status = issuer_status(verifier)
    bad = {iss: why for iss, why in status.items() if why != "ok"}
    if status and len(bad) == len(status):
        listed = "; ".join(f"{iss}: {why}" for iss, why in list(bad.items())[:3])
        raise StartupError(EXIT_CONFIG, f"configuration: AUTH_MODE=jwt but no trusted issuer's key set could be "
                                        f"read ({listed})")
    for iss, why in bad.items():
        log.error("trusted issuer unusable", extra={"issuer": iss, "reason": why})
    return status
