import sys

from ingestro.cli import main

sys.exit(main())
