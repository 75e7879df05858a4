"""Pages for people (the sandbox and the SMART evidence viewer): templates, static files, helpers.

Everything here ships inside the wheel and works offline: no CDN, no web fonts, no build step.
"""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
