from __future__ import annotations

import sys

from ingestro.devtools.bench.cli import main

sys.exit(main())
