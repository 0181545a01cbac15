"""``python -m workers.ops`` runs ``orders-admin``."""

import sys

from workers.ops.cli import main

sys.exit(main())
