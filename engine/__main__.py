"""``python3 -m engine VERB ...``: the ``deepda`` command, for when its script is not on PATH."""

import sys

from engine.cli import main

sys.exit(main())
