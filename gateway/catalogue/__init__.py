"""The catalogue: items, their stock and browsing them."""
