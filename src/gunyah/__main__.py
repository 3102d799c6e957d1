"""`python -m gunyah` is the `gunyah` command."""

import sys

from .cli import main

sys.exit(main())
