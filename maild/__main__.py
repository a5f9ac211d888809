"""`python -m maild` runs the command line."""

import sys

from maild.app.cli import main

sys.exit(main())
