"""``python -m parties.cli``: the same as the ``safehouse`` command."""

import sys

from parties.cli import main

sys.exit(main())
