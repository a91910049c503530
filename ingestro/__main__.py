import sys

from ingestro.cli.main import main

sys.exit(main())
