"""Returns of delivered items: the customer asks, the operator receives (restocking, refunding) or rejects."""
