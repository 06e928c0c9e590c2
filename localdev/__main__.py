"""`python -m localdev ...` is `unique-codes ...`."""

import sys

from localdev.cli import main

sys.exit(main())
