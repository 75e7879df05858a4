"""Where the project brief's shared folder is: beside the checkout (CI clones), or /work/shared.

The tests need it (seeds, reference terminology, Synthea data); a missing folder is an error,
never a reason to skip.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_CANDIDATES = [Path(os.environ["MMCDS_SHARED_DIR"])] if os.environ.get("MMCDS_SHARED_DIR") else []
_CANDIDATES += [_ROOT.parent / "shared", Path("/work/shared")]

SHARED = next((p for p in _CANDIDATES if (p / "CONTRACT.md").is_file()), _CANDIDATES[-1])
