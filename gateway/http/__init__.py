"""What every feature shares over HTTP: problems, JSON bodies, auth, idempotency keys and paging."""
