"""Customer accounts: signing up, signing in (with its limits) and the account's own settings."""
