"""``GET /admin/reconciliation``: the latest report of the ``reconcile`` step, for the operator only.

The database is shared by the whole run, so other tests may have written reports too: the
tests here insert their own and check that the newest one is answered. The "no report yet" 404
is checked through HTTP with the report query replaced, since the table may not be empty.
"""

from __future__ import annotations

from gateway.operations import reconciliation_routes
from models.clock import utcnow
from models.tables import ReconciliationReport
from tests.support.gateway_calls import customer

DRIFT = [
    {
        "sku": "SKU-A",
        "received": 10,
        "available": 3,
        "held": 2,
        "committed": 4,
        "committed_archived": 0,
        "drift": 1,
        "available_should_be": 4,
        "repaired": True,
    }
]


async def insert_report(sessionmaker, **fields) -> ReconciliationReport:
    values = {
        "created_at": utcnow(),
        "skus_checked": 7,
        "drift_count": 0,
        "repaired": False,
        "details": [],
        **fields,
    }
    async with sessionmaker() as session, session.begin():
        report = ReconciliationReport(**values)
        session.add(report)
    return report


async def test_the_operator_sees_the_newest_report_with_its_drift(client, admin, sessionmaker):
    await insert_report(sessionmaker)
    newest = await insert_report(sessionmaker, skus_checked=12, drift_count=1, repaired=True, details=DRIFT)

    response = await client.get("/admin/reconciliation", headers=admin)

    assert response.status == 200, await response.text()
    body = await response.json()
    assert body == {
        "id": newest.id,
        "created_at": body["created_at"],
        "skus_checked": 12,
        "drift_count": 1,
        "repaired": True,
        "drift": DRIFT,
    }
    assert body["created_at"].endswith("Z") and body["created_at"].startswith(
        newest.created_at.date().isoformat()
    )


async def test_a_report_without_drift_has_an_empty_drift_list(client, admin, sessionmaker):
    newest = await insert_report(sessionmaker)

    body = await (await client.get("/admin/reconciliation", headers=admin)).json()

    assert (body["id"], body["drift_count"], body["repaired"], body["drift"]) == (newest.id, 0, False, [])


async def test_only_the_operator_may_look(client, sessionmaker):
    await insert_report(sessionmaker)

    anonymous = await client.get("/admin/reconciliation")
    customer_token = await client.get("/admin/reconciliation", headers=await customer(client))

    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert customer_token.status == 403
    for response in (anonymous, customer_token):
        assert response.content_type == "application/problem+json"


async def test_before_the_first_run_the_answer_is_a_404_problem(client, admin, monkeypatch):
    async def no_report(session):
        return None

    monkeypatch.setattr(reconciliation_routes, "latest_report", no_report)

    response = await client.get("/admin/reconciliation", headers=admin)

    assert response.status == 404 and response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == 404 and "no reconciliation" in problem["detail"]
