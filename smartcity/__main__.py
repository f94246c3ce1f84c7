"""`python -m smartcity` runs the smartcity command."""

import sys

from smartcity.cli import main

sys.exit(main())
