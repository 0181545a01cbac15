"""End to end operations: readiness, gateway metrics, and the workers' Prometheus endpoint."""

from __future__ import annotations

from tests.support.polling import eventually


async def test_gateway_is_ready_and_exports_metrics(api):
    status, body, _ = await api.call("GET", "/readyz")
    assert status == 200 and body["checks"] == {"database": "ok", "broker": "ok", "redis": "ok"}

    async with api.client.get(f"{api.base_url}/metrics") as response:
        text = await response.text()
    assert response.status == 200
    assert "orders_http_request_duration_seconds_bucket" in text and "orders_by_status" in text


async def test_workers_export_dramatiq_and_step_metrics(api, fleet):
    token, sku = await api.customer(), await api.item(stock=1)
    _, body, _ = await api.order(token, {sku: 1})
    await api.final_order(token, body["id"], {"PLACED"})
    url = f"http://127.0.0.1:{fleet.env['dramatiq_prom_port']}/metrics"

    async def exported():
        try:
            async with api.client.get(url) as response:
                text = await response.text()
        except OSError:
            return None
        wanted = (
            'dramatiq_messages_total{actor_name="settle"',
            'orders_notifications_sent_total{event="order.placed"}',
        )
        return text if all(name in text for name in wanted) else None

    text = await eventually(exported, timeout=30, what="worker metrics of dramatiq and of the notify step")
    assert "dramatiq_message_duration_milliseconds" in text
