"""`python -m bench`: the main benchmark (`bench.run`)."""

import sys

from bench.run import main

sys.exit(main())
