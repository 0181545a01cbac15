"""``GET /admin/reconciliation`` answers 404 before the first report (the endpoint itself is tested
in tests/integration/test_gateway_reconciliation.py)."""

from __future__ import annotations

import pytest

from gateway.http.problems import Problem
from gateway.operations.reconciliation import report_document


def test_no_report_is_not_found():
    with pytest.raises(Problem) as raised:
        report_document(None)
    assert raised.value.status == 404
