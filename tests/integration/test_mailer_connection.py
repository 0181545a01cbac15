"""Moved to tests/unit/test_mailer_connection.py (it needs no service); CountingServer is in
tests/support/smtp.py. Only test_notify_connection.py still imports it from here: once it imports
``from tests.support.smtp import CountingServer``, delete this file. It holds no test."""

from tests.support.smtp import CountingServer

__all__ = ["CountingServer"]
