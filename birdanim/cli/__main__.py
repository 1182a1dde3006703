"""`python -m birdanim.cli` = the `birdanim` command."""

import sys

from birdanim.cli import main

sys.exit(main())
