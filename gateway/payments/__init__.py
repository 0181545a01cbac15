"""Payments: how orders are paid, reading a payment, refunds and the provider's webhook."""
