"""Running the gateway: liveness, readiness, metrics and the reconciliation report."""
