"""`python -m repdyn` is the `repdyn` command."""

import sys

from repdyn.cli import main

sys.exit(main())
