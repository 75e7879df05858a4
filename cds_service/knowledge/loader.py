"""Load the knowledge files (`mappings/`, `cards/`) once, check them against their schemas.

Knowledge is data a clinician reviews as a diff; code only reads it. Every YAML/JSON file in
`mappings/` and `cards/` must have a JSON Schema `cds_service/knowledge/schemas/<stem>.schema.json`;
loading fails loudly on a file without one or one that does not validate, so a bad edit never
reaches a patient. The checked cards are then turned once into typed objects (`Knowledge.catalog`,
see model.py) so the rules never re-check the shapes of our own data; other consumers build their
lookup indexes once through `Knowledge.index`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from cds_service.knowledge.model import Catalog, KnowledgeReferenceError, build_catalog

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


class KnowledgeError(RuntimeError):
    """A knowledge file is missing, unreadable or does not match its schema."""


def data_root() -> Path:
    """Where mappings/, cards/ and fixtures/ live: inside the wheel, else the source checkout."""
    packaged = PACKAGE_DIR / "_data"
    if (packaged / "cards").is_dir():
        return packaged
    return PACKAGE_DIR.parent


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


@dataclass
class Knowledge:
    version: str
    mappings: dict[str, Any]
    cards: dict[str, Any]
    digest: str
    _indexes: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)  # an index may use another

    @property
    def catalog(self) -> Catalog:
        """The typed regimen / source catalog (built once; load_knowledge builds it at start)."""
        return self.index("catalog", lambda k: build_catalog(k.cards))

    def index(self, name: str, builder: Callable[[Knowledge], Any]) -> Any:
        """Build a derived lookup once per process (at start, or on first use) and keep it."""
        found = self._indexes.get(name)
        if found is None:
            with self._lock:
                found = self._indexes.get(name)
                if found is None:
                    found = builder(self)
                    self._indexes[name] = found
        return found


def _load_folder(folder: Path, validators: dict[str, Draft202012Validator]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not folder.is_dir():
        raise KnowledgeError(f"knowledge folder not found: {folder}")
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml", ".json") or path.name.startswith("."):
            continue
        stem = path.stem
        validator = validators.get(stem)
        if validator is None:
            raise KnowledgeError(f"{folder.name}/{path.name} has no schema {stem}.schema.json")
        try:
            data = _read(path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise KnowledgeError(f"{folder.name}/{path.name} cannot be read: {exc}") from exc
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path)
            raise KnowledgeError(f"{folder.name}/{path.name} at '{where}': {first.message}")
        out[stem] = data
    return out


def schema_validators() -> dict[str, Draft202012Validator]:
    validators = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        validators[path.name.removesuffix(".schema.json")] = Draft202012Validator(schema)
    return validators


def load_knowledge(root: Path | None = None) -> Knowledge:
    root = root or data_root()
    validators = schema_validators()
    mappings = _load_folder(root / "mappings", validators)
    cards = _load_folder(root / "cards", validators)
    meta = cards.get("knowledge") or {}
    digest = hashlib.sha256()
    for folder in ("mappings", "cards"):
        for path in sorted((root / folder).iterdir()):
            if path.is_file():
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    version = str(meta.get("knowledgeVersion", "0"))
    knowledge = Knowledge(version=version, mappings=mappings, cards=cards, digest=digest.hexdigest()[:12])
    try:
        knowledge.catalog  # noqa: B018 - typed once here, so a dangling reference fails at start
    except KnowledgeReferenceError as exc:
        raise KnowledgeError(f"cards/: {exc}") from exc
    return knowledge


_cached: Knowledge | None = None
_cache_lock = threading.Lock()


def default_knowledge() -> Knowledge:
    """The packaged knowledge, loaded once per process (gunicorn --preload shares it)."""
    global _cached
    if _cached is None:
        with _cache_lock:
            if _cached is None:
                _cached = load_knowledge()
    return _cached
