import sys

from ttc.importers import main

sys.exit(main())
