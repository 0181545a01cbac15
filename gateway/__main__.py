"""``python -m gateway`` runs the web process."""

import sys

from gateway.main import main

sys.exit(main())
