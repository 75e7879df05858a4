"""Where the tests find material written outside the service's code, all inside the repository.

- `REFERENCE`: the terminology reference the `source:` fields of `mappings/` point to (docs/reference).
- `SYNTHEA`: ten synthetic non-myeloma patients (tests/data/synthea-10, CC0; see tests/data/README.md).
- `CONTRACT`: the project's contract (docs/contract.md): the names outside programs rely on.
A missing file is an error, never a reason to skip.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
SYNTHEA = ROOT / "tests" / "data" / "synthea-10"
CONTRACT = ROOT / "docs" / "contract.md"
