"""`python -m cds_service …`."""

from cds_service.cli import main

raise SystemExit(main())
