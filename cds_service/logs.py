"""Structured JSON log lines on stderr that cannot carry patient data or tokens.

Policy: log only what we generate or configure — service ids, hook instance ids, card uuids,
rule ids, statuses, timings, counts, hashes, error *types*. Enforcement here, on every record:
- only allow-listed `extra` keys reach the output (others are dropped; their *names* are listed
  under `dropped` so a developer notices);
- every string is scrubbed of JWTs, `Bearer …` credentials, URL query values (FHIR searches carry
  patient ids: `Observation?patient=123`) and JSON token fields;
- exceptions are logged as type and stack frames only, never the message (exception messages
  routinely quote the offending input: `KeyError('Jane Doe')`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
import traceback
from typing import IO, Any

import orjson

SAFE_FIELDS = frozenset(
    {
        "service", "service_id", "hook", "hookInstance", "hook_instance", "status", "error", "error_type",
        "reason", "cards", "card", "cardUuid", "ruleId", "rule_id", "kind", "code", "count", "items", "ms",
        "timings", "timings_ms", "hash", "input_hash", "knowledgeVersion", "version", "outcome", "method",
        "path", "route", "requestId", "request_id", "worker", "pid", "jwks", "issuer", "alg", "errors",
        "missing", "resources", "pages", "fhir_calls", "attempt", "url_host", "database", "auth_mode", "event",
    }
)
_MAX_STR = 500

_STD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)).keys()) | {"message", "asctime"}

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_QUERY = re.compile(r"([?&][A-Za-z0-9_.:\-]+=)[^&\s\"'#]+")
_SECRET_JSON = re.compile(
    r'(?i)("(?:access_token|id_token|refresh_token|token|authorization|password|secret)"\s*:\s*)"[^"]*"'
)


# Any of these characters or words must be present for a scrub pattern to match (most log
# strings — service ids, statuses, rule ids — have none, and skip the four substitutions).
_SUSPECT = re.compile(r"eyJ|[?&\"]|(?i:bearer|basic)")


def scrub(text: str) -> str:
    """Remove credentials and query values from free text; cut to a bounded length."""
    if not _SUSPECT.search(text):
        return text if len(text) <= _MAX_STR else text[:_MAX_STR] + "…"
    text = _JWT.sub("[token]", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    text = _SECRET_JSON.sub(r'\1"[redacted]"', text)
    text = _QUERY.sub(r"\1[redacted]", text)
    return text if len(text) <= _MAX_STR else text[:_MAX_STR] + "…"


def _safe_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return scrub(value)
    try:
        return scrub(orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode())
    except (TypeError, ValueError):
        return scrub(repr(value))


def _exc_summary(exc_info: Any) -> dict[str, Any]:
    etype, _evalue, tb = exc_info
    frames = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in traceback.extract_tb(tb)][-12:]
    return {"type": getattr(etype, "__name__", str(etype)), "frames": frames}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, allow-listed fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        dropped: list[str] = []
        extras = dict(getattr(record, "fields", None) or {}) if isinstance(getattr(record, "fields", None), dict) else {}
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and key != "fields":
                extras[key] = value
        for key, value in extras.items():
            if key in SAFE_FIELDS:
                out[key] = _safe_value(value)
            else:
                dropped.append(str(key)[:40])
        if dropped:
            out["dropped"] = sorted(dropped)
        if record.exc_info and record.exc_info[0] is not None:
            out["exc"] = _exc_summary(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class RedactFilter(logging.Filter):
    """For handlers we do not own (gunicorn's, a test's): scrub the message in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            msg = str(record.msg)
        record.msg, record.args = scrub(msg), None
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.msg} [{_exc_summary(record.exc_info)['type']}]"
            record.exc_info, record.exc_text = None, None
        return True


_HANDLER_NAME = "mmcds-json"


class CurrentStderr:
    """Writes to whatever `sys.stderr` is now (test runners swap and close it between tests)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):  # a closed stream must not break logging
            sys.stderr.flush()


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route the root logger to one JSON handler (stderr unless `stream`); idempotent.

    The app factory runs it on every `create_app` (once per test): it never stacks handlers, and
    without `stream` it keeps the one already installed (a test may have pointed it elsewhere).
    """
    root = logging.getLogger()
    lvl = logging.getLevelName(str(level).upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(stream or CurrentStderr())  # type: ignore[arg-type]
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    elif stream is not None and isinstance(handler, logging.StreamHandler):
        with handler.lock or threading.Lock():  # no flush of the old stream: it may be closed
            handler.stream = stream
    root.setLevel(lvl)
    # Library loggers that print full URLs (FHIR queries with patient ids) or headers at DEBUG.
    for noisy in ("urllib3", "requests", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING) if noisy != "werkzeug" else lvl)
    for name in ("gunicorn.error", "gunicorn.access"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, RedactFilter) for f in lg.filters):
            lg.addFilter(RedactFilter())


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log `event` with structured fields; unsafe field names are dropped by the formatter."""
    logger.log(level, event, extra={"fields": fields})
