"""``python -m framestream``: the command line."""

import sys

from framestream.cli import main

sys.exit(main())
