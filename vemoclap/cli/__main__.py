"""``python -m vemoclap.cli``: the ``vemoclap`` command."""

import sys

from . import main

sys.exit(main())
