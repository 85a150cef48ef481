"""``python -m ttc.import FORMAT PATH --out runs/``: the command-line name of ``ttc.importers``
(``import`` is a keyword, so code imports ``ttc.importers``)."""

import sys

from ttc.importers import main

if __name__ == "__main__":
    sys.exit(main())
