"""``python -m dlnmanifolds`` = the ``dlnmanifolds`` command line."""

import sys

from dlnmanifolds.compare.cli import main

sys.exit(main())
