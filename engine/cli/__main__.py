"""``python -m engine.cli`` (what torchrun launches)."""

import sys

from engine.cli import main

sys.exit(main())
