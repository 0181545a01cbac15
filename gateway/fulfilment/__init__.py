"""The operator's side of an order: shipping and delivering it."""
