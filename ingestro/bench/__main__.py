from __future__ import annotations

import sys

from ingestro.bench.cli import main

sys.exit(main())
