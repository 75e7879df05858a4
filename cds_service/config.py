"""Configuration: a mapping given to `create_app`, overlaid on `MMCDS_<KEY>` environment variables.

Values are parsed once into a typed `Settings`; a bad value fails at start with the key named,
never at the first patient.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ENV_PREFIX = "MMCDS_"


LABEL_REGIONS = ("US", "EU")  # regions whose labels cards/regimens.yaml carries


class ConfigError(ValueError):
    pass


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key}: expected true/false, got {value!r}")


def _json(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, kind):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: expected JSON {kind.__name__}: {exc}") from exc
    if not isinstance(parsed, kind):
        raise ConfigError(f"{key}: expected JSON {kind.__name__}")
    return parsed


def _list(key: str, value: Any) -> list[str]:
    """A JSON list or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v).strip() for v in _json(key, text, list)]
    return [p.strip() for p in text.split(",") if p.strip()]


@dataclass
class Settings:
    auth_mode: str = "none"
    trusted_issuers: dict[str, str] = field(default_factory=dict)
    database_url: str = ""
    public_base_url: str | None = None
    aud_aliases: list[str] = field(default_factory=list)
    jku_allowlist: list[str] = field(default_factory=list)
    tenant_allowlist: list[str] = field(default_factory=list)
    jwt_leeway_s: int = 30
    fhir_timeout_s: float = 5.0
    fhir_deadline_s: float = 10.0
    fhir_max_pages: int = 100
    car_t_available: bool = True
    unavailable_agents: list[str] = field(default_factory=list)
    label_region: str = "US"  # whose regulatory labels decide on-label options: "US" | "EU"
    data_dir: Path = field(default_factory=lambda: Path("data"))
    max_body_bytes: int = 8 * 1024 * 1024  # above the largest 15-year chart the prefetch templates ask for (docs/integration-queries.md)
    state_cache_size: int = 256  # charts whose record and state each worker keeps (0: off); statecache.py
    cors_origins: list[str] = field(default_factory=lambda: ["*"])
    as_of_date: date | None = None  # fixed "today" for reproducible evaluation (tests, audits)
    log_level: str = "INFO"
    smart_client_id: str = "mmcds-evidence-viewer"
    raw: dict[str, Any] = field(default_factory=dict)
    # A hospital's reviewed knowledge (a folder with mappings/ and cards/) instead of the packaged one.
    knowledge_dir: Path | None = None
    # Signs the SMART launch cookie; the same value on every replica (startup.py enforces it).
    secret_key: str | None = None
    # Where the EHR's FHIR token may be sent, per JWT issuer (security/forwarding.py).
    fhir_server_allowlist: dict[str, list[str]] = field(default_factory=dict)
    # JWT signature algorithms accepted from CDS clients (asymmetric only; see security/jwt_auth.py).
    jwt_algorithms: list[str] = field(
        default_factory=lambda: ["ES384", "RS384", "ES256", "ES512", "RS256", "RS512", "PS256", "PS384", "PS512"]
    )


KEYS = (
    "AUTH_MODE", "TRUSTED_ISSUERS", "DATABASE_URL", "PUBLIC_BASE_URL", "AUD_ALIASES", "JKU_ALLOWLIST",
    "TENANT_ALLOWLIST", "JWT_LEEWAY_S", "FHIR_TIMEOUT_S", "FHIR_DEADLINE_S", "FHIR_MAX_PAGES",
    "CAR_T_AVAILABLE", "UNAVAILABLE_AGENTS", "LABEL_REGION", "DATA_DIR", "MAX_BODY_BYTES", "CORS_ORIGINS",
    "AS_OF_DATE", "LOG_LEVEL", "SMART_CLIENT_ID",
    "JWT_ALGORITHMS", "STATE_CACHE_SIZE",
    "KNOWLEDGE_DIR", "SECRET_KEY", "FHIR_SERVER_ALLOWLIST", "WARMUP",
)


def load_settings(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    for key in KEYS:
        if ENV_PREFIX + key in env:
            merged[key] = env[ENV_PREFIX + key]
    for key, value in (config or {}).items():
        merged[key.upper()] = value
    s = Settings(raw=dict(merged))
    if "AUTH_MODE" in merged:
        s.auth_mode = str(merged["AUTH_MODE"]).strip().lower()
        if s.auth_mode not in ("jwt", "none"):
            raise ConfigError("AUTH_MODE: expected 'jwt' or 'none'")
    if "TRUSTED_ISSUERS" in merged:
        s.trusted_issuers = {str(k): str(v) for k, v in _json("TRUSTED_ISSUERS", merged["TRUSTED_ISSUERS"], dict).items()}
    if "DATA_DIR" in merged:
        s.data_dir = Path(str(merged["DATA_DIR"]))
    s.database_url = str(merged.get("DATABASE_URL") or f"sqlite:///{(s.data_dir / 'mmcds.sqlite3').resolve()}")
    if merged.get("PUBLIC_BASE_URL"):
        s.public_base_url = str(merged["PUBLIC_BASE_URL"]).rstrip("/")
    for key, attr in (("AUD_ALIASES", "aud_aliases"), ("JKU_ALLOWLIST", "jku_allowlist"),
                      ("TENANT_ALLOWLIST", "tenant_allowlist"), ("UNAVAILABLE_AGENTS", "unavailable_agents"),
                      ("CORS_ORIGINS", "cors_origins")):
        if key in merged:
            setattr(s, attr, _list(key, merged[key]))
    s.unavailable_agents = [a.lower() for a in s.unavailable_agents]
    for key, attr, conv in (("JWT_LEEWAY_S", "jwt_leeway_s", int), ("FHIR_TIMEOUT_S", "fhir_timeout_s", float),
                            ("FHIR_DEADLINE_S", "fhir_deadline_s", float), ("FHIR_MAX_PAGES", "fhir_max_pages", int),
                            ("MAX_BODY_BYTES", "max_body_bytes", int), ("STATE_CACHE_SIZE", "state_cache_size", int)):
        if key in merged:
            try:
                setattr(s, attr, conv(merged[key]))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{key}: expected a number, got {merged[key]!r}") from exc
    if "FHIR_DEADLINE_S" not in merged:
        s.fhir_deadline_s = max(s.fhir_deadline_s, 2 * s.fhir_timeout_s) if "FHIR_TIMEOUT_S" in merged else s.fhir_deadline_s
    if "CAR_T_AVAILABLE" in merged:
        s.car_t_available = _bool("CAR_T_AVAILABLE", merged["CAR_T_AVAILABLE"])
    if "LABEL_REGION" in merged:
        s.label_region = str(merged["LABEL_REGION"]).strip().upper()
        if s.label_region not in LABEL_REGIONS:
            raise ConfigError(f"LABEL_REGION: expected one of {', '.join(LABEL_REGIONS)}, got {merged['LABEL_REGION']!r}")
    if merged.get("AS_OF_DATE"):
        value = merged["AS_OF_DATE"]
        try:
            s.as_of_date = value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError as exc:
            raise ConfigError(f"AS_OF_DATE: expected YYYY-MM-DD, got {value!r}") from exc
    if "LOG_LEVEL" in merged:
        s.log_level = str(merged["LOG_LEVEL"]).upper()
    if "SMART_CLIENT_ID" in merged:
        s.smart_client_id = str(merged["SMART_CLIENT_ID"])
    if "JWT_ALGORITHMS" in merged:
        algs = [a.upper() for a in _list("JWT_ALGORITHMS", merged["JWT_ALGORITHMS"])]
        bad = [a for a in algs if a[:2] not in ("ES", "RS", "PS")]
        if bad or not algs:
            raise ConfigError(f"JWT_ALGORITHMS: only asymmetric ES*/RS*/PS* algorithms allowed, got {bad or algs}")
        s.jwt_algorithms = algs
    _ops_settings(s, merged)
    return s


def _ops_settings(s: Settings, merged: dict[str, Any]) -> None:
    """KNOWLEDGE_DIR, SECRET_KEY, FHIR_SERVER_ALLOWLIST."""
    if merged.get("KNOWLEDGE_DIR"):
        s.knowledge_dir = Path(str(merged["KNOWLEDGE_DIR"]))
    if merged.get("SECRET_KEY"):
        s.secret_key = str(merged["SECRET_KEY"]).strip() or None
    if merged.get("FHIR_SERVER_ALLOWLIST"):
        parsed = _json("FHIR_SERVER_ALLOWLIST", merged["FHIR_SERVER_ALLOWLIST"], dict)
        out: dict[str, list[str]] = {}
        for issuer, urls in parsed.items():
            urls = [urls] if isinstance(urls, str) else urls
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise ConfigError(f"FHIR_SERVER_ALLOWLIST: {str(issuer)[:80]!r} must map to a list of URLs")
            bad = [u for u in urls if not u.startswith(("https://", "http://"))]
            if bad:
                raise ConfigError(f"FHIR_SERVER_ALLOWLIST: not an http(s) URL: {bad[0][:80]!r}")
            out[str(issuer)] = list(urls)
        s.fhir_server_allowlist = out
