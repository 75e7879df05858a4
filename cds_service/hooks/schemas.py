"""JSON Schemas (Draft 2020-12) of the CDS Hooks messages, compiled once per process.

There is no official JSON Schema for CDS Hooks; these are written from the 2.0.1 specification
and the FHIR tools IG logical models (CDSHooksRequest / CDSHooksResponse / CDSHooksServices).
Building a validator once costs ~0.5 ms per check instead of ~10 ms (stack notes).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

try:  # the Rust validator confirms a valid response in ~10 µs instead of ~3 ms (bench/, issue 6)
    import jsonschema_rs
except ImportError:  # pragma: no cover - an optional accelerator; jsonschema alone gives the same answers
    jsonschema_rs = None

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
HOOK_CONTEXT_SCHEMA = {
    "patient-view": "context-patient-view",
    "order-select": "context-order-select",
    "order-sign": "context-order-sign",
}


@functools.cache
def _registry() -> tuple[Registry, dict[str, dict[str, Any]]]:
    schemas: dict[str, dict[str, Any]] = {}
    registry: Registry = Registry()
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        name = path.name.removesuffix(".schema.json")
        schemas[name] = schema
        resource = Resource.from_contents(schema)
        registry = registry.with_resource(schema.get("$id", name), resource)
    return registry, schemas


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator of `cds_service/hooks/schemas/<name>.schema.json`."""
    registry, schemas = _registry()
    schema = schemas[name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def errors(name: str, instance: Any, limit: int = 3) -> list[str]:
    """Readable messages ('at /context/patientId: ...') for the first few violations."""
    out = []
    for err in sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path)):
        where = "/" + "/".join(str(p) for p in err.absolute_path)
        out.append(f"at {where}: {err.message}")
        if len(out) >= limit:
            break
    return out


@functools.cache
def fast_validator(name: str) -> Any | None:
    """A jsonschema-rs validator of the same schema and registry, or None without the package.

    Used only to confirm validity: every instance it rejects is re-checked by `validator(name)`,
    so messages (and any disagreement) are jsonschema's.
    """
    if jsonschema_rs is None:
        return None
    registry, schemas = _registry()
    try:
        rs_registry = jsonschema_rs.Registry(
            [(s["$id"], s) for s in schemas.values() if isinstance(s.get("$id"), str)]
        )
        return jsonschema_rs.validator_for(schemas[name], registry=rs_registry, validate_formats=True)
    except Exception:  # noqa: BLE001 - an accelerator that cannot compile a schema is simply not used
        return None


def check(name: str, instance: Any) -> list[str]:
    """`errors(name, instance)`, with the valid case (every good call) confirmed in Rust first."""
    fast = fast_validator(name)
    if fast is not None and fast.is_valid(instance):
        return []
    return errors(name, instance)


def check_response(response: dict[str, Any]) -> list[str]:
    """Problems of a response we built (validated on every call, so the valid case must be cheap)."""
    return check("service-response", response)
