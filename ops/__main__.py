"""``python -m ops`` runs ``orders-admin``."""

import sys

from ops.cli import main

sys.exit(main())
