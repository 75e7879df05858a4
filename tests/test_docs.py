"""The documentation tells a new user and a hospital integrator the truth about this product.

Checked against the code, not against a copy of it: every configuration key the service reads is
in docs/configuration.md, every command of `python -m cds_service` is in the README or
docs/operations.md, every relative link resolves, and the pages speak of the product only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cds_service import cli
from cds_service.config import KEYS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, CHANGELOG, *DOCS]

# Keys read outside config.KEYS (the sandbox and SMART pages, the start-up warm-up).
PAGE_KEYS = ("WARMUP", "SANDBOX_ENABLED", "SANDBOX_DEFAULT_FIXTURE", "SMART_ALLOWED_ISSUERS", "SMART_SCOPES")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HISTORY_WORDS = re.compile(r"\bsessions?\b|\bissue\s*#|\bhelpers?\b|closing note", re.IGNORECASE)


def _subcommands() -> list[str]:
    parser = cli.build_parser()
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its subparsers here
        if isinstance(action.choices, dict):
            return sorted(action.choices)
    raise AssertionError("python -m cds_service has no subcommands")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, flags=re.MULTILINE)}


def test_every_configuration_key_is_documented_in_its_table() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\|\s*`([A-Z_]+)`\s*\|", text, flags=re.MULTILINE))
    missing = [k for k in (*KEYS, *PAGE_KEYS) if k not in rows]
    assert not missing, f"docs/configuration.md has no table row for {missing}"


def test_page_keys_are_still_read_by_the_code() -> None:
    """A key documented as read by a page must still be read there (no stale rows)."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "cds_service").rglob("*.py"))
    for key in PAGE_KEYS:
        assert f'"{key}"' in source, key


def test_documented_defaults_match_the_settings() -> None:
    from cds_service.config import Settings

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    s = Settings()

    def row(key: str) -> str:
        match = re.search(rf"^\|\s*`{key}`\s*\|([^|]*)\|", text, flags=re.MULTILINE)
        assert match, key
        return match.group(1)

    assert f"`{s.auth_mode}`" in row("AUTH_MODE")
    assert f"`{s.label_region}`" in row("LABEL_REGION")
    assert f"`{s.max_body_bytes}`" in row("MAX_BODY_BYTES")
    assert f"`{s.state_cache_size}`" in row("STATE_CACHE_SIZE")
    assert f"`{s.jwt_leeway_s}`" in row("JWT_LEEWAY_S")
    assert f"`{s.fhir_max_pages}`" in row("FHIR_MAX_PAGES")
    assert f"`{s.fhir_timeout_s:g}`" in row("FHIR_TIMEOUT_S")
    assert f"`{s.fhir_deadline_s:g}`" in row("FHIR_DEADLINE_S")
    assert f"`{s.log_level}`" in row("LOG_LEVEL")
    assert f"`{s.smart_client_id}`" in row("SMART_CLIENT_ID")
    assert f"`{','.join(s.jwt_algorithms)}`" in row("JWT_ALGORITHMS")
    assert f"`{s.data_dir}`" in row("DATA_DIR")


def test_every_cli_command_is_documented() -> None:
    text = README.read_text(encoding="utf-8") + (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    commands = _subcommands()
    assert "serve" in commands and "evaluate" in commands
    missing = [c for c in commands if f"`{c}" not in text and f"cds_service {c}" not in text]
    assert not missing, f"commands not in README.md or docs/operations.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
            continue  # an absolute URL
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links that do not resolve: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_speak_of_the_product_only(page: Path) -> None:
    hits = [m.group(0) for m in HISTORY_WORDS.finditer(page.read_text(encoding="utf-8"))]
    assert not hits, f"{page.relative_to(ROOT)} speaks of how it was built: {hits}"


def test_the_readme_picture_is_a_real_screenshot() -> None:
    image = ROOT / "docs" / "images" / "cards.png"
    data = image.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < len(data) < 450_000, len(data)  # a real page, small enough for the README
    assert "docs/images/cards.png" in README.read_text(encoding="utf-8")


def test_history_words_are_caught() -> None:
    """The guard above can fail."""
    assert HISTORY_WORDS.search("as decided in session 3")
    assert HISTORY_WORDS.search("see issue #12")
    assert not HISTORY_WORDS.search("the feedback report and the SMART launch")
