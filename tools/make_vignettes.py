"""Regenerate the vignette fixtures (fixtures/patients/*.json) from the patient data files
(tools/vignettes/patients/*.yaml); expected outcomes stay in tests/vignettes/expected.yaml.

Run from the repository root: `python tools/make_vignettes.py` or `python -m tools.make_vignettes`
(`--check` only compares, `--out DIR` writes elsewhere). Output is deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.vignettes.build import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
