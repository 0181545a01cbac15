"""The cursors of ``GET /orders`` (tests/integration/test_gateway_history.py pages with them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from gateway.http.problems import Problem
from gateway.orders.cursors import Cursor


def test_cursor_round_trips_and_keeps_microseconds():
    cursor = Cursor(datetime(2026, 11, 21, 15, 50, 32, 123456), uuid.uuid4().hex)
    text = cursor.encode()
    assert Cursor.decode(text) == cursor
    assert all(char.isalnum() or char in "-_" for char in text)
    with pytest.raises(Problem) as refused:
        Cursor.decode(Cursor(datetime.now(UTC), cursor.id).encode())
    assert refused.value.status == 400
