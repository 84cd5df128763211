"""``python -m optarena.cli``: the ``optarena`` command."""

import sys

from . import main

sys.exit(main())
