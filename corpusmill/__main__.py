"""``python -m corpusmill``: the same as the ``corpusmill`` command."""

import sys

from corpusmill.cli import main

sys.exit(main())
