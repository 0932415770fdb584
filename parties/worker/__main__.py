"""Entry point: ``python -m parties.worker JOB_DIR``."""

from __future__ import annotations

import sys

from parties.worker.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
